"""Addresses for Services of type LoadBalancer, handed out as MetalLB's controller does.

The pool is the cluster file's ``loadBalancer.addresses`` (ranges ``a-b`` and CIDRs). A Service
may ask for a specific address with the ``metallb.io/loadBalancerIPs`` annotation or
``spec.loadBalancerIP``; an address outside the pool, on a node or host of the underlay, or held
by another Service is refused: a Warning ``AllocationFailed`` Event and a ``status.conditions``
entry ``AddressAssigned=False`` saying why, and the Service stays pending (no ingress).
Assignments are sticky while valid. Announcing the addresses on the underlay is the speaker's
business (the daemon's layer-2 announcer), not this controller's.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.config import ClusterConfig
from ..api.core import LoadBalancerIngress, LoadBalancerStatus, Node, Service, ServiceStatus
from ..api.meta import Condition
from ..store.base import DELETED, Clock, Store, WatchEvent
from .events import NO_EVENTS, NORMAL, WARNING, EventSink

log = logging.getLogger("kins.lb")

IPS_ANNOTATION = "metallb.io/loadBalancerIPs"
CONDITION = "AddressAssigned"
COMPONENT = "metallb-controller"
ALL = "*"


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


def has_condition(svc: Service) -> bool:
    """The Service carries this controller's condition (so its ingress was written here)."""
    return any(c.type == CONDITION for c in (svc.status.conditions if svc.status else None) or [])


def status_for(svc: Service, a: Allocation | None, now: str) -> ServiceStatus | None:
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
        cond = replace(cond, lastTransitionTime=now)
    return replace(st, loadBalancer=lb, conditions=[*others, cond])


# --- the controller ---------------------------------------------------------------------------


class LoadBalancerIPController:
    """Keeps ``status.loadBalancer`` of every LoadBalancer Service in step with the pool.

    One key for the whole cluster: who gets which address depends on every Service (requests
    first, oldest first), so a change of any of them, or of the nodes' addresses (reserved),
    reconciles all of them at once."""

    name = "lb-ipam"
    kinds = frozenset({"Service", "Node"})

    def __init__(self, store: Store, cfg: ClusterConfig, events: EventSink = NO_EVENTS) -> None:
        self.store = store
        self.events = events
        self.pool = parse_pool(cfg.loadBalancer.addresses if cfg.loadBalancer else [])
        # The cluster file's nodes and hosts stay reserved even when their Node is gone.
        self.fixed = {h.ip for h in cfg.hosts} | {n.ip for n in cfg.nodes if n.ip}
        self.node_ips: dict[str, str] = {}  # to tell which Node events change the reserved set
        self.assigned: dict[str, str] = {}
        self.refused: dict[str, str] = {}
        self._clock = Clock()

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        if isinstance(o, Node):
            ip = None if ev.type == DELETED else o.internal_ip
            if self.node_ips.get(o.name) == ip:
                return ()
            if ip is None:
                self.node_ips.pop(o.name, None)
            else:
                self.node_ips[o.name] = ip
            return (ALL,)
        assert isinstance(o, Service)
        if wants_address(o) or has_condition(o) or o.key in self.assigned or o.key in self.refused:
            return (ALL,)
        return ()

    def start_keys(self) -> Iterable[str]:
        return ()

    def reserved(self) -> set[str]:
        nodes = (n for n in self.store.list("Node")[0] if isinstance(n, Node))
        return self.fixed | {ip for n in nodes if (ip := n.internal_ip)}

    def reconcile(self, key: str) -> bool:
        services = [s for s in self.store.list("Service")[0] if isinstance(s, Service)]
        allocs = allocate(services, self.pool, self.reserved(), self.assigned)
        self.assigned = {k: a.ip for k, a in allocs.items() if a.ip}
        now = self._clock.now()
        changed = False
        for s in services:
            a = allocs.get(s.key)
            if a is None and not has_condition(s):
                continue  # never ours: another class's or a ClusterIP Service's status is left alone
            if a is not None and a.error and self.refused.get(s.key) != a.error:
                log.info("Warning AllocationFailed service/%s: Failed to allocate IP: %s", s.key, a.error)
                msg = f"Failed to allocate IP: {a.error}"
                self.events.event(s, WARNING, "AllocationFailed", msg, component=COMPONENT)
            if a is not None and a.ip and s.lb_ips != [a.ip]:
                log.info("Normal IPAllocated service/%s: Assigned IP [%s]", s.key, a.ip)
                self.events.event(s, NORMAL, "IPAllocated", f"Assigned IP [{a.ip}]", component=COMPONENT)
            st = status_for(s, a, now)
            if st != s.status:
                try:
                    self.store.update(replace(s, status=st))
                except (Conflict, NotFound):
                    continue  # written meanwhile: its watch event brings the Service back here
                changed = True
        self.refused = {k: a.error for k, a in allocs.items() if a.error}
        return changed
