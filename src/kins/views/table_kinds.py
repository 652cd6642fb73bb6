"""``kubectl get`` rows of the kinds kins stores without acting on them (storage, autoscaling,
scheduling, API extension objects), and of custom resources (their definition's printer
columns). ``views.table`` merges ``COLUMNS`` into its own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from ..api.admissionregistration import MutatingWebhookConfiguration, ValidatingWebhookConfiguration
from ..api.apiextensions import CustomResourceColumnDefinition, CustomResourceDefinition
from ..api.apiregistration import APIService
from ..api.autoscaling import HorizontalPodAutoscaler
from ..api.coordination import Lease
from ..api.custom import CustomObject
from ..api.meta import Object
from ..api.quota import LimitRange, ResourceQuota
from ..api.registry import STORED
from ..api.replication import ReplicationController
from ..api.scheduling import PodDisruptionBudget, PriorityClass
from ..api.storage import PersistentVolume, PersistentVolumeClaim, StorageClass
from .common import age, format_labels, parse_time
from .jsonpath import JSONPathError, parse, to_text

Row = Callable[[Any, datetime], list[str]]
_NONE = "<none>"
_UNSET = "<unset>"
# The order kubectl's GetAccessModesAsString tests them in.
_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP"))
_DEFAULT_CLASS = ("storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class")


def access_modes(modes: list[str] | None) -> str:
    have = set(modes or [])
    return ",".join(short for mode, short in _MODES if mode in have)


def created_at(obj: Object) -> str:
    """The CREATED AT cell: the creation time in RFC 3339, UTC."""
    t = parse_time(obj.metadata.creationTimestamp)
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t else ""


def _pv_row(pv: PersistentVolume, now: datetime) -> list[str]:
    s = pv.spec
    claim = f"{s.claimRef.namespace}/{s.claimRef.name}" if s.claimRef is not None else ""
    return [
        pv.name,
        str((s.capacity or {}).get("storage", "")),
        access_modes(s.accessModes),
        s.persistentVolumeReclaimPolicy or "Retain",
        "Terminating" if pv.metadata.deletionTimestamp else (pv.status.phase if pv.status else None) or "",
        claim,
        s.storageClassName or "",
        s.volumeAttributesClassName or _UNSET,
        (pv.status.reason if pv.status else None) or "",
        age(pv.metadata.creationTimestamp, now),
        s.volumeMode or "Filesystem",
    ]


def _pvc_row(pvc: PersistentVolumeClaim, now: datetime) -> list[str]:
    s, st = pvc.spec, pvc.status
    modes, capacity = "", ""
    if s.volumeName and st is not None:
        modes = access_modes(st.accessModes)
        capacity = str((st.capacity or {}).get("storage", ""))
    return [
        pvc.name,
        "Terminating" if pvc.metadata.deletionTimestamp else (st.phase if st else None) or "",
        s.volumeName or "",
        capacity,
        modes,
        s.storageClassName or "",
        s.volumeAttributesClassName or _UNSET,
        age(pvc.metadata.creationTimestamp, now),
        s.volumeMode or "Filesystem",
    ]


def _storageclass_row(sc: StorageClass, now: datetime) -> list[str]:
    annotations = sc.metadata.annotations or {}
    default = any(annotations.get(a) == "true" for a in _DEFAULT_CLASS)
    return [
        sc.name + (" (default)" if default else ""),
        sc.provisioner,
        sc.reclaimPolicy or "Delete",
        sc.volumeBindingMode or "Immediate",
        "true" if sc.allowVolumeExpansion else "false",
        age(sc.metadata.creationTimestamp, now),
    ]


def _webhooks_row(obj: ValidatingWebhookConfiguration | MutatingWebhookConfiguration, now: datetime) -> list[str]:
    return [obj.name, str(len(obj.webhooks or [])), age(obj.metadata.creationTimestamp, now)]


def _pdb_row(pdb: PodDisruptionBudget, now: datetime) -> list[str]:
    s = pdb.spec
    return [
        pdb.name,
        str(s.minAvailable) if s.minAvailable is not None else "N/A",
        str(s.maxUnavailable) if s.maxUnavailable is not None else "N/A",
        str(pdb.status.disruptionsAllowed if pdb.status else 0),
        age(pdb.metadata.creationTimestamp, now),
    ]


def _metric_target(m: dict[str, Any]) -> str:
    """One metric of the TARGETS cell (no metrics are gathered: the current value is unknown)."""
    kind = m.get("type")
    source = m.get({"Resource": "resource", "ContainerResource": "containerResource"}.get(str(kind), "")) or {}
    target = (source.get("target") if isinstance(source, dict) else None) or {}
    if kind in ("Resource", "ContainerResource") and isinstance(source, dict):
        name = source.get("name", "")
        if target.get("type") == "Utilization" and target.get("averageUtilization") is not None:
            return f"{name}: <unknown>/{target['averageUtilization']}%"
        return f"{name}: <unknown>/{target.get('averageValue', '<auto>')}"
    for key in ("pods", "object", "external"):
        src = m.get(key)
        if isinstance(src, dict):
            t = src.get("target") or {}
            value = t.get("averageValue") or t.get("value") or "<auto>"
            metric = (src.get("metric") or {}).get("name", "")
            return f"{metric}: <unknown>/{value}" + (" (avg)" if key != "pods" and t.get("averageValue") else "")
    return "<unknown type>"


def hpa_targets(hpa: HorizontalPodAutoscaler) -> str:
    metrics = hpa.spec.metrics or []
    if not metrics:
        return _NONE
    shown = [_metric_target(m) for m in metrics[:4]]
    more = f" + {len(metrics) - 4} more..." if len(metrics) > 4 else ""
    return ", ".join(shown) + more


def _hpa_row(hpa: HorizontalPodAutoscaler, now: datetime) -> list[str]:
    s = hpa.spec
    return [
        hpa.name,
        f"{s.scaleTargetRef.kind}/{s.scaleTargetRef.name}",
        hpa_targets(hpa),
        str(s.minReplicas) if s.minReplicas is not None else _UNSET,
        str(s.maxReplicas),
        str((hpa.status.currentReplicas if hpa.status else None) or 0),
        age(hpa.metadata.creationTimestamp, now),
    ]


def _lease_row(lease: Lease, now: datetime) -> list[str]:
    return [lease.name, lease.spec.holderIdentity or "", age(lease.metadata.creationTimestamp, now)]


def _priorityclass_row(pc: PriorityClass, now: datetime) -> list[str]:
    return [
        pc.name,
        str(pc.value),
        "true" if pc.globalDefault else "false",
        age(pc.metadata.creationTimestamp, now),
        pc.preemptionPolicy or "PreemptLowerPriority",
    ]


def _crd_row(crd: CustomResourceDefinition, now: datetime) -> list[str]:
    return [crd.name, created_at(crd)]


def _apiservice_row(svc: APIService, now: datetime) -> list[str]:
    ref = svc.spec.service
    service = f"{ref.namespace}/{ref.name}" if ref is not None else "Local"
    available = "Unknown"
    for c in (svc.status.conditions if svc.status else None) or []:
        if c.type == "Available":
            available = c.status if c.status == "True" else f"{c.status} ({c.reason})"
    return [svc.name, service, available, age(svc.metadata.creationTimestamp, now)]


def _quota_row(q: ResourceQuota, now: datetime) -> list[str]:
    hard = (q.status.hard if q.status else None) or {}
    used = (q.status.used if q.status else None) or {}
    requests: list[str] = []
    limits: list[str] = []
    for key in sorted(hard):
        cell = f"{key}: {used.get(key, '0')}/{hard[key]}"
        (limits if key.startswith("limits.") else requests).append(cell)
    return [q.name, age(q.metadata.creationTimestamp, now), ", ".join(requests), ", ".join(limits)]


def _limitrange_row(lr: LimitRange, now: datetime) -> list[str]:
    return [lr.name, created_at(lr)]


def _rc_row(rc: ReplicationController, now: datetime) -> list[str]:
    s, st = rc.spec, rc.status
    containers = s.template.spec.containers if s.template is not None else []
    return [
        rc.name,
        str(s.replicas if s.replicas is not None else 1),
        str(st.replicas if st else 0),
        str((st.readyReplicas if st else None) or 0),
        age(rc.metadata.creationTimestamp, now),
        ",".join(c.name for c in containers),
        ",".join(c.image or "" for c in containers),
        format_labels(s.selector),
    ]


# kind -> (columns, how many of them are -o wide only, row function)
COLUMNS: dict[str, tuple[tuple[str, ...], int, Row]] = {
    "PersistentVolume": (
        (
            "NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS", "REASON", "AGE", "VOLUMEMODE",
        ),
        1,
        _pv_row,
    ),
    "PersistentVolumeClaim": (
        (
            "NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE",
            "VOLUMEMODE",
        ),
        1,
        _pvc_row,
    ),
    "StorageClass": (
        ("NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"),
        0,
        _storageclass_row,
    ),
    "ValidatingWebhookConfiguration": (("NAME", "WEBHOOKS", "AGE"), 0, _webhooks_row),
    "MutatingWebhookConfiguration": (("NAME", "WEBHOOKS", "AGE"), 0, _webhooks_row),
    "PodDisruptionBudget": (("NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"), 0, _pdb_row),
    "HorizontalPodAutoscaler": (
        ("NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"),
        0,
        _hpa_row,
    ),
    "Lease": (("NAME", "HOLDER", "AGE"), 0, _lease_row),
    "PriorityClass": (("NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"), 0, _priorityclass_row),
    "CustomResourceDefinition": (("NAME", "CREATED AT"), 0, _crd_row),
    "APIService": (("NAME", "SERVICE", "AVAILABLE", "AGE"), 0, _apiservice_row),
    "ResourceQuota": (("NAME", "AGE", "REQUEST", "LIMIT"), 0, _quota_row),
    "LimitRange": (("NAME", "CREATED AT"), 0, _limitrange_row),
    "ReplicationController": (
        ("NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"),
        3,
        _rc_row,
    ),
}  # fmt: skip


# --- custom resources --------------------------------------------------------------------------


def _cell(column: CustomResourceColumnDefinition, doc: dict[str, Any], now: datetime) -> str:
    path = column.jsonPath if column.jsonPath.startswith("{") else "{" + column.jsonPath + "}"
    try:
        values = parse(path).results(doc)
    except JSONPathError:
        return _NONE
    found = values[0] if values else []
    if not found or found[0] is None:
        return _NONE
    value = found[0]
    if column.type == "date" and isinstance(value, str):
        return age(value, now)
    return to_text(value)


def custom_layout(kind: str) -> tuple[tuple[str, ...], int, Row] | None:
    """The table of a custom resource: NAME and its definition's printer columns (those of
    priority 0 first, the ``-o wide`` ones after), NAME and AGE without any; None when ``kind``
    is no custom resource."""
    cls = STORED.get(kind)
    if cls is None or not issubclass(cls, CustomObject):
        return None
    if not cls.COLUMNS:
        return ("NAME", "AGE"), 0, lambda o, now: [o.name, age(o.metadata.creationTimestamp, now)]
    columns = sorted(cls.COLUMNS, key=lambda c: (c.priority or 0) > 0)
    n_wide = sum(1 for c in columns if (c.priority or 0) > 0)

    def row(obj: Object, now: datetime) -> list[str]:
        doc = msgspec.to_builtins(obj)
        return [obj.name, *(_cell(c, doc, now) for c in columns)]

    return ("NAME", *(c.name.upper() for c in columns)), n_wide, row
