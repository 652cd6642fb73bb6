"""``ClusterView``: every namespace a trace may cross, and the wires between them.

Built once from the rendered plans (``from_plans``) or from node states read off a live
cluster (``from_states``), then reused for any number of traces: the parsed and indexed rules
live in the states and are built on first use.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..api.config import ClusterConfig
from ..model.ipv4 import MASKS, int_ip, net_int
from ..model.netstate import NodePlan
from .state import HOST, NODE, POD, NodeState, from_plan, from_pod_plan, host_state

FLOW_CACHE_MAX = 8192


class FlowCache:
    """Traces already walked, least recently used first out: ``maxsize`` bounds the memory a
    long run of distinct questions can take. Keys and values are the tracer's (see
    ``trace.trace``: a key holds only what the walk read)."""

    def __init__(self, maxsize: int = FLOW_CACHE_MAX) -> None:
        self.maxsize = maxsize
        self._d: dict[Hashable, Any] = {}
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> Any:
        d = self._d
        v = d.pop(key, None)
        if v is None:
            self.misses += 1
            return None
        d[key] = v  # re-inserted: dicts keep insertion order, so the front is the oldest
        self.hits += 1
        return v

    def put(self, key: Hashable, value: Any) -> None:
        d = self._d
        d.pop(key, None)
        if len(d) >= self.maxsize:
            del d[next(iter(d))]
        d[key] = value

    def clear(self) -> None:
        self._d.clear()

    def __len__(self) -> int:
        return len(self._d)


@dataclass(frozen=True, slots=True)
class PortPeer:
    """A bridge port and what sits behind it."""

    port: str
    peer: NodeState | None
    peer_dev: str | None


@dataclass
class ClusterView:
    states: dict[str, NodeState] = field(default_factory=dict)  # by plan-level netns name
    nodes: dict[str, NodeState] = field(default_factory=dict)
    pods: dict[str, NodeState] = field(default_factory=dict)  # by ns/name
    hosts: dict[str, NodeState] = field(default_factory=dict)
    underlay: dict[int, tuple[NodeState, str]] = field(default_factory=dict)  # IP -> (state, dev)
    services: dict[tuple[int, str, int], str] = field(default_factory=dict)  # (IP, proto, port) -> ns/name:port
    # (netns, bridge) -> IP -> port: who answers ARP for an address on the bridge's segment
    bridge_arp: dict[tuple[str, str], dict[int, PortPeer]] = field(default_factory=dict)
    pod_ips: dict[int, NodeState] = field(default_factory=dict)
    # Service endpoints' nodes as EndpointSlices name them (``nodeName``): what a cut-down
    # view's subnets no longer tell, and what an address outside every pod subnet needs
    endpoint_nodes: dict[int, str] = field(default_factory=dict)
    # traces by what they read (the source port only when a rule looked at it)
    flow_cache: FlowCache = field(default_factory=FlowCache, repr=False)
    subviews: dict[str, ClusterView] = field(default_factory=dict, repr=False)

    def add(self, st: NodeState) -> None:
        self.states[st.netns] = st
        if st.kind == NODE:
            self.nodes[st.name] = st
        elif st.kind == POD:
            self.pods[st.name] = st
            for a in st.addrs:
                if a.dev != "lo":
                    self.pod_ips[a.ip] = st
        else:
            self.hosts[st.name] = st

    def wire(self, underlay_cidr: str | None = None) -> None:
        """Work out the L2 segments: bridge ports and their peers, and the underlay."""
        u_net, u_len = net_int(underlay_cidr) if underlay_cidr else (0, -1)
        self.underlay.clear()
        self.bridge_arp.clear()
        for st in self.states.values():
            for a in st.addrs:
                if a.dev == "lo":
                    continue
                dev = st.ifaces.get(a.dev)
                on_underlay = (
                    dev is not None and dev.peer_netns == "underlay"
                    if u_len < 0
                    else (a.ip & MASKS[u_len]) == u_net and dev is not None and dev.kind != "bridge"
                )
                if on_underlay or (st.kind == HOST and a.dev == "eth0"):
                    self.underlay[a.ip] = (st, a.dev)
            if st.kind != NODE:
                continue
            for br in (i for i in st.ifaces.values() if i.kind == "bridge"):
                arp: dict[int, PortPeer] = {}
                for port in (i for i in st.ifaces.values() if i.master == br.name):
                    peer = self.states.get(port.peer_netns or "")
                    if peer is None:
                        continue
                    for a in peer.addrs:
                        if a.dev == port.peer:
                            arp[a.ip] = PortPeer(port.name, peer, port.peer)
                # Live dumps: learned neighbours and FDB entries name the port of an address.
                for (ndev, ip), mac in st.neighs.items():
                    if ndev == br.name and ip not in arp:
                        learned = st.fdb.get((br.name, mac))
                        if isinstance(learned, str):
                            arp[ip] = PortPeer(learned, self.pod_ips.get(ip), "eth0" if ip in self.pod_ips else None)
                self.bridge_arp[(st.netns, br.name)] = arp

    @classmethod
    def from_plans(cls, plans: dict[str, NodePlan], cfg: ClusterConfig | None = None) -> ClusterView:
        view = cls()
        for plan in plans.values():
            view.add(from_plan(plan))
            for pod in plan.pods:
                view.add(from_pod_plan(pod, plan.name))
        if cfg is not None:
            for h in cfg.hosts:
                view.add(host_state(h.name, h.ip, cfg.underlay.cidr))
        view.wire(cfg.underlay.cidr if cfg is not None else None)
        return view

    @classmethod
    def from_states(cls, states: Iterable[NodeState], underlay_cidr: str | None = None) -> ClusterView:
        """A view over states of any origin (plans, ``ip -j`` dumps, hosts)."""
        view = cls()
        for st in states:
            view.add(st)
        view.wire(underlay_cidr)
        return view

    def replace_node(self, st: NodeState, underlay_cidr: str | None = None) -> None:
        """Swap a node's state for another one (say, read off the live node), keeping its pods."""
        old = self.nodes.get(st.name)
        if old is not None:
            del self.states[old.netns]
        self.add(st)
        self.flow_cache.clear()
        self.subviews.clear()
        self.wire(underlay_cidr)

    def clear_caches(self) -> None:
        """Forget every trace (of this view and its cut-downs)."""
        self.flow_cache.clear()
        for sub in self.subviews.values():
            sub.flow_cache.clear()

    def only(self, node: str) -> ClusterView:
        """The same view cut down to one node and its pods (made once, then reused)."""
        if node not in self.nodes:
            raise KeyError(node)
        cached = self.subviews.get(node)
        if cached is not None:
            return cached
        sub = self.subviews[node] = ClusterView(services=self.services, endpoint_nodes=self.endpoint_nodes)
        for st in self.states.values():
            if (st.name == node and st.kind == NODE) or (st.kind == POD and st.node == node):
                sub.add(st)
        sub.underlay = {ip: v for ip, v in self.underlay.items() if v[0].name == node and v[0].kind == NODE}
        sub.bridge_arp = {k: v for k, v in self.bridge_arp.items() if k[0] == self.nodes[node].netns}
        return sub

    def node_of_ip(self, ip: int) -> str | None:
        """The node whose pod subnet holds ``ip`` (or whose own address it is)."""
        for st in self.nodes.values():
            if st.pod_cidr:
                net, plen = net_int(st.pod_cidr)
                if (ip & MASKS[plen]) == net:
                    return st.name
            if ip in st.local_ips():
                return st.name
        return None

    def endpoint_node(self, ip: int) -> str | None:
        """The node a Service endpoint at ``ip`` is on: its pod's, its EndpointSlice's
        ``nodeName``, or the node whose pod subnet (or own address) holds it."""
        pod = self.pod_ips.get(ip)
        if pod is not None and pod.node:
            return pod.node
        return self.endpoint_nodes.get(ip) or self.node_of_ip(ip)

    def pod_cidr_node(self, ip: int) -> NodeState | None:
        """The node whose pod subnet holds ``ip``."""
        for st in self.nodes.values():
            if st.pod_cidr:
                net, plen = net_int(st.pod_cidr)
                if (ip & MASKS[plen]) == net:
                    return st
        return None

    def who(self, ip: int) -> str:
        """``ip`` in words: the pod, node or host that owns it."""
        if ip in self.pod_ips:
            return f"pod {self.pod_ips[ip].name}"
        if ip in self.underlay:
            st = self.underlay[ip][0]
            return f"{st.kind} {st.name}"
        for st in self.nodes.values():
            if ip in st.local_ips() and ip >> 24 != 127:
                return f"node {st.name}"
        return int_ip(ip)
