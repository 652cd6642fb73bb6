"""Route lookup as the kernel does it: policy tables ``local`` then ``main`` then ``default``,
longest prefix first, lowest metric among equals; the ``local`` table holds the namespace's own
addresses (type local) and its subnets' broadcast addresses, derived from the addresses when a
dump does not list that table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..model.ipv4 import MASKS, int_ip
from ..model.netstate import Addr, Route

TABLE_ORDER = ("local", "main", "default")
MULTICAST_NET = (0xE0000000, 4)
_HITS_MAX = 65536  # remembered destinations per namespace


@dataclass(frozen=True, slots=True)
class RouteHit:
    route: Route
    nexthop: int  # the gateway, or the destination itself for a directly connected one
    src: int | None  # preferred source address


class _Table:
    """Routes of one table keyed by prefix length, then by masked network."""

    __slots__ = ("by_len", "lens")

    def __init__(self, routes: list[Route]) -> None:
        self.by_len: dict[int, dict[int, list[Route]]] = {}
        for r in routes:
            self.by_len.setdefault(r.plen, {}).setdefault(r.net & MASKS[r.plen], []).append(r)
        for nets in self.by_len.values():
            for lst in nets.values():
                lst.sort(key=lambda r: r.metric or 0)
        self.lens = sorted(self.by_len, reverse=True)

    def lookup(self, dst: int, up: set[str]) -> Route | None:
        for plen in self.lens:
            cands = self.by_len[plen].get(dst & MASKS[plen])
            if cands:
                for r in cands:
                    if r.dev is None or r.dev in up:
                        return r
        return None


class RoutingTables:
    """A namespace's routes (plus its ``local`` table derived from ``addrs`` when absent);
    ``up`` names the interfaces that are up."""

    def __init__(self, routes: Iterable[Route], addrs: list[Addr], up: set[str]) -> None:
        self.addrs = addrs
        routes = list(routes)
        if not any(r.table == "local" for r in routes):
            for a in addrs:
                own = int_ip(a.ip)
                routes.append(Route(own, a.dev, src=own, scope="host", type="local", table="local"))
                if a.dev == "lo" and a.plen < 32:  # lo's whole 127.0.0.0/8 is local
                    net = f"{int_ip(a.ip & MASKS[a.plen])}/{a.plen}"
                    routes.append(Route(net, "lo", src=own, scope="host", type="local", table="local"))
                elif a.plen < 31:
                    bcast = int_ip((a.ip & MASKS[a.plen]) | (~MASKS[a.plen] & 0xFFFFFFFF))
                    routes.append(Route(bcast, a.dev, src=own, scope="link", type="broadcast", table="local"))
        by_table: dict[str, list[Route]] = {}
        for r in routes:
            by_table.setdefault(r.table, []).append(r)
        names = [t for t in TABLE_ORDER if t in by_table] + sorted(t for t in by_table if t not in TABLE_ORDER)
        self.tables = [_Table(by_table[t]) for t in names]
        self.up = up | {"lo"}
        self._local: dict[int, str] = {}
        for r in by_table.get("local", []):
            if r.type in ("local", "broadcast"):
                for ip in (r.net,) if r.plen == 32 else ():
                    self._local[ip] = r.type.upper()
        # The tables do not change once built: each destination's answer is worked out once.
        self._hits: dict[int, RouteHit | None] = {}
        self._sources: dict[tuple[str | None, int], int | None] = {}

    def lookup(self, dst: int) -> RouteHit | None:
        """The route the kernel picks for ``dst``, or None (no route: ENETUNREACH)."""
        try:
            return self._hits[dst]
        except KeyError:
            pass
        hit = None
        for t in self.tables:
            r = t.lookup(dst, self.up)
            if r is not None:
                nh = r.via_ip if r.via_ip is not None else dst
                hit = RouteHit(r, nh, r.src_ip if r.src_ip is not None else self.source_for(r.dev, nh))
                break
        if len(self._hits) < _HITS_MAX:
            self._hits[dst] = hit
        return hit

    def source_for(self, dev: str | None, dst: int) -> int | None:
        """Source address selection: an address on the output device, preferring one whose
        subnet holds the destination, then any global address."""
        key = (dev, dst)
        try:
            return self._sources[key]
        except KeyError:
            pass
        src = self._source_for(dev, dst)
        if len(self._sources) < _HITS_MAX:
            self._sources[key] = src
        return src

    def _source_for(self, dev: str | None, dst: int) -> int | None:
        on_dev = [a for a in self.addrs if a.dev == dev and a.scope != "host"]
        for a in on_dev:
            if (a.ip & MASKS[a.plen]) == (dst & MASKS[a.plen]):
                return a.ip
        if on_dev:
            return on_dev[0].ip
        for a in self.addrs:
            if a.scope == "global":
                return a.ip
        return None

    def addr_type(self, ip: int) -> str:
        """``-m addrtype`` class of ``ip`` in this namespace."""
        t = self._local.get(ip)
        if t is not None:
            return t
        if ip & 0xFF000000 == 0x7F000000:  # lo's 127.0.0.0/8 is local as a whole
            r = self.lookup(ip)
            if r is not None and r.route.type == "local":
                return "LOCAL"
        if (ip & MASKS[MULTICAST_NET[1]]) == MULTICAST_NET[0]:
            return "MULTICAST"
        if ip == 0xFFFFFFFF:
            return "BROADCAST"
        if ip == 0:
            return "UNSPEC"
        return "UNICAST"

    def is_local(self, ip: int) -> bool:
        return self.addr_type(ip) == "LOCAL"
