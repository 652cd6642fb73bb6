"""The per-node plan: every kernel object a node (and its pods) should have.

Plans are plain frozen data produced by pure renderers; the kernel layer applies them and the
simulator evaluates them. Names are the names *inside* the node's namespace (``eth0``,
``docker0``, ``flannel.1``); the kernel layer adds the cluster prefix to namespace names only.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Link:
    """A network device. ``kind`` is ``veth``, ``bridge``, ``vxlan`` or ``loopback``."""

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


@dataclass(frozen=True, slots=True)
class Addr:
    dev: str
    cidr: str  # "172.30.76.1/24"
    scope: str = "global"


@dataclass(frozen=True, slots=True)
class Route:
    dst: str  # "172.30.9.0/24" or "default"
    dev: str
    via: str | None = None
    src: str | None = None
    scope: str = "global"  # "link" for connected routes
    proto: str = "boot"  # "kernel" for routes the kernel adds with an address
    onlink: bool = False
    metric: int | None = None
    table: str = "main"


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
