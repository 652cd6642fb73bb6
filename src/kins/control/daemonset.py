"""DaemonSet -> one Pod on every node that should run it, as the DaemonSet controller keeps them.

A node should run the set's pod when its labels satisfy the template's ``nodeSelector`` and
required node affinity, and the pod tolerates its NoSchedule/NoExecute taints, counting the
tolerations the controller adds to every daemon pod (not-ready, unreachable, the pressure
taints, unschedulable), so cordoned or NotReady nodes keep theirs. Each pod is pinned the way
the real controller pins it, with a required node affinity on ``metadata.name``, and bound to
that node directly as well (kins' scheduler does not read affinity). Pods on nodes that are
gone or no longer match are deleted; a node added later gets its pod at the next reconcile.

A template change with ``RollingUpdate`` replaces old pods node by node, never leaving more than
``maxUnavailable`` (default 1) nodes without a ready pod; ``OnDelete`` waits for the user.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

import msgspec
from msgspec.structs import replace

from .._errors import NotFound
from ..api.apps import DaemonSet, DaemonSetStatus
from ..api.core import (
    Affinity,
    Node,
    NodeAffinity,
    NodeSelector,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    Pod,
    PodSpec,
    PodStatus,
    Taint,
    Toleration,
)
from ..api.meta import ObjectMeta
from ..store.base import DELETED, Store, WatchEvent, random_suffix
from .base import owner_ref, split_key
from .deployment import pod_template_hash
from .events import NO_EVENTS, NORMAL, EventSink
from .owners import OwnedPods
from .scheduler import node_labels

REVISION_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
COMPONENT = "daemonset-controller"

# What the DaemonSet controller adds to every pod it creates.
DEFAULT_TOLERATIONS: list[Toleration] = [
    Toleration(key="node.kubernetes.io/not-ready", operator="Exists", effect="NoExecute"),
    Toleration(key="node.kubernetes.io/unreachable", operator="Exists", effect="NoExecute"),
    Toleration(key="node.kubernetes.io/disk-pressure", operator="Exists", effect="NoSchedule"),
    Toleration(key="node.kubernetes.io/memory-pressure", operator="Exists", effect="NoSchedule"),
    Toleration(key="node.kubernetes.io/pid-pressure", operator="Exists", effect="NoSchedule"),
    Toleration(key="node.kubernetes.io/unschedulable", operator="Exists", effect="NoSchedule"),
]


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


def _expression_holds(expr: NodeSelectorRequirement, values: dict[str, str]) -> bool:
    key, op, want = expr.key, expr.operator or "", expr.values or []
    have = values.get(key)
    if op == "In":
        return have is not None and have in want
    if op == "NotIn":
        return have is None or have not in want
    if op == "Exists":
        return have is not None
    if op == "DoesNotExist":
        return have is None
    if op in ("Gt", "Lt") and have is not None and want:
        try:
            a, b = int(have), int(want[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def _affinity_allows(affinity: Affinity | None, node: Node) -> bool:
    """requiredDuringSchedulingIgnoredDuringExecution: any term whose expressions all hold."""
    node_affinity = affinity.nodeAffinity if affinity else None
    required = node_affinity.requiredDuringSchedulingIgnoredDuringExecution if node_affinity else None
    terms = (required.nodeSelectorTerms if required else None) or []
    if not terms:
        return True
    labels = node_labels(node)
    fields = {"metadata.name": node.name}
    for term in terms:
        exprs = term.matchExpressions or []
        flds = term.matchFields or []
        if not exprs and not flds:
            continue  # an empty term matches nothing
        if all(_expression_holds(e, labels) for e in exprs) and all(_expression_holds(f, fields) for f in flds):
            return True
    return False


def should_run(ds: DaemonSet, node: Node) -> bool:
    """Whether ``node`` should run ``ds``'s pod."""
    spec = ds.spec.template.spec
    labels = node_labels(node)
    if any(labels.get(k) != v for k, v in (spec.nodeSelector or {}).items()):
        return False
    if not _affinity_allows(spec.affinity, node):
        return False
    tolerations = [*(spec.tolerations or []), *DEFAULT_TOLERATIONS]
    return all(_tolerates(tolerations, t) for t in node.spec.taints or [] if t.effect in ("NoSchedule", "NoExecute"))


