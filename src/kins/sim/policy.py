"""Policy verdicts as steps of their own in a trace.

The walk goes through kube-router's chains rule by rule like through any other; this pass reads
each visit to a pod's chain (``KUBE-ROUTER-* -> KUBE-POD-FW-*``) back out of the hop's steps —
what the rules decided: rejected, admitted by which policy chain's rule, or let through by the
default chain — and adds a ``POLICY`` step saying so in words: the direction, the pod, the
policies isolating it, and the rule that admitted the packet (from the renderer's record of
what each rule stands for). ClusterNetworkPolicy tiers are named the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..api.config import ClusterConfig
from ..render.cluster import PolicyState
from ..render.netpol import names as nn
from ..render.netpol.iptables import PolicyRender, RuleRef
from ..render.netpol.model import EGRESS, INGRESS
from ..render.netpol.reading import decide
from .packet import Hop, Step, Trace

_JUMP = re.compile(r'^jump to (KUBE-POD-FW-\S+) "([^"]+) (in|out)"')
_PKT = re.compile(r"^(\w+) ([\d.]+):(\d+) -> ([\d.]+):(\d+)")
_POLICY_CHAINS = (nn.POLICY_PREFIX, nn.CNP_PREFIX)


@dataclass(slots=True)
class _Seen:
    verdict: str  # allowed | denied | not-isolated
    marks: list[tuple[str, int]]  # (chain, rule) of every policy rule that marked the packet
    how: str = ""  # what let it through without a policy: the node, an established connection


def _segment(steps: tuple[Step, ...], i: int, pod_chain: str) -> tuple[int, _Seen]:
    """The steps of one visit to ``pod_chain`` from ``steps[i]`` on, and what they decided."""
    seen = _Seen("allowed", [])
    j = i + 1
    while j < len(steps):
        s = steps[j]
        chain = s.chain or ""
        if chain != pod_chain and not chain.startswith(_POLICY_CHAINS) and chain != nn.COMMON_CHAIN:
            break
        detail = s.detail
        if chain == pod_chain and detail.startswith("REJECT"):
            seen.verdict = "denied"
        elif chain == pod_chain and detail.startswith("jump to " + nn.DEFAULT_CHAIN):
            seen.verdict = "not-isolated"
        elif chain == pod_chain and detail.startswith("ACCEPT"):
            seen.how = "from its own node"
        elif chain == nn.COMMON_CHAIN and detail.startswith("ACCEPT"):
            seen.how = "of an established connection" if "stateful" in detail else "(ICMP)"
        elif chain.startswith(_POLICY_CHAINS) and chain != nn.DEFAULT_CHAIN and detail.startswith("MARK") and s.rule:
            seen.marks.append((chain, s.rule))
        j += 1
    return j, seen


def _packet(hop: Hop) -> tuple[str, str, str, int] | None:
    """(proto, source, destination, destination port) as the hop last saw the packet."""
    got = None
    for s in hop.steps:
        if s.action == "received":
            m = _PKT.match(s.detail)
            if m:
                got = (m.group(1), m.group(2), m.group(4), int(m.group(5)))
        elif s.action == "nat" and got is not None and s.detail.startswith("DNAT"):
            m = re.search(r"-> ([\d.]+):(\d+)", s.detail)
            if m:
                got = (got[0], got[1], m.group(1), int(m.group(2)))
    return got


def annotate(trace: Trace, state: PolicyState, cfg: ClusterConfig) -> Trace:
    """``trace`` with a POLICY step after each visit to a pod's chain, and ``trace.policy``."""
    renders: dict[str, PolicyRender] = {}
    by_key = {p.key: p for p in state.cluster.pods}
    by_ip = {p.ip: p for p in state.cluster.pods}
    verdicts: list[dict[str, Any]] = []

    def hops(hs: tuple[Hop, ...], record: bool) -> tuple[Hop, ...]:
        out = []
        for hop in hs:
            steps = list(hop.steps)
            if not any(s.chain and s.chain.startswith("KUBE-ROUTER-") for s in steps):
                out.append(hop)
                continue
            pkt = _packet(hop)
            new: list[Step] = []
            i = 0
            while i < len(steps):
                s = steps[i]
                m = _JUMP.match(s.detail) if s.action == "rule" else None
                new.append(s)
                if m is None:
                    i += 1
                    continue
                end, seen = _segment(tuple(steps), i, m.group(1))
                new.extend(steps[i + 1 : end])
                i = end
                direction = INGRESS if m.group(3) == "in" else EGRESS
                refs: list[RuleRef] = []
                if seen.marks:
                    r = renders.get(hop.node)
                    if r is None:
                        r = renders[hop.node] = state.render(cfg, hop.node)
                    refs = [ref for c, n in seen.marks if (ref := r.refs.get(c, {}).get(n)) is not None]
                text, data = _words(state, by_key.get(m.group(2)), m.group(2), direction, seen, refs, pkt, by_ip)
                new.append(Step("policy", text, s.table, m.group(1)))
                if record:
                    verdicts.append(data)
            out.append(Hop(hop.node, tuple(new)))
        return tuple(out)

    fwd = hops(trace.hops, True)
    back = hops(trace.reply, False)
    t = Trace(
        trace.src,
        trace.dst,
        trace.packet,
        trace.disposition,
        fwd,
        trace.service,
        trace.endpoints,
        trace.masquerade,
        trace.branch,
        back,
        trace.reply_disposition,
        trace.notes,
    )
    t.policy = tuple(verdicts)
    return t


