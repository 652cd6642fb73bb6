"""StatefulSet -> Pods ``<name>-0 .. <name>-(N-1)``, as the StatefulSet controller keeps them.

Pods have stable names and DNS identities (``spec.hostname`` = the pod's name, ``spec.subdomain``
= ``spec.serviceName``), so a headless Service answers ``web-0.nginx.<ns>.svc.<domain>``. With
``OrderedReady`` (the default) a pod is created only once every lower ordinal is Running and
Ready, and scale-down removes the highest ordinal first, one at a time; ``Parallel`` does both
at once. A template change is rolled out from the highest ordinal down to ``partition``, one pod
at a time, each deleted and recreated under the same name (``RollingUpdate``), or left to the
user's deletes (``OnDelete``).

kins keeps no ControllerRevision objects: the revision name (``<name>-<hash of the template>``)
is the ``controller-revision-hash`` label, and the templates of revisions still in use are
remembered in memory, so a pod below the partition is recreated from its old template as long
as the controller has seen it (after a daemon restart, from the current one).

``volumeClaimTemplates`` become claims ``<template>-<set>-<ordinal>``, made before the pod (with
the default StorageClass when the template names none) and mounted by it in place of any pod
volume of the template's name. Claims outlive their pods, so a recreated pod finds its data
again; ``persistentVolumeClaimRetentionPolicy`` decides whether they are deleted with the set
(``whenDeleted: Delete``: they are owned by it) or when scale-down removes their ordinal
(``whenScaled: Delete``); both default to ``Retain``.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.apps import StatefulSet, StatefulSetStatus
from ..api.core import PersistentVolumeClaimVolumeSource, Pod, PodSpec, PodStatus, PodTemplateSpec, Volume
from ..api.defaulting import apply_defaults
from ..api.meta import ObjectMeta
from ..api.storage import PersistentVolumeClaim, StorageClass
from ..api.volumes import admit_claim
from ..store.base import DELETED, Store, WatchEvent
from .base import owner_ref, split_key
from .deployment import pod_template_hash
from .events import NO_EVENTS, NORMAL, EventSink
from .owners import OwnedPods

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
COMPONENT = "statefulset-controller"


def revision_name(sts: StatefulSet, template: PodTemplateSpec | None = None) -> str:
    """The ControllerRevision name a StatefulSet's template would get: ``<name>-<hash>``."""
    tmpl = template if template is not None else sts.spec.template
    return f"{sts.name}-{pod_template_hash(tmpl, sts.status.collisionCount if sts.status else None)}"


def ordinal(sts_name: str, pod_name: str) -> int | None:
    """The ordinal of ``<sts>-<n>``, None for a name that is not one of the set's."""
    prefix, _, n = pod_name.rpartition("-")
    if prefix != sts_name or not n.isdigit() or (n != "0" and n.startswith("0")):
        return None
    return int(n)


def _active(p: Pod) -> bool:
    return (p.status.phase if p.status else None) not in ("Succeeded", "Failed")


def running_and_ready(p: Pod) -> bool:
    return not p.terminating and (p.status.phase if p.status else None) == "Running" and p.ready


def _partition(sts: StatefulSet) -> int:
    ru = sts.spec.updateStrategy.rollingUpdate if sts.spec.updateStrategy else None
    v = ru.partition if ru else None
    return v if v is not None and v > 0 else 0


def _strategy(sts: StatefulSet) -> str:
    return (sts.spec.updateStrategy.type if sts.spec.updateStrategy else None) or "RollingUpdate"


def claim_templates(sts: StatefulSet) -> list[PersistentVolumeClaim]:
    """The set's ``volumeClaimTemplates`` as claims (those without a name are skipped)."""
    out = []
    for t in sts.spec.volumeClaimTemplates or []:
        pvc = msgspec.convert({**t, "apiVersion": "v1", "kind": "PersistentVolumeClaim"}, PersistentVolumeClaim)
        if pvc.name:
            out.append(pvc)
    return out


