"""Deployment -> ReplicaSet -> Pods, named as Kubernetes names them, plus owner cleanup.

A Deployment's ReplicaSet is ``<deployment>-<pod-template-hash>``: the hash is FNV-32a over the
pod template, printed in decimal and mapped digit by digit onto ``rand.SafeEncodeString``'s
alphabet, which is why real hashes look like ``666f454f7f``. Kubernetes feeds the hash a Go
struct dump of the API-defaulted template; kins feeds it the template's JSON with sorted keys,
fields at their defaults and empty ones left out (``hashed_form``), so values are stable and
well-formed but not byte-equal to a real cluster's. A template that comes back (``kubectl
rollout undo``) finds its ReplicaSet again, which becomes the newest revision. Pods are
``<replicaset>-<5 random chars>``.

A changed template gets a new ReplicaSet at full scale and the old ones go to 0 at once (no
surge/unavailability pacing: offline every pod is ready immediately anyway).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from typing import Any

import msgspec
from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.apps import (
    Deployment,
    DeploymentStatus,
    DeploymentStrategy,
    ReplicaSet,
    ReplicaSetSpec,
    ReplicaSetStatus,
    RollingUpdateDeployment,
)
from ..api.core import Pod, PodSpec, PodStatus, PodTemplateSpec
from ..api.meta import Condition, LabelSelector, ObjectMeta, selector_matches
from ..store.base import DELETED, NAME_ALPHABET, Clock, Store, WatchEvent, random_suffix
from .base import controller_of, merge_conditions, owner_ref, split_key
from .events import NO_EVENTS, NORMAL, EventSink
from .owners import OwnedPods

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv32a(data: bytes, h: int = _FNV_OFFSET) -> int:
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """Kubernetes' ``rand.SafeEncodeString``: each character picks from the no-vowel alphabet."""
    return "".join(NAME_ALPHABET[ord(c) % len(NAME_ALPHABET)] for c in s)


def _canonical(value: Any) -> Any:
    """``value`` as plain data with every field at its default and every empty value left out,
    compared by value (msgspec leaves a default out only when it is the very same object)."""
    if isinstance(value, msgspec.Struct):
        out: dict[str, Any] = {}
        fields = value.__struct_fields__
        defaults = value.__struct_defaults__
        first = len(fields) - len(defaults)
        for i, name in enumerate(fields):
            v = getattr(value, name)
            # (A default_factory's default is a Factory object: never equal, its empties go below.)
            if i >= first and v == defaults[i - first]:
                continue
            c = _canonical(v)
            if c is not None and c != {} and c != []:
                out[name] = c
        return out
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def hashed_form(template: PodTemplateSpec) -> dict[str, Any]:
    """The template as the hash reads it: defaulted the way kins stores objects, where a field
    at its default and an empty one are left out. ``kubectl rollout undo`` sends revision 1's
    template back with ``resources: {}`` in every container (Go cannot leave out an empty
    struct) and the scalar defaults the API served (``protocol: TCP``): it must still hash to
    revision 1's ReplicaSet, as upstream's controller hashes the API-defaulted template."""
    out = _canonical(template)
    assert isinstance(out, dict)
    return out


def pod_template_hash(template: PodTemplateSpec, collision_count: int | None = None) -> str:
    h = fnv32a(msgspec.json.encode(hashed_form(template), order="sorted"))
    if collision_count:
        h = fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4), h)
    return safe_encode(str(h))


def _template_of(rs: ReplicaSet) -> dict[str, Any]:
    """The ReplicaSet's template as ``hashed_form`` reads it, without its hash label."""
    tmpl = rs.spec.template
    labels = {k: v for k, v in (tmpl.metadata.labels or {}).items() if k != HASH_LABEL}
    return hashed_form(replace(tmpl, metadata=replace(tmpl.metadata, labels=labels or None)))


def _revision(rs: object) -> int:
    annotations = getattr(getattr(rs, "metadata", None), "annotations", None) or {}
    try:
        return int(annotations.get(REVISION, "0"))
    except ValueError:
        return 0


def _percent_or_int(v: object, total: int, default: str, round_up: bool) -> int:
    if v is None:
        v = default
    if isinstance(v, int):
        return v
    s = str(v)
    if s.endswith("%"):
        x = total * int(s[:-1]) / 100
        return math.ceil(x) if round_up else math.floor(x)
    return int(s)


