"""A live node's state from the JSON of ``ip``/``bridge`` and the text of ``iptables-save``.

Feed it what any Linux node prints, whether kins built it or not::

    ip -d -j addr show            (or ip -d -j link show plus ip -j addr show)
    ip -j route show table all    (or plain ip -j route: the local table is then derived)
    ip -j neigh show
    bridge -j fdb show
    iptables-save

``-d`` adds the link details (VXLAN id/port/local, bridge-port hairpin) the simulator needs
for those devices; without it a device named like flannel's (``flannel.<vni>``) is taken as
VXLAN on flannel's default port and bridge ports as hairpin off. The outputs are read into the
model's records (``NetState``), as kins' own netlink dump is (``kernel.dump.net_state``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .._errors import KinsError
from ..model.netstate import VXLAN_PORT, Addr, Fdb, Link, Neigh, NetState, Route
from .state import NodeState, from_net_state

FLANNEL_PORT = VXLAN_PORT


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


def _link(d: dict[str, Any]) -> Link:
    name = str(d.get("ifname", ""))
    info = d.get("linkinfo") or {}
    kind = str(info.get("info_kind") or "")
    if not kind:
        kind = "loopback" if d.get("link_type") == "loopback" else ""
    vx: dict[str, Any] = {}
    data = info.get("info_data") or {}
    if kind == "vxlan":
        vx = {
            "vni": int(data.get("id", 0)),
            "local": data.get("local") or None,
            "port": int(data.get("port", FLANNEL_PORT)),
            "dev": data.get("link"),
        }
    elif not kind and name.startswith("flannel.") and name[8:].isdigit():
        kind = "vxlan"
        vx = {"vni": int(name[8:]), "port": FLANNEL_PORT}
    slave = info.get("info_slave_data") or {}
    flags = d.get("flags") or []
    up = "UP" in flags if flags else d.get("operstate", "UP") != "DOWN"
    return Link(
        name=name,
        kind=kind,
        mac=str(d.get("address") or "") or None,
        master=d.get("master"),
        hairpin=bool(slave.get("hairpin", False)),
        up=up,
        **vx,
    )


def _v4(ip: Any) -> str | None:
    return str(ip) if ip and ":" not in str(ip) else None


def _route(d: dict[str, Any]) -> Route | None:
    dst = str(d.get("dst", "default"))
    if ":" in dst:  # IPv6
        return None
    return Route(
        dst=dst,
        dev=d.get("dev"),
        via=_v4(d.get("gateway")),
        src=d.get("prefsrc") or None,
        scope=str(d.get("scope", "global")),
        type=str(d.get("type", "unicast")),
        metric=int(d.get("metric", 0) or 0) or None,
        onlink="onlink" in (d.get("flags") or []),
        table=str(d.get("table", "main")),
        proto=str(d.get("protocol", "boot")),
    )


def _neigh(d: dict[str, Any]) -> Neigh | None:
    dst, mac = d.get("dst"), d.get("lladdr")
    state = d.get("state") or []
    if not dst or not mac or ":" in dst or "FAILED" in state or "INCOMPLETE" in state:
        return None
    return Neigh(dst=str(dst), lladdr=str(mac), dev=str(d.get("dev")), state=" ".join(state))


def _fdb(d: dict[str, Any]) -> Fdb | None:
    mac = d.get("mac")
    if not mac:
        return None
    flags = d.get("flags") or []
    return Fdb(
        mac=str(mac),
        dev=str(d.get("ifname")),
        dst=_v4(d.get("dst")),
        self_="self" in flags,
        permanent=d.get("state") == "permanent",
        master=d.get("master"),
    )


def net_state_from_ip_json(
    *,
    addr: str | Sequence[Any],
    route: str | Sequence[Any],
    neigh: str | Sequence[Any] | None = None,
    fdb: str | Sequence[Any] | None = None,
    link: str | Sequence[Any] | None = None,
) -> NetState:
    """The records in the outputs listed in the module docstring. ``link`` (``ip -d -j link``)
    adds details ``addr`` lacks."""
    links = {str(d.get("ifname")): d for d in _load(link, "ip -j link")}
    devices: dict[str, Link] = {}
    addrs: list[Addr] = []
    for d in _load(addr, "ip -j addr"):
        merged = {**links.get(str(d.get("ifname")), {}), **d}
        if "linkinfo" not in d and "linkinfo" in links.get(str(d.get("ifname")), {}):
            merged["linkinfo"] = links[str(d.get("ifname"))]["linkinfo"]
        i = _link(merged)
        devices[i.name] = i
        for a in d.get("addr_info") or []:
            if a.get("family") == "inet" and a.get("local"):
                addrs.append(Addr(i.name, f"{a['local']}/{int(a.get('prefixlen', 32))}", str(a.get("scope", "global"))))
    for lname, d in links.items():
        if lname not in devices:
            devices[lname] = _link(d)
    return NetState(
        links=tuple(devices.values()),
        addrs=tuple(addrs),
        routes=tuple(r for d in _load(route, "ip -j route") if (r := _route(d)) is not None),
        neighs=tuple(n for d in _load(neigh, "ip -j neigh") if (n := _neigh(d)) is not None),
        fdb=tuple(f for d in _load(fdb, "bridge -j fdb") if (f := _fdb(d)) is not None),
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
    net = net_state_from_ip_json(addr=addr, route=route, neigh=neigh, fdb=fdb, link=link)
    return from_net_state(
        name, net, iptables_save=iptables_save, forwarding=forwarding, bridge_nf=bridge_nf, pod_cidr=pod_cidr
    )
