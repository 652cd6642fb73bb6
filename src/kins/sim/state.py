"""``NodeState``: one network namespace as the simulator sees it.

Everything the forwarding path needs and nothing else: interfaces (kind, MAC, bridge master,
veth peer, VXLAN settings), addresses, routes, neighbours, FDB entries, two sysctls and the
iptables ruleset. A rendered ``NodePlan`` (``from_plan``), a pod's ``PodPlan`` and the JSON of
a live node's ``ip -j``/``bridge -j`` plus its ``iptables-save`` (``ipjson.state_from_ip_json``)
all convert into it, so one engine traces both kins' own plans and a real cluster's nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..render.plan import NodePlan, PodPlan, Route
from .addr import ip_int, net_int
from .iptables import Ruleset
from .records import AddrEntry, Iface, RouteEntry, Vxlan
from .routing import RoutingTables

NODE = "node"
POD = "pod"
HOST = "host"


@dataclass
class NodeState:
    """A namespace: a node, a pod or an outside host (``kind``). ``name`` is what traces
    print (node name, pod ``ns/name``, host name); ``netns`` is the plan-level namespace name
    veth peers refer to."""

    name: str
    kind: str
    netns: str
    ifaces: dict[str, Iface] = field(default_factory=dict)
    addrs: list[AddrEntry] = field(default_factory=list)
    routes: list[RouteEntry] = field(default_factory=list)
    neighs: dict[tuple[str, int], str] = field(default_factory=dict)  # (dev, ip) -> MAC
    fdb: dict[tuple[str, str], int | str] = field(default_factory=dict)  # (dev, MAC) -> VTEP IP | port
    forwarding: bool = False
    bridge_nf: bool = False
    iptables_text: str = ""
    node: str | None = None  # pods: the node they run on
    pod_cidr: str | None = None  # nodes: their pod subnet, when known
    _rt: RoutingTables | None = None
    _rules: Ruleset | None = None

    @property
    def routing(self) -> RoutingTables:
        if self._rt is None:
            self._rt = RoutingTables(self.routes, self.addrs, {i.name for i in self.ifaces.values() if i.up})
        return self._rt

    @property
    def ruleset(self) -> Ruleset | None:
        """The parsed, indexed iptables rules (built once, then cached)."""
        if self._rules is None and self.iptables_text and self.iptables_text.strip():
            self._rules = Ruleset.from_text(self.iptables_text, self.routing.addr_type)
        return self._rules

    def local_ips(self) -> list[int]:
        return [a.ip for a in self.addrs]

    def mac_owner(self, mac: str) -> str | None:
        for i in self.ifaces.values():
            if i.mac and i.mac == mac:
                return i.name
        return None


LOOPBACK = Iface("lo", "loopback")
LOOPBACK_ADDR = AddrEntry("lo", ip_int("127.0.0.1"), 8, "host")


def _route(r: Route) -> RouteEntry:
    net, plen = net_int(r.dst)
    return RouteEntry(
        net=net,
        plen=plen,
        dev=r.dev,
        via=ip_int(r.via) if r.via else None,
        src=ip_int(r.src) if r.src else None,
        scope=r.scope,
        metric=r.metric or 0,
        onlink=r.onlink,
        table=r.table,
        proto=r.proto,
    )


def _addr(dev: str, cidr: str, scope: str) -> AddrEntry:
    ip, _, plen = cidr.partition("/")
    return AddrEntry(dev, ip_int(ip), int(plen or 32), scope)


def from_plan(plan: NodePlan, iptables_save: str | None = None) -> NodeState:
    """A node's state from its plan. The rules are the plan's restore payload loaded on top of
    kube-proxy's base-chain jumps, exactly what ``iptables-save`` on the node shows; pass
    ``iptables_save`` to trace other rules instead."""
    from ..render.names import node_netns
    from ..render.proxy.iptables import base_chain_jumps
    from ..render.proxy.save import render_save

    ifaces = {
        link.name: Iface(
            name=link.name,
            kind=link.kind,
            mac=link.mac or "",
            master=link.master,
            hairpin=link.hairpin,
            peer=link.peer,
            peer_netns=link.peer_netns,
            vxlan=Vxlan(link.vni or 0, ip_int(link.local) if link.local else None, link.port or 8472, link.dev)
            if link.kind == "vxlan"
            else None,
        )
        for link in plan.links
    }
    ifaces.setdefault("lo", LOOPBACK)
    sysctl = {s.key: s.value for s in plan.sysctls}
    if iptables_save is None:
        iptables_save = render_save(plan.iptables_restore, base_chain_jumps()) if plan.iptables_restore else ""
    return NodeState(
        name=plan.name,
        kind=NODE,
        netns=node_netns(plan.name),
        ifaces=ifaces,
        addrs=[LOOPBACK_ADDR, *(_addr(a.dev, a.cidr, a.scope) for a in plan.addrs)],
        routes=[_route(r) for r in plan.routes],
        neighs={(n.dev, ip_int(n.dst)): n.lladdr for n in plan.neighs},
        fdb={(f.dev, f.mac): ip_int(f.dst) if f.dst else f.dev for f in plan.fdb},
        forwarding=sysctl.get("net.ipv4.ip_forward") == "1",
        bridge_nf=sysctl.get("net.bridge.bridge-nf-call-iptables") == "1",
        iptables_text=iptables_save,
        pod_cidr=plan.pod_cidr,
    )


def from_pod_plan(pod: PodPlan, node: str) -> NodeState:
    ifaces = {
        link.name: Iface(link.name, link.kind, link.mac or "", peer=link.peer, peer_netns=link.peer_netns)
        for link in pod.links
    }
    ifaces.setdefault("lo", LOOPBACK)
    return NodeState(
        name=pod.key,
        kind=POD,
        netns=pod.netns,
        ifaces=ifaces,
        addrs=[LOOPBACK_ADDR, *(_addr(a.dev, a.cidr, a.scope) for a in pod.addrs)],
        routes=[_route(r) for r in pod.routes],
        node=node,
    )


def host_state(name: str, ip: str, underlay_cidr: str, mac: str = "") -> NodeState:
    """An outside machine on the underlay: ``eth0`` with its address and the connected route,
    nothing else (no route to pod or Service networks, as in the article)."""
    net, plen = net_int(underlay_cidr)
    return NodeState(
        name=name,
        kind=HOST,
        netns=f"host-{name}",
        ifaces={"lo": LOOPBACK, "eth0": Iface("eth0", "veth", mac)},
        addrs=[LOOPBACK_ADDR, AddrEntry("eth0", ip_int(ip), plen)],
        routes=[RouteEntry(net, plen, "eth0", src=ip_int(ip), scope="link", proto="kernel")],
    )
