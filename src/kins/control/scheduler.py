"""Binds pods without ``spec.nodeName`` to a node.

Filters as the default scheduler's basic plugins do (nodeSelector against the node's labels,
which always include ``kubernetes.io/hostname``; ``unschedulable``; NoSchedule/NoExecute taints
without a toleration; NotReady nodes), then spreads: the feasible node with the fewest pods,
ties broken by name. Pods are taken in creation order, so the same manifests give the same
placement every time.

Pods with PersistentVolumeClaims go through volume binding first (``volumebinding.py``): a
missing claim or an unbound claim of an ``Immediate`` class keeps the pod Pending, a bound
claim's volume limits the nodes to those its node affinity admits, and for unbound claims of a
``WaitForFirstConsumer`` class the chosen node is written on the claims
(``volume.kubernetes.io/selected-node``) and the pod waits, unbound, until they are bound.
"""

from __future__ import annotations

from collections.abc import Iterable

from msgspec.structs import replace

from ..api.core import Node, Pod, PodStatus, Taint, Toleration
from ..api.meta import Condition
from ..store.base import Clock, Store, WatchEvent
from .base import merge_conditions
from .events import NO_EVENTS, NORMAL, WARNING, EventSink
from .nodeipam import leased
from .volumebinding import VolumeBinding

ALL = "*"


def node_labels(node: Node) -> dict[str, str]:
    return {"kubernetes.io/hostname": node.name, **node.labels}


def node_ready(node: Node) -> bool:
    for c in (node.status.conditions if node.status else None) or []:
        if c.type == "Ready":
            return c.status == "True"
    return True  # a node nobody reports on is taken as ready (offline nodes are)


def _tolerates(tolerations: list[Toleration], taint: Taint) -> bool:
    for t in tolerations:
        if t.effect and t.effect != taint.effect:
            continue
        if t.operator == "Exists":
            if not t.key or t.key == taint.key:
                return True
        elif t.key == taint.key and (t.value or "") == (taint.value or ""):
            return True
    return False


def takes_pods(node: Node) -> bool:
    # A Node still without its address or pod subnet has no network to start a pod in.
    return not node.spec.unschedulable and node_ready(node) and leased(node)


def fits(pod: Pod, node: Node) -> bool:
    if not takes_pods(node):
        return False
    labels = node_labels(node)
    for k, v in (pod.spec.nodeSelector or {}).items():
        if labels.get(k) != v:
            return False
    tolerations = pod.spec.tolerations or []
    return all(_tolerates(tolerations, t) for t in node.spec.taints or [] if t.effect in ("NoSchedule", "NoExecute"))


def _counts_toward_node(p: Pod) -> bool:
    return bool(p.spec.nodeName) and (p.status.phase if p.status else None) not in ("Succeeded", "Failed")


class Scheduler:
    name = "scheduler"
    kinds = frozenset({"Pod", "Node", "PersistentVolumeClaim", "PersistentVolume"})

    def __init__(self, store: Store, events: EventSink = NO_EVENTS) -> None:
        self.store = store
        self.events = events
        self._clock = Clock()
        self.volumes = VolumeBinding(store)

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        if isinstance(o, Pod):
            return () if o.spec.nodeName or o.terminating or ev.type == "DELETED" else (ALL,)
        return (ALL,)

    def start_keys(self) -> Iterable[str]:
        return ()

    def reconcile(self, key: str) -> bool:
        nodes = sorted((n for n in self.store.list("Node")[0] if isinstance(n, Node)), key=lambda n: n.name)
        pods = [p for p in self.store.list("Pod")[0] if isinstance(p, Pod)]
        counts = {n.name: 0 for n in nodes}
        for p in pods:
            if _counts_toward_node(p) and p.spec.nodeName in counts:
                counts[p.spec.nodeName] += 1
        pending = [
            p
            for p in pods
            if not p.spec.nodeName
            and not p.terminating
            and (p.spec.schedulerName or "default-scheduler") == "default-scheduler"
        ]
        pending.sort(key=lambda p: (p.metadata.creationTimestamp or "", int(p.metadata.resourceVersion or 0), p.key))
        changed = False
        now = self._clock.now()
        self.volumes.begin(pods)
        for p in pending:
            st = p.status or PodStatus(phase="Pending")
            vols = self.volumes.check(p)
            reasons: dict[str, int] = {}
            feasible = []
            for n in nodes if vols.error is None else ():
                why = vols.node_conflict(n) if fits(p, n) else "node(s) didn't match Pod's node affinity/selector"
                if why is None:
                    feasible.append(n)
                else:
                    reasons[why] = reasons.get(why, 0) + 1
            if not feasible:
                detail = vols.error or ", ".join(f"{c} {r}" for r, c in sorted(reasons.items()))
                msg = f"0/{len(nodes)} nodes are available: {detail}."
                if not nodes:
                    msg = "no nodes available to schedule pods"
                cond = Condition(type="PodScheduled", status="False", reason="Unschedulable", message=msg)
                conds = merge_conditions(st.conditions, [cond], now)
                if conds != st.conditions:
                    self.store.update(replace(p, status=replace(st, phase="Pending", conditions=conds)))
                    self.events.event(p, WARNING, "FailedScheduling", msg, component="default-scheduler")
                    changed = True
                continue
            best = min(feasible, key=lambda n: (counts[n.name], n.name))
            counts[best.name] += 1
            if vols.waiting:
                # Claims still to bind on that node: the pod goes there once they are bound.
                changed |= self.volumes.select_node(vols, best.name)
                continue
            self.volumes.hold(p)
            cond = Condition(type="PodScheduled", status="True")
            conds = merge_conditions([c for c in st.conditions or [] if c.type != "PodScheduled"], [cond], now)
            self.store.update(
                replace(
                    p,
                    spec=replace(p.spec, nodeName=best.name),
                    status=replace(st, phase=st.phase or "Pending", conditions=conds),
                )
            )
            self.events.event(
                p,
                NORMAL,
                "Scheduled",
                f"Successfully assigned {p.namespace}/{p.name} to {best.name}",
                component="default-scheduler",
            )
            changed = True
        return changed