def _rolling(d: Deployment) -> tuple[int, int]:
    """maxSurge and maxUnavailable as numbers (defaults 25% / 25%)."""
    replicas = d.spec.replicas if d.spec.replicas is not None else 1
    strategy = d.spec.strategy or DeploymentStrategy()
    ru = strategy.rollingUpdate or RollingUpdateDeployment()
    if strategy.type == "Recreate":
        return 0, replicas
    surge = _percent_or_int(ru.maxSurge, replicas, "25%", True)
    unavail = _percent_or_int(ru.maxUnavailable, replicas, "25%", False)
    return surge, unavail


def _owned_by(obj: object, uid: str | None) -> bool:
    ref = controller_of(obj)  # type: ignore[arg-type]
    return ref is not None and ref.uid == uid


class DeploymentController:
    name = "deployment"
    kinds = frozenset({"Deployment", "ReplicaSet"})

    def __init__(self, store: Store, events: EventSink = NO_EVENTS) -> None:
        self.store = store
        self.events = events
        self._clock = Clock()

    def _scaled(self, d: Deployment, rs: str, old: int, new: int) -> None:
        way = "up" if new > old else "down"
        self.events.event(
            d,
            NORMAL,
            "ScalingReplicaSet",
            f"Scaled {way} replica set {rs} from {old} to {new}",
            component="deployment-controller",
        )

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        if isinstance(o, Deployment):
            return () if ev.type == DELETED else (o.key,)
        ref = controller_of(o)
        return (f"{o.namespace}/{ref.name}",) if ref is not None and ref.kind == "Deployment" else ()

    def start_keys(self) -> Iterable[str]:
        return ()

    def reconcile(self, key: str) -> bool:
        ns, name = split_key(key)
        try:
            d = self.store.get("Deployment", ns, name)
        except NotFound:
            return False
        assert isinstance(d, Deployment)
        if d.metadata.deletionTimestamp:
            return False  # being deleted: the garbage collector owns its ReplicaSets now
        replicas = d.spec.replicas if d.spec.replicas is not None else 1
        surge, unavail = _rolling(d)
        h = pod_template_hash(d.spec.template, d.status.collisionCount if d.status else None)
        rs_name = f"{d.name}-{h}"
        owned = [r for r in self.store.list("ReplicaSet", ns)[0] if _owned_by(r, d.metadata.uid)]
        assert all(isinstance(r, ReplicaSet) for r in owned)
        changed = False
        new = next((r for r in owned if r.name == rs_name), None)
        if new is None:
            # Upstream finds the new ReplicaSet by its template, whatever its hash: one made
            # before the hash read the template this way (an older kins) is still this template's.
            want = hashed_form(d.spec.template)
            new = next((r for r in owned if isinstance(r, ReplicaSet) and _template_of(r) == want), None)
            if new is not None:
                rs_name, h = new.name, (new.metadata.labels or {}).get(HASH_LABEL, h)
        annotations = {
            "deployment.kubernetes.io/desired-replicas": str(replicas),
            "deployment.kubernetes.io/max-replicas": str(replicas + surge),
        }
        if new is None:
            revision = 1 + max((int((r.metadata.annotations or {}).get(REVISION, "0")) for r in owned), default=0)
            tmpl = d.spec.template
            labels = {**(tmpl.metadata.labels or {}), HASH_LABEL: h}
            sel = d.spec.selector or LabelSelector(matchLabels=dict(tmpl.metadata.labels or {}))
            rs = ReplicaSet(
                metadata=ObjectMeta(
                    name=rs_name,
                    namespace=ns,
                    labels=labels,
                    annotations={**annotations, REVISION: str(revision)},
                    ownerReferences=[owner_ref(d)],
                ),
                spec=ReplicaSetSpec(
                    replicas=replicas,
                    minReadySeconds=d.spec.minReadySeconds,
                    selector=replace(sel, matchLabels={**(sel.matchLabels or {}), HASH_LABEL: h}),
                    template=PodTemplateSpec(metadata=replace(tmpl.metadata, labels=labels), spec=tmpl.spec),
                ),
            )
            try:
                new = self.store.create(rs)
            except Conflict:
                return False  # a ReplicaSet of that name that is not ours; leave it alone
            owned.append(new)
            if replicas:
                self._scaled(d, rs_name, 0, replicas)
            changed = True
        else:
            assert isinstance(new, ReplicaSet)
            ann = {**(new.metadata.annotations or {}), **annotations}
            # An older ReplicaSet that is new again (``kubectl rollout undo``) becomes the newest
            # revision; the numbers it had are kept in its revision history, as upstream keeps them.
            newest = max((_revision(r) for r in owned if r.name != rs_name), default=0)
            if _revision(new) <= newest and newest:
                if REVISION in ann:
                    past = ann.get(REVISION_HISTORY)
                    ann[REVISION_HISTORY] = f"{past},{ann[REVISION]}" if past else ann[REVISION]
                ann[REVISION] = str(newest + 1)
            if new.spec.replicas != replicas or ann != new.metadata.annotations:
                before = new.spec.replicas if new.spec.replicas is not None else 1
                if before != replicas:
                    self._scaled(d, rs_name, before, replicas)
                new = self.store.update(
                    replace(
                        new,
                        metadata=replace(new.metadata, annotations=ann),
                        spec=replace(new.spec, replicas=replicas),
                    )
                )
                changed = True
        for r in owned:
            assert isinstance(r, ReplicaSet)
            if r.name != rs_name and r.spec.replicas != 0:
                self.store.update(replace(r, spec=replace(r.spec, replicas=0)))
                self._scaled(d, r.name, r.spec.replicas if r.spec.replicas is not None else 1, 0)
                changed = True
        return self._status(d, new, replicas, unavail) or changed

    def _status(self, d: Deployment, new: object, replicas: int, max_unavailable: int) -> bool:
        owned = [r for r in self.store.list("ReplicaSet", d.namespace)[0] if _owned_by(r, d.metadata.uid)]
        total = ready = available = updated = 0
        for r in owned:
            assert isinstance(r, ReplicaSet)
            st = r.status or ReplicaSetStatus()
            total += st.replicas
            ready += st.readyReplicas or 0
            available += st.availableReplicas or 0
            if isinstance(new, ReplicaSet) and r.name == new.name:
                updated = st.replicas
        ok = available >= replicas - max_unavailable
        rs_name = new.name if isinstance(new, ReplicaSet) else ""
        done = updated == replicas and total == replicas and available >= replicas
        conds = [
            Condition(
                type="Available",
                status="True" if ok else "False",
                reason="MinimumReplicasAvailable" if ok else "MinimumReplicasUnavailable",
                message="Deployment has minimum availability."
                if ok
                else "Deployment does not have minimum availability.",
                lastUpdateTime="",
            ),
            Condition(
                type="Progressing",
                status="True",
                reason="NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                message=f'ReplicaSet "{rs_name}" has successfully progressed.'
                if done
                else f'ReplicaSet "{rs_name}" is progressing.',
                lastUpdateTime="",
            ),
        ]
        old = d.status or DeploymentStatus()
        status = DeploymentStatus(
            observedGeneration=d.metadata.generation,
            replicas=total or None,
            updatedReplicas=updated or None,
            readyReplicas=ready or None,
            availableReplicas=available or None,
            unavailableReplicas=max(replicas - available, 0) or None,
            conditions=merge_conditions(old.conditions, conds, self._clock.now()),
            collisionCount=old.collisionCount,
        )
        # The Deployment carries its newest ReplicaSet's revision, as upstream's controller writes
        # it (``kubectl rollout undo`` patches the annotations it finds there).
        annotations = d.metadata.annotations
        if isinstance(new, ReplicaSet) and REVISION in (new.metadata.annotations or {}):
            rev = (new.metadata.annotations or {})[REVISION]
            if (annotations or {}).get(REVISION) != rev:
                annotations = {**(annotations or {}), REVISION: rev}
        if status == d.status and annotations is d.metadata.annotations:
            return False
        meta = replace(d.metadata, annotations=annotations)
        self.store.update(replace(d, metadata=meta, status=status), check_rv=False)
        return True


