"""``NodeState``: one network namespace as the simulator sees it.

Everything the forwarding path needs and nothing else: the namespace's devices, addresses and
routes (the model's own records), its neighbours and FDB indexed for lookup, two sysctls, the
iptables ruleset and the ipsets its rules may name. A rendered ``NodePlan`` (``from_plan``), a
pod's ``PodPlan`` and a live namespace's records (``kernel.dump.read_state``, or
``ipjson.state_from_ip_json`` for what any node's ``ip -j`` prints) all index into it, so one
engine traces both kins' own plans and a real cluster's nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..model.ipset import IPSet
from ..model.ipv4 import int_ip, ip_int, net_int
from ..model.netstate import Addr, Fdb, Link, Neigh, NetState, NodePlan, PodPlan, Route
from .iptables import Ruleset
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
    ifaces: dict[str, Link] = field(default_factory=dict)
    addrs: list[Addr] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    neighs: dict[tuple[str, int], str] = field(default_factory=dict)  # (dev, ip) -> MAC
    fdb: dict[tuple[str, str], int | str] = field(default_factory=dict)  # (dev, MAC) -> VTEP IP | port
    forwarding: bool = False
    bridge_nf: bool = False
    iptables_text: str = ""
    ipsets: dict[str, IPSet] = field(default_factory=dict)  # by name, for ``-m set``
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
            self._rules = Ruleset.from_text(self.iptables_text, self.routing.addr_type, self.ipsets)
        return self._rules

    def local_ips(self) -> list[int]:
        return [a.ip for a in self.addrs]

    def mac_owner(self, mac: str) -> str | None:
        for i in self.ifaces.values():
            if i.mac and i.mac == mac:
                return i.name
        return None


LOOPBACK = Link("lo", "loopback")
LOOPBACK_ADDR = Addr("lo", "127.0.0.1/8", "host")


def neigh_index(neighs: Iterable[Neigh]) -> dict[tuple[str, int], str]:
    """(dev, IP) -> MAC."""
    return {(n.dev, ip_int(n.dst)): n.lladdr for n in neighs}


def fdb_index(fdb: Iterable[Fdb]) -> dict[tuple[str, str], int | str]:
    """(dev, MAC) -> the remote VTEP's address (a VXLAN entry), or the port a bridge switches the
    MAC to (a bridge's entry, learned or static); a VXLAN entry wins over a bridge's."""
    out: dict[tuple[str, str], int | str] = {}
    for f in fdb:
        if f.dst:
            out[(f.dev, f.mac)] = ip_int(f.dst)
        elif f.master:
            out.setdefault((f.master, f.mac), f.dev)
    return out


IPSets = Mapping[str, IPSet] | Iterable[IPSet]


def ipset_index(sets: IPSets | None) -> dict[str, IPSet]:
    """Sets by name, from a mapping (``parse_save``'s) or a list of records."""
    if sets is None:
        return {}
    if isinstance(sets, Mapping):
        return dict(sets)
    return {s.name: s for s in sets}


def from_plan(plan: NodePlan, iptables_save: str | None = None, ipsets: IPSets | None = None) -> NodeState:
    """A node's state from its plan. The rules are the plan's restore payloads (kube-proxy's,
    then the policy layer's) loaded on top of their base-chain jumps, exactly what
    ``iptables-save`` on the node shows, with the plan's ipsets; pass ``iptables_save`` and
    ``ipsets`` to trace other rules instead."""
    from ..render.names import node_netns
    from ..render.proxy.iptables import base_chain_jumps
    from ..render.proxy.save import render_save

    ifaces = {link.name: link for link in plan.links}
    ifaces.setdefault("lo", LOOPBACK)
    sysctl = {s.key: s.value for s in plan.sysctls}
    if iptables_save is None:
        after = (plan.policy_restore,) if plan.policy_restore else ()
        jumps = base_chain_jumps() + list(plan.policy_jumps)
        iptables_save = render_save(plan.iptables_restore, jumps, after) if plan.iptables_restore else ""
    if ipsets is None:
        ipsets = plan.ipsets
    return NodeState(
        name=plan.name,
        kind=NODE,
        netns=node_netns(plan.name),
        ifaces=ifaces,
        addrs=[LOOPBACK_ADDR, *plan.addrs],
        routes=list(plan.routes),
        neighs=neigh_index(plan.neighs),
        fdb=fdb_index(plan.fdb),
        forwarding=sysctl.get("net.ipv4.ip_forward") == "1",
        bridge_nf=sysctl.get("net.bridge.bridge-nf-call-iptables") == "1",
        iptables_text=iptables_save,
        ipsets=ipset_index(ipsets),
        pod_cidr=plan.pod_cidr,
    )


def from_net_state(
    name: str,
    net: NetState,
    *,
    iptables_save: str = "",
    ipsets: IPSets | None = None,
    forwarding: bool = True,
    bridge_nf: bool = True,
    pod_cidr: str | None = None,
) -> NodeState:
    """A node's state from a live namespace's records (``lo`` and its address are assumed
    when missing), its ``iptables-save`` and its sets (``ipset save`` through
    ``model.ipset.parse_save``). Kubernetes nodes forward and pass bridged traffic to iptables."""
    ifaces = {link.name: link for link in net.links}
    ifaces.setdefault("lo", LOOPBACK)
    addrs = list(net.addrs)
    if not any(a.dev == "lo" for a in addrs):
        addrs.insert(0, LOOPBACK_ADDR)
    return NodeState(
        name=name,
        kind=NODE,
        netns=f"node-{name}",
        ifaces=ifaces,
        addrs=addrs,
        routes=list(net.routes),
        neighs=neigh_index(net.neighs),
        fdb=fdb_index(net.fdb),
        forwarding=forwarding,
        bridge_nf=bridge_nf,
        iptables_text=iptables_save,
        ipsets=ipset_index(ipsets),
        pod_cidr=pod_cidr,
    )


def from_pod_plan(pod: PodPlan, node: str) -> NodeState:
    ifaces = {link.name: link for link in pod.links}
    ifaces.setdefault("lo", LOOPBACK)
    return NodeState(
        name=pod.key,
        kind=POD,
        netns=pod.netns,
        ifaces=ifaces,
        addrs=[LOOPBACK_ADDR, *pod.addrs],
        routes=list(pod.routes),
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
        ifaces={"lo": LOOPBACK, "eth0": Link("eth0", "veth", mac=mac or None)},
        addrs=[LOOPBACK_ADDR, Addr("eth0", f"{ip}/{plen}")],
        routes=[Route(f"{int_ip(net)}/{plen}", "eth0", src=ip, scope="link", proto="kernel")],
    )
