"""Plan parts printed the way the real tools print the kernel state a plan produces.

Checked against iproute2 6.1 and net-tools ``route`` on Linux 6.x (see the root test): the same
words, order and spacing, including iproute2's trailing blank after ``ip route`` and
``ip neigh`` lines. Two liberties:

- ``ip neigh`` and ``bridge fdb`` list entries in hash-table order, which differs per
  namespace; these print them in plan order (flannel's peer order).
- ``ip -d link`` lines end where the kernel's per-device counters and timers begin
  (``bridge_id``, ``gc_timer``, ``addrgenmode``, queue and GSO sizes). IPv6 link-local
  addresses are not printed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

from ..model.netstate import Addr, Fdb, Link, Neigh, NodePlan, PodPlan, Route, Sysctl

_ETHER_BRD = "ff:ff:ff:ff:ff:ff"


def _net(route: Route) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network("0.0.0.0/0" if route.dst == "default" else route.dst)


def _kernel_order(routes: Iterable[Route]) -> list[Route]:
    """The main table as the kernel dumps it: FIB trie key order, and for one key the longer
    prefix first; then by metric."""
    main = [r for r in routes if r.table == "main"]
    return sorted(main, key=lambda r: (int(_net(r).network_address), -_net(r).prefixlen, r.metric or 0))


def carrierless(links: Iterable[Link]) -> set[str]:
    """Bridges without ports: no carrier, so their routes show ``linkdown``."""
    links = list(links)
    ports = {link.master for link in links if link.master}
    return {link.name for link in links if link.kind == "bridge" and link.name not in ports}


def format_ip_route(routes: Iterable[Route], links: Iterable[Link] = (), *, dev: str | None = None) -> str:
    """``ip route`` (``ip route show dev <dev>`` with ``dev``). ``links`` lets bridges without
    ports show ``linkdown`` as the kernel reports them."""
    down = carrierless(links)
    out: list[str] = []
    for r in _kernel_order(routes):
        if dev is not None and r.dev != dev:
            continue
        net = _net(r)
        parts = ["default" if net.prefixlen == 0 else (str(net.network_address) if net.prefixlen == 32 else str(net))]
        if r.via:
            parts.append(f"via {r.via}")
        if dev is None:
            parts.append(f"dev {r.dev}")
        if r.proto != "boot":
            parts.append(f"proto {r.proto}")
        if r.scope not in ("global", "universe"):
            parts.append(f"scope {r.scope}")
        if r.src:
            parts.append(f"src {r.src}")
        if r.metric:
            parts.append(f"metric {r.metric}")
        if r.onlink:
            parts.append("onlink")
        if r.dev in down:
            parts.append("linkdown")
        out.append(" ".join(parts) + " \n")
    return "".join(out)


def _route_flags(r: Route) -> str:
    flags = "U"
    if r.via:
        flags += "G"
    if _net(r).prefixlen == 32:
        flags += "H"
    return flags


def format_route_n(routes: Iterable[Route], *, numeric: bool = True) -> str:
    """net-tools ``route -n`` (``route`` with ``numeric=False``: the default route is named
    ``default``; no other address here has a name to resolve to)."""
    out = [
        "Kernel IP routing table\n",
        "Destination     Gateway         Genmask         Flags Metric Ref    Use Iface\n",
    ]
    for r in _kernel_order(routes):
        net = _net(r)
        dst = "default" if not numeric and net.prefixlen == 0 else str(net.network_address)
        gw = r.via or "0.0.0.0"
        out.append(
            f"{dst:<15} {gw:<15} {net.netmask!s:<15} {_route_flags(r):<5} {r.metric or 0:<6} {0:<2} {0:>7} {r.dev}\n"
        )
    return "".join(out)


def format_route(routes: Iterable[Route]) -> str:
    """net-tools ``route``, the command the reference article runs."""
    return format_route_n(routes, numeric=False)


def format_ip_neigh(neighs: Iterable[Neigh], *, dev: str | None = None) -> str:
    """``ip neigh`` (``ip neigh show dev <dev>`` with ``dev``: that column is dropped)."""
    out: list[str] = []
    for n in neighs:
        if dev is None:
            out.append(f"{n.dst} dev {n.dev} lladdr {n.lladdr} {n.state} \n")
        elif n.dev == dev:
            out.append(f"{n.dst} lladdr {n.lladdr} {n.state} \n")
    return "".join(out)


def format_bridge_fdb(fdb: Iterable[Fdb], *, dev: str | None = None) -> str:
    """``bridge fdb show`` for these entries (``bridge fdb show dev <dev>`` with ``dev``)."""
    out: list[str] = []
    for f in fdb:
        if dev is not None and f.dev != dev:
            continue
        parts = [f.mac]
        if dev is None:
            parts.append(f"dev {f.dev}")
        if f.dst:
            parts.append(f"dst {f.dst}")
        if f.self_:
            parts.append("self")
        if f.permanent:
            parts.append("permanent")
        out.append(" ".join(parts) + "\n")
    return "".join(out)


def _flags_state(link: Link, down: set[str]) -> tuple[str, str]:
    if link.kind == "loopback":
        return "LOOPBACK,UP,LOWER_UP", "UNKNOWN"
    if link.name in down:
        return "NO-CARRIER,BROADCAST,MULTICAST,UP", "DOWN"
    # A VXLAN device has no carrier of its own to report.
    return "BROADCAST,MULTICAST,UP,LOWER_UP", "UNKNOWN" if link.kind == "vxlan" else "UP"


def _kind_lines(link: Link) -> list[str]:
    lines: list[str] = []
    if link.kind == "bridge":
        lines.append(
            "    bridge forward_delay 1500 hello_time 200 max_age 2000 ageing_time 30000 stp_state 0"
            " priority 32768 vlan_filtering 0"
        )
    elif link.kind == "vxlan":
        words = [f"vxlan id {link.vni}"]
        if link.local:
            words.append(f"local {link.local}")
        if link.dev:
            words.append(f"dev {link.dev}")
        words.append(f"srcport 0 0 dstport {link.port or 8472}")
        if not link.learning:
            words.append("nolearning")
        words.append("ttl auto ageing 300 udpcsum noudp6zerocsumtx noudp6zerocsumrx")
        lines.append("    " + " ".join(words))
    elif link.kind == "veth":
        lines.append("    veth")
    if link.master:
        lines.append(
            f"    bridge_slave state forwarding priority 32 cost 2 hairpin {'on' if link.hairpin else 'off'}"
            " guard off root_block off fastleave off learning on flood on"
        )
    return lines


def format_links(
    links: Sequence[Link],
    addrs: Iterable[Addr] = (),
    *,
    peer_index: Mapping[str, int] | None = None,
    netns_prefix: str = "",
) -> str:
    """``ip -d link show`` (or ``ip -d addr show`` when ``addrs`` are given) for one namespace.

    Interface indexes follow the list order (``lo`` is 1), which is the order an applier
    creates them in. A veth whose peer lives in another namespace prints ``@if<N>`` when
    ``peer_index`` knows that peer's index there. ``netns_prefix`` turns plan-level namespace
    names into the real ones (``link-netns``).
    """
    addrs = list(addrs)
    with_addrs = bool(addrs)
    down = carrierless(links)
    peer_index = peer_index or {}
    names = {link.name for link in links}
    out: list[str] = []
    for idx, link in enumerate(links, start=1):
        flags, state = _flags_state(link, down)
        at = ""
        if link.kind == "veth" and link.peer:
            if not link.peer_netns and link.peer in names:
                at = f"@{link.peer}"
            elif link.name in peer_index:
                at = f"@if{peer_index[link.name]}"
        master = f" master {link.master}" if link.master else ""
        mode = "" if with_addrs else " mode DEFAULT"
        out.append(
            f"{idx}: {link.name}{at}: <{flags}> mtu {link.mtu} qdisc noqueue{master} state {state}{mode}"
            " group default qlen 1000\n"
        )
        if link.kind == "loopback":
            out.append(
                "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00"
                " promiscuity 0  allmulti 0 minmtu 0 maxmtu 0\n"
            )
        else:
            netns = f" link-netns {netns_prefix}{link.peer_netns}" if link.kind == "veth" and link.peer_netns else ""
            promisc = 1 if link.master else 0  # a bridge port listens for every destination
            out.append(
                f"    link/ether {link.mac or '00:00:00:00:00:00'} brd {_ETHER_BRD}{netns}"
                f" promiscuity {promisc}  allmulti {promisc} minmtu 68 maxmtu 65535\n"
            )
        out.extend(line + "\n" for line in _kind_lines(link))
        if with_addrs:
            mine = [a for a in addrs if a.dev == link.name]
            if link.kind == "loopback" and not mine:
                mine = [Addr(dev=link.name, cidr="127.0.0.1/8", scope="host")]  # the kernel adds it
            for a in mine:
                out.append(f"    inet {a.cidr} scope {a.scope} {a.dev}\n")
                out.append("       valid_lft forever preferred_lft forever\n")
    return "".join(out)


def _index(links: Sequence[Link], name: str) -> int | None:
    for i, link in enumerate(links, start=1):
        if link.name == name:
            return i
    return None


def format_node_links(
    plan: NodePlan,
    *,
    with_addrs: bool = False,
    netns_prefix: str = "",
    underlay_index: int | None = None,
) -> str:
    """A node's ``ip -d link`` with veth peer indexes filled in from its pods' plans.
    ``underlay_index`` is the index of the node's port in the underlay namespace, if known."""
    pods = {p.netns: p for p in plan.pods}
    peer_index: dict[str, int] = {}
    for link in plan.links:
        if link.kind != "veth" or not link.peer or not link.peer_netns:
            continue
        pod = pods.get(link.peer_netns)
        if pod is not None:
            i = _index(pod.links, link.peer)
            if i is not None:
                peer_index[link.name] = i
        elif underlay_index is not None:
            peer_index[link.name] = underlay_index
    return format_links(plan.links, plan.addrs if with_addrs else (), peer_index=peer_index, netns_prefix=netns_prefix)


def format_pod_links(pod: PodPlan, node: NodePlan, *, with_addrs: bool = False, netns_prefix: str = "") -> str:
    """A pod's ``ip -d link``; its ``eth0`` shows the index of its host-side veth."""
    peer_index: dict[str, int] = {}
    for link in pod.links:
        if link.kind == "veth" and link.peer:
            i = _index(node.links, link.peer)
            if i is not None:
                peer_index[link.name] = i
    return format_links(pod.links, pod.addrs if with_addrs else (), peer_index=peer_index, netns_prefix=netns_prefix)


def format_sysctls(sysctls: Iterable[Sysctl]) -> str:
    """``key = value`` lines, as ``sysctl -w`` echoes them."""
    return "".join(f"{s.key} = {s.value}\n" for s in sysctls)
