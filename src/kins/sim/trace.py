"""``trace``: follow one packet from FROM to TO through the whole cluster (or one node)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .._errors import KinsError
from ..api.config import ClusterConfig
from ..model.ipv4 import MASKS, int_ip, ip_int, is_ip
from ..model.netstate import Addr, NodePlan
from ..render.cluster import render_cluster
from ..store.base import Store
from .endpoint import Endpoint, resolve_endpoint
from .engine import Engine, Flow, Result
from .iptables import service_of
from .packet import (
    ACCEPTED,
    CT_ESTABLISHED,
    DELIVERED,
    NO_ROUTE,
    SEVERITY,
    EndpointChoice,
    Entry,
    Packet,
    Trace,
    Walked,
)
from .state import NodeState
from .sym import MARK, READS, SPORT, SymPort, labels, touched
from .view import ClusterView

PORT_PROTOS = ("tcp", "udp", "sctp")
PROTOS = (*PORT_PROTOS, "icmp")
CLIENT_PORT = 40000  # the source port a traced connection uses


def _dport(dst: Endpoint, port: int | None, proto: str) -> int:
    if port is not None and dst.port is not None and port != dst.port:
        raise KinsError(f"two ports given for {dst.name}: {dst.port} in the address and {port}")
    port = port if port is not None else dst.port
    if proto not in PORT_PROTOS:
        return 0
    if dst.kind == "service":
        if port is not None:
            return port
        same = [p for p in dst.ports if p.proto == proto]
        if len(same) == 1:
            return same[0].port
        if not same:
            raise KinsError(f"service {dst.name} has no {proto} port")
        listed = ", ".join(f"{p.port}/{p.proto}" + (f" ({p.name})" if p.name else "") for p in same)
        raise KinsError(f"service {dst.name} has several {proto} ports ({listed}): give --port")
    if port is None:
        raise KinsError(f"give a destination port for {proto} to {dst.describe()}")
    return port


def _start(view: ClusterView, engine: Engine, src: Endpoint, flow: Flow, node_only: str | None) -> list[Result]:
    if node_only is not None:
        st = view.nodes[node_only]
        ip = ip_int(src.ip)
        if src.kind == "pod" and src.name in view.pods:
            return engine.send(view.pods[src.name], flow)
        if ip in st.local_ips():
            return engine.send(st, flow)
        entered = _from_bridge(engine, st, ip, flow)
        if entered is not None:
            return entered
        back = st.routing.lookup(ip)
        if back is not None and back.route.dev and st.ifaces.get(back.route.dev, None) is not None:
            dev_name = back.route.dev
            iface = st.ifaces[dev_name]
            if iface.kind == "vxlan":
                flow.step(st, "note", f"{src.ip} is reached over {dev_name}: the packet arrives decapsulated there")
                flow.l2_nh = next((a.ip for a in st.addrs if a.dev == dev_name), 0)
                return engine.receive(st, dev_name, flow)
        under = next((a.dev for a in st.addrs if a.ip == ip_int(_node_ip(st))), "eth0")
        flow.step(st, "note", f"{src.ip} is outside {st.name}: the packet arrives from the underlay on {under}")
        flow.l2_nh = ip_int(_node_ip(st))
        return engine.receive(st, under, flow)
    if src.kind == "pod":
        pod = view.pods.get(src.name)
        if pod is None:
            raise KinsError(f"pod {src.name} has no network namespace (not running, or on the host network)")
        return engine.send(pod, flow)
    if src.kind == "node":
        return engine.send(view.nodes[src.name], flow)
    if src.kind == "host":
        host = view.hosts.get(src.name)
        if host is None:
            raise KinsError(f"host {src.name} is not part of the traced cluster")
        return engine.send(host, flow)
    ip = ip_int(src.ip)
    if ip in view.pod_ips:
        return engine.send(view.pod_ips[ip], flow)
    if ip in view.underlay:
        return engine.send(view.underlay[ip][0], flow)
    owner = next((st for st in view.nodes.values() if ip in st.local_ips()), None)
    if owner is not None:  # a node's own address off the underlay (its bridge's, its VTEP's)
        return engine.send(owner, flow)
    home = view.pod_cidr_node(ip)
    if home is not None:  # a pod the objects do not hold: it sends as one would, to its gateway
        entered = _from_bridge(engine, home, ip, flow)
        if entered is not None:
            return entered
    raise KinsError(f"FROM {src.ip} is not a pod, node or host of the cluster: trace it entering one node with --node")


def _held_source(view: ClusterView, src: Endpoint, node_only: str | None) -> Endpoint:
    """A Service's address as a source: a LoadBalancer (or external) IP a node holds makes the
    packet that node's own, sent through its OUTPUT path like any host-originated packet."""
    ip = ip_int(src.ip)
    nodes = [view.nodes[node_only]] if node_only is not None else list(view.nodes.values())
    holder = next((st for st in nodes if ip in st.local_ips()), None)
    if holder is None:
        raise KinsError(f"{src.name}: a Service sends no packets; trace from one of its pods")
    note = f"{src.ip} of service {src.name} is an address of {holder.name}: the node itself sends the packet"
    return Endpoint("node", holder.name, src.ip, src.port, holder.name, note=note)


