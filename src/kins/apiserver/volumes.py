"""The API server's storage admission: DefaultStorageClass (a new claim without
``storageClassName`` gets the default class) and StorageObjectInUseProtection (new claims and
volumes get their protection finalizers); and the claim's update rule: its spec is immutable
but for the volume it is bound to (set once) and, as kins resizes nothing, not even its size."""

from __future__ import annotations

from msgspec.structs import replace

from .._errors import ValidationError
from ..api.defaulting import apply_defaults
from ..api.meta import Object
from ..api.storage import PersistentVolume, PersistentVolumeClaim, StorageClass
from ..api.volumes import PV_PROTECTION, admit_claim, with_finalizer
from ..store.base import Store

IMMUTABLE = (
    "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName "
    "for bound claims"
)
NO_RESIZE = (
    "Forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions "
    "the pvc must support resize"
)


def admit(store: Store, obj: Object, old: Object | None) -> Object:
    """Creates get the plugins' changes; updates of claims are checked. Raises
    ValidationError."""
    if old is not None:
        if isinstance(obj, PersistentVolumeClaim) and isinstance(old, PersistentVolumeClaim):
            check_claim_update(obj, old)
        return obj
    if isinstance(obj, PersistentVolumeClaim):
        classes = [c for c in store.list("StorageClass")[0] if isinstance(c, StorageClass)]
        return admit_claim(obj, classes)
    if isinstance(obj, PersistentVolume):
        return with_finalizer(obj, PV_PROTECTION)
    return obj


def check_claim_update(new: PersistentVolumeClaim, old: PersistentVolumeClaim) -> None:
    stored = apply_defaults(old)  # as stored before the defaults it now gets
    before = stored.spec if isinstance(stored, PersistentVolumeClaim) else old.spec
    after = new.spec
    if not before.volumeName:
        before = replace(before, volumeName=after.volumeName)  # the binder sets it once
    before = replace(before, volumeAttributesClassName=after.volumeAttributesClassName)
    size = (before.resources.requests if before.resources else None) or {}
    new_size = (after.resources.requests if after.resources else None) or {}
    if replace(after, resources=before.resources) != before:
        raise ValidationError("", "spec", IMMUTABLE)
    if size.get("storage") != new_size.get("storage"):
        raise ValidationError("", "spec.resources.requests.storage", NO_RESIZE)