def _pin(affinity: Affinity | None, node: str) -> Affinity:
    """The template's affinity with its required node terms replaced by ``metadata.name In [node]``,
    as the controller's ReplaceDaemonSetPodNodeNameNodeAffinity does."""
    required = NodeSelector(
        nodeSelectorTerms=[
            NodeSelectorTerm(matchFields=[NodeSelectorRequirement(key="metadata.name", operator="In", values=[node])])
        ]
    )
    out = affinity or Affinity()
    na = replace(out.nodeAffinity or NodeAffinity(), requiredDuringSchedulingIgnoredDuringExecution=required)
    return replace(out, nodeAffinity=na)


def _max_unavailable(ds: DaemonSet, desired: int) -> int:
    ru = ds.spec.updateStrategy.rollingUpdate if ds.spec.updateStrategy else None
    v = ru.maxUnavailable if ru else None
    if v is None:
        return 1
    if isinstance(v, int):
        return max(v, 0)
    s = str(v)
    if s.endswith("%"):
        return max(math.ceil(desired * int(s[:-1]) / 100), 1 if int(s[:-1]) > 0 else 0)
    return int(s)


def _active(p: Pod) -> bool:
    return not p.terminating and (p.status.phase if p.status else None) not in ("Succeeded", "Failed")


class DaemonSetController:
    name = "daemonset"
    kinds = frozenset({"DaemonSet", "Pod", "Node"})

    def __init__(self, store: Store, rng: random.Random, events: EventSink = NO_EVENTS) -> None:
        self.store = store
        self.rng = rng
        self.events = events
        self._sets: dict[str, str] = {}  # set key -> uid
        self._index = OwnedPods(store, "DaemonSet")

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        if isinstance(o, DaemonSet):
            if ev.type != DELETED:
                self._sets[o.key] = o.metadata.uid or ""
            return (o.key,)
        if isinstance(o, Node):
            return list(self._sets)  # every set decides again where it runs
        owner = self._index.observe(ev)
        return (owner,) if owner else ()

    def start_keys(self) -> Iterable[str]:
        return ()

    def new_pod(self, ds: DaemonSet, node: str, revision: str) -> Pod:
        tmpl = ds.spec.template
        spec = msgspec.json.decode(msgspec.json.encode(tmpl.spec), type=PodSpec)
        have = {(t.key, t.effect) for t in spec.tolerations or []}
        extra = [t for t in DEFAULT_TOLERATIONS if (t.key, t.effect) not in have]
        spec = replace(
            spec, affinity=_pin(spec.affinity, node), nodeName=node, tolerations=[*(spec.tolerations or []), *extra]
        )
        labels = {
            **(tmpl.metadata.labels or {}),
            REVISION_LABEL: revision,
            GENERATION_LABEL: str(ds.metadata.generation or 1),
        }
        while True:
            name = f"{ds.name}-{random_suffix(self.rng)}"
            try:
                self.store.get("Pod", ds.namespace, name)
            except NotFound:
                break
        meta = ObjectMeta(
            name=name,
            namespace=ds.namespace,
            labels=labels,
            annotations=dict(tmpl.metadata.annotations) if tmpl.metadata.annotations else None,
            ownerReferences=[owner_ref(ds)],
        )
        return Pod(metadata=meta, spec=spec, status=PodStatus(phase="Pending"))

    def _delete(self, ds: DaemonSet, p: Pod) -> None:
        try:
            self.store.delete("Pod", p.namespace, p.name)
        except NotFound:
            return
        self.events.event(ds, NORMAL, "SuccessfulDelete", f"Deleted pod: {p.name}", component=COMPONENT)

    def reconcile(self, key: str) -> bool:
        ns, name = split_key(key)
        try:
            ds = self.store.get("DaemonSet", ns, name)
        except NotFound:
            # The set is gone: the garbage collector deletes its pods (or they were orphaned).
            self._index.forget(self._sets.pop(key, ""))
            return False
        assert isinstance(ds, DaemonSet)
        if ds.metadata.deletionTimestamp:
            return False  # being deleted: the garbage collector owns its pods now
        uid = ds.metadata.uid or ""
        revision = pod_template_hash(ds.spec.template, ds.status.collisionCount if ds.status else None)
        nodes = sorted((n for n in self.store.list("Node")[0] if isinstance(n, Node)), key=lambda n: n.name)
        wanted = {n.name for n in nodes if should_run(ds, n)}
        on_node: dict[str, list[Pod]] = {}
        changed = False
        for p in self._index.pods(uid):
            if p.terminating:
                on_node.setdefault(p.spec.nodeName or "", []).append(p)
                continue
            if p.spec.nodeName not in wanted or not _active(p):
                self._delete(ds, p)  # a gone or unsuitable node, or a pod that failed
                changed = True
                continue
            on_node.setdefault(p.spec.nodeName or "", []).append(p)
        for node in sorted(wanted):
            pods = sorted(
                on_node.get(node, []), key=lambda p: (p.terminating, p.metadata.creationTimestamp or "", p.name)
            )
            alive = [p for p in pods if not p.terminating]
            if not alive and not pods:
                pod = self.store.create(self.new_pod(ds, node, revision))
                self.events.event(ds, NORMAL, "SuccessfulCreate", f"Created pod: {pod.name}", component=COMPONENT)
                changed = True
            for extra in alive[1:]:  # one pod per node: the oldest stays
                self._delete(ds, extra)
                changed = True
        if (ds.spec.updateStrategy.type if ds.spec.updateStrategy else None) in (None, "RollingUpdate"):
            changed = self._roll(ds, wanted, on_node, revision) or changed
        return self._status(ds, revision) or changed

    def _roll(self, ds: DaemonSet, wanted: set[str], on_node: dict[str, list[Pod]], revision: str) -> bool:
        """Delete old-revision pods while fewer than maxUnavailable nodes lack a ready pod."""
        budget = _max_unavailable(ds, len(wanted))
        unavailable = 0
        old: list[Pod] = []
        for node in sorted(wanted):
            alive = [p for p in on_node.get(node, []) if not p.terminating]
            if not alive or not alive[0].ready:
                unavailable += 1
            elif alive[0].labels.get(REVISION_LABEL) != revision:
                old.append(alive[0])
        changed = False
        for p in old:
            if unavailable >= budget:
                break
            self._delete(ds, p)
            unavailable += 1
            changed = True
        return changed

    def _status(self, ds: DaemonSet, revision: str) -> bool:
        nodes = {n.name: n for n in self.store.list("Node")[0] if isinstance(n, Node)}
        wanted = {n for n, node in nodes.items() if should_run(ds, node)}
        pods = [p for p in self._index.pods(ds.metadata.uid or "") if _active(p)]
        scheduled = {p.spec.nodeName for p in pods if p.spec.nodeName in wanted}
        ready_nodes = {p.spec.nodeName for p in pods if p.spec.nodeName in wanted and p.ready}
        updated = {
            p.spec.nodeName for p in pods if p.spec.nodeName in wanted and p.labels.get(REVISION_LABEL) == revision
        }
        misscheduled = {p.spec.nodeName for p in pods if p.spec.nodeName and p.spec.nodeName not in wanted}
        old = ds.status or DaemonSetStatus()
        status = DaemonSetStatus(
            currentNumberScheduled=len(scheduled),
            numberMisscheduled=len(misscheduled),
            desiredNumberScheduled=len(wanted),
            numberReady=len(ready_nodes),
            observedGeneration=ds.metadata.generation,
            updatedNumberScheduled=len(updated),
            numberAvailable=len(ready_nodes) or None,
            numberUnavailable=(len(wanted) - len(ready_nodes)) or None,
            collisionCount=old.collisionCount,
            conditions=old.conditions,
        )
        if status == ds.status:
            return False
        self.store.update(replace(ds, status=status), check_rv=False)
        return True