def _from_bridge(engine: Engine, st: NodeState, ip: int, flow: Flow) -> list[Result] | None:
    """The packet of a pod at ``ip`` entering node ``st`` from the bridge whose subnet holds
    it (None when no bridge's does); what comes back to ``ip`` there reaches the sender."""
    for a in st.addrs:
        dev = st.ifaces.get(a.dev)
        if dev is not None and dev.kind == "bridge" and (ip & MASKS[a.plen]) == (a.ip & MASKS[a.plen]):
            engine.sender = (st.netns, a.dev, ip)
            flow.l2_nh = a.ip  # a pod sends to its gateway, the bridge
            flow.step(st, "note", f"{int_ip(ip)} is in {st.name}'s pod subnet: the packet enters from {a.dev}")
            return engine.receive(st, a.dev, flow)
    return None


def _inferred_source(view: ClusterView, src: Endpoint) -> str | None:
    """Why an address no pod, node or host holds is traced from a node: its pod subnet holds it."""
    ip = ip_int(src.ip)
    if src.kind != "ip" or ip in view.pod_ips or ip in view.underlay:
        return None
    if any(ip in st.local_ips() for st in view.nodes.values()):
        return None
    home = view.pod_cidr_node(ip)
    if home is None:
        return None
    return f"source {src.ip} is in {home.name}'s pod CIDR {home.pod_cidr}: traced from {home.name}"


def _after_routing(view: ClusterView, rep: Result) -> tuple[str, str | None] | None:
    """What filter/FORWARD would have done to a packet the routing step refused: kube-proxy
    rejects traffic to Services without endpoints there, which only a routed packet reaches."""
    if not rep.flow.trail:
        return None
    st = next((s for s in view.states.values() if s.name == rep.flow.trail[-1][0]), None)
    rs = st.ruleset if st is not None else None
    if rs is None:
        return None
    for o in rs.run("filter", "FORWARD", rep.flow.pkt, None, None):
        if o.verdict in ("REJECT", "DROP") and o.steps:
            last = o.steps[-1]
            where = f"filter/{last.chain} #{last.rule}"
            why = (
                f"had the packet been routed, {where} would {o.verdict.lower()} it ({last.detail}); "
                f"the routing decision comes first, so {st.name if st else ''} answers ICMP net unreachable"
            )
            return why, service_of(last.detail)
    return None


def _node_ip(st: NodeState) -> str:
    for a in st.addrs:
        dev = st.ifaces.get(a.dev)
        if a.dev != "lo" and dev is not None and dev.kind not in ("bridge", "vxlan") and a.scope == "global":
            return int_ip(a.ip)
    return "0.0.0.0"


