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
as the controller has seen it (after a daemon restart, from the current one). kins has no
storage: ``volumeClaimTemplates`` are accepted, no claims are made, and each pod gets an
``emptyDir`` of the claim's name in its place so the containers' mounts still resolve; a
Warning Event says so.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.apps import StatefulSet, StatefulSetStatus
from ..api.core import EmptyDirVolumeSource, Pod, PodSpec, PodStatus, PodTemplateSpec, Volume
from ..api.meta import ObjectMeta
from ..store.base import DELETED, Store, WatchEvent
from .base import owner_ref, split_key
from .deployment import pod_template_hash
from .events import NO_EVENTS, NORMAL, WARNING, EventSink
from .owners import OwnedPods

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
COMPONENT = "statefulset-controller"
NO_STORAGE = (
    "kins has no storage: volumeClaimTemplates {names} are not provisioned; "
    "each pod gets an emptyDir of the claim's name instead"
)


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


def _claim_names(sts: StatefulSet) -> list[str]:
    return [str((t.get("metadata") or {}).get("name") or "") for t in sts.spec.volumeClaimTemplates or []]


class StatefulSetController:
    name = "statefulset"
    kinds = frozenset({"StatefulSet", "Pod"})

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
        self._warned: set[str] = set()  # uids told that their claims are not provisioned

    # --- watch ---------------------------------------------------------------------------------

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        if isinstance(o, StatefulSet):
            if ev.type != DELETED:
                self._uid[o.key] = o.metadata.uid or ""
                self._templates.setdefault(revision_name(o), o.spec.template)
            return (o.key,)
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
        claims = _claim_names(sts)
        if claims:
            have = {v.name for v in spec.volumes or []}
            extra = [Volume(name=c, emptyDir=EmptyDirVolumeSource()) for c in claims if c and c not in have]
            spec = replace(spec, volumes=[*(spec.volumes or []), *extra])
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

    def _create(self, sts: StatefulSet, i: int, revision: str) -> bool:
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
            # The set is gone: the garbage collector deletes its pods (or they were orphaned).
            self._index.forget(self._uid.pop(key, ""))
            return False
        assert isinstance(sts, StatefulSet)
        if sts.metadata.deletionTimestamp:
            return False  # being deleted: the garbage collector owns its pods now
        uid = sts.metadata.uid or ""
        changed = False
        claims = _claim_names(sts)
        if claims and uid not in self._warned:
            self._warned.add(uid)
            self.events.event(
                sts, WARNING, "VolumeClaimsIgnored", NO_STORAGE.format(names=", ".join(claims)), component=COMPONENT
            )
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
