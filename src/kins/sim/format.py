"""A trace as text (one block per hop, numbered steps, like a packet tracer) and as JSON.

``trace_to_json`` is a stable interface: keys are only ever added.
"""

from __future__ import annotations

from typing import Any

from .packet import Hop, Trace

PROB_DIGITS = 6


def _step_line(n: int, action: str, detail: str, table: str | None, chain: str | None, rule: int | None) -> str:
    where = f"[{table}/{chain} #{rule}] " if table and rule is not None else f"[{table}/{chain}] " if table else ""
    return f"  {n:>2}. {action.upper():<13}{where}{detail}"


def _hop_blocks(hops: tuple[Hop, ...], start: int = 1) -> list[str]:
    out: list[str] = []
    for i, hop in enumerate(hops, start):
        out.append(f"{i}. {hop.node}")
        for n, s in enumerate(hop.steps, 1):
            out.append(_step_line(n, s.action, s.detail, s.table, s.chain, s.rule))
    return out


def _pct(p: float) -> str:
    return f"{p * 100:.1f}%"


def format_trace_text(trace: Trace) -> str:
    lines = [
        f"FROM   {trace.src}",
        f"TO     {trace.dst}",
        f"PACKET {trace.packet}",
    ]
    if trace.service:
        lines.append(f"SERVICE {trace.service}")
    if trace.endpoints:
        lines.append("ENDPOINTS (chosen at random by kube-proxy's rules):" if len(trace.endpoints) > 1 else "ENDPOINT:")
        for e in trace.endpoints:
            who = f"pod {e.pod}" if e.pod else "address"
            node = f" on {e.node}" if e.node else ""
            masq = ", masqueraded" if e.masquerade else ""
            lines.append(f"  {e.address:<22} {_pct(e.probability):>6}  {who}{node}: {e.disposition}{masq}")
    lines.append("")
    if trace.branch:
        lines.append(f"Path of the branch to {trace.branch}:")
    lines.extend(_hop_blocks(trace.hops))
    lines.append("")
    lines.append(
        f"RESULT {trace.disposition.upper()}" + (" (masquerade: source NAT on the way)" if trace.masquerade else "")
    )
    if trace.reply:
        lines.append("")
        lines.append(f"Reply path ({trace.reply_disposition}):")
        lines.extend(_hop_blocks(trace.reply))
    if trace.notes:
        lines.append("")
        lines.extend(f"NOTE   {n}" for n in trace.notes)
    return "\n".join(lines) + "\n"


def _hops_json(hops: tuple[Hop, ...]) -> list[dict[str, Any]]:
    return [
        {
            "node": h.node,
            "steps": [
                {"action": s.action, "detail": s.detail, "table": s.table, "chain": s.chain, "rule": s.rule}
                for s in h.steps
            ],
        }
        for h in hops
    ]


def trace_to_json(trace: Trace) -> dict[str, Any]:
    """``disposition``, ``service``, ``endpoints`` (address, probability, node), ``masquerade``
    and ``hops`` always; ``branch`` (the endpoint the hops follow) when there are several,
    ``dispositions`` (per endpoint) when branches end differently, ``reply``, ``notes``, and
    ``policy`` (a NetworkPolicy verdict per pod chain the packet went through: ``verdict``
    allowed, denied or not-isolated, ``direction``, ``pod``, ``policies`` isolating it, the
    admitting ``rule`` and any ClusterNetworkPolicy ``tier`` or ``passed``)."""
    out: dict[str, Any] = {
        "from": trace.src,
        "to": trace.dst,
        "packet": trace.packet,
        "disposition": trace.disposition,
        "service": trace.service,
        "endpoints": [
            {"address": e.address, "probability": round(e.probability, PROB_DIGITS), "node": e.node}
            for e in trace.endpoints
        ],
        "masquerade": trace.masquerade,
        "hops": _hops_json(trace.hops),
    }
    if trace.branch:
        out["branch"] = trace.branch
    if len({e.disposition for e in trace.endpoints}) > 1:
        out["dispositions"] = {e.address: e.disposition for e in trace.endpoints}
    if trace.reply:
        out["reply"] = {"disposition": trace.reply_disposition, "hops": _hops_json(trace.reply)}
    if trace.notes:
        out["notes"] = list(trace.notes)
    if trace.policy:
        out["policy"] = list(trace.policy)
    return out