def trace(
    view: ClusterView,
    src: Endpoint,
    dst: Endpoint,
    port: int | None,
    proto: str,
    *,
    node_only: str | None = None,
    sport: int | None = None,
    reply: bool = True,
    branch: str | None = None,
) -> Trace:
    """Follow the first packet of a ``proto`` connection from ``src`` to ``dst`` (port
    ``port``, or the one ``dst`` names), every load-balancing branch of it, and the reply of
    one branch back to the sender: the worst-ending one, or the one to ``branch`` (an
    endpoint's ``ip:port``, say the one the kernel picked) when it is among them."""
    proto = proto.lower()
    if proto not in PROTOS:
        raise KinsError(f"unknown protocol {proto!r} (one of {', '.join(PROTOS)})")
    if src.kind == "service":
        src = _held_source(view, src, node_only)
    dport = _dport(dst, port, proto)
    cport = (sport or CLIENT_PORT) if proto in PORT_PROTOS else 0
    if node_only is not None and node_only not in view.nodes:
        raise KinsError(f"--node: no node {node_only!r} (nodes: {', '.join(view.nodes)})")
    key = (src, dst, dport, proto, node_only, reply, branch)
    cache = view.flow_cache
    tpl = cache.get(key)
    if tpl is None:
        tpl = _template(view, src, dst, dport, proto, node_only, reply, branch)
        cache.put(key, tpl)
    if tpl.trace is not None and cport not in tpl.ports:
        return tpl.fill(cport)
    # The walk read the source port (or the port equals one conntrack compared it with):
    # this port's own walk, remembered under the port too.
    exact = (*key, cport)
    hit = cache.get(exact)
    if hit is None:
        hit = _walk(view, src, dst, dport, proto, cport, node_only, reply, branch)[0]
        cache.put(exact, hit)
    return hit


@dataclass(slots=True, unsafe_hash=True)  # not frozen: cheaper to make, never mutated
class _Template:
    """A trace walked with a symbolic source port (``trace`` None when a decision read it),
    whether its text mentions symbols, and the real ports conntrack compared the symbol with
    (a source port equal to one of them would pair up where the symbol did not)."""

    trace: Trace | None
    ports: frozenset[int]
    marked: bool

    def fill(self, cport: int) -> Trace:
        """The trace for source port ``cport``: its symbols given their values (as its text
        is written, when it is read)."""
        t = self.trace
        assert t is not None
        return t.bound(cport) if self.marked else t


def _template(
    view: ClusterView,
    src: Endpoint,
    dst: Endpoint,
    dport: int,
    proto: str,
    node_only: str | None,
    reply: bool,
    branch: str | None,
) -> _Template:
    if proto not in PORT_PROTOS:  # no source port: the walk is exact as it is
        t, ports = _walk(view, src, dst, dport, proto, 0, node_only, reply, branch)
        return _Template(t, frozenset(ports), False)
    reads = READS
    reads.start()
    try:
        t, ports = _walk(view, src, dst, dport, proto, SPORT, node_only, reply, branch)
        if reads.touched:
            return _Template(None, frozenset(), False)
        syms = reads.syms
    finally:
        reads.start()
    # Steps hold their symbols as values (each knows how to derive its own); text written
    # with markers must name symbols of this walk (the packet's is the source port itself).
    if any(k not in syms for text in t.notes if MARK in text for k in labels(text)):
        return _Template(None, frozenset(), False)  # a marker from elsewhere: trust only real walks
    real = frozenset(p for p in ports if not isinstance(p, SymPort))
    return _Template(t, real, True)


