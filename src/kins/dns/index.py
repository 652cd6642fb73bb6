"""What cluster DNS knows about the cluster: slim records built from watch events.

Like CoreDNS's controller, the index keeps only what answering needs (``DnsService``,
``DnsEndpoint``) and offers read-only lookups behind a protocol (``DnsIndex``), so the answering
code never sees API objects. ``MemoryDnsIndex`` is fed ADDED/MODIFIED/DELETED events of
Services, EndpointSlices, Pods and Namespaces; ``snapshot()`` hands out an immutable view that is
rebuilt at most once per batch of changes.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ..api.core import Namespace, Pod, Service
from ..api.discovery import EndpointSlice
from ..api.meta import Object
from ..store.base import DELETED, WatchEvent

# The legacy spelling of publishNotReadyAddresses (spec §1: "tolerate-unready-endpoints").
TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"
WATCHED_KINDS = frozenset({"Service", "EndpointSlice", "Pod", "Namespace"})

Labels = tuple[str, ...]  # a name relative to the cluster zone, lowercase, leftmost label first


@dataclass(frozen=True, slots=True)
class DnsPort:
    name: str  # "" when unnamed (no SRV record)
    protocol: str  # lowercase: tcp, udp, sctp
    port: int


@dataclass(frozen=True, slots=True)
class DnsService:
    name: str
    namespace: str
    type: str  # ClusterIP | NodePort | LoadBalancer | ExternalName
    cluster_ips: tuple[str, ...]  # empty for headless and ExternalName services
    headless: bool
    external_name: str  # "" unless type is ExternalName
    ports: tuple[DnsPort, ...]
    publish_not_ready: bool


@dataclass(frozen=True, slots=True)
class DnsEndpoint:
    addresses: tuple[str, ...]
    hostname: str  # "" when the slice sets none
    ready: bool
    ports: tuple[DnsPort, ...]  # the ports of the slice it came from


def dashed(ip: str) -> str:
    """CoreDNS's endpoint name for an IP: dots (or colons) become dashes, ``5678:abcd::1`` ->
    ``5678-abcd--1``; a trailing dash gets a 0 so the label stays valid."""
    out = ip.replace(".", "-").replace(":", "-")
    return out + "0" if out.endswith("-") else out


def endpoint_name(ep: DnsEndpoint, ip: str) -> str:
    """The spec's endpoint "hostname": the slice's hostname, else a unique system-assigned one
    (the dashed IP, as CoreDNS does)."""
    return ep.hostname or dashed(ip)


def published(svc: DnsService, eps: Iterable[DnsEndpoint]) -> list[DnsEndpoint]:
    """The endpoints DNS publishes: the ready ones, or all with publishNotReadyAddresses."""
    return [e for e in eps if e.ready or svc.publish_not_ready]


def is_v6(ip: str) -> bool:
    return ":" in ip


class DnsIndex(Protocol):
    """Read-only lookups the answering code needs (names and namespaces lowercase)."""

    @property
    def synced(self) -> bool: ...

    @property
    def serial(self) -> int: ...

    @property
    def generation(self) -> int: ...

    def service(self, namespace: str, name: str) -> DnsService | None: ...

    def endpoints(self, namespace: str, name: str) -> tuple[DnsEndpoint, ...]: ...

    def namespace_exists(self, namespace: str) -> bool: ...

    def reverse(self, ip: str) -> tuple[Labels, ...]: ...

    def has_pod(self, namespace: str, ip: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class DnsView:
    """An immutable picture of the index at one generation (implements ``DnsIndex``)."""

    services: dict[tuple[str, str], DnsService]
    eps: dict[tuple[str, str], tuple[DnsEndpoint, ...]]
    namespaces: frozenset[str]
    ptr: dict[str, tuple[Labels, ...]]
    pods: frozenset[tuple[str, str]]
    serial: int
    generation: int
    synced: bool

    def service(self, namespace: str, name: str) -> DnsService | None:
        return self.services.get((namespace, name))

    def endpoints(self, namespace: str, name: str) -> tuple[DnsEndpoint, ...]:
        return self.eps.get((namespace, name), ())

    def namespace_exists(self, namespace: str) -> bool:
        return namespace in self.namespaces

    def reverse(self, ip: str) -> tuple[Labels, ...]:
        return self.ptr.get(ip, ())

    def has_pod(self, namespace: str, ip: str) -> bool:
        return (namespace, ip) in self.pods


def _canon_ip(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip


def slim_service(svc: Service) -> DnsService:
    spec = svc.spec
    headless = spec.clusterIP == "None"
    ips: tuple[str, ...] = ()
    if not headless and spec.type != "ExternalName":
        raw = spec.clusterIPs or ([spec.clusterIP] if spec.clusterIP else [])
        ips = tuple(_canon_ip(i) for i in raw if i and i != "None")
    annotations = svc.metadata.annotations or {}
    return DnsService(
        name=svc.name.lower(),
        namespace=svc.namespace.lower(),
        type=spec.type,
        cluster_ips=ips,
        headless=headless,
        external_name=(spec.externalName or "").rstrip(".").lower() if spec.type == "ExternalName" else "",
        ports=tuple(DnsPort((p.name or "").lower(), p.protocol.lower(), p.port) for p in spec.ports or []),
        publish_not_ready=bool(spec.publishNotReadyAddresses) or annotations.get(TOLERATE_UNREADY) == "true",
    )


def slim_endpoints(sl: EndpointSlice) -> tuple[DnsEndpoint, ...]:
    ports = tuple(
        DnsPort((p.name or "").lower(), (p.protocol or "TCP").lower(), p.port)
        for p in sl.ports or []
        if p.port is not None
    )
    out = []
    for e in sl.endpoints or []:
        cond = e.conditions
        # EndpointSlice semantics: a nil ready condition means ready.
        ready = cond is None or cond.ready is None or cond.ready
        out.append(DnsEndpoint(tuple(_canon_ip(a) for a in e.addresses), (e.hostname or "").lower(), ready, ports))
    return tuple(out)


def _pod_ips(pod: Pod) -> tuple[str, ...]:
    st = pod.status
    if st is None:
        return ()
    ips = [p.ip for p in st.podIPs or []] or ([st.podIP] if st.podIP else [])
    return tuple(_canon_ip(i) for i in ips)


class MemoryDnsIndex:
    """The index fed by events. Thread-safe: watchers may apply from other threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._services: dict[tuple[str, str], DnsService] = {}
        # slice key (ns, slice name) -> (service key, endpoints)
        self._slices: dict[tuple[str, str], tuple[tuple[str, str], tuple[DnsEndpoint, ...]]] = {}
        self._by_service: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._ns_objects: set[str] = set()
        self._pods: dict[tuple[str, str], tuple[str, ...]] = {}  # pod key -> IPs
        self._generation = 0
        self._serial = int(time.time())
        self._view: DnsView | None = None
        self._synced = False

    # --- feeding ---------------------------------------------------------------------------------

    @classmethod
    def from_objects(cls, objs: Iterable[Object]) -> MemoryDnsIndex:
        idx = cls()
        idx.apply_all(WatchEvent("ADDED", o, 0) for o in objs)
        idx.mark_synced()
        return idx

    def apply(self, ev: WatchEvent) -> None:
        self.apply_all((ev,))

    def apply_all(self, events: Iterable[WatchEvent]) -> None:
        with self._lock:
            changed = False
            for ev in events:
                changed |= self._apply(ev)
            if changed:
                self._generation += 1
                self._serial = max(self._serial + 1, int(time.time()))
                self._view = None

    def replace_kind(self, kind: str, objs: Iterable[Object]) -> None:
        """A fresh list of one kind (after a relist): everything of that kind not in ``objs`` goes."""
        with self._lock:
            if kind == "Service":
                self._services.clear()
            elif kind == "EndpointSlice":
                self._slices.clear()
                self._by_service.clear()
            elif kind == "Pod":
                self._pods.clear()
            elif kind == "Namespace":
                self._ns_objects.clear()
            for o in objs:
                self._apply(WatchEvent("ADDED", o, 0))
            self._generation += 1
            self._serial = max(self._serial + 1, int(time.time()))
            self._view = None

    def mark_synced(self) -> None:
        with self._lock:
            if not self._synced:
                self._synced = True
                self._generation += 1
                self._view = None

    def _apply(self, ev: WatchEvent) -> bool:
        obj = ev.object
        gone = ev.type == DELETED
        key = (obj.namespace.lower(), obj.name.lower())
        if isinstance(obj, Service):
            if gone:
                return self._services.pop(key, None) is not None
            new = slim_service(obj)
            if self._services.get(key) == new:
                return False
            self._services[key] = new
            return True
        if isinstance(obj, EndpointSlice):
            old = self._slices.pop(key, None)
            if old is not None:
                self._by_service.get(old[0], set()).discard(key)
            svc_name = obj.service_name
            if gone or not svc_name:
                return old is not None
            skey = (key[0], svc_name.lower())
            self._slices[key] = (skey, slim_endpoints(obj))
            self._by_service.setdefault(skey, set()).add(key)
            return old != self._slices[key]
        if isinstance(obj, Pod):
            if gone:
                return self._pods.pop(key, None) is not None
            ips = _pod_ips(obj)
            if self._pods.get(key) == ips:
                return False
            self._pods[key] = ips
            return True
        if isinstance(obj, Namespace):
            name = obj.name.lower()
            if gone:
                if name in self._ns_objects:
                    self._ns_objects.discard(name)
                    return True
                return False
            if name in self._ns_objects:
                return False
            self._ns_objects.add(name)
            return True
        return False

    # --- reading ---------------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        return self._generation

    def snapshot(self) -> DnsView:
        view = self._view
        if view is not None:
            return view
        with self._lock:
            if self._view is None:
                self._view = self._build()
            return self._view

    def _build(self) -> DnsView:
        eps: dict[tuple[str, str], tuple[DnsEndpoint, ...]] = {}
        for skey, slices in self._by_service.items():
            merged: list[DnsEndpoint] = []
            for sl in sorted(slices):
                merged.extend(self._slices[sl][1])
            if merged:
                eps[skey] = tuple(merged)
        ptr: dict[str, list[Labels]] = {}
        for (ns, name), svc in self._services.items():
            if svc.type == "ExternalName":
                continue
            for ip in svc.cluster_ips:
                ptr.setdefault(ip, []).append((name, ns, "svc"))
            for ep in published(svc, eps.get((ns, name), ())):
                for ip in ep.addresses:
                    ptr.setdefault(ip, []).append((endpoint_name(ep, ip), name, ns, "svc"))
        namespaces = set(self._ns_objects)
        namespaces.update(ns for ns, _ in self._services)
        namespaces.update(ns for ns, _ in self._pods)
        pods = frozenset((ns, ip) for (ns, _), ips in self._pods.items() for ip in ips)
        return DnsView(
            services=dict(self._services),
            eps=eps,
            namespaces=frozenset(namespaces),
            ptr={ip: tuple(dict.fromkeys(names)) for ip, names in ptr.items()},
            pods=pods,
            serial=self._serial,
            generation=self._generation,
            synced=self._synced,
        )

    # DnsIndex, through the current snapshot
    @property
    def synced(self) -> bool:
        return self._synced

    @property
    def serial(self) -> int:
        return self._serial

    def service(self, namespace: str, name: str) -> DnsService | None:
        return self.snapshot().service(namespace, name)

    def endpoints(self, namespace: str, name: str) -> tuple[DnsEndpoint, ...]:
        return self.snapshot().endpoints(namespace, name)

    def namespace_exists(self, namespace: str) -> bool:
        return self.snapshot().namespace_exists(namespace)

    def reverse(self, ip: str) -> tuple[Labels, ...]:
        return self.snapshot().reverse(ip)

    def has_pod(self, namespace: str, ip: str) -> bool:
        return self.snapshot().has_pod(namespace, ip)
