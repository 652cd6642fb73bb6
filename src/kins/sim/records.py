"""The records a namespace's network state is made of: interfaces, addresses and routes.

Addresses are ints (``addr.ip_int``) so that route lookup and packet matching compare numbers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Vxlan:
    vni: int
    local: int | None
    port: int
    dev: str | None  # underlay device


@dataclass(frozen=True, slots=True)
class Iface:
    name: str
    kind: str  # veth, bridge, vxlan, loopback, or "" when unknown
    mac: str = ""
    master: str | None = None
    hairpin: bool = False
    peer: str | None = None  # veth: the peer's device name
    peer_netns: str | None = None  # veth: the plan-level namespace of the peer
    vxlan: Vxlan | None = None
    up: bool = True


@dataclass(frozen=True, slots=True)
class AddrEntry:
    dev: str
    ip: int
    plen: int
    scope: str = "global"


@dataclass(frozen=True, slots=True)
class RouteEntry:
    net: int
    plen: int
    dev: str | None
    via: int | None = None
    src: int | None = None
    scope: str = "global"
    type: str = "unicast"  # unicast, local, broadcast, blackhole, unreachable, prohibit
    metric: int = 0
    onlink: bool = False
    table: str = "main"
    proto: str = "boot"
