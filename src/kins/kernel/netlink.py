"""Netlink device and table operations for one namespace, over one pyroute2 handle.

Why this shape: flannel's ``device.go`` keeps kernel calls thin and idempotent. ``ensure_link``
creates a device, and when one of that name already exists compares it with the wanted one: if
they are incompatible (another kind, VNI, local address, port...) it returns the reason and the
device is recreated; otherwise only settable attributes (MTU, MAC, master, hairpin, up) are
changed in place, so applying the same plan again never flaps a link. Tables are diffed the same
way: ``replace`` what the plan wants and differs, ``del`` only entries kins could have made.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from .._errors import KernelError
from ..model.netstate import Addr, Fdb, Link, Neigh, Route

AF_BRIDGE = 7
IFF_UP = 0x1
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
NUD_REACHABLE = 0x02
NTF_SELF = 0x02
NTF_MASTER = 0x04
RTNH_F_ONLINK = 0x4
RTN_UNICAST = 1
PROTO = {"redirect": 1, "kernel": 2, "boot": 3, "static": 4, "dhcp": 16}
PROTO_NAME = {v: k for k, v in PROTO.items()}
SCOPE = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
SCOPE_NAME = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
TABLE = {"main": 254, "local": 255, "default": 253}
TABLE_NAME = {v: k for k, v in TABLE.items()}
# Device kinds kins creates; anything else in a namespace (lo, a tunnel a user added) is left alone.
OWNED_KINDS = frozenset({"veth", "bridge", "vxlan", "dummy"})


@dataclass
class ApplyReport:
    """What an apply changed, one line per kernel operation (``ip``-like wording)."""

    changes: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def note(self, netns: str, what: str) -> None:
        self.changes.append(f"{netns}: {what}")

    def extend(self, other: ApplyReport) -> None:
        self.changes.extend(other.changes)

    @property
    def noop(self) -> bool:
        return not self.changes

    def __str__(self) -> str:
        head = f"{len(self.changes)} change(s) in {self.elapsed * 1000:.0f} ms"
        return "\n".join([head, *("  " + c for c in self.changes)])


@dataclass
class LinkState:
    index: int
    name: str
    kind: str | None
    mtu: int
    mac: str | None
    up: bool
    master: int | None
    link: int | None  # veth: peer ifindex (in link_netnsid's namespace when set)
    link_netnsid: int | None
    hairpin: bool | None
    vxlan: dict[str, Any]


def _linkinfo(msg: Any) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    info = msg.get("IFLA_LINKINFO")
    if not info:
        return None, {}, {}
    kind = info.get("IFLA_INFO_KIND")
    data = info.get("IFLA_INFO_DATA")
    slave = info.get("IFLA_INFO_SLAVE_DATA")
    d = {k: v for k, v in data["attrs"]} if data and hasattr(data, "get") and "attrs" in data else {}
    s = {k: v for k, v in slave["attrs"]} if slave and hasattr(slave, "get") and "attrs" in slave else {}
    return kind, d, s


def link_state(msg: Any) -> LinkState:
    kind, data, slave = _linkinfo(msg)
    mode = slave.get("IFLA_BRPORT_MODE")
    return LinkState(
        index=msg["index"],
        name=msg.get("IFLA_IFNAME"),
        kind=kind,
        mtu=msg.get("IFLA_MTU"),
        mac=msg.get("IFLA_ADDRESS"),
        up=bool(msg["flags"] & IFF_UP),
        master=msg.get("IFLA_MASTER"),
        link=msg.get("IFLA_LINK"),
        link_netnsid=msg.get("IFLA_LINK_NETNSID"),
        hairpin=None if mode is None else bool(mode),
        vxlan={
            "vni": data.get("IFLA_VXLAN_ID"),
            "local": data.get("IFLA_VXLAN_LOCAL"),
            "dev": data.get("IFLA_VXLAN_LINK"),
            "port": data.get("IFLA_VXLAN_PORT"),
            "learning": bool(data.get("IFLA_VXLAN_LEARNING", 1)),
        }
        if kind == "vxlan"
        else {},
    )


def link_incompat(want: Link, have: LinkState, dev_index: int | None = None) -> str | None:
    """Why an existing device cannot serve as ``want`` (so it must be recreated), or None.

    Only attributes the kernel cannot change in place count; MTU, MAC, master and hairpin are
    fixed by ``set`` instead.
    """
    if want.kind == "loopback":
        return None
    if have.kind != want.kind:
        return f"kind: {have.kind} vs {want.kind}"
    if want.kind == "vxlan":
        v = have.vxlan
        wanted = {"vni": want.vni, "local": want.local, "dev": dev_index, "port": want.port, "learning": want.learning}
        for key, w in wanted.items():
            if w is not None and v.get(key) != w:
                return f"{key}: {v.get(key)} vs {w}"
    return None


def _mac(mac: str | None) -> str | None:
    return mac.lower() if mac else None


class Netlink:
    """One ``IPRoute`` bound to one namespace, with the errors turned into KernelError."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        try:
            self.ipr = IPRoute(netns=netns, flags=0)
        except OSError as e:
            raise KernelError("netlink open", netns, str(e)) from e
        self._links: dict[str, LinkState] | None = None

    def close(self) -> None:
        self.ipr.close()

    def call(self, op: str, fn: Callable[..., Any], *args: Any, ok: Iterable[int] = (), **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except NetlinkError as e:
            if e.code in ok:
                return None
            raise KernelError(op, self.netns, f"{errno.errorcode.get(e.code, e.code)}: {e}") from e

    # --- links ---
    def links(self, refresh: bool = False) -> dict[str, LinkState]:
        if self._links is None or refresh:
            self._links = {s.name: s for s in (link_state(m) for m in self.call("link dump", self.ipr.get_links))}
        return self._links

    def refresh(self, name: str) -> LinkState | None:
        """Re-read one device (a single RTM_GETLINK, not a dump) into the cache."""
        links = self.links()
        msgs = self.call(f"link get {name}", self.ipr.link, "get", ifname=name, ok=(errno.ENODEV,))
        if not msgs:
            links.pop(name, None)
            return None
        s = links[name] = link_state(msgs[0])
        return s

    def index(self, name: str) -> int:
        s = self.links().get(name) or self.refresh(name)
        if s is None:
            raise KernelError("link lookup", self.netns, f"no device {name!r}")
        return s.index

    def invalidate(self) -> None:
        self._links = None

    def create_link(self, want: Link, peer_netns: str | None = None, peer: Link | None = None) -> None:
        kw: dict[str, Any] = {"ifname": want.name, "kind": want.kind, "mtu": want.mtu}
        if want.mac:
            kw["address"] = want.mac
        if want.kind == "vxlan":
            kw.update(vxlan_id=want.vni, vxlan_learning=int(want.learning))
            if want.local:
                kw["vxlan_local"] = want.local
            if want.dev:
                kw["vxlan_link"] = self.index(want.dev)
            if want.port:
                kw["vxlan_port"] = want.port
        elif want.kind == "veth":
            p: dict[str, Any] = {"ifname": want.peer or f"{want.name}-p"}
            if peer_netns:
                p["net_ns_fd"] = peer_netns
            if peer is not None:
                p["mtu"] = peer.mtu
                if peer.mac:
                    p["address"] = peer.mac
            kw["peer"] = p
        self.call(f"link add {want.name}", self.ipr.link, "add", **kw)
        self.refresh(want.name)

    def delete_link(self, name: str) -> None:
        s = self.links().get(name)
        if s is None:
            return
        self.call(f"link del {name}", self.ipr.link, "del", index=s.index, ok=(errno.ENODEV,))
        self.links().pop(name, None)

    def configure_link(self, want: Link, report: ApplyReport, up: bool = True) -> None:
        """Bring MTU, MAC, master, hairpin and admin state to ``want`` without recreating it."""
        have = self.links()[want.name]
        changes: dict[str, Any] = {}
        if want.kind != "loopback" and have.mtu != want.mtu:
            changes["mtu"] = want.mtu
        if want.mac and _mac(have.mac) != _mac(want.mac):
            changes["address"] = want.mac
        master = self.index(want.master) if want.master else None
        if want.kind != "loopback" and have.master != master:
            changes["master"] = master or 0
        if changes:
            self._set(want.name, have, changes)
            report.note(self.netns, f"link set {want.name} {' '.join(f'{k} {v}' for k, v in changes.items())}")
        if want.master:
            now = (self.refresh(want.name) if changes else None) or have
            hp = now.hairpin
            if bool(hp) != want.hairpin:
                self.call(f"brport {want.name}", self.ipr.brport, "set", index=have.index, mode=int(want.hairpin))
                hairpin = "on" if want.hairpin else "off"
                report.note(self.netns, f"link set {want.name} type bridge_slave hairpin {hairpin}")
        if up and not have.up:
            self.call(f"link up {want.name}", self.ipr.link, "set", index=have.index, state="up")
            report.note(self.netns, f"link set {want.name} up")
        if changes or (up and not have.up):
            self.refresh(want.name)

    def _set(self, name: str, have: LinkState, changes: dict[str, Any]) -> None:
        try:
            self.ipr.link("set", index=have.index, **changes)
        except NetlinkError as e:
            # Some drivers (vxlan) refuse a new MAC while up: the one case where a set needs a
            # down/up, and only when the plan really changed the address.
            if e.code != errno.EBUSY or "address" not in changes or not have.up:
                raise KernelError(f"link set {name}", self.netns, f"{errno.errorcode.get(e.code, e.code)}: {e}") from e
            self.call(f"link down {name}", self.ipr.link, "set", index=have.index, state="down")
            self.call(f"link set {name}", self.ipr.link, "set", index=have.index, **changes)
            self.call(f"link up {name}", self.ipr.link, "set", index=have.index, state="up")

    def ensure_link(self, want: Link, report: ApplyReport) -> str | None:
        """Make ``want`` exist (non-veth kinds). Returns the reason it was recreated, if it was."""
        have = self.links().get(want.name)
        reason = None
        if have is not None:
            dev = self.index(want.dev) if want.kind == "vxlan" and want.dev else None
            reason = link_incompat(want, have, dev)
            if reason is None:
                self.configure_link(want, report)
                return None
            self.delete_link(want.name)
            report.note(self.netns, f"link del {want.name} ({reason})")
        if want.kind == "loopback":
            raise KernelError("link add", self.netns, f"{want.name}: loopback devices cannot be created")
        self.create_link(want)
        report.note(self.netns, f"link add {want.name} type {want.kind}")
        self.configure_link(want, report)
        return reason

    # --- addresses ---
    def addrs(self) -> dict[tuple[int, str], Any]:
        out: dict[tuple[int, str], Any] = {}
        for m in self.call("addr dump", self.ipr.get_addr, family=socket.AF_INET):
            out[(m["index"], f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}")] = m
        return out

    def sync_addrs(self, want: Iterable[Addr], owned_devs: set[str], report: ApplyReport) -> None:
        have = self.addrs()
        wanted: dict[tuple[int, str], Addr] = {(self.index(a.dev), a.cidr): a for a in want}
        for key, a in wanted.items():
            m = have.get(key)
            if m is not None and m["scope"] == SCOPE[a.scope]:
                continue
            ip, _, plen = a.cidr.partition("/")
            self.call(
                f"addr replace {a.cidr}",
                self.ipr.addr,
                "replace",
                index=key[0],
                address=ip,
                prefixlen=int(plen or 32),
                scope=SCOPE[a.scope],
            )
            report.note(self.netns, f"addr replace {a.cidr} dev {a.dev}")
        owned = {self.links()[d].index for d in owned_devs if d in self.links()}
        for key in have:
            if key not in wanted and key[0] in owned:
                ip, _, plen = key[1].partition("/")
                self.call(
                    f"addr del {key[1]}",
                    self.ipr.addr,
                    "del",
                    index=key[0],
                    address=ip,
                    prefixlen=int(plen),
                    ok=(errno.EADDRNOTAVAIL,),
                )
                report.note(self.netns, f"addr del {key[1]}")

    # --- neighbours, fdb, routes: add in plan order, remove stale in reverse ---
    def neighs(self) -> dict[tuple[int, str], Any]:
        return {
            (m["ifindex"], m.get("NDA_DST")): m
            for m in self.call("neigh dump", self.ipr.get_neighbours, family=socket.AF_INET)
            if m["state"] & NUD_PERMANENT
        }

    def add_neighs(self, want: Iterable[Neigh], report: ApplyReport) -> set[tuple[int, str]]:
        have = self.neighs()
        keys: set[tuple[int, str]] = set()
        for n in want:
            key = (self.index(n.dev), n.dst)
            keys.add(key)
            m = have.get(key)
            if m is not None and _mac(m.get("NDA_LLADDR")) == _mac(n.lladdr):
                continue
            state = NUD_PERMANENT if n.state.upper() == "PERMANENT" else NUD_REACHABLE
            kw: dict[str, Any] = {"ifindex": key[0], "dst": n.dst, "lladdr": n.lladdr, "state": state}
            self.call(f"neigh replace {n.dst}", self.ipr.neigh, "replace", **kw)
            report.note(self.netns, f"neigh replace {n.dst} lladdr {n.lladdr} dev {n.dev} nud {n.state.lower()}")
        return keys

    def del_stale_neighs(self, keep: set[tuple[int, str]], report: ApplyReport) -> None:
        for key, m in self.neighs().items():
            if key in keep:
                continue
            self.call(f"neigh del {key[1]}", self.ipr.neigh, "del", ifindex=key[0], dst=key[1], ok=(errno.ENOENT,))
            report.note(self.netns, f"neigh del {key[1]} lladdr {m.get('NDA_LLADDR')}")

    def fdbs(self) -> dict[tuple[int, str, str | None], Any]:
        vx = {s.index for s in self.links().values() if s.kind == "vxlan"}
        return {
            (m["ifindex"], _mac(m.get("NDA_LLADDR")) or "", m.get("NDA_DST")): m
            for m in self.call("fdb dump", self.ipr.fdb, "dump")
            if m["ifindex"] in vx and m.get("NDA_DST")
        }

    def add_fdb(self, want: Iterable[Fdb], report: ApplyReport) -> set[tuple[int, str, str | None]]:
        have = self.fdbs()
        keys: set[tuple[int, str, str | None]] = set()
        for f in want:
            key = (self.index(f.dev), _mac(f.mac) or "", f.dst)
            keys.add(key)
            if key in have:
                continue
            kw: dict[str, Any] = {
                "ifindex": key[0],
                "lladdr": f.mac,
                "state": NUD_NOARP | (NUD_PERMANENT if f.permanent else NUD_REACHABLE),
                "flags": NTF_SELF if f.self_ else NTF_MASTER,
            }
            if f.dst:
                kw["dst"] = f.dst
            self.call(f"fdb replace {f.mac}", self.ipr.fdb, "replace", **kw)
            report.note(self.netns, f"fdb replace {f.mac} dev {f.dev}" + (f" dst {f.dst}" if f.dst else ""))
        return keys

    def del_stale_fdb(self, keep: set[tuple[int, str, str | None]], report: ApplyReport) -> None:
        for key in self.fdbs():
            if key in keep:
                continue
            self.call(
                f"fdb del {key[1]}",
                self.ipr.fdb,
                "del",
                ifindex=key[0],
                lladdr=key[1],
                dst=key[2],
                ok=(errno.ENOENT,),
            )
            report.note(self.netns, f"fdb del {key[1]} dst {key[2]}")

    def routes(self) -> dict[tuple[int, str, int], Any]:
        out: dict[tuple[int, str, int], Any] = {}
        for m in self.call("route dump", self.ipr.get_routes, family=socket.AF_INET):
            table = m.get("RTA_TABLE", m["table"])
            if table == TABLE["local"] or m["type"] != RTN_UNICAST or m["proto"] == PROTO["kernel"]:
                continue
            dst = f"{m.get('RTA_DST')}/{m['dst_len']}" if m["dst_len"] else "default"
            out[(table, dst, m.get("RTA_PRIORITY") or 0)] = m
        return out

    def _route_key(self, r: Route) -> tuple[int, str, int]:
        table = TABLE.get(r.table) or int(r.table)
        dst = "default" if r.dst in ("default", "0.0.0.0/0") else r.dst
        return (table, dst, r.metric or 0)

    def add_routes(self, want: Iterable[Route], report: ApplyReport) -> set[tuple[int, str, int]]:
        have = self.routes()
        keys: set[tuple[int, str, int]] = set()
        for r in want:
            if r.proto == "kernel":  # the kernel adds these with the address
                continue
            if r.dev is None:  # plans route out of a device; blackholes are not theirs to make
                raise KernelError(f"route replace {r.dst}", self.netns, "a route without a device")
            key = self._route_key(r)
            keys.add(key)
            oif = self.index(r.dev)
            m = have.get(key)
            if m is not None and (
                m.get("RTA_OIF") == oif
                and m.get("RTA_GATEWAY") == r.via
                and (r.src is None or m.get("RTA_PREFSRC") == r.src)
                and m["scope"] == SCOPE[r.scope]
                and m["proto"] == PROTO[r.proto]
                and bool(m["flags"] & RTNH_F_ONLINK) == r.onlink
            ):
                continue
            kw: dict[str, Any] = {
                "table": key[0],
                "oif": oif,
                "scope": SCOPE[r.scope],
                "proto": PROTO[r.proto],
                "type": RTN_UNICAST,
            }
            if key[1] == "default":
                kw["dst_len"] = 0
            else:
                kw["dst"] = key[1]
            if r.via:
                kw["gateway"] = r.via
            if r.src:
                kw["prefsrc"] = r.src
            if r.metric is not None:
                kw["priority"] = r.metric
            if r.onlink:
                kw["flags"] = RTNH_F_ONLINK
            self.call(f"route replace {r.dst}", self.ipr.route, "replace", **kw)
            via = f" via {r.via}" if r.via else ""
            report.note(self.netns, f"route replace {r.dst}{via} dev {r.dev}" + (" onlink" if r.onlink else ""))
        return keys

    def del_stale_routes(self, keep: set[tuple[int, str, int]], report: ApplyReport) -> None:
        for key, m in self.routes().items():
            if key in keep:
                continue
            kw: dict[str, Any] = {"table": key[0], "dst_len": m["dst_len"], "proto": m["proto"]}
            if m["dst_len"]:
                kw["dst"] = m.get("RTA_DST")
            if key[2]:
                kw["priority"] = key[2]
            self.call(f"route del {key[1]}", self.ipr.route, "del", ok=(errno.ESRCH,), **kw)
            report.note(self.netns, f"route del {key[1]}")


class Session:
    """One Netlink handle per namespace for the length of an apply (a small dict, closed at the end)."""

    def __init__(self) -> None:
        self.handles: dict[str, Netlink] = {}

    def __call__(self, netns: str) -> Netlink:
        h = self.handles.get(netns)
        if h is None:
            h = self.handles[netns] = Netlink(netns)
        return h

    def drop(self, netns: str) -> None:
        h = self.handles.pop(netns, None)
        if h is not None:
            h.close()

    def close(self) -> None:
        for h in self.handles.values():
            h.close()
        self.handles.clear()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
