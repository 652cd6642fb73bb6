"""Denied packets, from a node's NFLOG group 100 to the API's policy log.

The policy chains log every packet they reject (``-j NFLOG --nflog-group 100``). One reader per
node turns each record into who talked to whom and why it was refused — the pods at both ends,
the direction that refused it and the policies isolating that end — and posts them in small
batches, so ``kins policy log`` shows drops within a fraction of a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..kernel.nflog import NflogReader, NflogRecord
from ..render.netpol.iptables import NFLOG_GROUP
from ..render.netpol.model import EGRESS, INGRESS, CnpInfo, PodInfo, PolicyInfo
from ..render.netpol.reading import decide

log = logging.getLogger("kins.policylog")

BATCH_SECONDS = 0.1
BATCH_MAX = 200

Post = Callable[[str, list[dict[str, Any]]], object]


class PolicyView:
    """What a record is explained against: the latest pods by address and policies."""

    def __init__(self) -> None:
        self.by_ip: dict[str, PodInfo] = {}
        self.policies: list[PolicyInfo] = []
        self.cnps: list[CnpInfo] = []

    def update(self, pods: list[PodInfo], policies: list[PolicyInfo], cnps: list[CnpInfo]) -> None:
        self.by_ip, self.policies, self.cnps = {p.ip: p for p in pods}, policies, cnps


def explain(view: PolicyView, node: str, rec: NflogRecord) -> dict[str, Any]:
    """The API record for one logged packet. The egress side is blamed when the source is a pod
    of this node that its own policies refuse this packet, the ingress side otherwise."""
    src, dst = view.by_ip.get(rec.src), view.by_ip.get(rec.dst)
    proto = rec.proto.lower()
    port = rec.dport or 0
    direction, policies = INGRESS, []
    if src is not None and src.node == node:
        d = decide(view.policies, src, EGRESS, rec.dst, dst, proto, port, view.cnps)
        if d.verdict == "denied":
            direction, policies = EGRESS, d.policies
    if direction == INGRESS and dst is not None:
        policies = decide(view.policies, dst, INGRESS, rec.src, dst, proto, port, view.cnps).policies

    def peer(ip: str, pod: PodInfo | None, port: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"ip": ip}
        if pod is not None:
            out |= {"namespace": pod.namespace, "pod": pod.name}
        if port is not None:
            out["port"] = port
        return out

    when = datetime.fromtimestamp(rec.time, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return {
        "time": when,
        "node": node,
        "source": peer(rec.src, src),
        "destination": peer(rec.dst, dst, rec.dport),
        "protocol": rec.proto if rec.proto in ("TCP", "UDP", "SCTP", "ICMP") else "ICMP",
        "direction": direction,
        "policies": policies,
    }


class PolicyLogForwarder:
    """One node's reader thread; ``close`` stops it."""

    def __init__(self, netns: str, node: str, view: PolicyView, post: Post) -> None:
        self.node = node
        self._view = view
        self._post = post
        self._reader = NflogReader(netns, NFLOG_GROUP)
        self._thread = threading.Thread(target=self._run, name=f"kins-policylog-{node}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        batch: list[dict[str, Any]] = []
        due = 0.0
        while True:
            rec = self._reader.read(timeout=BATCH_SECONDS)
            if rec is None and self._reader.closed:
                break
            if rec is not None:
                try:
                    batch.append(explain(self._view, self.node, rec))
                except Exception:  # one odd packet must not stop the log
                    log.exception("node %s: cannot explain a logged packet", self.node)
                if not due:
                    due = time.monotonic() + BATCH_SECONDS
            if batch and (len(batch) >= BATCH_MAX or time.monotonic() >= due):
                try:
                    self._post(self.node, batch)
                except Exception as e:
                    log.warning("node %s: policy log not posted (%d records): %s", self.node, len(batch), e)
                batch, due = [], 0.0

    def close(self) -> None:
        self._reader.close()
        self._thread.join(timeout=2)
