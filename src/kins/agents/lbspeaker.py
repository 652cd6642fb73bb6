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
the pool lies on eth0's own subnet. The ``/32`` is part of the node's plan, applied by the
overlay agent (the one writer of eth0's addresses); the speaker, which runs after it on the same
loop, sends the gratuitous ARP and records the announcing node on the Service.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import struct
from collections.abc import Iterable, Sequence

from msgspec.structs import replace

from ..api.config import ClusterConfig
from ..api.core import Node, Service
from ..api.discovery import EndpointSlice
from ..control.lbipam import wants_address
from ..kernel import netns as kns
from ..store.base import Store, WatchEvent
from .loop import Reconciler

log = logging.getLogger("kins.lb")

ANNOUNCER_ANNOTATION = "kins.io/lb-announcer"
UPLINK = "eth0"


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


class LBSpeaker(Reconciler):
    """The layer-2 speaker of the nodes in ``only`` (every node when None): gratuitous ARP for
    the addresses a node takes, and the announcing node recorded on the Service."""

    name = "lb-speaker"
    kinds = frozenset({"Service", "Node", "EndpointSlice"})
    resync = 10.0
    after = ("overlay",)

    def __init__(self, cfg: ClusterConfig, store: Store, only: frozenset[str] | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.only = only
        self.announced: dict[str, str] = {}  # lb ip -> node, as announced

    def announce(self, node: str, ips: Sequence[str]) -> None:
        """Gratuitous ARP from ``node`` for addresses its eth0 just took (the overlay agent,
        which puts them there, calls this right after)."""
        netns = kns.node_ns(self.cfg.name, node)
        for ip in ips:
            for _ in range(2):  # MetalLB repeats its gratuitous ARP; one may be lost
                try:
                    kns.run_in(netns, lambda ip=ip: gratuitous_arp(ip))  # type: ignore[misc]
                except OSError as e:
                    log.warning("gratuitous ARP for %s from %s failed: %s", ip, node, e)
            log.info("Normal nodeAssigned %s: announcing from node %r with protocol layer2", ip, node)

    def sync(self, changes: Sequence[WatchEvent] = ()) -> None:
        services = [s for s in self.store.list("Service")[0] if isinstance(s, Service)]
        nodes = [n for n in self.store.list("Node")[0] if isinstance(n, Node)]
        slices = [s for s in self.store.list("EndpointSlice")[0] if isinstance(s, EndpointSlice)]
        want = announcements(services, nodes, slices)
        self.announced = dict(want)
        self._annotate(services, want)

    def _annotate(self, services: list[Service], want: dict[str, str]) -> None:
        """Record the announcing node on the Service (what MetalLB's nodeAssigned event says)."""
        for s in services:
            if not wants_address(s):
                continue
            nodes = {want[ip] for ip in s.lb_ips if ip in want}
            anns = dict(s.metadata.annotations or {})
            before = set((anns.get(ANNOUNCER_ANNOTATION) or "").split(",")) - {""}
            if self.only is not None and not (nodes or before) & self.only:
                continue  # another node's speaker records it (or clears what it recorded)
            node = ",".join(sorted(nodes)) or None
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
