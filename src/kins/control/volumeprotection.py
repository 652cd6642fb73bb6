"""Storage object in-use protection: the ``kubernetes.io/pvc-protection`` and
``kubernetes.io/pv-protection`` finalizers.

Claims and volumes carry their finalizer (admission adds it on create; this controller adds it
to those written without admission, a StatefulSet's claims and provisioned volumes among them).
A claim being deleted keeps it while a pod that has not finished uses the claim; a volume being
deleted keeps it while it is Bound. Taking the last finalizer off lets the object go.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.core import Pod
from ..api.meta import Object
from ..api.storage import PersistentVolume, PersistentVolumeClaim
from ..api.volumes import PV_PROTECTION, PVC_PROTECTION, pod_claims, with_finalizer
from ..store.base import Store, WatchEvent

ALL = "*"


def claim_in_use(pvc: PersistentVolumeClaim, pods: Iterable[Pod]) -> bool:
    for p in pods:
        if p.namespace != pvc.namespace or (p.status.phase if p.status else None) in ("Succeeded", "Failed"):
            continue
        if pvc.name in pod_claims(p):
            return True
    return False


def remove_finalizer(store: Store, obj: Object, finalizer: str) -> bool:
    """Take ``finalizer`` off ``obj``; an object being deleted with none left goes."""
    fins = [f for f in obj.metadata.finalizers or [] if f != finalizer]
    try:
        updated = store.update(replace(obj, metadata=replace(obj.metadata, finalizers=fins or None)))
    except (Conflict, NotFound):
        return False
    if updated.metadata.deletionTimestamp and not fins:
        # A store that does not finish such objects on update (or did already): delete it.
        with contextlib.suppress(NotFound):
            store.delete(obj.KIND, obj.metadata.namespace, obj.name)
    return True


class VolumeProtection:
    name = "volume-protection"
    kinds = frozenset({"PersistentVolume", "PersistentVolumeClaim", "Pod"})

    def __init__(self, store: Store) -> None:
        self.store = store

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        if isinstance(o, Pod) and not pod_claims(o):
            return ()
        return (ALL,)

    def start_keys(self) -> Iterable[str]:
        return (ALL,)

    def reconcile(self, key: str) -> bool:
        changed = False
        pods: list[Pod] | None = None
        for pvc in self.store.list("PersistentVolumeClaim")[0]:
            if not isinstance(pvc, PersistentVolumeClaim):
                continue
            fins = pvc.metadata.finalizers or []
            if not pvc.metadata.deletionTimestamp:
                if PVC_PROTECTION not in fins:
                    changed |= self._write(with_finalizer(pvc, PVC_PROTECTION))
                continue
            if PVC_PROTECTION in fins:
                if pods is None:
                    pods = [p for p in self.store.list("Pod")[0] if isinstance(p, Pod)]
                if not claim_in_use(pvc, pods):
                    changed |= remove_finalizer(self.store, pvc, PVC_PROTECTION)
        for pv in self.store.list("PersistentVolume")[0]:
            if not isinstance(pv, PersistentVolume):
                continue
            fins = pv.metadata.finalizers or []
            if not pv.metadata.deletionTimestamp:
                if PV_PROTECTION not in fins:
                    changed |= self._write(with_finalizer(pv, PV_PROTECTION))
                continue
            if PV_PROTECTION in fins and (pv.status.phase if pv.status else None) != "Bound":
                changed |= remove_finalizer(self.store, pv, PV_PROTECTION)
        return changed

    def _write(self, obj: Object) -> bool:
        try:
            self.store.update(obj)
        except (Conflict, NotFound):
            return False
        return True
