"""kins: Kubernetes IN Namespaces."""

__version__ = "0.1.0"
