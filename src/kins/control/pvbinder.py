"""The PersistentVolume controller's binder: claims meet volumes.

A claim binds to a volume pre-bound to it (the volume's ``claimRef``), to the one it names
(``spec.volumeName``), or to the smallest Available volume that serves it (class, size, access
modes, volume mode, selector). A claim of a ``WaitForFirstConsumer`` class waits until the
scheduler has picked a node for a pod using it (``volume.kubernetes.io/selected-node``), and
then takes only a volume that node can reach. Without a volume, a claim of a class with a
provisioner is handed to that provisioner (``volume.kubernetes.io/storage-provisioner``).

Phases as upstream: claims Pending, Bound or Lost (their volume is gone); volumes Available,
Bound, or Released once their claim is gone (the provisioner deletes a Released volume whose
policy is ``Delete``; others are kept). Every change is a full pass over claims and volumes:
clusters hold few of them.
"""

from __future__ import annotations

from collections.abc import Iterable

from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.core import Node, ObjectReference, Pod
from ..api.meta import Object
from ..api.storage import (
    PersistentVolume,
    PersistentVolumeClaim,
    PersistentVolumeClaimStatus,
    PersistentVolumeStatus,
    StorageClass,
)
from ..api.volumes import (
    BETA_STORAGE_PROVISIONER,
    BIND_COMPLETED,
    BOUND_BY_CONTROLLER,
    HOSTNAME_LABEL,
    NO_PROVISIONER,
    SELECTED_NODE,
    STORAGE_PROVISIONER,
    annotate,
    claim_class,
    pod_claims,
    pv_fits_node,
    pv_matches_claim,
    quantity,
)
from ..store.base import Clock, Store, WatchEvent
from .events import NO_EVENTS, NORMAL, WARNING, EventSink

ALL = "*"
COMPONENT = "persistentvolume-controller"
NO_CLASS = "no persistent volumes available for this claim and no storage class is set"
CLAIM_LOST = "Bound claim has lost its PersistentVolume. Data on the volume is lost!"


def claim_ref(pvc: PersistentVolumeClaim) -> ObjectReference:
    return ObjectReference(
        kind="PersistentVolumeClaim",
        namespace=pvc.namespace,
        name=pvc.name,
        uid=pvc.metadata.uid,
        apiVersion="v1",
        resourceVersion=pvc.metadata.resourceVersion,
    )


def refers_to(ref: ObjectReference | None, pvc: PersistentVolumeClaim) -> bool:
    """A volume's ``claimRef`` names this claim (a ref without uid is a pre-binding)."""
    if ref is None or ref.name != pvc.name or (ref.namespace or "") != pvc.namespace:
        return False
    return not ref.uid or ref.uid == pvc.metadata.uid


def binding_mode(sc: StorageClass | None) -> str:
    return (sc.volumeBindingMode if sc is not None else None) or "Immediate"


def find_volume(
    pvc: PersistentVolumeClaim, volumes: Iterable[PersistentVolume], node: Node | None = None
) -> PersistentVolume | None:
    """The volume ``pvc`` should bind to: one pre-bound to it, else the smallest Available one
    that serves it (and that ``node``, when given, can reach)."""
    best: PersistentVolume | None = None
    for pv in volumes:
        if pv.metadata.deletionTimestamp:
            continue
        if node is not None and not pv_fits_node(pv, {HOSTNAME_LABEL: node.name, **node.labels}, node.name):
            continue
        ref = pv.spec.claimRef
        if ref is not None:
            if refers_to(ref, pvc) and pv_matches_claim(pv, pvc) is None:
                return pv
            continue
        if (pv.status.phase if pv.status else None) not in (None, "Available"):
            continue
        if pv_matches_claim(pv, pvc) is not None:
            continue
        size = quantity((pv.spec.capacity or {}).get("storage"))
        if best is None or (size, pv.name) < (quantity((best.spec.capacity or {}).get("storage")), best.name):
            best = pv
    return best


