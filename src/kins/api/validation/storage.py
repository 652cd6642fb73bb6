"""Storage: PersistentVolume, PersistentVolumeClaim and StorageClass, in the API server's words.

Only what kins (or a reader of its objects) would misread is checked: access modes, sizes,
modes and policies from their closed sets, one volume source per PersistentVolume.
"""

from __future__ import annotations

import re

from ..config import ClusterConfig
from ..core import Quantity
from ..storage import (
    ACCESS_MODES,
    RECLAIM_POLICIES,
    VOLUME_MODES,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
)
from .common import Check, Errors

_QUANTITY_FMT = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY_RE = re.compile(_QUANTITY_FMT)
_QUANTITY_MSG = f"quantities must match the regular expression '{_QUANTITY_FMT}'"
_SC_RECLAIM = ("Delete", "Retain")
_BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
_PV_SOURCES = (
    "hostPath", "local", "nfs", "csi", "gcePersistentDisk", "awsElasticBlockStore", "glusterfs", "rbd", "iscsi",
    "cinder", "cephfs", "fc", "flocker", "flexVolume", "azureFile", "azureDisk", "vsphereVolume", "quobyte",
    "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos",
)  # fmt: skip


def quantity_sign(q: Quantity) -> int | None:
    """-1, 0 or 1 for a valid quantity, None for text that is not one."""
    if isinstance(q, int | float):
        return (q > 0) - (q < 0)
    m = _QUANTITY_RE.match(q)
    if m is None:
        return None
    try:
        number = float(m.group(1))
    except ValueError:
        return None
    return (number > 0) - (number < 0)


def _positive_size(e: Errors, field: str, q: Quantity) -> None:
    sign = quantity_sign(q)
    if sign is None:
        e.invalid(field, q, _QUANTITY_MSG)
    elif sign <= 0:
        e.invalid(field, q, "must be greater than zero")


def _access_modes(e: Errors, field: str, modes: list[str] | None) -> None:
    if not modes:
        e.required(field, "at least 1 access mode is required")
    for m in modes or []:
        if m not in ACCESS_MODES:
            e.unsupported(field, m, sorted(ACCESS_MODES))
    if "ReadWriteOncePod" in (modes or []) and len(modes or []) > 1:
        e.forbidden(field, "may not use ReadWriteOncePod with other access modes")


def _volume_mode(e: Errors, field: str, mode: str | None) -> None:
    if mode is not None and mode not in VOLUME_MODES:
        e.unsupported(field, mode, VOLUME_MODES)


def _pvc(e: Errors, pvc: PersistentVolumeClaim, cfg: ClusterConfig | None) -> None:
    s = pvc.spec
    _access_modes(e, "spec.accessModes", s.accessModes)
    if s.selector is not None:
        e.label_selector("spec.selector", s.selector)
    requests = (s.resources.requests if s.resources else None) or {}
    if "storage" not in requests:
        e.required("spec.resources[storage]")
    else:
        _positive_size(e, "spec.resources[storage]", requests["storage"])
    _volume_mode(e, "spec.volumeMode", s.volumeMode)


def _pv(e: Errors, pv: PersistentVolume, cfg: ClusterConfig | None) -> None:
    s = pv.spec
    _access_modes(e, "spec.accessModes", s.accessModes)
    capacity = s.capacity or {}
    if not capacity:
        e.required("spec.capacity")
    elif "storage" not in capacity:
        e.unsupported("spec.capacity", sorted(capacity)[0], ["storage"])
    else:
        _positive_size(e, "spec.capacity[storage]", capacity["storage"])
    sources = [n for n in _PV_SOURCES if getattr(s, n) is not None]
    if not sources:
        e.required("spec", "must specify a volume type")
    elif len(sources) > 1:
        e.forbidden(f"spec.{sources[1]}", "may not specify more than 1 volume type")
    policy = s.persistentVolumeReclaimPolicy
    if policy is not None and policy not in RECLAIM_POLICIES:
        e.unsupported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES)
    _volume_mode(e, "spec.volumeMode", s.volumeMode)
    if s.hostPath is not None and not s.hostPath.path:
        e.required("spec.hostPath.path")
    if s.local is not None and not s.local.path:
        e.required("spec.local.path")


def _storageclass(e: Errors, sc: StorageClass, cfg: ClusterConfig | None) -> None:
    if not sc.provisioner:
        e.required("provisioner")
    if sc.reclaimPolicy is not None and sc.reclaimPolicy not in _SC_RECLAIM:
        e.unsupported("reclaimPolicy", sc.reclaimPolicy, _SC_RECLAIM)
    if sc.volumeBindingMode is not None and sc.volumeBindingMode not in _BINDING_MODES:
        e.unsupported("volumeBindingMode", sc.volumeBindingMode, _BINDING_MODES)


CHECKS: dict[type, Check] = {
    PersistentVolumeClaim: _pvc,
    PersistentVolume: _pv,
    StorageClass: _storageclass,
}
