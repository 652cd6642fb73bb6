"""Read a namespace's network state over netlink, shaped like ``ip -j`` output.

The result is plain JSON-able data (links, addrs, routes, neigh, fdb) with only stable fields:
no counters, no timers, no learned (dynamic) neighbours or FDB entries unless asked. Two dumps of
an untouched namespace compare equal, which is what idempotency tests need; ``net_state`` reads
a dump into the model's records, which the packet simulator walks.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from typing import Any

from ..model.netstate import VXLAN_PORT, Addr, Fdb, Link, Neigh, NetState, Route
from . import netns as _ns
from .netlink import (
    NTF_MASTER,
    NTF_SELF,
    NUD_NOARP,
    NUD_PERMANENT,
    PROTO_NAME,
    RTNH_F_ONLINK,
    SCOPE_NAME,
    TABLE_NAME,
    Netlink,
    link_state,
)

_NUD = {
    0x01: "INCOMPLETE",
    0x02: "REACHABLE",
    0x04: "STALE",
    0x08: "DELAY",
    0x10: "PROBE",
    0x20: "FAILED",
    0x40: "NOARP",
    0x80: "PERMANENT",
}
_RTN = {1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole", 7: "unreachable"}


def _states(state: int) -> list[str]:
    return [name for bit, name in _NUD.items() if state & bit]


def dump_netns(netns: str, dynamic: bool = False) -> dict[str, list[dict[str, Any]]]:
    """``{"links", "addrs", "routes", "neigh", "fdb"}`` of one kins namespace."""
    _ns.check_owned(netns)
    h = Netlink(netns)
    try:
        return _dump(h, dynamic)
    finally:
        h.close()


def _dump(h: Netlink, dynamic: bool) -> dict[str, list[dict[str, Any]]]:
    ipr = h.ipr
    links = [link_state(m) for m in h.call("link dump", ipr.get_links)]
    names = {s.index: s.name for s in links}
    out_links = []
    for s in sorted(links, key=lambda x: x.index):
        d: dict[str, Any] = {
            "ifindex": s.index,
            "ifname": s.name,
            "mtu": s.mtu,
            "address": s.mac,
            "up": s.up,
        }
        if s.kind:
            d["link_kind"] = s.kind
        if s.master:
            d["master"] = names.get(s.master, s.master)
        if s.hairpin is not None:
            d["hairpin"] = s.hairpin
        if s.kind == "veth" and s.link:
            d["link_index"] = s.link
            d["link_netnsid"] = s.link_netnsid
        if s.vxlan:
            v = dict(s.vxlan)
            v["dev"] = names.get(v["dev"], v["dev"]) if v.get("dev") else None
            d["vxlan"] = v
        out_links.append(d)

    addrs = []
    for m in h.call("addr dump", ipr.get_addr, family=socket.AF_INET):
        addrs.append(
            {
                "ifname": names.get(m["index"], m["index"]),
                "local": m.get("IFA_ADDRESS"),
                "prefixlen": m["prefixlen"],
                "scope": SCOPE_NAME.get(m["scope"], m["scope"]),
            }
        )

    routes = []
    for m in h.call("route dump", ipr.get_routes, family=socket.AF_INET):
        table = m.get("RTA_TABLE", m["table"])
        r: dict[str, Any] = {
            "table": TABLE_NAME.get(table, str(table)),
            "type": _RTN.get(m["type"], m["type"]),
            "dst": f"{m.get('RTA_DST')}/{m['dst_len']}" if m["dst_len"] or m.get("RTA_DST") else "default",
            "dev": names.get(m.get("RTA_OIF"), m.get("RTA_OIF")),
            "protocol": PROTO_NAME.get(m["proto"], str(m["proto"])),
            "scope": SCOPE_NAME.get(m["scope"], m["scope"]),
            "flags": ["onlink"] if m["flags"] & RTNH_F_ONLINK else [],
        }
        if m.get("RTA_GATEWAY"):
            r["gateway"] = m.get("RTA_GATEWAY")
        if m.get("RTA_PREFSRC"):
            r["prefsrc"] = m.get("RTA_PREFSRC")
        if m.get("RTA_PRIORITY"):
            r["metric"] = m.get("RTA_PRIORITY")
        routes.append(r)

    neigh = []
    for m in h.call("neigh dump", ipr.get_neighbours, family=socket.AF_INET):
        # NOARP entries (multicast, broadcast) appear as the kernel sends IGMP; only configured
        # (permanent) neighbours are state.
        if not dynamic and not m["state"] & NUD_PERMANENT:
            continue
        neigh.append(
            {
                "dst": m.get("NDA_DST"),
                "dev": names.get(m["ifindex"], m["ifindex"]),
                "lladdr": m.get("NDA_LLADDR"),
                "state": _states(m["state"]),
            }
        )

    fdb = []
    for m in h.call("fdb dump", ipr.fdb, "dump"):
        if not dynamic and not m["state"] & (NUD_PERMANENT | NUD_NOARP):
            continue
        f: dict[str, Any] = {
            "mac": m.get("NDA_LLADDR"),
            "ifname": names.get(m["ifindex"], m["ifindex"]),
            "flags": [n for bit, n in ((NTF_SELF, "self"), (NTF_MASTER, "master")) if m["flags"] & bit],
            "state": "permanent" if m["state"] & NUD_PERMANENT else _states(m["state"]),
        }
        if m.get("NDA_DST"):
            f["dst"] = m.get("NDA_DST")
        if m.get("NDA_MASTER"):
            f["master"] = names.get(m.get("NDA_MASTER"), m.get("NDA_MASTER"))
        fdb.append(f)

    def key(d: dict[str, Any]) -> str:
        return repr(sorted(d.items()))

    return {
        "links": out_links,
        "addrs": sorted(addrs, key=key),
        "routes": sorted(routes, key=key),
        "neigh": sorted(neigh, key=key),
        "fdb": sorted(fdb, key=key),
    }


def _v4(ip: Any) -> str | None:
    return str(ip) if ip and ":" not in str(ip) else None


def _link(d: dict[str, Any]) -> Link:
    name = str(d["ifname"])
    vx: dict[str, Any] = {}
    v = d.get("vxlan")
    if v:
        vx = {
            "vni": int(v.get("vni") or 0),
            "local": v.get("local") or None,
            "dev": v.get("dev"),
            "port": int(v.get("port") or VXLAN_PORT),
            "learning": bool(v.get("learning", True)),
        }
    return Link(
        name=name,
        kind=str(d.get("link_kind") or ("loopback" if name == "lo" else "")),
        mtu=int(d.get("mtu") or 1500),
        mac=d.get("address") or None,
        master=d.get("master"),
        hairpin=bool(d.get("hairpin")),
        up=bool(d.get("up", True)),
        **vx,
    )


def _route(d: dict[str, Any]) -> Route:
    dev = d.get("dev")
    return Route(
        dst=str(d["dst"]),
        dev=None if dev is None else str(dev),
        via=_v4(d.get("gateway")),
        src=d.get("prefsrc") or None,
        scope=str(d["scope"]),
        proto=str(d["protocol"]),
        onlink="onlink" in d["flags"],
        metric=d.get("metric") or None,
        table=str(d["table"]),
        type=str(d["type"]),
    )


def net_state(dump: dict[str, list[dict[str, Any]]]) -> NetState:
    """The records of a ``dump_netns`` result. Neighbours that failed or are still being
    resolved have no address to send to, and are left out."""
    return NetState(
        links=tuple(_link(d) for d in dump.get("links", [])),
        addrs=tuple(
            Addr(str(a["ifname"]), f"{a['local']}/{a['prefixlen']}", str(a.get("scope", "global")))
            for a in dump.get("addrs", [])
        ),
        routes=tuple(_route(r) for r in dump.get("routes", [])),
        neighs=tuple(
            Neigh(str(n["dst"]), str(n["lladdr"]), str(n["dev"]), " ".join(n["state"]))
            for n in dump.get("neigh", [])
            if n.get("dst") and n.get("lladdr") and not {"FAILED", "INCOMPLETE"} & set(n["state"])
        ),
        fdb=tuple(
            Fdb(
                mac=str(f["mac"]),
                dev=str(f["ifname"]),
                dst=_v4(f.get("dst")),
                self_="self" in f["flags"],
                permanent=f["state"] == "permanent",
                master=f.get("master"),
            )
            for f in dump.get("fdb", [])
            if f.get("mac")
        ),
    )


def peer_ids(netns: str, peers: Iterable[str]) -> dict[int, str]:
    """The ids ``netns`` has given the namespaces ``peers`` (what ``ip netns list-id`` shows),
    by id; a peer it has given none, or that is gone, is left out. Asking assigns no id."""
    _ns.check_owned(netns)
    h = Netlink(netns)
    try:
        out: dict[int, str] = {}
        for name in peers:
            _ns.check_owned(name)
            try:
                fd = os.open(_ns.path(name), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                got = h.call("nsid get", h.ipr.get_netnsid, fd=fd)
            finally:
                os.close(fd)
            nsid = got.get("nsid") if got else None
            if nsid is not None and nsid < 1 << 31:  # an s32: -1 is "not assigned"
                out[int(nsid)] = name
        return out
    finally:
        h.close()


def dump_node(cluster: str, node: str, dynamic: bool = False) -> dict[str, list[dict[str, Any]]]:
    """The live state of node ``node`` of ``cluster`` (its own namespace, not its pods')."""
    return dump_netns(_ns.node_ns(cluster, node), dynamic)


def dump_cluster(cluster: str, dynamic: bool = False) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every namespace of the cluster, keyed by namespace name."""
    return {n: dump_netns(n, dynamic) for n in _ns.list_namespaces(cluster)}
