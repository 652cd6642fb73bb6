"""Services of type LoadBalancer on the underlay, the way MetalLB does it in layer-2 mode.

The addresses are handed out by the LoadBalancer IPAM controller (``control/lbipam.py``), which
writes ``status.loadBalancer.ingress``. This module is the *speaker*: it picks, for every
assigned address, one node to answer ARP for it: the first of the candidate nodes ordered by a
hash of ``node + address`` (MetalLB's stateless election), the candidates being the ready nodes,
or with ``externalTrafficPolicy: Local`` only those with a ready local endpoint (others would
drop the traffic). When the winner changes (a node went away, endpoints moved) the address moves
and the new node sends gratuitous ARP so that the hosts on the underlay update their neighbour
entry at once.

How a node "answers ARP": the address is added as a ``/32`` to the node's underlay ``eth0``.
The kernel then replies to ``who-has`` for it (arp_ignore=0) and accepts the packets as local,
so they traverse PREROUTING where kube-proxy's ``KUBE-SERVICES`` matches ``-d <lb ip>`` and
DNATs them, with or without masquerade as the traffic policy says. A neighbour-proxy entry
would not do: the kernel only proxies ARP for destinations routed out of *another* device, and
the pool lies on eth0's own subnet. The network agent's overlay sync may drop the ``/32`` (eth0's
addresses are its own), so the speaker reconciles on a short period as well as on changes.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterable

from msgspec.structs import replace

from ..api.config import ClusterConfig
from ..api.core import Node, Service
from ..api.discovery import EndpointSlice
from ..control.lbipam import parse_pool, wants_address
from ..kernel import netns as kns
from ..store.base import Store

log = logging.getLogger("kins.lb")

ANNOUNCER_ANNOTATION = "kins.io/lb-announcer"
UPLINK = "eth0"
RESYNC = 1.0  # seconds between speaker reconciles when nothing changes


# --- announcing -------------------------------------------------------------------------------


def _rank(node: str, ip: str) -> str:
    return hashlib.sha256(f"{node}#{ip}".encode()).hexdigest()


def local_endpoint_nodes(svc: Service, slices: list[EndpointSlice]) -> set[str]:
    """Nodes with a ready endpoint of the Service (what eTP=Local can send traffic to)."""
    nodes: set[str] = set()
    for sl in slices:
        if sl.namespace != svc.namespace or (sl.metadata.labels or {}).get("kubernetes.io/service-name") != svc.name:
            continue
        for ep in sl.endpoints or []:
            cond = ep.conditions
            if ep.nodeName and (cond is None or cond.ready is not False):
                nodes.add(ep.nodeName)
    return nodes


def announcer(ip: str, candidates: Iterable[str]) -> str | None:
    """The node that answers ARP for ``ip``: first by hash of node and address, so every
    speaker reaches the same answer without talking to the others, and an address only moves
    when its node stops being a candidate."""
    ranked = sorted(candidates, key=lambda n: (_rank(n, ip), n))
    return ranked[0] if ranked else None


def announcements(services: list[Service], nodes: list[Node], slices: list[EndpointSlice]) -> dict[str, str]:
    """``lb ip -> node`` for every assigned address."""
    ready = {n.name for n in nodes if n.internal_ip and not _not_ready(n)}
    out: dict[str, str] = {}
    for s in services:
        if not wants_address(s) or not s.lb_ips:
            continue
        cands = ready
        if s.spec.externalTrafficPolicy == "Local":
            cands = ready & local_endpoint_nodes(s, slices)
        for ip in s.lb_ips:
            node = announcer(ip, cands)
            if node is not None:
                out[ip] = node
    return out


def _not_ready(n: Node) -> bool:
    for c in (n.status.conditions if n.status else None) or []:
        if c.type == "Ready":
            return c.status == "False"
    return False


def gratuitous_arp(ip: str, dev: str = UPLINK) -> None:
    """Broadcast gratuitous ARP for ``ip`` from ``dev``'s MAC, run inside the node's namespace:
    a request (``arping -U``) and a reply (``arping -A``), both with sender = target = ``ip``,
    which the kernel treats as gratuitous and lets override a neighbour entry at once. The MAC
    comes from the packet socket itself: /sys would show the daemon's own namespace."""
    addr = socket.inet_aton(ip)
    bcast = b"\xff" * 6
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((dev, 0x0806))
        mac = s.getsockname()[4][:6]
        for op, tha in ((1, b"\x00" * 6), (2, mac)):
            arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac + addr + tha + addr
            s.send(bcast + mac + struct.pack("!H", 0x0806) + arp)


