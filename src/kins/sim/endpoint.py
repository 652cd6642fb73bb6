"""What ``FROM`` and ``TO`` of a trace name: a pod, a Service, a node, an outside host or an
address, resolved against the cluster file and the store (never real DNS)."""

from __future__ import annotations

from dataclasses import dataclass

from .._errors import KinsError
from ..api.config import ClusterConfig
from ..api.core import Pod, Service
from ..model.ipv4 import is_ip
from ..store.base import Store


@dataclass(frozen=True, slots=True)
class ServicePortRef:
    name: str | None
    port: int
    proto: str  # lower case
    node_port: int | None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """``kind``: pod, service, node, host or ip. ``port`` is set when the text named one
    (``IP:port``, ``node:NodePort``)."""

    kind: str
    name: str  # pod/service ns/name, node or host name, or the address
    ip: str
    port: int | None = None
    node: str | None = None  # pods: the node they run on
    ports: tuple[ServicePortRef, ...] = ()  # services
    note: str | None = None  # how an ambiguous name was understood

    def describe(self, port_: int | None = None) -> str:
        """In words; ``port_`` (when given) in place of the port the text named."""
        p = port_ if port_ is not None else self.port
        port = f":{p}" if p is not None else ""
        if self.kind == "ip":
            return f"{self.ip}{port}"
        where = f" on {self.node}" if self.node and self.kind == "pod" else ""
        return f"{self.kind} {self.name} ({self.ip}{port}){where}"


def _pods(store: Store) -> list[Pod]:
    objs, _ = store.list("Pod")
    return sorted((o for o in objs if isinstance(o, Pod) and o.status and o.status.podIP), key=lambda p: p.key)


def _services(store: Store) -> list[Service]:
    objs, _ = store.list("Service")
    return sorted((o for o in objs if isinstance(o, Service)), key=lambda s: s.key)


def _pod_ep(p: Pod, port: int | None, note: str | None = None) -> Endpoint:
    return Endpoint("pod", p.key, str(p.status.podIP if p.status else ""), port, p.spec.nodeName, note=note)


def _svc_ep(s: Service, port: int | None) -> Endpoint:
    if not s.spec.clusterIP or s.headless:
        raise KinsError(f"service {s.key} has no cluster IP (headless or ExternalName): trace to one of its pods")
    refs = tuple(ServicePortRef(p.name, p.port, (p.protocol or "TCP").lower(), p.nodePort) for p in s.spec.ports or [])
    return Endpoint("service", s.key, s.spec.clusterIP, port, ports=refs)


def _split_port(text: str) -> tuple[str, int | None]:
    head, sep, tail = text.rpartition(":")
    if sep and tail.isdigit() and head:
        port = int(tail)
        if not 0 < port < 65536:
            raise KinsError(f"{text!r}: port {port} is out of range")
        return head, port
    return text, None


def resolve_endpoint(text: str, cfg: ClusterConfig, store: Store, *, role: str = "to") -> Endpoint:
    """Resolve ``text``: ``ns/name`` or ``name`` of a pod or Service, a Service's DNS name
    (``svc.ns.svc.cluster.local``, ``svc.ns.svc``, ``svc.ns``), a node (name or IP,
    ``IP:NodePort``), an outside host of the cluster file (name or IP) or a plain address.
    ``role="from"`` prefers pods over Services with the same name (a Service sends nothing); a
    Deployment-like name picks its first pod. Raises KinsError when nothing matches."""
    text = text.strip()
    if not text:
        raise KinsError("empty endpoint: name a pod, service, node, host or IP address")
    head, port = _split_port(text)
    pods = _pods(store)
    services = _services(store)
    if is_ip(head):
        for p in pods:
            if p.status and p.status.podIP == head and not p.spec.hostNetwork:
                return _pod_ep(p, port)
        for n in cfg.nodes:
            if n.ip == head:
                return Endpoint("node", n.name, head, port, n.name)
        for h in cfg.hosts:
            if h.ip == head:
                return Endpoint("host", h.name, head, port)
        for s in services:
            if s.spec.clusterIP == head or head in (s.spec.externalIPs or []) or head in s.lb_ips:
                ep = _svc_ep(s, port)
                return Endpoint(ep.kind, ep.name, head, port, ports=ep.ports)
        return Endpoint("ip", head, head, port)
    if any(c.isspace() for c in head):
        raise KinsError(f"{text!r} is not a name or an address")

    ns, slash, name = head.rpartition("/")
    if slash:
        for p in pods:
            if p.namespace == ns and p.name == name:
                return _pod_ep(p, port)
        for s in services:
            if s.namespace == ns and s.name == name:
                if role == "from":
                    raise KinsError(f"{head}: a Service sends no packets; trace from one of its pods")
                return _svc_ep(s, port)
        prefixed = [p for p in pods if p.namespace == ns and p.name.startswith(name + "-")]
        if prefixed:
            return _pod_ep(prefixed[0], port, f"{head} has {len(prefixed)} pod(s); using {prefixed[0].key}")
        raise KinsError(f"no pod or service {head!r}")

    domain = cfg.services.domain
    labels = head.rstrip(".").split(".")
    if len(labels) >= 2 and (len(labels) == 2 or labels[2] == "svc"):
        rest = ".".join(labels[3:]) if len(labels) > 3 else ""
        if rest in ("", domain):
            for s in services:
                if s.name == labels[0] and s.namespace == labels[1]:
                    if role == "from":
                        raise KinsError(f"{head}: a Service sends no packets; trace from one of its pods")
                    return _svc_ep(s, port)
            if len(labels) > 2:
                raise KinsError(f"{head}: no such service (NXDOMAIN from cluster DNS)")

    exact = [p for p in pods if p.name == head]
    exact.sort(key=lambda p: p.namespace != "default")
    if exact:
        return _pod_ep(exact[0], port)
    svcs = [s for s in services if s.name == head]
    svcs.sort(key=lambda s: s.namespace != "default")
    prefixed = [p for p in pods if p.name.startswith(head + "-")]
    prefixed.sort(key=lambda p: (p.namespace != "default", p.key))
    if role == "from" and prefixed:
        return _pod_ep(prefixed[0], port, f"{head!r} has {len(prefixed)} pod(s); using {prefixed[0].key}")
    if svcs and role != "from":
        return _svc_ep(svcs[0], port)
    for n in cfg.nodes:
        if n.name == head and n.ip:
            return Endpoint("node", n.name, n.ip, port, n.name)
    for h in cfg.hosts:
        if h.name == head:
            return Endpoint("host", h.name, h.ip, port)
    if prefixed:
        return _pod_ep(prefixed[0], port, f"{head!r} has {len(prefixed)} pod(s); using {prefixed[0].key}")
    if svcs:
        raise KinsError(f"{head}: a Service sends no packets; trace from one of its pods")
    raise KinsError(f"unknown endpoint {head!r}: no pod, service, node or host has that name")
