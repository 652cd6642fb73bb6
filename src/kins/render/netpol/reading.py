"""NetworkPolicy read straight from the API's definition, with no rules in between.

The kernel's rules decide (the simulator walks them); this reading names things for people:
which policies isolate a pod in a direction, which rule of which policy admits a connection. It
labels denied-packet log records and is the oracle the rendered rules are tested against.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .model import ADMIN, BASELINE, EGRESS, INGRESS, CnpInfo, PodInfo, PolicyInfo, RuleInfo


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


@dataclass(slots=True)
class Decision:
    """One end's verdict for one direction. ``tier``: which layer decided (Admin, NetworkPolicy,
    Baseline, or "" when nothing isolates the pod); ``policies``: the isolating NetworkPolicies,
    or the ClusterNetworkPolicy whose rule decided; ``rule``: the rule that admitted or refused;
    ``passed``: Admin ClusterNetworkPolicies whose Pass rule sent the packet on."""

    verdict: str  # allowed | denied | not-isolated
    tier: str = ""
    policies: list[str] = field(default_factory=list)
    rule: Admission | None = None
    passed: list[str] = field(default_factory=list)


def _cnp_rule(c: CnpInfo, direction: str, peer_ip: str, dest: PodInfo | None, proto: str, port: int) -> RuleInfo | None:
    for r in c.ingress if direction == INGRESS else c.egress:
        if _peer_ok(r, peer_ip) and _port_ok(r, proto, port, dest):
            return r
    return None


def decide(
    policies: list[PolicyInfo],
    pod: PodInfo,
    direction: str,
    peer_ip: str,
    dest: PodInfo | None,
    proto: str,
    port: int,
    cnps: list[CnpInfo] | None = None,
) -> Decision:
    """The Admin tier (first matching rule by priority: Accept, Deny, or Pass on), then the
    NetworkPolicies isolating the pod, or when none does the Baseline tier, then allowed."""
    selecting = [c for c in cnps or [] if c.isolates(direction) and any(t.ip == pod.ip for t in c.targets)]
    passed: list[str] = []
    for c in selecting:
        if c.tier != ADMIN:
            continue
        r = _cnp_rule(c, direction, peer_ip, dest, proto, port)
        if r is None:
            continue
        if r.action == "Pass":
            passed.append(c.key)
            break
        verdict = "allowed" if r.action == "Accept" else "denied"
        return Decision(verdict, ADMIN, [c.key], Admission(c.key, r.index), passed)
    iso = isolating(policies, pod, direction)
    if iso:
        for p in iso:
            i = admits(p, direction, peer_ip, dest, proto, port)
            if i is not None:
                return Decision("allowed", "NetworkPolicy", [q.key for q in iso], Admission(p.key, i), passed)
        return Decision("denied", "NetworkPolicy", [q.key for q in iso], None, passed)
    for c in selecting:
        if c.tier != BASELINE:
            continue
        r = _cnp_rule(c, direction, peer_ip, dest, proto, port)
        if r is not None:
            verdict = "allowed" if r.action == "Accept" else "denied"
            return Decision(verdict, BASELINE, [c.key], Admission(c.key, r.index), passed)
    return Decision("not-isolated", "", [], None, passed)


def connection(
    policies: list[PolicyInfo],
    src: PodInfo | None,
    src_ip: str,
    dst: PodInfo | None,
    dst_ip: str,
    proto: str,
    port: int,
    cnps: list[CnpInfo] | None = None,
) -> bool:
    """Whether a new connection passes both ends: the source's egress and the destination's
    ingress (a pod's own node is always let in; other addresses are not policed)."""
    proto = proto.lower()
    if src is not None and dst is not None and src.ip == dst.ip:
        return True
    if src is not None and decide(policies, src, EGRESS, dst_ip, dst, proto, port, cnps).verdict == "denied":
        return False
    return not (dst is not None and decide(policies, dst, INGRESS, src_ip, dst, proto, port, cnps).verdict == "denied")
