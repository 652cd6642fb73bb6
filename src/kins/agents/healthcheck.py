"""kube-proxy's service health checks: ``healthCheckNodePort`` answered on every node.

A Service of type LoadBalancer with ``externalTrafficPolicy: Local`` has a health check port.
On every node, in the node's network namespace, an HTTP server on that port tells a load
balancer whether this node can take the Service's traffic: ``200`` when the node has ready
local endpoints, ``503`` when it has none (kube-proxy would drop the traffic there), with the
JSON body kube-proxy writes. One asyncio loop serves all nodes; a node's listening sockets are
created inside its namespace (see ``hosts.listen_in``) and follow the Services as they change.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..api.core import Node, Service
from ..api.discovery import EndpointSlice
from ..kernel import netns as kns
from ..store.base import Store, WatchEvent
from .hosts import LoopThread, listen_in
from .loop import NotYet, Reconciler

log = logging.getLogger("kins.healthcheck")


def health_services(services: list[Service]) -> dict[int, Service]:
    """``healthCheckNodePort -> Service`` for the Services kube-proxy checks."""
    out: dict[int, Service] = {}
    for s in services:
        if s.spec.healthCheckNodePort and s.spec.externalTrafficPolicy == "Local" and s.spec.type == "LoadBalancer":
            out[s.spec.healthCheckNodePort] = s
    return out


def local_endpoints(svc: Service, slices: list[EndpointSlice], node: str) -> int:
    """Ready endpoints of ``svc`` on ``node`` (distinct addresses), as kube-proxy counts them."""
    ips: set[str] = set()
    for sl in slices:
        if sl.namespace != svc.namespace or (sl.metadata.labels or {}).get("kubernetes.io/service-name") != svc.name:
            continue
        for ep in sl.endpoints or []:
            ready = ep.conditions is None or ep.conditions.ready is not False
            if ep.nodeName == node and ready:
                ips.update(ep.addresses)
    return len(ips)


def health_response(namespace: str, name: str, count: int) -> tuple[int, bytes]:
    body = {"service": {"namespace": namespace, "name": name}, "localEndpoints": count, "serviceProxyHealthy": True}
    return (200 if count > 0 else 503), json.dumps(body).encode()


@dataclass
class _Port:
    server: asyncio.Server
    namespace: str
    name: str
    count: int = 0


@dataclass
class _NodeServers:
    ports: dict[int, _Port] = field(default_factory=dict)


class HealthChecks(Reconciler):
    """The health check servers of the nodes in ``only`` (every node when None)."""

    name = "healthcheck"
    kinds = frozenset({"Service", "EndpointSlice", "Node"})
    resync = 30.0
    after = ("overlay",)

    def __init__(self, cluster: str, store: Store, only: frozenset[str] | None = None) -> None:
        self.cluster = cluster
        self.store = store
        self.only = only
        self.loop = LoopThread("kins-healthcheck")
        self.nodes: dict[str, _NodeServers] = {}

    def _handler(self, node: str, port: int):  # type: ignore[no-untyped-def]
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                p = self.nodes.get(node, _NodeServers()).ports.get(port)
                if p is None:
                    return
                code, body = health_response(p.namespace, p.name, p.count)
                reason = "OK" if code == 200 else "Service Unavailable"
                head = (
                    f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
                    f"X-Content-Type-Options: nosniff\r\nX-Load-Balancing-Endpoint-Weight: {p.count}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                )
                writer.write(head.encode() + body)
                await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        return handle

    def sync(self, changes: Sequence[WatchEvent] = ()) -> None:
        services = [s for s in self.store.list("Service")[0] if isinstance(s, Service)]
        slices = [s for s in self.store.list("EndpointSlice")[0] if isinstance(s, EndpointSlice)]
        nodes = [
            n.name
            for n in self.store.list("Node")[0]
            if isinstance(n, Node) and (self.only is None or n.name in self.only)
        ]
        wanted = health_services(services)
        missing: set[str] = set()
        for gone in set(self.nodes) - set(nodes):
            for p in self.nodes.pop(gone).ports.values():
                self.loop.close_server(p.server)
        for node in nodes:
            ns = self.nodes.setdefault(node, _NodeServers())
            for port in set(ns.ports) - set(wanted):
                self.loop.close_server(ns.ports.pop(port).server)
            netns = kns.node_ns(self.cluster, node)
            for port, svc in wanted.items():
                have = ns.ports.get(port)
                if have is None:
                    if not kns.exists(netns):
                        missing.add(node)
                        continue
                    try:
                        sock = listen_in(netns, port)
                    except OSError as e:
                        log.warning("node %s: health check port %d for %s: %s", node, port, svc.key, e)
                        continue
                    have = ns.ports[port] = _Port(self.loop.start_server(sock, self._handler(node, port)), "", "")
                p = have
                p.namespace, p.name = svc.namespace or "default", svc.name
                p.count = local_endpoints(svc, slices, node)
        if missing:
            raise NotYet(f"no namespace yet for node {', '.join(sorted(missing))}")

    def close(self) -> None:
        for ns in self.nodes.values():
            for p in ns.ports.values():
                self.loop.close_server(p.server)
        self.nodes.clear()
        self.loop.stop()