# --- ReplicaSet -> Pods ------------------------------------------------------------------------

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _active(p: Pod) -> bool:
    return not p.terminating and (p.status.phase if p.status else None) not in ("Succeeded", "Failed")


def deletion_order(pods: list[Pod]) -> list[Pod]:
    """Pods in the order a scale-down removes them, after Kubernetes' ranking: unscheduled,
    then pending, then unready first; then pods sharing a node with more siblings; then the
    most restarted; then the newest."""
    per_node: dict[str, int] = {}
    for p in pods:
        if p.spec.nodeName:
            per_node[p.spec.nodeName] = per_node.get(p.spec.nodeName, 0) + 1

    def restarts(p: Pod) -> int:
        return sum(c.restartCount for c in (p.status.containerStatuses if p.status else None) or [])

    # stable sorts, least significant criterion first
    out = sorted(pods, key=lambda p: p.name, reverse=True)
    out.sort(key=lambda p: p.metadata.creationTimestamp or "", reverse=True)
    out.sort(key=restarts, reverse=True)
    out.sort(key=lambda p: per_node.get(p.spec.nodeName or "", 0), reverse=True)
    out.sort(key=lambda p: p.ready)
    out.sort(key=lambda p: _PHASE_RANK.get((p.status.phase if p.status else None) or "Pending", 1))
    out.sort(key=lambda p: bool(p.spec.nodeName))
    return out


