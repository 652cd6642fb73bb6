"""``metrics.k8s.io/v1beta1``: NodeMetrics and PodMetrics, the Metrics API's read-only kinds.

Not stored: the API answers them from the kubelets' latest reports (``apiserver/metrics.py``).
The types give the OpenAPI documents their schemas, so that ``kubectl explain`` reads them.
"""

from __future__ import annotations

from .meta import Base, Object

GROUP_VERSION = "metrics.k8s.io/v1beta1"


class ContainerMetrics(Base):
    """One container's use: ``usage`` maps ``cpu`` and ``memory`` to quantities."""

    name: str = ""
    usage: dict[str, str] | None = None


class NodeMetrics(Object):
    """A node's CPU and memory use over ``window``, ending at ``timestamp``."""

    KIND = "NodeMetrics"
    API_VERSION = GROUP_VERSION
    NAMESPACED = False
    PLURAL = "nodes"
    timestamp: str | None = None
    window: str | None = None
    usage: dict[str, str] | None = None


class PodMetrics(Object):
    """A pod's use, container by container, over ``window``, ending at ``timestamp``."""

    KIND = "PodMetrics"
    API_VERSION = GROUP_VERSION
    PLURAL = "pods"
    timestamp: str | None = None
    window: str | None = None
    containers: list[ContainerMetrics] | None = None