def _walk(
    view: ClusterView,
    src: Endpoint,
    dst: Endpoint,
    dport: int,
    proto: str,
    cport: int,
    node_only: str | None,
    reply: bool,
    branch: str | None,
) -> tuple[Trace, set[int]]:
    """The trace itself, and every port conntrack entries on the way hold."""
    full = view
    inferred = _inferred_source(view, src) if node_only is None else None
    if node_only is not None:
        view = view.only(node_only)
    engine = Engine(view, boundary=node_only is not None)
    first = Packet(ip_int(src.ip), ip_int(dst.ip), proto, cport, dport)
    results = _start(view, engine, src, Flow(first.copy()), node_only)
    held = {dport}
    for r in results:
        for c in r.flow.conns.values():
            held.update((c.orig[2], c.orig[4], c.final[2], c.final[4]))
    worst = _worst([r.disposition for r in results])
    rep = next(r for r in results if r.disposition == worst)
    if branch is not None:
        bip, _, bport = branch.rpartition(":")
        rep = next(
            (
                r
                for r in results
                if r.flow.endpoint is not None
                and int_ip(r.flow.endpoint[0]) == bip
                and str(r.flow.endpoint[1] if r.flow.endpoint[1] is not None else dport) == bport
            ),
            rep,
        )

    groups: dict[tuple[int, int | None], list[Result]] = {}
    for r in results:
        if r.flow.endpoint is not None:
            groups.setdefault(r.flow.endpoint, []).append(r)
    endpoints = []
    for (ip, p), rs in groups.items():
        endpoints.append(
            EndpointChoice(
                address=f"{int_ip(ip)}:{p if p is not None else dport}",
                probability=sum(r.flow.prob for r in rs),
                node=full.endpoint_node(ip),
                pod=full.pod_ips[ip].name if ip in full.pod_ips else None,
                disposition=_worst([r.disposition for r in rs]),
                masquerade=any(r.flow.masq for r in rs),
            )
        )
    notes = [n for n in (src.note, inferred, dst.note) if n]
    service = rep.flow.service or next((r.flow.service for r in results if r.flow.service), None)
    if worst == NO_ROUTE:
        later = _after_routing(view, rep)
        if later is not None:
            notes.append(later[0])
            service = service or later[1]
    if dst.kind == "service" and service is None:
        ports = ", ".join(f"{p.proto} {p.port}" for p in dst.ports) or "none"
        if proto not in PORT_PROTOS:
            notes.append(
                f"{dst.ip} is the cluster IP of {dst.name}: kube-proxy rewrites only its ports ({ports}), "
                f"and no node owns the address, so nothing answers {proto}"
            )
        else:
            notes.append(f"no kube-proxy rule handles {proto} port {dport} of {dst.name} ({dst.ip}; ports: {ports})")
    branch = None
    if len(endpoints) > 1 and rep.flow.endpoint is not None:
        ip, p = rep.flow.endpoint
        branch = f"{int_ip(ip)}:{p if p is not None else dport}"

    reply_trail: list[Entry] = []
    reply_disp = None
    final = rep.flow.final
    if reply and rep.disposition in (DELIVERED, ACCEPTED) and final is not None:
        last = rep.flow.pkt
        back = Packet(last.dst, last.src, last.proto, last.dport, last.sport, 0, CT_ESTABLISHED)
        rflow = Flow(back)
        rflow.conns = dict(rep.flow.conns)
        rres = engine.send(final, rflow)
        rr = rres[0]
        reply_trail, reply_disp = rr.flow.trail, rr.disposition
        got = rr.flow.pkt
        if rr.disposition == DELIVERED or rr.disposition == ACCEPTED:
            if isinstance(got.sport, SymPort):
                touched()  # compared with the port asked for below
            seen = f"{int_ip(got.src)}:{got.sport}" if proto in PORT_PROTOS else int_ip(got.src)
            asked = f"{int_ip(first.dst)}:{first.dport}" if proto in PORT_PROTOS else int_ip(first.dst)
            if seen == asked:
                notes.append(f"the reply reaches the sender from {seen}, the address it connected to")
            else:
                notes.append(f"the reply reaches the sender from {seen}, not {asked}: the sender would drop it")
    out = Trace.walked(
        Walked(rep.flow.trail, reply_trail, READS.syms, None),
        src=src.describe(),
        dst=dst.describe(dport) if proto in PORT_PROTOS else dst.describe(),
        packet=first.describe(),
        disposition=worst,
        service=service,
        endpoints=tuple(endpoints),
        masquerade=any(r.flow.masq for r in results),
        branch=branch,
        reply_disposition=reply_disp,
        notes=tuple(notes),
    )
    return out, held


def _worst(dispositions: list[str]) -> str:
    """The most severe of the dispositions (the first of equals)."""
    worst = dispositions[0]
    for d in dispositions:
        if SEVERITY[d] > SEVERITY[worst]:
            worst = d
    return worst