class ReplicaSetController:
    name = "replicaset"
    kinds = frozenset({"ReplicaSet", "Pod"})

    def __init__(self, store: Store, rng: random.Random, events: EventSink = NO_EVENTS) -> None:
        self.store = store
        self.rng = rng
        self.events = events
        self._index = OwnedPods(store, "ReplicaSet")

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        if isinstance(o, ReplicaSet):
            return () if ev.type == DELETED else (o.key,)
        owner = self._index.observe(ev)
        return (owner,) if owner else ()

    def start_keys(self) -> Iterable[str]:
        return ()

    def _new_pod(self, rs: ReplicaSet) -> Pod:
        tmpl = rs.spec.template
        spec = msgspec.json.decode(msgspec.json.encode(tmpl.spec), type=PodSpec)
        meta = ObjectMeta(
            namespace=rs.namespace,
            labels=dict(tmpl.metadata.labels or {}),
            annotations=dict(tmpl.metadata.annotations) if tmpl.metadata.annotations else None,
            ownerReferences=[owner_ref(rs)],
        )
        while True:
            name = f"{rs.name}-{random_suffix(self.rng)}"
            try:
                self.store.get("Pod", rs.namespace, name)
            except NotFound:
                break
        return Pod(metadata=replace(meta, name=name), spec=spec, status=PodStatus(phase="Pending"))

    def reconcile(self, key: str) -> bool:
        ns, name = split_key(key)
        try:
            rs = self.store.get("ReplicaSet", ns, name)
        except NotFound:
            return False
        assert isinstance(rs, ReplicaSet)
        pods = self._index.pods(rs.metadata.uid)
        active = [p for p in pods if _active(p)]
        want = rs.spec.replicas if rs.spec.replicas is not None else 1
        if rs.metadata.deletionTimestamp:
            want = len(active)  # being deleted: the garbage collector owns its pods, status only
        changed = False
        if len(active) < want:
            for _ in range(want - len(active)):
                pod = self.store.create(self._new_pod(rs))
                assert isinstance(pod, Pod)
                active.append(pod)
                self.events.event(
                    rs, NORMAL, "SuccessfulCreate", f"Created pod: {pod.name}", component="replicaset-controller"
                )
            changed = True
        elif len(active) > want:
            doomed = deletion_order(active)[: len(active) - want]
            for p in doomed:
                self.store.delete("Pod", p.namespace, p.name)
                self.events.event(
                    rs, NORMAL, "SuccessfulDelete", f"Deleted pod: {p.name}", component="replicaset-controller"
                )
            gone = {p.name for p in doomed}
            active = [p for p in active if p.name not in gone]
            changed = True
        tmpl_labels = rs.spec.template.metadata.labels or {}
        ready = sum(1 for p in active if p.ready)
        status = ReplicaSetStatus(
            replicas=len(active),
            fullyLabeledReplicas=sum(1 for p in active if tmpl_labels.items() <= p.labels.items()) or None,
            readyReplicas=ready or None,
            availableReplicas=ready or None,
            observedGeneration=rs.metadata.generation,
        )
        if status != rs.status:
            self.store.update(replace(rs, status=status), check_rv=False)
            changed = True
        return changed


def selects(rs: ReplicaSet, pod: Pod) -> bool:
    return selector_matches(rs.spec.selector, pod.labels)
