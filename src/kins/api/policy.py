"""``policy.networking.k8s.io/v1alpha2``: ClusterNetworkPolicy, the cluster-wide policy of the
network-policy-api project (Admin and Baseline tiers around the namespaced NetworkPolicy).

A custom resource in a real cluster, so the fields its schema requires are still optional here:
a missing one is refused by validation with the CRD's ``Required value``, as the API server
does, rather than failing to decode.
"""

from __future__ import annotations

import msgspec

from .meta import Base, Condition, LabelSelector, Object

TIERS = ("Admin", "Baseline")
ACTIONS = ("Accept", "Deny", "Pass")


class NamespacedPod(Base):
    """Pods matching ``podSelector`` in the namespaces matching ``namespaceSelector`` (empty
    selectors select all)."""

    namespaceSelector: LabelSelector = msgspec.field(default_factory=LabelSelector)
    podSelector: LabelSelector | None = None


class ClusterNetworkPolicySubject(Base):
    """Exactly one of the two."""

    namespaces: LabelSelector | None = None
    pods: NamespacedPod | None = None


class PortRange(Base):
    """Inclusive; ``start`` < ``end``."""

    start: int | None = None
    end: int | None = None


class Port(Base):
    """Exactly one of the two."""

    number: int | None = None
    range: PortRange | None = None


class ClusterNetworkPolicyProtocolPort(Base):
    """The match of one transport protocol (``tcp``, ``udp`` or ``sctp``)."""

    destinationPort: Port | None = None


class ClusterNetworkPolicyProtocol(Base):
    """Exactly one field: a protocol with its destination port, or a named container port."""

    tcp: ClusterNetworkPolicyProtocolPort | None = None
    udp: ClusterNetworkPolicyProtocolPort | None = None
    sctp: ClusterNetworkPolicyProtocolPort | None = None
    destinationNamedPort: str | None = None


class ClusterNetworkPolicyIngressPeer(Base):
    """Exactly one of the fields."""

    namespaces: LabelSelector | None = None
    pods: NamespacedPod | None = None


class ClusterNetworkPolicyEgressPeer(Base):
    """Exactly one of the fields. ``nodes`` and ``domainNames`` are in the experimental channel."""

    namespaces: LabelSelector | None = None
    pods: NamespacedPod | None = None
    nodes: LabelSelector | None = None
    networks: list[str] | None = None
    domainNames: list[str] | None = None


class ClusterNetworkPolicyIngressRule(Base):
    name: str | None = None
    action: str = ""
    # "from" is a Python keyword.
    from_: list[ClusterNetworkPolicyIngressPeer] | None = msgspec.field(default=None, name="from")
    protocols: list[ClusterNetworkPolicyProtocol] | None = None


class ClusterNetworkPolicyEgressRule(Base):
    name: str | None = None
    action: str = ""
    to: list[ClusterNetworkPolicyEgressPeer] | None = None
    protocols: list[ClusterNetworkPolicyProtocol] | None = None


class ClusterNetworkPolicySpec(Base):
    """Rules apply in the order written; lower ``priority`` (0-1000) goes first within a tier."""

    tier: str = ""
    priority: int | None = None
    subject: ClusterNetworkPolicySubject | None = None
    ingress: list[ClusterNetworkPolicyIngressRule] | None = None
    egress: list[ClusterNetworkPolicyEgressRule] | None = None


class ClusterNetworkPolicyStatus(Base):
    conditions: list[Condition] | None = None


class ClusterNetworkPolicy(Object):
    KIND = "ClusterNetworkPolicy"
    API_VERSION = "policy.networking.k8s.io/v1alpha2"
    NAMESPACED = False
    PLURAL = "clusternetworkpolicies"
    spec: ClusterNetworkPolicySpec = msgspec.field(default_factory=ClusterNetworkPolicySpec)
    status: ClusterNetworkPolicyStatus | None = None