def _ip(netns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "-n", netns, *args], capture_output=True, text=True, timeout=10)


def node_lb_addrs(netns: str, pool: set[str]) -> set[str]:
    """The pool's ``/32`` addresses present on a node's eth0."""
    r = _ip(netns, "-4", "-o", "addr", "show", "dev", UPLINK)
    have: set[str] = set()
    for line in r.stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            cidr = parts[parts.index("inet") + 1]
            ip, _, plen = cidr.partition("/")
            if plen == "32" and ip in pool:
                have.add(ip)
    return have


# --- the daemon parts ---------------------------------------------------------------------------


class LoadBalancer:
    """The speaker over the live store; ``run`` is the daemon thread."""

    def __init__(self, cfg: ClusterConfig, store: Store, kernel_lock: threading.Lock) -> None:
        self.cfg = cfg
        self.store = store
        self.lock = kernel_lock
        self.pool = parse_pool(cfg.loadBalancer.addresses if cfg.loadBalancer else [])
        self.pool_set = {str(ip) for ip in self.pool}
        self.announced: dict[str, str] = {}  # lb ip -> node, as applied

    def announce_once(self) -> None:
        services = [s for s in self.store.list("Service")[0] if isinstance(s, Service)]
        nodes = [n for n in self.store.list("Node")[0] if isinstance(n, Node)]
        slices = [s for s in self.store.list("EndpointSlice")[0] if isinstance(s, EndpointSlice)]
        want = announcements(services, nodes, slices)
        by_node: dict[str, set[str]] = {n.name: set() for n in nodes}
        for ip, node in want.items():
            by_node.setdefault(node, set()).add(ip)
        with self.lock:
            for node, ips in sorted(by_node.items()):
                netns = kns.node_ns(self.cfg.name, node)
                if not kns.exists(netns):
                    continue
                have = node_lb_addrs(netns, self.pool_set)
                for ip in sorted(have - ips):
                    _ip(netns, "addr", "del", f"{ip}/32", "dev", UPLINK)
                for ip in sorted(ips - have):
                    r = _ip(netns, "addr", "add", f"{ip}/32", "dev", UPLINK)
                    if r.returncode != 0 and "exists" not in r.stderr:
                        log.warning("addr add %s on %s failed: %s", ip, node, r.stderr.strip())
                        continue
                    for _ in range(2):  # MetalLB repeats its gratuitous ARP; one may be lost
                        try:
                            kns.run_in(netns, lambda ip=ip: gratuitous_arp(ip))  # type: ignore[misc]
                        except OSError as e:
                            log.warning("gratuitous ARP for %s from %s failed: %s", ip, node, e)
                    if self.announced.get(ip) != node:
                        log.info("Normal nodeAssigned %s: announcing from node %r with protocol layer2", ip, node)
        self.announced = dict(want)
        self._annotate(services, want)

    def _annotate(self, services: list[Service], want: dict[str, str]) -> None:
        """Record the announcing node on the Service (what MetalLB's nodeAssigned event says)."""
        for s in services:
            if not wants_address(s):
                continue
            node = ",".join(sorted({want[ip] for ip in s.lb_ips if ip in want})) or None
            anns = dict(s.metadata.annotations or {})
            if anns.get(ANNOUNCER_ANNOTATION) == node:
                continue
            if node is None:
                anns.pop(ANNOUNCER_ANNOTATION, None)
            else:
                anns[ANNOUNCER_ANNOTATION] = node
            try:
                self.store.update(replace(s, metadata=replace(s.metadata, annotations=anns or None)))
            except Exception as e:
                log.info("announcer of service/%s not recorded (%s)", s.key, e)

    def run(self, stop: threading.Event) -> None:
        with self.store.watch({"Service", "Node", "EndpointSlice"}, self.store.resource_version) as w:
            self._safe(self.announce_once)
            last = time.monotonic()
            while not stop.is_set():
                ev = w.next(timeout=0.2)
                if ev is not None:
                    time.sleep(0.005)
                    w.drain()
                elif time.monotonic() - last < RESYNC:
                    continue
                self._safe(self.announce_once)
                last = time.monotonic()

    @staticmethod
    def _safe(fn: object) -> None:
        try:
            fn()  # type: ignore[operator]
        except Exception:
            log.exception("load balancer sync failed")
