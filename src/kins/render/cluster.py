"""``render_cluster``: the single entry point from cluster state to per-node plans."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from msgspec.structs import replace

from ..api.config import ClusterConfig, NodeConfig
from ..api.core import Namespace, Node, Pod, Service
from ..api.discovery import EndpointSlice
from ..api.networking import NetworkPolicy
from ..api.policy import ClusterNetworkPolicy
from ..model.netstate import NodePlan
from ..store.base import Store
from .netpol.iptables import PolicyIndex, PolicyRender, Sections, render_policy
from .netpol.model import Cluster, CnpInfo, PolicyInfo, build_cnps, build_policies, build_policy, touches
from .podnet import render_node_network
from .proxy.iptables import render_restore
from .proxy.model import build_proxy_model


def nodes_config(cfg: ClusterConfig, nodes: list[Node]) -> ClusterConfig:
    """The cluster file with its node list taken from the live Node objects (nodes come and go).
    A Node still waiting for its address or pod subnet (node IPAM) is left out until leased."""
    out = []
    for n in sorted(nodes, key=lambda n: n.name):
        if not n.internal_ip or not n.spec.podCIDR:
            continue
        out.append(NodeConfig(name=n.name, ip=n.internal_ip, podCIDR=n.spec.podCIDR, labels=n.metadata.labels))
    order = {n.name: i for i, n in enumerate(cfg.nodes)}
    out.sort(key=lambda n: (order.get(n.name, len(order)), n.name))
    return replace(cfg, nodes=out)


def pods_by_node(pods: Iterable[Pod]) -> dict[str, list[Pod]]:
    out: dict[str, list[Pod]] = {}
    for p in pods:
        if p.spec.nodeName:
            out.setdefault(p.spec.nodeName, []).append(p)
    return out


def render_node(
    cfg: ClusterConfig,
    node: str,
    pods: list[Pod],
    services: list[Service],
    slices: list[EndpointSlice],
    policy: PolicyRender | None = None,
) -> NodePlan:
    """One node's full plan: pod network, overlay, kube-proxy's restore payload and, when
    given, the node's NetworkPolicy layer."""
    plan = render_node_network(cfg, node, pods)
    model = build_proxy_model(services, slices, cfg, node, plan.ip)
    restore = render_restore(model, cfg)
    if policy is None or policy.empty:
        policy = PolicyRender(node, [], {})
    return NodePlan(
        name=plan.name,
        ip=plan.ip,
        pod_cidr=plan.pod_cidr,
        links=plan.links,
        addrs=plan.addrs,
        routes=plan.routes,
        neighs=plan.neighs,
        fdb=plan.fdb,
        sysctls=plan.sysctls,
        iptables_restore=restore,
        pods=plan.pods,
        policy_restore=policy.restore,
        policy_jumps=tuple((t, c, args_text(a)) for t, c, a in policy.jumps),
        ipsets=tuple(policy.ipsets.values()),
    )


def args_text(args: list[str]) -> str:
    """Rule arguments as one line, an argument with spaces in double quotes."""
    return " ".join(f'"{a}"' if " " in a else a for a in args)


@dataclass(slots=True)
class PolicyState:
    """The cluster's policies resolved against its pods, namespaces and nodes."""

    cluster: Cluster
    policies: list[PolicyInfo]
    cnps: list[CnpInfo]
    sections: Sections = field(default_factory=dict)  # each policy written once, for every node
    versions: dict[tuple[str, str], str | None] = field(default_factory=dict)  # policies' resourceVersions
    index: PolicyIndex | None = None

    def render(self, cfg: ClusterConfig, node: str) -> PolicyRender:
        if self.index is None:
            self.index = PolicyIndex.of(self.policies, self.cnps)
        local = [p for p in self.cluster.pods if p.node == node]
        return render_policy(cfg, node, self.policies, local, self.cnps, self.sections, self.index)


def policy_state(store: Store, previous: PolicyState | None = None) -> PolicyState:
    """The policies resolved against the pods, namespaces and nodes. With ``previous`` (the
    last sync's state) and the same namespaces and nodes, an unchanged policy that no changed
    pod can concern keeps its resolution and its written chains: a change to one policy, or a
    pod starting, costs the policies it touches."""
    pods, _ = store.list("Pod")
    namespaces, _ = store.list("Namespace")
    nodes, _ = store.list("Node")
    nps, _ = store.list("NetworkPolicy")
    cnps, _ = store.list("ClusterNetworkPolicy")
    cluster = Cluster(
        (p for p in pods if isinstance(p, Pod)),
        (ns for ns in namespaces if isinstance(ns, Namespace)),
        (
            (n.name, n.internal_ip, dict(n.metadata.labels or {}))
            for n in nodes
            if isinstance(n, Node) and n.internal_ip
        ),
    )
    np_objs = sorted((p for p in nps if isinstance(p, NetworkPolicy)), key=lambda p: (p.namespace or "default", p.name))
    cnp_objs = [c for c in cnps if isinstance(c, ClusterNetworkPolicy)]
    if previous is None or previous.cluster.world != cluster.world:
        state = PolicyState(cluster, build_policies(np_objs, cluster), build_cnps(cnp_objs, cluster))
    else:
        changes = cluster.changed_pods(previous.cluster)
        if not changes:
            cluster = previous.cluster  # with its selector caches
        known = {(p.namespace, p.name): p for p in previous.policies}
        infos = []
        for obj in np_objs:
            key = (obj.namespace or "default", obj.name)
            old = known.get(key)
            same = old is not None and previous.versions.get(key) == obj.metadata.resourceVersion
            if same and old is not None and not (changes and touches(obj, changes, cluster)):
                infos.append(old)  # it selects and admits what it did
            else:
                infos.append(build_policy(obj, cluster))
        state = PolicyState(cluster, infos, build_cnps(cnp_objs, cluster), previous.sections)
        kept = {id(p) for p in infos} | {id(c) for c in state.cnps}
        live = {f"pod:{p.key}" for p in cluster.pods}
        stale = [k for k in state.sections if k not in kept and k not in live]
        for k in stale:
            del state.sections[k]
    state.versions = {(p.namespace or "default", p.name): p.metadata.resourceVersion for p in np_objs}
    return state


def render_policies(cfg: ClusterConfig, store: Store, nodes: Iterable[str]) -> dict[str, PolicyRender]:
    state = policy_state(store)
    return {node: state.render(cfg, node) for node in nodes}


def render_cluster(cfg: ClusterConfig, store: Store, nodes: Iterable[str] | None = None) -> dict[str, NodePlan]:
    """Plans for the given nodes (all of the cluster's nodes by default), in the cluster file's order."""
    wanted = list(nodes) if nodes is not None else [n.name for n in cfg.nodes]
    pods, _ = store.list("Pod")
    services, _ = store.list("Service")
    slices, _ = store.list("EndpointSlice")
    by_node = pods_by_node(p for p in pods if isinstance(p, Pod))
    svcs = [s for s in services if isinstance(s, Service)]
    sls = [s for s in slices if isinstance(s, EndpointSlice)]
    policy = render_policies(cfg, store, wanted)
    return {n: render_node(cfg, n, by_node.get(n, []), svcs, sls, policy[n]) for n in wanted}
