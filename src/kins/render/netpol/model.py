"""What kube-router's policy controller reads from the API: each NetworkPolicy with the pods it
selects and, per rule, the peer pods, ipBlocks and ports, resolved against the cluster's pods
and namespaces (``buildNetworkPoliciesInfo``).

Pure: objects in, records out. The iptables writer (``iptables.py``) turns these into chains
and sets; the matrix and the tracer read the same records to name policies and rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from ...api.core import Namespace, Pod
from ...api.meta import LabelSelector, selector_matches
from ...api.networking import NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort
from ...api.policy import (
    ClusterNetworkPolicy,
    ClusterNetworkPolicyEgressPeer,
    ClusterNetworkPolicyIngressPeer,
    ClusterNetworkPolicyProtocol,
    NamespacedPod,
)

INGRESS = "ingress"
EGRESS = "egress"
BOTH = "both"

NS_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True, slots=True)
class PodInfo:
    """A pod as the policy controller sees it: actionable pods only (an address, not finished,
    not on the host's network)."""

    namespace: str
    name: str
    ip: str
    node: str
    labels: dict[str, str] = field(compare=False, hash=False)
    # (name, protocol, port) of every container port, for named ports
    ports: tuple[tuple[str, str, int], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class PortSpec:
    """A numeric rule port: ``protocol`` (tcp/udp/sctp), ``port`` ("" = every port of the
    protocol), ``end`` ("" = a single port)."""

    protocol: str
    port: str = ""
    end: str = ""


@dataclass(frozen=True, slots=True)
class NamedPortEps:
    """A named port resolved on the pods holding it: the pods' addresses for one number."""

    protocol: str
    port: str
    ips: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IPBlockPeer:
    cidr: str
    excepts: tuple[str, ...] = ()


@dataclass(slots=True)
class RuleInfo:
    """One ingress (from) or egress (to) rule."""

    index: int
    match_all_peers: bool
    has_pod_peers: bool  # some peer selects pods (its set exists even while it selects none)
    peer_pods: list[PodInfo]
    ipblocks: list[IPBlockPeer]
    match_all_ports: bool
    ports: list[PortSpec]
    named: list[NamedPortEps]
    action: str = "Accept"  # ClusterNetworkPolicy rules: Accept, Deny or Pass
    name: str = ""  # ClusterNetworkPolicy rules are named


@dataclass(slots=True)
class PolicyInfo:
    namespace: str
    name: str
    type: str  # ingress, egress or both (the policy's isolation)
    targets: list[PodInfo]
    ingress: list[RuleInfo] | None  # None: no ingress section
    egress: list[RuleInfo] | None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def isolates(self, direction: str) -> bool:
        return self.type in (direction, BOTH)


def policy_types(np: NetworkPolicy) -> tuple[bool, bool]:
    """(ingress, egress) isolation as the API server defaults ``policyTypes``: Ingress always,
    Egress when the policy has egress rules."""
    types = np.spec.policyTypes
    if not types:
        return True, bool(np.spec.egress)
    return "Ingress" in types, "Egress" in types


def actionable(p: Pod) -> bool:
    """kube-router's ``isNetPolActionable``."""
    phase = p.status.phase if p.status else None
    return bool(p.status and p.status.podIP) and phase not in ("Succeeded", "Failed") and not p.spec.hostNetwork


def pod_info(p: Pod) -> PodInfo:
    ports = tuple(
        (cp.name or "", (cp.protocol or "TCP").upper(), cp.containerPort)
        for c in p.spec.containers
        for cp in c.ports or []
    )
    assert p.status is not None and p.status.podIP
    return PodInfo(
        p.metadata.namespace or "default",
        p.name,
        p.status.podIP,
        p.spec.nodeName or "",
        dict(p.metadata.labels or {}),
        ports,
    )


class _LabelIndex:
    """One namespace's pods by label, as bitmasks: a selector is a few integer operations."""

    def __init__(self, pods: list[PodInfo]) -> None:
        self.pods = pods
        self.all = (1 << len(pods)) - 1
        self.pairs: dict[tuple[str, str], int] = {}
        self.keys: dict[str, int] = {}
        for i, p in enumerate(pods):
            bit = 1 << i
            for k, v in p.labels.items():
                self.pairs[(k, v)] = self.pairs.get((k, v), 0) | bit
                self.keys[k] = self.keys.get(k, 0) | bit

    def select(self, sel: LabelSelector) -> list[PodInfo]:
        bits = self.all
        for k, v in (sel.matchLabels or {}).items():
            bits &= self.pairs.get((k, v), 0)
        for req in sel.matchExpressions or []:
            values = req.values or []
            any_of = 0
            for v in values:
                any_of |= self.pairs.get((req.key, v), 0)
            if req.operator == "In":
                bits &= any_of
            elif req.operator == "NotIn":
                bits &= ~any_of
            elif req.operator == "Exists":
                bits &= self.keys.get(req.key, 0)
            elif req.operator == "DoesNotExist":
                bits &= ~self.keys.get(req.key, 0)
            else:
                bits = 0
        out = []
        while bits:
            low = bits & -bits
            out.append(self.pods[low.bit_length() - 1])
            bits ^= low
        return out


class Cluster:
    """The pods, namespaces and nodes selectors are evaluated over, indexed by namespace."""

    def __init__(
        self,
        pods: Iterable[Pod],
        namespaces: Iterable[Namespace],
        nodes: Iterable[tuple[str, str, dict[str, str]]] = (),
    ) -> None:
        self.nodes = list(nodes)  # (name, address, labels)
        self.pods: list[PodInfo] = sorted(
            (pod_info(p) for p in pods if actionable(p)), key=lambda i: (i.namespace, i.name)
        )
        self.by_ns: dict[str, list[PodInfo]] = {}
        for i in self.pods:
            self.by_ns.setdefault(i.namespace, []).append(i)
        self.ns_labels: dict[str, dict[str, str]] = {}
        for ns in namespaces:
            labels = dict(ns.metadata.labels or {})
            labels.setdefault(NS_NAME_LABEL, ns.name)  # the API server's immutable label
            self.ns_labels[ns.name] = labels
        for name in self.by_ns:  # a namespace only pods name (offline manifests)
            self.ns_labels.setdefault(name, {NS_NAME_LABEL: name})

        self._index: dict[str, _LabelIndex] = {}
        self._selected: dict[tuple[str, bytes], list[PodInfo]] = {}
        self._ns_selected: dict[bytes, list[str]] = {}
        self._named: NamedPorts | None = None
        self._world: tuple[object, ...] | None = None
        self._pod_world: dict[str, tuple[object, ...]] | None = None

    @property
    def world(self) -> tuple[object, ...]:
        """Everything selectors and named ports read besides the pods (``pod_world``): with
        equal worlds, a policy whose selectors match no pod that changed resolves the same."""
        if self._world is None:
            ns = tuple(sorted((n, tuple(sorted(labels.items()))) for n, labels in self.ns_labels.items()))
            nodes = tuple((n, ip, tuple(sorted(labels.items()))) for n, ip, labels in self.nodes)
            self._world = (ns, nodes)
        return self._world

    @property
    def pod_world(self) -> dict[str, tuple[object, ...]]:
        """Each pod as policies see it: address, node, labels, ports."""
        if self._pod_world is None:
            self._pod_world = {p.key: (p.ip, p.node, tuple(sorted(p.labels.items())), p.ports) for p in self.pods}
        return self._pod_world

    def changed_pods(self, other: Cluster) -> list[tuple[str, dict[str, str]]]:
        """(namespace, labels) of every pod that differs from ``other``'s, both versions."""
        mine, theirs = self.pod_world, other.pod_world
        by_key = {p.key: p for p in self.pods}
        their_pods = {p.key: p for p in other.pods}
        out = []
        for key in mine.keys() | theirs.keys():
            if mine.get(key) != theirs.get(key):
                for p in (by_key.get(key), their_pods.get(key)):
                    if p is not None:
                        out.append((p.namespace, p.labels))
        return out

    def named_ports(self) -> NamedPorts:
        """Every pod's named ports (computed once)."""
        if self._named is None:
            self._named = _named_ports(self.pods)
        return self._named

    def select(self, namespace: str, sel: LabelSelector | None) -> list[PodInfo]:
        """The namespace's pods ``sel`` matches (None matches none), in name order."""
        if sel is None:
            return []
        key = (namespace, msgspec.json.encode(sel))
        got = self._selected.get(key)
        if got is None:
            idx = self._index.get(namespace)
            if idx is None:
                idx = self._index[namespace] = _LabelIndex(self.by_ns.get(namespace, []))
            got = self._selected[key] = idx.select(sel)
        return got

    def namespaces(self, sel: LabelSelector) -> list[str]:
        key = msgspec.json.encode(sel)
        got = self._ns_selected.get(key)
        if got is None:
            got = self._ns_selected[key] = sorted(
                n for n, labels in self.ns_labels.items() if selector_matches(sel, labels)
            )
        return got

    def peer_pods(self, policy_ns: str, peer: NetworkPolicyPeer) -> list[PodInfo]:
        """``evalPodPeer``: namespaceSelector (with an optional podSelector) across namespaces,
        a podSelector alone within the policy's namespace."""
        if peer.namespaceSelector is not None:
            out: list[PodInfo] = []
            every = LabelSelector()  # no podSelector beside a namespaceSelector: every pod there
            for ns in self.namespaces(peer.namespaceSelector):
                out += self.select(ns, peer.podSelector or every)
            return out
        if peer.podSelector is not None:
            return self.select(policy_ns, peer.podSelector)
        return []


NamedPorts = dict[tuple[str, str], dict[int, list[str]]]


def _named_ports(pods: Iterable[PodInfo]) -> NamedPorts:
    """``grabNamedPortFromPod``: (port name, protocol) -> number -> addresses of pods holding it."""
    out: dict[tuple[str, str], dict[int, dict[str, None]]] = {}
    for p in pods:
        for name, proto, num in p.ports:
            if name:
                out.setdefault((name, proto), {}).setdefault(num, {})[p.ip] = None
    return {k: {num: list(ips) for num, ips in by_num.items()} for k, by_num in out.items()}


def _has_named(ports: list[NetworkPolicyPort] | None) -> bool:
    return any(isinstance(p.port, str) for p in ports or [])


def _ports(
    ports: list[NetworkPolicyPort], named: dict[tuple[str, str], dict[int, list[str]]]
) -> tuple[list[PortSpec], list[NamedPortEps]]:
    """``processNetworkPolicyPorts``: numeric ports and ranges as they are, named ports as one
    entry per number the holders use. The protocol defaults to TCP, as the API server does."""
    numeric: list[PortSpec] = []
    eps: list[NamedPortEps] = []
    for p in ports:
        proto = (p.protocol or "TCP").upper()
        if p.port is None:
            numeric.append(PortSpec(proto.lower()))
        elif isinstance(p.port, int):
            end = str(p.endPort) if p.endPort is not None and p.endPort >= p.port else ""
            numeric.append(PortSpec(proto.lower(), str(p.port), end))
        else:
            for num, ips in sorted(named.get((p.port, proto), {}).items()):
                eps.append(NamedPortEps(proto.lower(), str(num), tuple(ips)))
    return numeric, eps


def _ipblock(peer: NetworkPolicyPeer) -> IPBlockPeer | None:
    if peer.ipBlock is None or peer.podSelector is not None or peer.namespaceSelector is not None:
        return None
    if ":" in peer.ipBlock.cidr:  # the IPv4 controller ignores the other family
        return None
    return IPBlockPeer(peer.ipBlock.cidr, tuple(e for e in peer.ipBlock.except_ or [] if ":" not in e))


def build_policy(np: NetworkPolicy, cluster: Cluster) -> PolicyInfo:
    ns = np.metadata.namespace or "default"
    ing, egr = policy_types(np)
    kind = BOTH if ing and egr else EGRESS if egr else INGRESS
    targets = cluster.select(ns, np.spec.podSelector)
    named_rules = any(_has_named(r.ports) for r in np.spec.ingress or [])
    target_named = _named_ports(targets) if named_rules else {}
    ingress: list[RuleInfo] | None = None if np.spec.ingress is None else []
    for i, r in enumerate(np.spec.ingress or []):
        peers = r.from_ or []
        pods = [p for peer in peers for p in cluster.peer_pods(ns, peer)]
        blocks = [b for b in map(_ipblock, peers) if b is not None]
        nums, named = _ports(r.ports or [], target_named)
        assert ingress is not None
        selects = any(pe.podSelector is not None or pe.namespaceSelector is not None for pe in peers)
        ingress.append(RuleInfo(i, not peers, selects, pods, blocks, not r.ports, nums, named))
    egress: list[RuleInfo] | None = None if np.spec.egress is None else []
    for i, er in enumerate(np.spec.egress or []):
        peers = er.to or []
        pods = [p for peer in peers for p in cluster.peer_pods(ns, peer)]
        blocks = [b for b in map(_ipblock, peers) if b is not None]
        # With no peers a named port resolves on every pod it may reach, as the API defines it
        # (kube-router looks in the policy's own namespace only).
        index = (_named_ports(pods) if peers else cluster.named_ports()) if _has_named(er.ports) else {}
        nums, named = _ports(er.ports or [], index)
        assert egress is not None
        selects = any(pe.podSelector is not None or pe.namespaceSelector is not None for pe in peers)
        egress.append(RuleInfo(i, not peers, selects, pods, blocks, not er.ports, nums, named))
    return PolicyInfo(ns, np.name, kind, targets, ingress, egress)


def touches(np: NetworkPolicy, changes: list[tuple[str, dict[str, str]]], cluster: Cluster) -> bool:
    """Whether a pod change (``changes``: namespace and labels, before and after) can alter what
    ``np`` selects or admits."""
    ns = np.metadata.namespace or "default"
    every = LabelSelector()
    ing, egr = policy_types(np)  # rules of a direction the policy does not isolate are never read
    rules: list[tuple[list[NetworkPolicyPeer], list[NetworkPolicyPort] | None]] = [
        *((r.from_ or [], r.ports) for r in (np.spec.ingress or [] if ing else [])),
        *((r.to or [], r.ports) for r in (np.spec.egress or [] if egr else [])),
    ]
    if any(not peers and _has_named(ports) for peers, ports in rules):
        return True  # a named port resolved on every pod
    for pod_ns, labels in changes:
        if pod_ns == ns and selector_matches(np.spec.podSelector, labels):
            return True
        for peers, _ in rules:
            for peer in peers:
                if peer.namespaceSelector is not None:
                    ns_labels = cluster.ns_labels.get(pod_ns, {NS_NAME_LABEL: pod_ns})
                    if selector_matches(peer.namespaceSelector, ns_labels) and selector_matches(
                        peer.podSelector or every, labels
                    ):
                        return True
                elif peer.podSelector is not None and pod_ns == ns and selector_matches(peer.podSelector, labels):
                    return True
    return False


def build_policies(policies: Iterable[NetworkPolicy], cluster: Cluster) -> list[PolicyInfo]:
    """Every policy, in (namespace, name) order."""
    nps = sorted(policies, key=lambda p: (p.metadata.namespace or "default", p.name))
    return [build_policy(np, cluster) for np in nps]


# --- ClusterNetworkPolicy -----------------------------------------------------------------------

ADMIN = "Admin"
BASELINE = "Baseline"


@dataclass(slots=True)
class CnpInfo:
    """A ClusterNetworkPolicy: its tier, priority, subject pods and ordered rules."""

    name: str
    tier: str
    priority: int
    targets: list[PodInfo]
    ingress: list[RuleInfo]
    egress: list[RuleInfo]

    @property
    def key(self) -> str:
        return self.name

    def isolates(self, direction: str) -> bool:
        return bool(self.ingress if direction == INGRESS else self.egress)


def _namespaced_pods(cluster: Cluster, sel: NamespacedPod) -> list[PodInfo]:
    every = LabelSelector()
    out: list[PodInfo] = []
    for ns in cluster.namespaces(sel.namespaceSelector):
        out += cluster.select(ns, sel.podSelector or every)
    return out


def _cnp_peers(
    cluster: Cluster, peers: list[ClusterNetworkPolicyIngressPeer] | list[ClusterNetworkPolicyEgressPeer]
) -> tuple[bool, list[PodInfo], list[IPBlockPeer]]:
    pods: list[PodInfo] = []
    blocks: list[IPBlockPeer] = []
    selects = False
    every = LabelSelector()
    for peer in peers:
        if peer.namespaces is not None:
            selects = True
            for ns in cluster.namespaces(peer.namespaces):
                pods += cluster.select(ns, every)
        if peer.pods is not None:
            selects = True
            pods += _namespaced_pods(cluster, peer.pods)
        if isinstance(peer, ClusterNetworkPolicyEgressPeer):
            blocks += [IPBlockPeer(c) for c in peer.networks or [] if ":" not in c]
            if peer.nodes is not None:
                blocks += [
                    IPBlockPeer(f"{ip}/32") for _, ip, labels in cluster.nodes if selector_matches(peer.nodes, labels)
                ]
    return selects, pods, blocks


def _cnp_ports(
    protocols: list[ClusterNetworkPolicyProtocol] | None, holders: Iterable[PodInfo]
) -> tuple[list[PortSpec], list[NamedPortEps]]:
    numeric: list[PortSpec] = []
    named: list[NamedPortEps] = []
    index = None
    for p in protocols or []:
        if p.destinationNamedPort is not None:
            index = index if index is not None else _named_ports(holders)
            for proto in ("TCP", "UDP", "SCTP"):
                for num, ips in sorted(index.get((p.destinationNamedPort, proto), {}).items()):
                    named.append(NamedPortEps(proto.lower(), str(num), tuple(ips)))
            continue
        for proto, pp in (("tcp", p.tcp), ("udp", p.udp), ("sctp", p.sctp)):
            if pp is None:
                continue
            port = pp.destinationPort
            if port is None:
                numeric.append(PortSpec(proto))
            elif port.number is not None:
                numeric.append(PortSpec(proto, str(port.number)))
            elif port.range is not None and port.range.start is not None and port.range.end is not None:
                numeric.append(PortSpec(proto, str(port.range.start), str(port.range.end)))
    return numeric, named


def build_cnp(cnp: ClusterNetworkPolicy, cluster: Cluster) -> CnpInfo:
    spec = cnp.spec
    subj = spec.subject
    targets: list[PodInfo] = []
    if subj is not None and subj.namespaces is not None:
        every = LabelSelector()
        for ns in cluster.namespaces(subj.namespaces):
            targets += cluster.select(ns, every)
    elif subj is not None and subj.pods is not None:
        targets = _namespaced_pods(cluster, subj.pods)
    ingress: list[RuleInfo] = []
    for i, r in enumerate(spec.ingress or []):
        selects, pods, blocks = _cnp_peers(cluster, r.from_ or [])
        nums, named = _cnp_ports(r.protocols, targets)
        ingress.append(
            RuleInfo(i, False, selects, pods, blocks, r.protocols is None, nums, named, r.action, r.name or "")
        )
    egress: list[RuleInfo] = []
    for i, er in enumerate(spec.egress or []):
        selects, pods, blocks = _cnp_peers(cluster, er.to or [])
        nums, named = _cnp_ports(er.protocols, pods)
        egress.append(
            RuleInfo(i, False, selects, pods, blocks, er.protocols is None, nums, named, er.action, er.name or "")
        )
    return CnpInfo(cnp.name, spec.tier, spec.priority or 0, targets, ingress, egress)


def build_cnps(cnps: Iterable[ClusterNetworkPolicy], cluster: Cluster) -> list[CnpInfo]:
    """Admin tier first, then Baseline; within a tier by priority (lower first), then name."""
    infos = [build_cnp(c, cluster) for c in cnps if c.spec.tier in (ADMIN, BASELINE)]
    return sorted(infos, key=lambda c: (c.tier != ADMIN, c.priority, c.name))
