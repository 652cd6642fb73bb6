"""kins: Kubernetes IN Namespaces."""