def _with_lb_addresses(plans: dict[str, NodePlan], store: Store) -> dict[str, NodePlan]:
    """The plans with the LoadBalancer addresses each node announces on its uplink, as the
    node agents add them on a live cluster."""
    from ..agents.lbspeaker import UPLINK, announcements
    from ..api.core import Node, Service
    from ..api.discovery import EndpointSlice

    services = [s for s in store.list("Service")[0] if isinstance(s, Service)]
    nodes = [n for n in store.list("Node")[0] if isinstance(n, Node)]
    slices = [s for s in store.list("EndpointSlice")[0] if isinstance(s, EndpointSlice)]
    held: dict[str, list[Addr]] = {}
    for ip, node in sorted(announcements(services, nodes, slices).items()):
        held.setdefault(node, []).append(Addr(dev=UPLINK, cidr=f"{ip}/32"))
    return {n: replace(p, addrs=(*p.addrs, *held[n])) if n in held else p for n, p in plans.items()}


def endpoint_nodes(store: Store) -> dict[int, str]:
    """Every Service endpoint's node as its EndpointSlice names it (``nodeName``)."""
    from ..api.discovery import EndpointSlice

    out: dict[int, str] = {}
    objs, _ = store.list("EndpointSlice")
    for sl in objs:
        if isinstance(sl, EndpointSlice) and sl.addressType == "IPv4":
            for e in sl.endpoints or []:
                if e.nodeName:
                    for a in e.addresses:
                        out.setdefault(ip_int(a), e.nodeName)
    return out


def view_of(cfg: ClusterConfig, store: Store) -> ClusterView:
    """The whole cluster as rendered from the store, with the services' addresses named."""
    from ..api.core import Service

    view = ClusterView.from_plans(_with_lb_addresses(render_cluster(cfg, store), store), cfg)
    view.endpoint_nodes = endpoint_nodes(store)
    objs, _ = store.list("Service")
    for s in objs:
        if isinstance(s, Service) and s.spec.clusterIP and not s.headless:
            for p in s.spec.ports or []:
                ref = f"{s.key}:{p.name}" if p.name else s.key
                view.services[(ip_int(s.spec.clusterIP), (p.protocol or "TCP").lower(), p.port)] = ref
    return view


def run_trace(
    cfg: ClusterConfig,
    store: Store,
    from_: str,
    to: str,
    *,
    port: int | None,
    proto: str,
    node: str | None,
    view: ClusterView | None = None,
    endpoint: str | None = None,
) -> Trace:
    """``kins trace FROM TO``: resolve both ends, render the cluster (unless ``view`` is given,
    say one read off the live kernel) and trace; the path shown is the branch to ``endpoint``
    (``ADDR`` or ``ADDR:PORT`` of one of the Service's endpoints) when given."""
    if node is not None and node not in [n.name for n in cfg.nodes]:
        raise KinsError(
            f"--node: no node {node!r} in cluster {cfg.name!r} (nodes: {', '.join(n.name for n in cfg.nodes)})"
        )
    src = resolve_endpoint(from_, cfg, store, role="from")
    dst = resolve_endpoint(to, cfg, store, role="to")
    if view is None:
        view = view_of(cfg, store)
    else:
        view.endpoint_nodes.update(endpoint_nodes(store))
    t = trace(view, src, dst, port, proto, node_only=node)
    if endpoint is None:
        return t
    chosen = chosen_endpoint(t, endpoint)
    if len(t.endpoints) < 2 or t.branch == chosen:
        return t
    return trace(view, src, dst, port, proto, node_only=node, branch=chosen)


def chosen_endpoint(t: Trace, endpoint: str) -> str:
    """The endpoint (``ip:port``) of ``t`` that ``endpoint`` (``ADDR[:PORT]``) names; a
    KinsError listing them when it names none."""
    addr, sep, p = endpoint.strip().rpartition(":")
    if not sep:
        addr, p = p, ""
    if not is_ip(addr) or (sep and not p.isdigit()):
        raise KinsError(f"--endpoint: {endpoint!r} is not ADDR or ADDR:PORT")
    for e in t.endpoints:
        eip, _, eport = e.address.rpartition(":")
        if eip == addr and (not p or int(p) == int(eport)):
            return e.address
    if not t.endpoints:
        raise KinsError(f"--endpoint: {t.dst} is not load-balanced (no Service endpoints on the path)")
    listed = ", ".join(e.address for e in t.endpoints)
    what = f"service {t.service}" if t.service else t.dst
    raise KinsError(f"--endpoint: {endpoint} is not an endpoint of {what} (endpoints: {listed})")
