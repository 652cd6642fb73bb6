"""The API server's storage admission: DefaultStorageClass (a new claim without
``storageClassName`` gets the default class) and StorageObjectInUseProtection (new claims and
volumes get their protection finalizers)."""

from __future__ import annotations

from ..api.meta import Object
from ..api.storage import PersistentVolume, PersistentVolumeClaim, StorageClass
from ..api.volumes import PV_PROTECTION, admit_claim, with_finalizer
from ..store.base import Store


def admit(store: Store, obj: Object, old: Object | None) -> Object:
    """Only creates are admitted here, as upstream's plugins do."""
    if old is not None:
        return obj
    if isinstance(obj, PersistentVolumeClaim):
        classes = [c for c in store.list("StorageClass")[0] if isinstance(c, StorageClass)]
        return admit_claim(obj, classes)
    if isinstance(obj, PersistentVolume):
        return with_finalizer(obj, PV_PROTECTION)
    return obj
