"""A live node's state from the JSON of ``ip``/``bridge`` and the text of ``iptables-save``.

Feed it what any Linux node prints, whether kins built it or not::

    ip -d -j addr show            (or ip -d -j link show plus ip -j addr show)
    ip -j route show table all    (or plain ip -j route: the local table is then derived)
    ip -j neigh show
    bridge -j fdb show
    iptables-save

``-d`` adds the link details (VXLAN id/port/local, bridge-port hairpin) the simulator needs
for those devices; without it a device named like flannel's (``flannel.<vni>``) is taken as
VXLAN on flannel's default port and bridge ports as hairpin off. kins' own netlink dump
(``kernel.dump.dump_netns``) is read by ``state_from_kins_dump``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .._errors import KinsError
from .addr import ip_int, net_int
from .records import AddrEntry, Iface, RouteEntry, Vxlan
from .state import LOOPBACK_ADDR, NODE, NodeState

FLANNEL_PORT = 8472


def _load(data: str | Sequence[Any] | None, what: str) -> list[dict[str, Any]]:
    if data is None:
        return []
    if isinstance(data, str):
        text = data.strip()
        if not text:
            return []
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise KinsError(f"{what}: not JSON ({e.msg} at line {e.lineno}); use the -j output") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise KinsError(f"{what}: expected a JSON list of objects, as `-j` prints")
    return list(data)


def _iface(d: dict[str, Any]) -> Iface:
    name = str(d.get("ifname", ""))
    info = d.get("linkinfo") or {}
    kind = str(info.get("info_kind") or "")
    if not kind:
        kind = "loopback" if d.get("link_type") == "loopback" else ""
    vx = None
    data = info.get("info_data") or {}
    if kind == "vxlan":
        local = data.get("local")
        vx = Vxlan(
            int(data.get("id", 0)),
            ip_int(local) if local else None,
            int(data.get("port", FLANNEL_PORT)),
            data.get("link"),
        )
    elif not kind and name.startswith("flannel.") and name[8:].isdigit():
        kind = "vxlan"
        vx = Vxlan(int(name[8:]), None, FLANNEL_PORT, None)
    slave = info.get("info_slave_data") or {}
    flags = d.get("flags") or []
    up = "UP" in flags if flags else d.get("operstate", "UP") != "DOWN"
    return Iface(
        name=name,
        kind=kind,
        mac=str(d.get("address") or ""),
        master=d.get("master"),
        hairpin=bool(slave.get("hairpin", False)),
        vxlan=vx,
        up=up,
    )


def _route(d: dict[str, Any]) -> RouteEntry | None:
    dst = str(d.get("dst", "default"))
    if ":" in dst:  # IPv6
        return None
    net, plen = net_int(dst)
    gw = d.get("gateway")
    src = d.get("prefsrc")
    return RouteEntry(
        net=net,
        plen=plen,
        dev=d.get("dev"),
        via=ip_int(gw) if gw and ":" not in gw else None,
        src=ip_int(src) if src else None,
        scope=str(d.get("scope", "global")),
        type=str(d.get("type", "unicast")),
        metric=int(d.get("metric", 0) or 0),
        onlink="onlink" in (d.get("flags") or []),
        table=str(d.get("table", "main")),
        proto=str(d.get("protocol", "boot")),
    )


def state_from_ip_json(
    name: str,
    *,
    addr: str | Sequence[Any],
    route: str | Sequence[Any],
    neigh: str | Sequence[Any] | None = None,
    fdb: str | Sequence[Any] | None = None,
    link: str | Sequence[Any] | None = None,
    iptables_save: str = "",
    forwarding: bool = True,
    bridge_nf: bool = True,
    pod_cidr: str | None = None,
) -> NodeState:
    """A node's ``NodeState`` from the outputs listed in the module docstring (strings of
    JSON or parsed lists). ``link`` (``ip -d -j link``) adds details ``addr`` lacks.
    Kubernetes nodes forward and pass bridged traffic to iptables; say so otherwise."""
    links = {str(d.get("ifname")): d for d in _load(link, "ip -j link")}
    ifaces: dict[str, Iface] = {}
    addrs: list[AddrEntry] = []
    for d in _load(addr, "ip -j addr"):
        merged = {**links.get(str(d.get("ifname")), {}), **d}
        if "linkinfo" not in d and "linkinfo" in links.get(str(d.get("ifname")), {}):
            merged["linkinfo"] = links[str(d.get("ifname"))]["linkinfo"]
        i = _iface(merged)
        ifaces[i.name] = i
        for a in d.get("addr_info") or []:
            if a.get("family") == "inet" and a.get("local"):
                addrs.append(
                    AddrEntry(i.name, ip_int(a["local"]), int(a.get("prefixlen", 32)), str(a.get("scope", "global")))
                )
    for lname, d in links.items():
        if lname not in ifaces:
            ifaces[lname] = _iface(d)
    if "lo" not in ifaces:
        ifaces["lo"] = Iface("lo", "loopback")
    if not any(a.dev == "lo" for a in addrs):
        addrs.insert(0, LOOPBACK_ADDR)
    routes = [r for d in _load(route, "ip -j route") if (r := _route(d)) is not None]
    neighs: dict[tuple[str, int], str] = {}
    for d in _load(neigh, "ip -j neigh"):
        dst, mac = d.get("dst"), d.get("lladdr")
        state = d.get("state") or []
        if dst and mac and ":" not in dst and "FAILED" not in state and "INCOMPLETE" not in state:
            neighs[(str(d.get("dev")), ip_int(dst))] = str(mac)
    fdb_map: dict[tuple[str, str], int | str] = {}
    for d in _load(fdb, "bridge -j fdb"):
        mac, dev = d.get("mac"), str(d.get("ifname"))
        if not mac:
            continue
        dst = d.get("dst")
        if dst and ":" not in dst:
            fdb_map[(dev, str(mac))] = ip_int(dst)
        elif d.get("master"):
            # learned (or static) entry on a bridge port: the bridge switches this MAC to it
            fdb_map.setdefault((str(d["master"]), str(mac)), dev)
    return NodeState(
        name=name,
        kind=NODE,
        netns=f"node-{name}",
        ifaces=ifaces,
        addrs=addrs,
        routes=routes,
        neighs=neighs,
        fdb=fdb_map,
        forwarding=forwarding,
        bridge_nf=bridge_nf,
        iptables_text=iptables_save,
        pod_cidr=pod_cidr,
    )


def state_from_kins_dump(name: str, dump: dict[str, list[dict[str, Any]]], iptables_save: str = "") -> NodeState:
    """A node's state from ``kernel.dump.dump_netns`` (its netlink view, ``ip -j``-shaped)."""
    link_json = []
    for d in dump.get("links", []):
        info: dict[str, Any] = {}
        if d.get("link_kind"):
            info["info_kind"] = d["link_kind"]
        vx = d.get("vxlan")
        if vx:
            info["info_data"] = {
                "id": vx.get("vni"),
                "local": vx.get("local"),
                "port": vx.get("port"),
                "link": vx.get("dev"),
            }
        if d.get("hairpin") is not None:
            info["info_slave_data"] = {"hairpin": d["hairpin"]}
        link_json.append(
            {
                "ifname": d["ifname"],
                "address": d.get("address"),
                "master": d.get("master"),
                "flags": ["UP"] if d.get("up", True) else ["DOWN"],
                "linkinfo": info,
                "link_type": "loopback" if d["ifname"] == "lo" else "ether",
            }
        )
    addr_json = [
        {
            "ifname": a["ifname"],
            "addr_info": [
                {"family": "inet", "local": a["local"], "prefixlen": a["prefixlen"], "scope": a.get("scope", "global")}
            ],
        }
        for a in dump.get("addrs", [])
    ]
    route_json = [{**r, "flags": r.get("flags", [])} for r in dump.get("routes", [])]
    fdb_json = [{**f, "ifname": f.get("ifname")} for f in dump.get("fdb", [])]
    return state_from_ip_json(
        name,
        addr=addr_json,
        route=route_json,
        neigh=dump.get("neigh", []),
        fdb=fdb_json,
        link=link_json,
        iptables_save=iptables_save,
    )
