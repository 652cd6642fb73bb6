"""NetworkPolicy read straight from the API's definition, with no rules in between.

The kernel's rules decide (the simulator walks them); this reading names things for people:
which policies isolate a pod in a direction, which rule of which policy admits a connection. It
labels denied-packet log records and is the oracle the rendered rules are tested against.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .model import EGRESS, INGRESS, PodInfo, PolicyInfo, RuleInfo


@dataclass(frozen=True, slots=True)
class Admission:
    policy: str  # ns/name
    rule: int


def isolating(policies: list[PolicyInfo], pod: PodInfo, direction: str) -> list[PolicyInfo]:
    """The policies that select ``pod`` and isolate it in ``direction``."""
    return [p for p in policies if p.isolates(direction) and any(t.ip == pod.ip for t in p.targets)]


def _in_block(ip: str, cidr: str, excepts: tuple[str, ...]) -> bool:
    addr = ipaddress.IPv4Address(ip)
    if addr not in ipaddress.IPv4Network(cidr, strict=False):
        return False
    return not any(addr in ipaddress.IPv4Network(e, strict=False) for e in excepts)


def _port_ok(rule: RuleInfo, proto: str, port: int, holder: PodInfo | None) -> bool:
    if rule.match_all_ports:
        return True
    for p in rule.ports:
        if p.protocol != proto:
            continue
        if not p.port:
            return True
        lo = int(p.port)
        hi = int(p.end) if p.end else lo
        if lo <= port <= hi:
            return True
    # named ports resolve on the pod at the far end of the rule's port: the destination
    if holder is not None:
        for eps in rule.named:
            if eps.protocol == proto and int(eps.port) == port and holder.ip in eps.ips:
                return True
    return False


def _peer_ok(rule: RuleInfo, peer_ip: str) -> bool:
    if rule.match_all_peers:
        return True
    if any(p.ip == peer_ip for p in rule.peer_pods):
        return True
    return any(_in_block(peer_ip, b.cidr, b.excepts) for b in rule.ipblocks)


def admits(policy: PolicyInfo, direction: str, peer_ip: str, dest: PodInfo | None, proto: str, port: int) -> int | None:
    """The index of the first rule of ``policy`` in ``direction`` that admits the connection
    (``peer_ip`` is the far end; ``dest`` the destination pod, for named ports), or None."""
    rules = policy.ingress if direction == INGRESS else policy.egress
    for r in rules or []:
        if _peer_ok(r, peer_ip) and _port_ok(r, proto, port, dest):
            return r.index
    return None


def decide(
    policies: list[PolicyInfo], pod: PodInfo, direction: str, peer_ip: str, dest: PodInfo | None, proto: str, port: int
) -> tuple[str, list[str], Admission | None]:
    """("not-isolated" | "allowed" | "denied", the isolating policies, what admitted it)."""
    iso = isolating(policies, pod, direction)
    if not iso:
        return "not-isolated", [], None
    for p in iso:
        i = admits(p, direction, peer_ip, dest, proto, port)
        if i is not None:
            return "allowed", [q.key for q in iso], Admission(p.key, i)
    return "denied", [q.key for q in iso], None


def connection(
    policies: list[PolicyInfo],
    src: PodInfo | None,
    src_ip: str,
    dst: PodInfo | None,
    dst_ip: str,
    proto: str,
    port: int,
) -> bool:
    """Whether a new connection passes both ends: the source's egress and the destination's
    ingress (a pod's own node is always let in; other addresses are not policed)."""
    proto = proto.lower()
    if src is not None and dst is not None and src.ip == dst.ip:
        return True
    if src is not None and decide(policies, src, EGRESS, dst_ip, dst, proto, port)[0] == "denied":
        return False
    return not (dst is not None and decide(policies, dst, INGRESS, src_ip, dst, proto, port)[0] == "denied")
