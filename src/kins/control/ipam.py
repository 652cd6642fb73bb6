"""Address and port allocation: pod IPs per node, ClusterIPs, NodePorts.

Nothing is kept beside the store: every allocator is rebuilt from the objects (pod IPs from
the pods of a node, ClusterIPs and ports from the Services), so a restart loses nothing and a
deleted object frees what it held.

Pod IPs follow flannel + the host-local IPAM plugin: in a node's subnet ``.0`` is the VTEP
address of ``flannel.1``, ``.1`` the bridge (the pods' gateway), the broadcast is never used,
and the lowest free address is handed out first.

ClusterIPs and NodePorts follow the API server: the range is split into a lower band for
addresses users pick and an upper band that dynamic allocation prefers. Where the API server
picks at random, kins starts from a hash of the Service's key and probes upwards, so a
Service keeps the same address whatever else is in the manifests.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Collection, Iterable

from msgspec.structs import replace

from .._errors import AllocationError, NotFound
from ..api.config import ClusterConfig
from ..api.core import Pod, Service, ServicePort, ServiceSpec
from ..api.meta import ObjectMeta
from ..store.base import DELETED, Store, WatchEvent

KUBERNETES_KEY = "default/kubernetes"
KUBE_DNS_KEY = "kube-system/kube-dns"


def ip_int(text: str) -> int:
    """Dotted quad -> int; ValueError if it is not an IPv4 address (fast path for the common case)."""
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
        a, b, c, d = (int(p) for p in parts)
        if a < 256 and b < 256 and c < 256 and d < 256:
            return (a << 24) | (b << 16) | (c << 8) | d
    return int(ipaddress.IPv4Address(text))


def ip_str(n: int) -> str:
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


# --- pod IPs -----------------------------------------------------------------------------------


def pod_ip_bounds(cidr: str) -> tuple[int, int]:
    """First and last address a pod may get in a node subnet (``.2`` .. broadcast - 1)."""
    net = ipaddress.IPv4Network(cidr)
    return int(net.network_address) + 2, int(net.broadcast_address) - 1


def allocate_pod_ip(cidr: str, used: Collection[str], node: str = "") -> str:
    """The lowest free pod address of ``cidr``. AllocationError when the subnet is full."""
    lo, hi = pod_ip_bounds(cidr)
    taken = {ip_int(a) for a in used}
    for n in range(lo, hi + 1):
        if n not in taken:
            return ip_str(n)
    where = f"node {node}: " if node else ""
    raise AllocationError(f"{where}no free pod IP left in {cidr} ({hi - lo + 1} addresses in use)")


def held_pod_ip(pod: Pod) -> str | None:
    """The address a pod holds: kept until the pod is gone or has finished."""
    st = pod.status
    if st is None or not st.podIP or pod.spec.hostNetwork or st.phase in ("Succeeded", "Failed"):
        return None
    return st.podIP


def pod_ips_in_use(store: Store, node: str) -> set[str]:
    pods = store.list("Pod")[0]
    return {ip for p in pods if isinstance(p, Pod) and p.spec.nodeName == node and (ip := held_pod_ip(p))}


# --- Service addresses and ports ---------------------------------------------------------------


def _band(size: int, div: int, cap: int) -> int:
    """Size of the lower (static) band: ``min(max(16, size / div), cap)``."""
    return min(max(16, size // div), cap)


def _needs_node_ports(spec: ServiceSpec) -> bool:
    if spec.type == "NodePort":
        return True
    return spec.type == "LoadBalancer" and spec.allocateLoadBalancerNodePorts is not False


def _needs_health_check(spec: ServiceSpec) -> bool:
    return spec.type == "LoadBalancer" and spec.externalTrafficPolicy == "Local"


def needs_allocation(svc: Service) -> bool:
    """True when a stored Service still lacks what the API server would have filled in."""
    s = svc.spec
    if s.type == "ExternalName":
        return bool(s.clusterIP) and s.clusterIP != "None"
    if not s.clusterIP:
        return True
    if _needs_node_ports(s) and any(p.nodePort is None for p in s.ports or []):
        return True
    return _needs_health_check(s) and s.healthCheckNodePort is None


class ServiceAllocator:
    """ClusterIP and NodePort bookkeeping for one cluster; holders are Service keys."""

    def __init__(self, cfg: ClusterConfig) -> None:
        net = ipaddress.IPv4Network(cfg.services.cidr)
        self.cidr = str(net)
        self._lo = int(net.network_address) + 1
        self._hi = int(net.broadcast_address) - 1
        self._ip_split = self._lo + _band(net.num_addresses, 16, 256)
        self._reserved = {self._lo: KUBERNETES_KEY, ip_int(cfg.dns_ip): KUBE_DNS_KEY}
        self.port_lo, self.port_hi = cfg.node_port_range
        self._port_split = self.port_lo + _band(self.port_hi - self.port_lo + 1, 32, 128)
        self._ips: dict[int, str] = {}
        self._ports: dict[int, str] = {}
        self._held: dict[str, tuple[list[int], list[int]]] = {}

    @classmethod
    def from_store(cls, store: Store, cfg: ClusterConfig) -> ServiceAllocator:
        a = cls(cfg)
        for s in store.list("Service")[0]:
            if isinstance(s, Service):
                a.record(s)
        return a

    # bookkeeping

    def record(self, svc: Service) -> None:
        """Note what a stored Service holds (first holder wins if the store has a clash)."""
        key = svc.key
        self.release(key)
        ips: list[int] = []
        ports: list[int] = []
        s = svc.spec
        if s.type != "ExternalName":
            for ip in {s.clusterIP, *(s.clusterIPs or [])}:
                if ip and ip != "None":
                    try:
                        n = ip_int(ip)
                    except ValueError:
                        continue
                    if self._ips.setdefault(n, key) == key:
                        ips.append(n)
            for p in [*(q.nodePort for q in s.ports or []), s.healthCheckNodePort]:
                if p and self._ports.setdefault(p, key) == key:
                    ports.append(p)
        self._held[key] = (ips, ports)

    def _hold(self, key: str, ips: list[int], ports: list[int]) -> None:
        """Record a fresh allocation (already checked to be free for ``key``)."""
        self.release(key)
        for n in ips:
            self._ips[n] = key
        for p in ports:
            self._ports[p] = key
        self._held[key] = (ips, ports)

    def release(self, key: str) -> None:
        ips, ports = self._held.pop(key, ([], []))
        for n in ips:
            if self._ips.get(n) == key:
                del self._ips[n]
        for p in ports:
            if self._ports.get(p) == key:
                del self._ports[p]

    def ip_holder(self, ip: str) -> str | None:
        n = ip_int(ip)
        return self._ips.get(n) or self._reserved.get(n)

    def port_holder(self, port: int) -> str | None:
        return self._ports.get(port)

    # allocation

    def _free_ip(self, key: str, n: int) -> bool:
        h = self._ips.get(n)
        if h is not None:
            return h == key
        r = self._reserved.get(n)
        return r is None or r == key

    def _pick_ip(self, key: str) -> int:
        for lo, hi in ((self._ip_split, self._hi), (self._lo, self._ip_split - 1)):
            size = hi - lo + 1
            if size <= 0:
                continue
            start = zlib.crc32(key.encode()) % size
            for i in range(size):
                n = lo + (start + i) % size
                if self._free_ip(key, n):
                    return n
        raise AllocationError(f"Service {key}: no free ClusterIP left in {self.cidr}")

    def _pick_port(self, seed: str, key: str, taken: set[int]) -> int:
        for lo, hi in ((self._port_split, self.port_hi), (self.port_lo, self._port_split - 1)):
            size = hi - lo + 1
            if size <= 0:
                continue
            start = zlib.crc32(seed.encode()) % size
            for i in range(size):
                p = lo + (start + i) % size
                if p not in taken and self._ports.get(p, key) == key:
                    return p
        raise AllocationError(f"Service {key}: no free node port left in {self.port_lo}-{self.port_hi}")

    def _check_port(self, key: str, field: str, port: int, taken: set[int]) -> None:
        where = f"Service {key}: {field}: Invalid value: {port}"
        if not self.port_lo <= port <= self.port_hi:
            raise AllocationError(
                f"{where}: provided port is not in the valid range. "
                f"The range of valid ports is {self.port_lo}-{self.port_hi}"
            )
        holder = self._ports.get(port)
        if holder is not None and holder != key:
            raise AllocationError(f"{where}: provided port is already allocated (held by Service {holder})")
        if port in taken:
            raise AllocationError(f"{where}: provided port is already allocated (held by Service {key})")

    def allocate(self, svc: Service) -> Service:
        """The Service as the API server would store it: ClusterIP, node ports and defaults
        filled in, requested values checked. Raises AllocationError and changes nothing then."""
        key = svc.key
        s = svc.spec
        typ = s.type or "ClusterIP"
        if typ == "ExternalName":
            ports = [replace(p, nodePort=None) for p in s.ports] if s.ports else s.ports
            spec = replace(s, clusterIP=None, clusterIPs=None, ports=ports, healthCheckNodePort=None)
            self.release(key)
            return replace(svc, spec=spec)
        want = s.clusterIP or (s.clusterIPs[0] if s.clusterIPs else None)
        if want == "None":
            ip = "None"
        elif want:
            bad = f'Service {key}: spec.clusterIPs: Invalid value: ["{want}"]'
            try:
                n = ip_int(want)
            except ValueError:
                raise AllocationError(f"{bad}: must be a valid IP address") from None
            if not self._lo <= n <= self._hi:
                raise AllocationError(
                    f"{bad}: failed to allocate IP {want}: provided IP is not in the valid range. "
                    f"The range of valid IPs is {self.cidr}"
                )
            if not self._free_ip(key, n):
                holder = self._ips.get(n) or self._reserved.get(n)
                raise AllocationError(
                    f"{bad}: failed to allocate IP {want}: provided IP is already allocated (held by Service {holder})"
                )
            ip = want
        elif key in (KUBERNETES_KEY, KUBE_DNS_KEY):
            n = next(k for k, v in self._reserved.items() if v == key)
            ip = ip_str(n if self._free_ip(key, n) else self._pick_ip(key))
        else:
            ip = ip_str(self._pick_ip(key))

        node_ports = _needs_node_ports(s)
        taken: set[int] = set()  # within this Service: one number per (port, protocol)
        by_proto: dict[int, set[str]] = {}
        new_ports: list[ServicePort] = []
        for i, p in enumerate(s.ports or []):
            np: int | None = None
            if node_ports:
                if p.nodePort:
                    protos = by_proto.get(p.nodePort, set())
                    if p.nodePort in taken and p.protocol not in protos:
                        pass  # the same number for TCP and UDP of one Service is allowed
                    else:
                        self._check_port(key, f"spec.ports[{i}].nodePort", p.nodePort, taken)
                    np = p.nodePort
                else:
                    np = self._pick_port(f"{key}/{p.port}/{p.protocol}", key, taken)
                taken.add(np)
                by_proto.setdefault(np, set()).add(p.protocol)
            tp = p.targetPort if p.targetPort is not None else p.port
            new_ports.append(replace(p, nodePort=np, targetPort=tp) if (np, tp) != (p.nodePort, p.targetPort) else p)
        hc: int | None = None
        if _needs_health_check(s):
            if s.healthCheckNodePort:
                self._check_port(key, "spec.healthCheckNodePort", s.healthCheckNodePort, taken)
                hc = s.healthCheckNodePort
            else:
                hc = self._pick_port(f"{key}/healthz", key, taken)
        external = typ in ("NodePort", "LoadBalancer")
        spec = replace(
            s,
            type=typ,
            clusterIP=ip,
            clusterIPs=[ip],
            ports=new_ports if s.ports is not None else None,
            healthCheckNodePort=hc,
            externalTrafficPolicy=(s.externalTrafficPolicy or "Cluster") if external else s.externalTrafficPolicy,
            internalTrafficPolicy=s.internalTrafficPolicy or "Cluster",
            sessionAffinity=s.sessionAffinity or "None",
            ipFamilies=s.ipFamilies or ["IPv4"],
            ipFamilyPolicy=s.ipFamilyPolicy or "SingleStack",
        )
        ip_ints = [] if ip == "None" else [ip_int(ip)]
        self._hold(key, ip_ints, sorted(taken | ({hc} if hc else set())))
        return replace(svc, spec=spec)


def allocate_service(store: Store, cfg: ClusterConfig, svc: Service) -> Service:
    """Allocate for one Service against what the store holds, before it is written (the API
    refuses a bad Service without side effects)."""
    return ServiceAllocator.from_store(store, cfg).allocate(svc)


def kubernetes_service() -> Service:
    """``default/kubernetes``: the API server's own Service (HTTPS on 443 -> 6443)."""
    return Service(
        metadata=ObjectMeta(
            name="kubernetes", namespace="default", labels={"component": "apiserver", "provider": "kubernetes"}
        ),
        spec=ServiceSpec(ports=[ServicePort(name="https", port=443, targetPort=6443)]),
    )


