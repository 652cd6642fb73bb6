"""``kubectl describe`` of PersistentVolumeClaims, PersistentVolumes and StorageClasses, laid
out as kubectl's describers lay them out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..api.core import NodeSelectorRequirement, Pod
from ..api.storage import PersistentVolume, PersistentVolumeClaim, StorageClass
from ..api.volumes import is_default, pod_claims
from .common import age, format_labels
from .describe import _annotations, _events, _labels, _now, _Page
from .events import EventRow
from .table_kinds import access_modes


def _go_list(items: list[str] | None) -> str:
    """A Go ``%v`` of a string slice."""
    return "[" + " ".join(items or []) + "]"


def _status(phase: str | None, deleted: str | None, now: datetime) -> str:
    return f"Terminating (lasts {age(deleted, now)})" if deleted else phase or ""


def describe_pvc(
    pvc: PersistentVolumeClaim,
    pods: Sequence[Pod] = (),
    events: Sequence[EventRow] | None = (),
    *,
    now: datetime | None = None,
) -> str:
    """``pods``: the namespace's pods; those whose volumes use the claim are its Used By."""
    t = _now(now)
    s, st = pvc.spec, pvc.status
    p = _Page()
    p.w(0, f"Name:\t{pvc.name}\n")
    p.w(0, f"Namespace:\t{pvc.namespace}\n")
    p.w(0, f"StorageClass:\t{s.storageClassName or ''}\n")
    p.w(0, f"Status:\t{_status(st.phase if st else None, pvc.metadata.deletionTimestamp, t)}\n")
    p.w(0, f"Volume:\t{s.volumeName or ''}\n")
    _labels(p, "Labels", pvc.metadata.labels)
    _annotations(p, pvc.metadata.annotations)
    p.w(0, f"Finalizers:\t{_go_list(pvc.metadata.finalizers)}\n")
    capacity = modes = ""
    if s.volumeName:
        modes = access_modes(st.accessModes if st else None)
        capacity = str(((st.capacity if st else None) or {}).get("storage", ""))
    p.w(0, f"Capacity:\t{capacity}\n")
    p.w(0, f"Access Modes:\t{modes}\n")
    if s.volumeMode is not None:
        p.w(0, f"VolumeMode:\t{s.volumeMode}\n")
    users = sorted(x.name for x in pods if x.namespace == pvc.namespace and pvc.name in pod_claims(x))
    p.w(0, "Used By:\t")
    p.w(0, "\t".join(f"{n}\n" for n in users) if users else "<none>\n")
    _events(p, events, t)
    return p.text()


def _expressions(p: _Page, title: str, reqs: list[NodeSelectorRequirement] | None) -> None:
    p.w(2, f"{title}:\t")
    if not reqs:
        p.w(0, "<none>\n")
        return
    for i, r in enumerate(reqs):
        if i:
            p.w(2, "\t")
        expr = f"{r.key} {(r.operator or '').lower()}"
        if r.values:
            expr += f" [{', '.join(r.values)}]"
        p.w(0, f"{expr}\n")


def describe_pv(pv: PersistentVolume, events: Sequence[EventRow] | None = (), *, now: datetime | None = None) -> str:
    t = _now(now)
    s = pv.spec
    p = _Page()
    p.w(0, f"Name:\t{pv.name}\n")
    _labels(p, "Labels", pv.metadata.labels)
    _annotations(p, pv.metadata.annotations)
    p.w(0, f"Finalizers:\t{_go_list(pv.metadata.finalizers)}\n")
    p.w(0, f"StorageClass:\t{s.storageClassName or ''}\n")
    p.w(0, f"Status:\t{_status(pv.status.phase if pv.status else None, pv.metadata.deletionTimestamp, t)}\n")
    claim = f"{s.claimRef.namespace or ''}/{s.claimRef.name or ''}" if s.claimRef is not None else ""
    p.w(0, f"Claim:\t{claim}\n")
    p.w(0, f"Reclaim Policy:\t{s.persistentVolumeReclaimPolicy or ''}\n")
    p.w(0, f"Access Modes:\t{access_modes(s.accessModes)}\n")
    if s.volumeMode is not None:
        p.w(0, f"VolumeMode:\t{s.volumeMode}\n")
    p.w(0, f"Capacity:\t{(s.capacity or {}).get('storage', '')}\n")
    required = s.nodeAffinity.required if s.nodeAffinity is not None else None
    if required is None:
        p.w(0, "Node Affinity:\t<none>\n")
    else:
        p.w(0, "Node Affinity:\t\n")
        terms = required.nodeSelectorTerms or []
        p.w(1, "Required Terms:\t" + ("<none>\n" if not terms else "\n"))
        for i, term in enumerate(terms):
            _expressions(p, f"Term {i}", term.matchExpressions)
    p.w(0, f"Message:\t{(pv.status.message if pv.status else None) or ''}\n")
    p.w(0, "Source:\n")
    if s.hostPath is not None:
        p.w(2, "Type:\tHostPath (bare host directory volume)\n")
        p.w(2, f"Path:\t{s.hostPath.path}\n")
        p.w(2, f"HostPathType:\t{s.hostPath.type or '<none>'}\n")
    elif s.local is not None:
        p.w(2, "Type:\tLocalVolume (a persistent volume backed by local storage on a node)\n")
        p.w(2, f"Path:\t{s.local.path}\n")
    else:
        p.w(1, "<unknown>\n")
    _events(p, events, t)
    return p.text()


def describe_storageclass(sc: StorageClass, events: Sequence[EventRow] | None = ()) -> str:
    p = _Page()
    p.w(0, f"Name:\t{sc.name}\n")
    p.w(0, f"IsDefaultClass:\t{'Yes' if is_default(sc) else 'No'}\n")
    p.w(0, f"Annotations:\t{format_labels(sc.metadata.annotations)}\n")
    p.w(0, f"Provisioner:\t{sc.provisioner}\n")
    p.w(0, f"Parameters:\t{format_labels(sc.parameters)}\n")
    expand = "<unset>" if sc.allowVolumeExpansion is None else ("True" if sc.allowVolumeExpansion else "False")
    p.w(0, f"AllowVolumeExpansion:\t{expand}\n")
    if not sc.mountOptions:
        p.w(0, "MountOptions:\t<none>\n")
    else:
        p.w(0, "MountOptions:\n")
        for o in sc.mountOptions:
            p.w(1, f"{o}\n")
    if sc.reclaimPolicy is not None:
        p.w(0, f"ReclaimPolicy:\t{sc.reclaimPolicy}\n")
    if sc.volumeBindingMode is not None:
        p.w(0, f"VolumeBindingMode:\t{sc.volumeBindingMode}\n")
    _events(p, events, _now(None))
    return p.text()
