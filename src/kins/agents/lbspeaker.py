"""Services of type LoadBalancer on the underlay, the way MetalLB does it in layer-2 mode.

Two halves, both in the daemon:

- the *allocator* hands out addresses from the cluster file's ``loadBalancer.addresses`` pool
  (ranges ``a-b`` and CIDRs) and writes ``status.loadBalancer.ingress``. A Service may ask for a
  specific address with the ``metallb.io/loadBalancerIPs`` annotation or ``spec.loadBalancerIP``;
  an address outside the pool or held by another Service is refused: a warning line in the
  daemon log and a ``status.conditions`` entry ``AddressAssigned=False`` saying why, and the
  Service stays pending (no ingress). Assignments are sticky while valid.
- the *speaker* picks, for every assigned address, one node to answer ARP for it: the first of
  the candidate nodes ordered by a hash of ``node + address`` (MetalLB's stateless election), the
  candidates being the ready nodes, or with ``externalTrafficPolicy: Local`` only those with a
  ready local endpoint (others would drop the traffic). When the winner changes (a node went
  away, endpoints moved) the address moves and the new node sends gratuitous ARP so that the
  hosts on the underlay update their neighbour entry at once.

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
import ipaddress
import logging
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from msgspec.structs import replace

from ..api.config import ClusterConfig
from ..api.core import LoadBalancerIngress, LoadBalancerStatus, Node, Service, ServiceStatus
from ..api.discovery import EndpointSlice
from ..api.meta import Condition
from ..kernel import netns as kns
from ..store.base import Store, WatchEvent
from .loop import Reconciler

log = logging.getLogger("kins.lb")

IPS_ANNOTATION = "metallb.io/loadBalancerIPs"
ANNOUNCER_ANNOTATION = "kins.io/lb-announcer"
CONDITION = "AddressAssigned"
UPLINK = "eth0"


# --- the pool ---------------------------------------------------------------------------------


def parse_pool(addresses: Iterable[str]) -> list[ipaddress.IPv4Address]:
    """Addresses of a pool in order: ``a-b`` ranges inclusive; a CIDR without its network and
    broadcast address unless it is a /31 or /32."""
    out: list[ipaddress.IPv4Address] = []
    seen: set[ipaddress.IPv4Address] = set()
    for item in addresses:
        if "-" in item:
            lo_s, _, hi_s = item.partition("-")
            lo, hi = ipaddress.IPv4Address(lo_s.strip()), ipaddress.IPv4Address(hi_s.strip())
            ips: Iterable[ipaddress.IPv4Address] = (ipaddress.IPv4Address(i) for i in range(int(lo), int(hi) + 1))
        else:
            net = ipaddress.IPv4Network(item.strip(), strict=False)
            ips = net.hosts() if net.prefixlen < 31 else iter(net)
        for ip in ips:
            if ip not in seen:
                seen.add(ip)
                out.append(ip)
    return out


def requested_ips(svc: Service) -> list[str]:
    """What the Service asks for: the MetalLB annotation wins over the deprecated field."""
    ann = (svc.metadata.annotations or {}).get(IPS_ANNOTATION)
    if ann:
        return [a.strip() for a in ann.split(",") if a.strip()]
    if svc.spec.loadBalancerIP:
        return [svc.spec.loadBalancerIP]
    return []


def wants_address(svc: Service) -> bool:
    """LoadBalancer Services of the default implementation (no other ``loadBalancerClass``)."""
    return svc.spec.type == "LoadBalancer" and not svc.spec.loadBalancerClass


@dataclass(frozen=True)
class Allocation:
    ip: str | None
    error: str | None = None  # why nothing was assigned


def allocate(
    services: list[Service],
    pool: list[ipaddress.IPv4Address],
    reserved: set[str],
    previous: dict[str, str] | None = None,
) -> dict[str, Allocation]:
    """Addresses for every LoadBalancer Service (keyed ``namespace/name``).

    Requests are served first (oldest Service first, so a newcomer cannot steal an address),
    then Services keep what they had (``previous``, else their current status), then the rest
    get the lowest free address. ``reserved`` are underlay addresses of nodes and hosts."""
    prev = dict(previous or {})
    in_pool = {str(ip) for ip in pool}
    taken: dict[str, str] = {}
    out: dict[str, Allocation] = {}
    lbs = sorted(
        (s for s in services if wants_address(s)),
        key=lambda s: (s.metadata.creationTimestamp or "", s.namespace or "", s.name),
    )
    for s in lbs:
        want = requested_ips(s)
        if not want:
            continue
        if len(want) > 1:
            out[s.key] = Allocation(None, f"only one IPv4 address can be requested, got {', '.join(want)}")
            continue
        ip = want[0]
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            out[s.key] = Allocation(None, f"{ip!r} is not an IPv4 address")
            continue
        if ip not in in_pool:
            out[s.key] = Allocation(None, f"{ip} is not allowed in config: it is outside the address pool")
        elif ip in reserved:
            out[s.key] = Allocation(None, f"{ip} is already in use by a node or host of the underlay")
        elif ip in taken:
            out[s.key] = Allocation(None, f"{ip} is already in use by service {taken[ip]}")
        else:
            taken[ip] = s.key
            out[s.key] = Allocation(ip)
    rest = [s for s in lbs if s.key not in out]
    for s in rest:
        had = prev.get(s.key) or next(iter(s.lb_ips), None)
        if had and had in in_pool and had not in taken and had not in reserved:
            taken[had] = s.key
            out[s.key] = Allocation(had)
    free = (str(ip) for ip in pool if str(ip) not in reserved)
    for s in rest:
        if s.key in out:
            continue
        for ip in free:
            if ip not in taken:
                taken[ip] = s.key
                out[s.key] = Allocation(ip)
                break
        else:
            out[s.key] = Allocation(None, "no available IPs: the address pool is exhausted")
    return out


def _status_for(svc: Service, a: Allocation | None) -> ServiceStatus | None:
    """The Service's status with the allocation written in (conditions beyond ours are kept)."""
    st = svc.status or ServiceStatus()
    others = [c for c in st.conditions or [] if c.type != CONDITION]
    if a is None:  # not ours (any more): no ingress, no condition
        return replace(st, loadBalancer=None, conditions=others or None)
    if a.ip:
        cond = Condition(type=CONDITION, status="True", reason="IPAllocated", message=f"Assigned IP {a.ip}")
        lb = LoadBalancerStatus(ingress=[LoadBalancerIngress(ip=a.ip, ipMode="VIP")])
    else:
        cond = Condition(type=CONDITION, status="False", reason="AllocationFailed", message=a.error)
        lb = None
    old = next((c for c in st.conditions or [] if c.type == CONDITION), None)
    if old is not None and (old.status, old.reason, old.message) == (cond.status, cond.reason, cond.message):
        cond = old
    else:
        cond = replace(cond, lastTransitionTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return replace(st, loadBalancer=lb, conditions=[*others, cond])


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
    """The allocator and the layer-2 speaker of the nodes in ``only`` (every node when None)."""

    name = "lb-speaker"
    kinds = frozenset({"Service", "Node", "EndpointSlice"})
    resync = 10.0

    def __init__(self, cfg: ClusterConfig, store: Store, only: frozenset[str] | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.only = only
        self.pool = parse_pool(cfg.loadBalancer.addresses if cfg.loadBalancer else [])
        self.assigned: dict[str, str] = {}
        self.refused: dict[str, str] = {}
        self.announced: dict[str, str] = {}  # lb ip -> node, as announced

    def _reserved(self, nodes: list[Node]) -> set[str]:
        return (
            {h.ip for h in self.cfg.hosts}
            | {n.internal_ip for n in nodes if n.internal_ip}
            | {n.ip for n in self.cfg.nodes if n.ip}
        )

    def sync(self, changes: Sequence[WatchEvent] = ()) -> None:
        if not changes or any(e.object.kind in ("Service", "Node") for e in changes):
            self.allocate_once()
        self.announce_once()

    def allocate_once(self) -> None:
        services = [s for s in self.store.list("Service")[0] if isinstance(s, Service)]
        nodes = [n for n in self.store.list("Node")[0] if isinstance(n, Node)]
        allocs = allocate(services, self.pool, self._reserved(nodes), self.assigned)
        self.assigned = {k: a.ip for k, a in allocs.items() if a.ip}
        for s in services:
            a = allocs.get(s.key)
            if a is None and not (s.status and (s.status.loadBalancer or _has_condition(s))):
                continue
            if a is not None and a.error and self.refused.get(s.key) != a.error:
                log.warning("Warning AllocationFailed service/%s: Failed to allocate IP: %s", s.key, a.error)
            if a is not None and a.ip and s.lb_ips != [a.ip]:
                log.info("Normal IPAllocated service/%s: Assigned IP [%s]", s.key, a.ip)
            st = _status_for(s, a)
            if st != s.status:
                try:
                    self.store.update_status(replace(s, status=st))  # type: ignore[attr-defined]
                except Exception as e:  # a concurrent write: the watch brings the Service back
                    log.info("status of service/%s not written (%s); retrying on the next change", s.key, e)
        self.refused = {k: a.error for k, a in allocs.items() if a.error}

    def announce_once(self) -> None:
        services = [s for s in self.store.list("Service")[0] if isinstance(s, Service)]
        nodes = [n for n in self.store.list("Node")[0] if isinstance(n, Node)]
        slices = [s for s in self.store.list("EndpointSlice")[0] if isinstance(s, EndpointSlice)]
        want = announcements(services, nodes, slices)
        for ip, node in sorted(want.items()):
            if self.announced.get(ip) == node or not (self.only is None or node in self.only):
                continue
            netns = kns.node_ns(self.cfg.name, node)
            if not kns.exists(netns):
                continue
            for _ in range(2):  # MetalLB repeats its gratuitous ARP; one may be lost
                try:
                    kns.run_in(netns, lambda ip=ip: gratuitous_arp(ip))  # type: ignore[misc]
                except OSError as e:
                    log.warning("gratuitous ARP for %s from %s failed: %s", ip, node, e)
            log.info("Normal nodeAssigned %s: announcing from node %r with protocol layer2", ip, node)
        self.announced = dict(want)
        self._annotate(services, want)

    def _annotate(self, services: list[Service], want: dict[str, str]) -> None:
        """Record the announcing node on the Service (what MetalLB's nodeAssigned event says)."""
        for s in services:
            if not wants_address(s):
                continue
            nodes = {want[ip] for ip in s.lb_ips if ip in want}
            if self.only is not None and not nodes & self.only:
                continue  # another node's speaker records it
            node = ",".join(sorted(nodes)) or None
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


def _has_condition(s: Service) -> bool:
    return any(c.type == CONDITION for c in (s.status.conditions if s.status else None) or [])