class ServiceIPController:
    """Fills in Services that reached the store without allocation, and keeps
    ``default/kubernetes`` present."""

    name = "service-ip"
    kinds = frozenset({"Service"})

    def __init__(self, store: Store, cfg: ClusterConfig) -> None:
        self.store = store
        self.cfg = cfg
        self._alloc: ServiceAllocator | None = None

    @property
    def alloc(self) -> ServiceAllocator:
        # Rebuilt from the store after any Service change: cheaper than bookkeeping every
        # event when (as offline) nearly every Service arrives already allocated.
        if self._alloc is None:
            self._alloc = ServiceAllocator.from_store(self.store, self.cfg)
        return self._alloc

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        svc = ev.object
        assert isinstance(svc, Service)
        self._alloc = None
        if ev.type == DELETED:
            return (svc.key,) if svc.key == KUBERNETES_KEY else ()
        return (svc.key,) if needs_allocation(svc) else ()

    def start_keys(self) -> Iterable[str]:
        return (KUBERNETES_KEY,)

    def reconcile(self, key: str) -> bool:
        ns, _, name = key.partition("/")
        try:
            svc = self.store.get("Service", ns, name)
        except NotFound:
            if key != KUBERNETES_KEY:
                return False
            self.store.create(self.alloc.allocate(kubernetes_service()))
            return True
        assert isinstance(svc, Service)
        if not needs_allocation(svc):
            return False
        try:
            out = self.alloc.allocate(svc)
        except AllocationError:
            return False  # a clash written around the API; nothing this loop can fix
        self.store.update(out)
        return True
