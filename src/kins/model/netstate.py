"""A namespace's kernel network state: devices, addresses, routes, neighbours, FDB, sysctls.

One model for all of kins: pure renderers produce it (``NodePlan``, ``PodPlan``: every kernel
object a node and its pods should have), the kernel layer applies it and reads live namespaces
back into it (``NetState``), and the simulator walks it. Fields hold what ``ip`` prints
(strings); the addresses the simulator compares are also kept as ints, worked out once when a
record is made. Names are the names *inside* the namespace (``eth0``, ``docker0``,
``flannel.1``); the kernel layer adds the cluster prefix to namespace names only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ipset import IPSet
from .ipv4 import ip_int, net_int

VXLAN_PORT = 8472  # the kernel's VXLAN port when none is given (flannel's too)


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)  # derived fields of frozen records


@dataclass(frozen=True, slots=True)
class Link:
    """A network device. ``kind`` is ``veth``, ``bridge``, ``vxlan`` or ``loopback`` (or ``""``
    for a live device of a kind kins does not know)."""

    name: str
    kind: str
    mtu: int = 1500
    mac: str | None = None
    master: str | None = None  # bridge this port is enslaved to
    peer: str | None = None  # veth: peer device name
    peer_netns: str | None = None  # veth: namespace (plan-level name) the peer lives in
    hairpin: bool = False  # bridge port: reflect frames back out the port they came in on
    # vxlan only
    vni: int | None = None
    local: str | None = None
    dev: str | None = None
    port: int | None = None
    learning: bool = True
    up: bool = True
    local_ip: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, "local_ip", ip_int(self.local) if self.local else None)

    @property
    def dstport(self) -> int:
        """vxlan: the UDP port it sends to and receives on."""
        return self.port or VXLAN_PORT


@dataclass(frozen=True, slots=True)
class Addr:
    dev: str
    cidr: str  # "172.30.76.1/24"
    scope: str = "global"
    ip: int = field(init=False, repr=False, compare=False)
    plen: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ip, _, plen = self.cidr.partition("/")
        _set(self, "ip", ip_int(ip))
        _set(self, "plen", int(plen or 32))


@dataclass(frozen=True, slots=True)
class Route:
    dst: str  # "172.30.9.0/24", "10.0.0.1" (a /32) or "default"
    dev: str | None  # None: a route without a device (blackhole, unreachable)
    via: str | None = None
    src: str | None = None
    scope: str = "global"  # "link" for connected routes
    proto: str = "boot"  # "kernel" for routes the kernel adds with an address
    onlink: bool = False
    metric: int | None = None
    table: str = "main"
    type: str = "unicast"  # unicast, local, broadcast, blackhole, unreachable, prohibit
    net: int = field(init=False, repr=False, compare=False)
    plen: int = field(init=False, repr=False, compare=False)
    via_ip: int | None = field(init=False, repr=False, compare=False)
    src_ip: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        net, plen = net_int(self.dst)
        _set(self, "net", net)
        _set(self, "plen", plen)
        _set(self, "via_ip", ip_int(self.via) if self.via else None)
        _set(self, "src_ip", ip_int(self.src) if self.src else None)


@dataclass(frozen=True, slots=True)
class Neigh:
    dst: str
    lladdr: str
    dev: str
    state: str = "PERMANENT"


@dataclass(frozen=True, slots=True)
class Fdb:
    mac: str
    dev: str
    dst: str | None = None  # remote VTEP (vxlan)
    self_: bool = True
    permanent: bool = True
    master: str | None = None  # an entry of a bridge (``dev`` is the port it switches to)


@dataclass(frozen=True, slots=True)
class Sysctl:
    key: str  # "net.ipv4.ip_forward"
    value: str


@dataclass(frozen=True, slots=True)
class PodPlan:
    """A pod's own namespace: ``lo`` and ``eth0`` (peer of a veth on the node bridge)."""

    key: str  # "default/web-abc12"
    netns: str  # plan-level namespace name, e.g. "pod-default-web-abc12"
    hostname: str
    ip: str
    links: tuple[Link, ...]
    addrs: tuple[Addr, ...]
    routes: tuple[Route, ...]
    resolv_conf: str
    hosts_file: str
    sysctls: tuple[Sysctl, ...] = ()


@dataclass(frozen=True, slots=True)
class NodePlan:
    """One node: its own namespace's devices, routes, neighbours, FDB, sysctls, the kube-proxy
    iptables-restore payload, and the plans of the pods it runs."""

    name: str
    ip: str
    pod_cidr: str
    links: tuple[Link, ...] = ()
    addrs: tuple[Addr, ...] = ()
    routes: tuple[Route, ...] = ()
    neighs: tuple[Neigh, ...] = ()
    fdb: tuple[Fdb, ...] = ()
    sysctls: tuple[Sysctl, ...] = ()
    iptables_restore: str = ""
    pods: tuple[PodPlan, ...] = field(default_factory=tuple)
    # the NetworkPolicy layer (kube-router): its filter payload, the jumps into it from the
    # built-in chains (table, chain, args), and the ipsets its rules match
    policy_restore: str = ""
    policy_jumps: tuple[tuple[str, str, str], ...] = ()
    ipsets: tuple[IPSet, ...] = ()


@dataclass(frozen=True, slots=True)
class NetState:
    """One live namespace as the kernel layer reads it back."""

    links: tuple[Link, ...] = ()
    addrs: tuple[Addr, ...] = ()
    routes: tuple[Route, ...] = ()
    neighs: tuple[Neigh, ...] = ()
    fdb: tuple[Fdb, ...] = ()