def claim_name(template: str, sts_name: str, i: int) -> str:
    return f"{template}-{sts_name}-{i}"


def _retention(sts: StatefulSet) -> tuple[str, str]:
    """(whenDeleted, whenScaled)."""
    p = sts.spec.persistentVolumeClaimRetentionPolicy
    return ((p.whenDeleted if p else None) or "Retain", (p.whenScaled if p else None) or "Retain")


class StatefulSetController:
    name = "statefulset"
    kinds = frozenset({"StatefulSet", "Pod", "PersistentVolumeClaim"})

    def __init__(self, store: Store, events: EventSink = NO_EVENTS, *, paced: bool = True) -> None:
        self.store = store
        self.events = events
        # Offline, every bound pod starts at once, so waiting pod by pod for readiness would
        # change nothing but the number of rounds (one per pod): unpaced, the controller creates,
        # deletes and replaces every pod it may in one go and reaches the same end state.
        self.paced = paced
        self._index = OwnedPods(store, "StatefulSet")
        self._uid: dict[str, str] = {}  # set key -> uid, to clean up after a delete
        self._templates: dict[str, PodTemplateSpec] = {}  # revision name -> template

    # --- watch ---------------------------------------------------------------------------------

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        if isinstance(o, StatefulSet):
            if ev.type != DELETED:
                self._uid[o.key] = o.metadata.uid or ""
                self._templates.setdefault(revision_name(o), o.spec.template)
            return (o.key,)
        if isinstance(o, PersistentVolumeClaim):
            # A claim owned by a set (whenDeleted: Delete) is looked at when its set is gone.
            refs = o.metadata.ownerReferences or []
            return [f"{o.namespace}/{r.name}" for r in refs if r.kind == "StatefulSet" and ev.type != DELETED]
        owner = self._index.observe(ev)
        return (owner,) if owner else ()

    def start_keys(self) -> Iterable[str]:
        return ()

    # --- pods ----------------------------------------------------------------------------------

    def new_pod(self, sts: StatefulSet, i: int, revision: str) -> Pod:
        """Pod ``i`` of the set from the template of ``revision``."""
        tmpl = self._templates.get(revision, sts.spec.template)
        spec = msgspec.json.decode(msgspec.json.encode(tmpl.spec), type=PodSpec)
        name = f"{sts.name}-{i}"
        templates = [t.name for t in claim_templates(sts)]
        if templates:
            kept = [v for v in spec.volumes or [] if v.name not in templates]
            claims = [
                Volume(
                    name=t,
                    persistentVolumeClaim=PersistentVolumeClaimVolumeSource(claimName=claim_name(t, sts.name, i)),
                )
                for t in templates
            ]
            spec = replace(spec, volumes=[*kept, *claims])
        spec = replace(spec, hostname=name, subdomain=sts.spec.serviceName or None)
        labels = {
            **(tmpl.metadata.labels or {}),
            REVISION_LABEL: revision,
            POD_NAME_LABEL: name,
            POD_INDEX_LABEL: str(i),
        }
        meta = ObjectMeta(
            name=name,
            namespace=sts.namespace,
            labels=labels,
            annotations=dict(tmpl.metadata.annotations) if tmpl.metadata.annotations else None,
            ownerReferences=[owner_ref(sts)],
        )
        return Pod(metadata=meta, spec=spec, status=PodStatus(phase="Pending"))

    def _claims(self, sts: StatefulSet, i: int) -> bool:
        """Make pod ``i``'s missing claims; False while one of them is being deleted (the pod
        waits for it to go and be made anew)."""
        templates = claim_templates(sts)
        if not templates:
            return True
        classes = [c for c in self.store.list("StorageClass")[0] if isinstance(c, StorageClass)]
        owners = [owner_ref(sts)] if _retention(sts)[0] == "Delete" else None
        ok = True
        for t in templates:
            name = claim_name(t.name, sts.name, i)
            try:
                have = self.store.get("PersistentVolumeClaim", sts.namespace, name)
            except NotFound:
                have = None
            if have is not None:
                ok &= not have.metadata.deletionTimestamp
                continue
            labels = {
                **(t.metadata.labels or {}),
                **((sts.spec.selector.matchLabels if sts.spec.selector else None) or {}),
            }
            meta = ObjectMeta(
                name=name,
                namespace=sts.namespace,
                labels=labels or None,
                annotations=t.metadata.annotations,
                ownerReferences=owners,
            )
            # As the API would store it: the default class, the finalizer, the defaults.
            pvc = apply_defaults(admit_claim(replace(t, metadata=meta, status=None), classes))
            try:
                self.store.create(pvc)
            except Conflict:
                continue
            self.events.event(
                sts,
                NORMAL,
                "SuccessfulCreate",
                f"create Claim {name} Pod {sts.name}-{i} in StatefulSet {sts.name} success",
                component=COMPONENT,
            )
        return ok

    def _delete_claims(self, sts: StatefulSet, ordinals: Iterable[int]) -> bool:
        changed = False
        for i in ordinals:
            for t in claim_templates(sts):
                name = claim_name(t.name, sts.name, i)
                try:
                    self.store.delete("PersistentVolumeClaim", sts.namespace, name)
                except NotFound:
                    continue
                changed = True
                self.events.event(
                    sts,
                    NORMAL,
                    "SuccessfulDelete",
                    f"delete Claim {name} in StatefulSet {sts.name} successful",
                    component=COMPONENT,
                )
        return changed

    def _create(self, sts: StatefulSet, i: int, revision: str) -> bool:
        if not self._claims(sts, i):
            return False
        try:
            self.store.create(self.new_pod(sts, i, revision))
        except Conflict:
            return False  # the old pod of that name is still on its way out
        self.events.event(
            sts,
            NORMAL,
            "SuccessfulCreate",
            f"create Pod {sts.name}-{i} in StatefulSet {sts.name} successful",
            component=COMPONENT,
        )
        return True

    def _delete(self, sts: StatefulSet, p: Pod) -> None:
        try:
            self.store.delete("Pod", p.namespace, p.name)
        except NotFound:
            return
        self.events.event(
            sts,
            NORMAL,
            "SuccessfulDelete",
            f"delete Pod {p.name} in StatefulSet {sts.name} successful",
            component=COMPONENT,
        )

    # --- reconcile -----------------------------------------------------------------------------

    def reconcile(self, key: str) -> bool:
        ns, name = split_key(key)
        try:
            sts = self.store.get("StatefulSet", ns, name)
        except NotFound:
            # The set is gone: the garbage collector deletes its pods (or they were orphaned), and
            # the claims whenDeleted: Delete made it the owner of.
            self._index.forget(self._uid.pop(key, ""))
            return False
        assert isinstance(sts, StatefulSet)
        if sts.metadata.deletionTimestamp:
            return False  # being deleted: the garbage collector owns its pods now
        uid = sts.metadata.uid or ""
        changed = False
        replicas = sts.spec.replicas if sts.spec.replicas is not None else 1
        parallel = sts.spec.podManagementPolicy == "Parallel" or not self.paced
        update_rev = revision_name(sts)
        self._templates[update_rev] = sts.spec.template
        current_rev = (sts.status.currentRevision if sts.status else None) or update_rev
        partition = _partition(sts)
        rolling = _strategy(sts) == "RollingUpdate"

        by_ord: dict[int, Pod] = {}
        strays: list[Pod] = []
        for p in self._index.pods(uid):
            i = ordinal(sts.name, p.name)
            if i is None:
                strays.append(p)
            else:
                by_ord[i] = p
        for p in strays:  # owned, but not named as the set names its pods
            if not p.terminating:
                self._delete(sts, p)
                changed = True

        # Failed or finished pods are deleted, to be recreated under the same name.
        for i, p in sorted(by_ord.items()):
            if not _active(p) and not p.terminating:
                self._delete(sts, p)
                del by_ord[i]
                changed = True
                if not parallel:
                    break

        # Create the missing replicas, lowest ordinal first.
        blocked = False
        for i in range(replicas):
            have = by_ord.get(i)
            if have is None:
                if blocked:
                    break
                # Below the partition a pod keeps the revision it had (the current one).
                rev = current_rev if rolling and i < partition else update_rev
                if self._create(sts, i, rev):
                    changed = True
                if not parallel:
                    blocked = True
                    break
                continue
            if not parallel and not running_and_ready(have):
                blocked = True
                break

        # whenScaled: Delete: the claims of ordinals scaled away go once their pods are gone.
        if _retention(sts)[1] == "Delete":
            changed |= self._delete_claims(sts, self._scaled_away(sts, replicas, by_ord))

        # Scale down: the highest ordinals beyond replicas, highest first.
        condemned = sorted((i for i in by_ord if i >= replicas), reverse=True)
        if condemned and not blocked:
            for i in condemned:
                p = by_ord[i]
                if p.terminating:
                    if parallel:
                        continue
                    break
                self._delete(sts, p)
                changed = True
                if not parallel:
                    break
            blocked = True

        # Rolling update: the highest ordinal at or above the partition that is not on the
        # update revision, one at a time once every pod is Running and Ready.
        live = [by_ord[i] for i in range(replicas) if i in by_ord]
        if rolling and not blocked and len(live) == replicas and all(running_and_ready(p) for p in live):
            for i in range(replicas - 1, partition - 1, -1):
                p = by_ord[i]
                if p.labels.get(REVISION_LABEL) != update_rev:
                    self._delete(sts, p)
                    changed = True
                    if self.paced:
                        break
        return self._status(sts, current_rev, update_rev) or changed

    def _scaled_away(self, sts: StatefulSet, replicas: int, by_ord: dict[int, Pod]) -> list[int]:
        """Ordinals at or beyond ``replicas`` that still have claims but no pod."""
        templates = {t.name for t in claim_templates(sts)}
        out = set()
        for c in self.store.list("PersistentVolumeClaim", sts.namespace)[0]:
            tmpl, _, rest = c.name.partition(f"-{sts.name}-")
            if tmpl not in templates or not rest.isdigit() or c.metadata.deletionTimestamp:
                continue
            if int(rest) >= replicas and int(rest) not in by_ord:
                out.add(int(rest))
        return sorted(out)

    def _status(self, sts: StatefulSet, current_rev: str, update_rev: str) -> bool:
        pods = [p for p in self._index.pods(sts.metadata.uid or "") if ordinal(sts.name, p.name) is not None]
        counted = [p for p in pods if _active(p) and not p.terminating]
        ready = sum(1 for p in counted if running_and_ready(p))
        current = sum(1 for p in counted if p.labels.get(REVISION_LABEL) == current_rev)
        updated = sum(1 for p in counted if p.labels.get(REVISION_LABEL) == update_rev)
        replicas = sts.spec.replicas if sts.spec.replicas is not None else 1
        # A finished rollout makes the update revision the current one.
        if updated == replicas and len(counted) == replicas and ready == replicas:
            current_rev, current = update_rev, updated
        old = sts.status or StatefulSetStatus()
        for rev in list(self._templates):
            unused = not any(p.labels.get(REVISION_LABEL) == rev for p in pods)
            if rev not in (current_rev, update_rev) and rev.startswith(f"{sts.name}-") and unused:
                del self._templates[rev]
        status = StatefulSetStatus(
            observedGeneration=sts.metadata.generation,
            replicas=len(counted),
            readyReplicas=ready,
            currentReplicas=current,
            updatedReplicas=updated,
            availableReplicas=ready,
            currentRevision=current_rev,
            updateRevision=update_rev,
            collisionCount=old.collisionCount if old.collisionCount is not None else 0,
            conditions=old.conditions,
        )
        if status == sts.status:
            return False
        self.store.update(replace(sts, status=status), check_rv=False)
        return True
