"""Defaults the API server sets on every write, whatever the client sent.

kube-apiserver runs these before validation on create and update (and so on patch and apply),
and the offline loader runs them on the objects it stores, so an object reads the same from a
live cluster and from ``kins render``.
"""

from __future__ import annotations

from msgspec.structs import replace

from .core import Namespace, NamespaceStatus, Pod, PodStatus
from .meta import Object
from .rbac import SUBJECT_KINDS, ClusterRoleBinding, RoleBinding

# The label every Namespace carries with its own name (v1.LabelMetadataName): NetworkPolicy
# namespaceSelectors rely on it to pick a namespace by name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def namespace_labels(name: str, labels: dict[str, str] | None) -> dict[str, str]:
    """``labels`` with the name label set to ``name`` (a copy: stored objects are shared)."""
    return {**(labels or {}), NAMESPACE_NAME_LABEL: name}


def apply_defaults(obj: Object) -> Object:
    """``obj`` with the server-set defaults (the same object when nothing changes).

    A Namespace without a name yet (generateName) is defaulted once its name is known; one
    without a phase is Active, as the namespace registry's strategy makes it.
    """
    if isinstance(obj, Namespace) and obj.metadata.name:
        labels = obj.metadata.labels
        if labels is None or labels.get(NAMESPACE_NAME_LABEL) != obj.metadata.name:
            obj = replace(obj, metadata=replace(obj.metadata, labels=namespace_labels(obj.metadata.name, labels)))
        if obj.status is None or not obj.status.phase:
            obj = replace(
                obj, status=NamespaceStatus(phase="Terminating" if obj.metadata.deletionTimestamp else "Active")
            )
    if isinstance(obj, RoleBinding | ClusterRoleBinding) and obj.subjects:
        obj = _default_subjects(obj)
    return obj


def _default_subjects(b: RoleBinding | ClusterRoleBinding) -> RoleBinding | ClusterRoleBinding:
    """A subject's apiGroup follows from its kind (rbac's SetDefaults_Subject)."""
    subjects = b.subjects or []
    if not any(s.apiGroup is None and SUBJECT_KINDS.get(s.kind) for s in subjects):
        return b
    fixed = [
        replace(s, apiGroup=SUBJECT_KINDS[s.kind]) if s.apiGroup is None and SUBJECT_KINDS.get(s.kind) else s
        for s in subjects
    ]
    return replace(b, subjects=fixed)


def apply_create_defaults(obj: Object) -> Object:
    """``obj`` with what the API server sets only when it is created: a Pod starts Pending (the
    pod strategy's PrepareForCreate; kins keeps whatever else of the status the client sent)."""
    if isinstance(obj, Pod) and (obj.status is None or not obj.status.phase):
        obj = replace(obj, status=replace(obj.status or PodStatus(), phase="Pending"))
    return obj