class PersistentVolumeBinder:
    name = "pv-binder"
    kinds = frozenset({"PersistentVolume", "PersistentVolumeClaim", "StorageClass", "Pod"})

    def __init__(self, store: Store, events: EventSink = NO_EVENTS) -> None:
        self.store = store
        self.events = events
        self._clock = Clock()
        self._told: dict[str, str] = {}  # claim uid -> the last reason it was told (once each)
        self._unscheduled: dict[str, list[str]] | None = None  # claim key -> its unscheduled pods

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        if isinstance(o, Pod):
            # Only what the waiting claims' events name: pods with claims, not yet scheduled.
            return (ALL,) if pod_claims(o) and not o.spec.nodeName else ()
        return (ALL,)

    def start_keys(self) -> Iterable[str]:
        return (ALL,)

    def _event(self, obj: Object, type: str, reason: str, message: str) -> None:
        uid = obj.metadata.uid or obj.key
        if self._told.get(uid) == reason + message:
            return
        self._told[uid] = reason + message
        self.events.event(obj, type, reason, message, component=COMPONENT)

    def reconcile(self, key: str) -> bool:
        classes = {c.name: c for c in self.store.list("StorageClass")[0] if isinstance(c, StorageClass)}
        claims = [c for c in self.store.list("PersistentVolumeClaim")[0] if isinstance(c, PersistentVolumeClaim)]
        claims.sort(key=lambda c: (c.metadata.creationTimestamp or "", c.key))
        self._unscheduled = None
        volumes = {v.name: v for v in self.store.list("PersistentVolume")[0] if isinstance(v, PersistentVolume)}
        changed = False
        for pvc in claims:
            changed |= self._sync_claim(pvc, volumes, classes)
        by_key = {c.key: c for c in self.store.list("PersistentVolumeClaim")[0] if isinstance(c, PersistentVolumeClaim)}
        for pv in list(volumes.values()):
            changed |= self._sync_volume(pv, by_key)
        live = {c.metadata.uid for c in by_key.values()}
        for uid in [u for u in self._told if u not in live]:
            del self._told[uid]
        return changed

    # --- claims --------------------------------------------------------------------------------

    def _sync_claim(
        self, pvc: PersistentVolumeClaim, volumes: dict[str, PersistentVolume], classes: dict[str, StorageClass]
    ) -> bool:
        if pvc.spec.volumeName:
            return self._sync_named(pvc, volumes)
        if pvc.metadata.deletionTimestamp:
            return False
        cls = claim_class(pvc)
        sc = classes.get(cls)
        ann = pvc.metadata.annotations or {}
        node: Node | None = None
        if binding_mode(sc) == "WaitForFirstConsumer":
            selected = ann.get(SELECTED_NODE)
            pre = next((v for v in volumes.values() if refers_to(v.spec.claimRef, pvc)), None)
            if not selected and pre is None:
                waiting = self._pods_waiting(pvc)
                if not waiting:
                    reason, msg = "WaitForFirstConsumer", "waiting for first consumer to be created before binding"
                elif len(waiting) == 1:
                    reason, msg = "WaitForPodScheduled", f"waiting for pod {waiting[0]} to be scheduled"
                else:
                    reason, msg = "WaitForPodScheduled", f"waiting for pods {','.join(waiting)} to be scheduled"
                self._event(pvc, NORMAL, reason, msg)
                return self._set_claim_phase(pvc, "Pending")
            if selected:
                try:
                    got = self.store.get("Node", None, selected)
                    node = got if isinstance(got, Node) else None
                except NotFound:
                    node = None
        pv = find_volume(pvc, volumes.values(), node)
        if pv is not None:
            return self._bind(pvc, pv, volumes)
        if sc is not None and sc.provisioner and sc.provisioner != NO_PROVISIONER:
            if ann.get(STORAGE_PROVISIONER) != sc.provisioner:
                meta = annotate(
                    pvc.metadata, {STORAGE_PROVISIONER: sc.provisioner, BETA_STORAGE_PROVISIONER: sc.provisioner}
                )
                self._event(
                    pvc,
                    NORMAL,
                    "ExternalProvisioning",
                    f"Waiting for a volume to be created either by the external provisioner '{sc.provisioner}' "
                    "or manually by the system administrator. If volume creation is delayed, please verify that "
                    "the provisioner is running and correctly registered.",
                )
                return self._write(replace(pvc, metadata=meta)) is not None
            return self._set_claim_phase(pvc, "Pending")
        if not cls:
            self._event(
                pvc,
                WARNING,
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
            )
        elif sc is None:
            self._event(pvc, WARNING, "ProvisioningFailed", f'storageclass.storage.k8s.io "{cls}" not found')
        else:
            self._event(pvc, WARNING, "FailedBinding", "no persistent volumes available for this claim")
        return self._set_claim_phase(pvc, "Pending")

    def _pods_waiting(self, pvc: PersistentVolumeClaim) -> list[str]:
        """The pods not yet scheduled that use ``pvc`` (read once a pass, when first needed)."""
        if self._unscheduled is None:
            self._unscheduled = {}
            for p in self.store.list("Pod")[0]:
                if isinstance(p, Pod) and not p.spec.nodeName and not p.terminating:
                    for c in pod_claims(p):
                        self._unscheduled.setdefault(f"{p.namespace}/{c}", []).append(p.name)
        return sorted(self._unscheduled.get(pvc.key, []))

    def _sync_named(self, pvc: PersistentVolumeClaim, volumes: dict[str, PersistentVolume]) -> bool:
        """A claim that names its volume: bound, still binding, or lost."""
        name = pvc.spec.volumeName or ""
        pv = volumes.get(name)
        ann = pvc.metadata.annotations or {}
        if pv is None:
            if ann.get(BIND_COMPLETED) == "yes":
                if (pvc.status.phase if pvc.status else None) != "Lost":
                    self._event(
                        pvc,
                        WARNING,
                        "ClaimLost",
                        "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
                    )
                return self._set_claim_phase(pvc, "Lost")
            return self._set_claim_phase(pvc, "Pending")
        ref = pv.spec.claimRef
        if ref is None:
            why = pv_matches_claim(pv, pvc)
            if why is not None:
                self._event(pvc, WARNING, "FailedBinding", f'Cannot bind to requested volume "{name}": {why}')
                return self._set_claim_phase(pvc, "Pending")
            return self._bind(pvc, pv, volumes)
        if refers_to(ref, pvc):
            return self._bind(pvc, pv, volumes)
        self._event(pvc, WARNING, "FailedBinding", f'volume "{name}" already bound to a different claim.')
        return self._set_claim_phase(pvc, "Pending")

    def _bind(self, pvc: PersistentVolumeClaim, pv: PersistentVolume, volumes: dict[str, PersistentVolume]) -> bool:
        """Volume first (its claimRef), then the claim (volumeName, annotations, status), as the
        controller orders it so that a crash in between leaves a pre-bound volume."""
        changed = False
        if pv.spec.claimRef is None or pv.spec.claimRef.uid != pvc.metadata.uid:
            meta = pv.metadata
            if pv.spec.claimRef is None:
                meta = annotate(meta, {BOUND_BY_CONTROLLER: "yes"})
            new_pv = replace(pv, metadata=meta, spec=replace(pv.spec, claimRef=claim_ref(pvc)))
            written = self._write(new_pv)
            if written is None or not isinstance(written, PersistentVolume):
                return False
            pv = written
            volumes[pv.name] = pv
            changed = True
        if (pv.status.phase if pv.status else None) != "Bound":
            st = replace(
                pv.status or PersistentVolumeStatus(),
                phase="Bound",
                reason=None,
                message=None,
                lastPhaseTransitionTime=self._clock.now(),
            )
            written = self._write(replace(pv, status=st))
            if isinstance(written, PersistentVolume):
                volumes[pv.name] = pv = written
            changed = True
        ann = dict(pvc.metadata.annotations or {})
        want_ann = {BIND_COMPLETED: "yes"}
        if not pvc.spec.volumeName:
            want_ann[BOUND_BY_CONTROLLER] = "yes"
        status = replace(
            pvc.status or PersistentVolumeClaimStatus(),
            phase="Bound",
            accessModes=pv.spec.accessModes,
            capacity=pv.spec.capacity,
        )
        new = replace(
            pvc,
            metadata=replace(pvc.metadata, annotations={**ann, **want_ann}),
            spec=replace(pvc.spec, volumeName=pv.name),
            status=status,
        )
        if new != pvc:
            changed |= self._write(new) is not None
        return changed

    def _set_claim_phase(self, pvc: PersistentVolumeClaim, phase: str) -> bool:
        if pvc.status is not None and pvc.status.phase == phase:
            return False
        return (
            self._write(replace(pvc, status=replace(pvc.status or PersistentVolumeClaimStatus(), phase=phase)))
            is not None
        )

    # --- volumes -------------------------------------------------------------------------------

    def _sync_volume(self, pv: PersistentVolume, claims: dict[str, PersistentVolumeClaim]) -> bool:
        ref = pv.spec.claimRef
        phase = pv.status.phase if pv.status else None
        if phase == "Failed":
            return False
        if ref is None:
            want = "Available"
        else:
            pvc = claims.get(f"{ref.namespace}/{ref.name}")
            if pvc is not None and refers_to(ref, pvc):
                if pvc.spec.volumeName and pvc.spec.volumeName != pv.name:
                    return self._unbind(pv)  # the claim is bound to another volume
                want = "Bound" if pvc.spec.volumeName == pv.name else phase or "Available"
            elif not ref.uid:
                want = "Available"  # pre-bound to a claim not made yet
            else:
                want = "Released"  # its claim is gone (or is another object of the same name)
        if want == phase:
            return False
        st = replace(pv.status or PersistentVolumeStatus(), phase=want, lastPhaseTransitionTime=self._clock.now())
        return self._write(replace(pv, status=st)) is not None

    def _unbind(self, pv: PersistentVolume) -> bool:
        """A volume whose claim went to another volume: free again if the controller bound it,
        else Released (a user's pre-binding is left for the user to undo), as upstream does."""
        ann = pv.metadata.annotations or {}
        if ann.get(BOUND_BY_CONTROLLER) != "yes":
            want = "Released"
            if (pv.status.phase if pv.status else None) == want:
                return False
            st = replace(pv.status or PersistentVolumeStatus(), phase=want, lastPhaseTransitionTime=self._clock.now())
            return self._write(replace(pv, status=st)) is not None
        meta = replace(pv.metadata, annotations={k: v for k, v in ann.items() if k != BOUND_BY_CONTROLLER} or None)
        st = replace(
            pv.status or PersistentVolumeStatus(), phase="Available", lastPhaseTransitionTime=self._clock.now()
        )
        return self._write(replace(pv, metadata=meta, spec=replace(pv.spec, claimRef=None), status=st)) is not None

    def _write(self, obj: Object) -> Object | None:
        try:
            return self.store.update(obj)
        except (Conflict, NotFound):
            return None  # changed or gone meanwhile: the event that says so queues another pass