def _action(state: PolicyState, ref: RuleRef) -> str:
    """A ClusterNetworkPolicy rule's action; "" for a NetworkPolicy rule."""
    for c in state.cnps:
        if c.name == ref.policy:
            for r in c.ingress if ref.direction == INGRESS else c.egress:
                if r.index == ref.rule:
                    return r.action
    return ""


def _words(
    state: PolicyState,
    pod: Any,
    key: str,
    direction: str,
    seen: _Seen,
    refs: list[RuleRef],
    pkt: tuple[str, str, str, int] | None,
    by_ip: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    proto, src, dst, port = pkt if pkt is not None else ("tcp", "", "", 0)
    peer_ip = src if direction == INGRESS else dst
    peer = by_ip.get(peer_ip)
    peer_text = f"{peer_ip} ({peer.key})" if peer is not None else peer_ip
    dest = pod if direction == INGRESS else peer
    d = (
        decide(state.policies, pod, direction, peer_ip, dest, proto, port, state.cnps)
        if pod is not None and peer_ip
        else None
    )
    isolating = d.policies if d is not None and d.tier == "NetworkPolicy" else []
    passes = [r.policy for r in refs if _action(state, r) == "Pass"]
    decisive = [r for r in refs if _action(state, r) != "Pass"]
    prefix = "".join(f"passed by ClusterNetworkPolicy {c}, then " for c in passes)
    data: dict[str, Any] = {"verdict": seen.verdict, "direction": direction, "pod": key, "policies": isolating}
    if passes:
        data["passed"] = passes
    if decisive:
        ref = decisive[-1]
        data["rule"] = {"policy": ref.policy, "direction": ref.direction, "index": ref.rule}
        action = _action(state, ref)
        if action:
            cnp = next(c for c in state.cnps if c.name == ref.policy)
            rules = cnp.ingress if direction == INGRESS else cnp.egress
            rname = next((r.name for r in rules if r.index == ref.rule and r.name), f"#{ref.rule + 1}")
            data["policies"], data["tier"] = [ref.policy], cnp.tier
            verb = "denied" if action == "Deny" else "allowed"
            text = f"{prefix}{verb} ({direction}) by ClusterNetworkPolicy {ref.policy} rule {rname} ({cnp.tier} tier)"
            return text, data
        return f"{prefix}allowed ({direction}) by NetworkPolicy {ref.policy} rule {ref.rule + 1}", data
    if seen.how:
        return f"allowed ({direction}): {key} lets in traffic {seen.how}", data
    if seen.verdict == "denied":
        by = ", ".join(isolating) or "its policies"
        what = f"{proto}/{port}" if port else proto
        text = f"{prefix}denied ({direction}): {key} is isolated by NetworkPolicy {by}; no rule admits {peer_text}"
        return f"{text} on {what}", data
    if seen.verdict == "not-isolated":
        return f"{prefix}not isolated ({direction}): no NetworkPolicy selects {key} for {direction}", data
    return f"allowed ({direction})", data
