"""Defaults the API server sets on every write, whatever the client sent.

kube-apiserver runs these before validation on create and update (and so on patch and apply),
and the offline loader runs them on the objects it stores, so an object reads the same from a
live cluster and from ``kins render``.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from msgspec.structs import replace

from .admissionregistration import MutatingWebhook, MutatingWebhookConfiguration, ValidatingWebhookConfiguration
from .apiextensions import (
    CustomResourceConversion,
    CustomResourceDefinition,
    CustomResourceDefinitionStatus,
)
from .apiregistration import APIService, APIServiceStatus
from .autoscaling import DEFAULT_CPU_UTILIZATION, HorizontalPodAutoscaler, cpu_metric
from .core import Namespace, NamespaceStatus, Pod, PodSecurityContext, PodStatus, Secret
from .meta import Condition, LabelSelector, Object
from .rbac import SUBJECT_KINDS, ClusterRoleBinding, RoleBinding
from .scheduling import PriorityClass
from .storage import (
    PersistentVolume,
    PersistentVolumeClaim,
    PersistentVolumeClaimStatus,
    PersistentVolumeStatus,
    StorageClass,
)

# The label every Namespace carries with its own name (v1.LabelMetadataName): NetworkPolicy
# namespaceSelectors rely on it to pick a namespace by name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def namespace_labels(name: str, labels: dict[str, str] | None) -> dict[str, str]:
    """``labels`` with the name label set to ``name`` (a copy: stored objects are shared)."""
    return {**(labels or {}), NAMESPACE_NAME_LABEL: name}


def apply_defaults(obj: Object) -> Object:
    """``obj`` with the server-set defaults (the same object when nothing changes).

    A Namespace without a name yet (generateName) is defaulted once its name is known; one
    without a phase is Active, as the namespace registry's strategy makes it. A Pod's spec has
    a security context, if only an empty one (clients such as ``kubectl debug`` read into it).
    """
    if isinstance(obj, Pod) and obj.spec.securityContext is None:
        obj = replace(obj, spec=replace(obj.spec, securityContext=PodSecurityContext()))
    if isinstance(obj, Namespace) and obj.metadata.name:
        labels = obj.metadata.labels
        if labels is None or labels.get(NAMESPACE_NAME_LABEL) != obj.metadata.name:
            obj = replace(obj, metadata=replace(obj.metadata, labels=namespace_labels(obj.metadata.name, labels)))
        if obj.status is None or not obj.status.phase:
            obj = replace(
                obj, status=NamespaceStatus(phase="Terminating" if obj.metadata.deletionTimestamp else "Active")
            )
    elif isinstance(obj, PersistentVolumeClaim):
        if obj.spec.volumeMode is None:
            obj = replace(obj, spec=replace(obj.spec, volumeMode="Filesystem"))
        # Pending until the binder binds it.
        if obj.status is None or not obj.status.phase:
            obj = replace(obj, status=replace(obj.status or PersistentVolumeClaimStatus(), phase="Pending"))
        if obj.spec.volumeMode is None:
            obj = replace(obj, spec=replace(obj.spec, volumeMode="Filesystem"))
    elif isinstance(obj, PersistentVolume):
        pv = obj.spec
        if pv.volumeMode is None or pv.persistentVolumeReclaimPolicy is None:
            policy = pv.persistentVolumeReclaimPolicy or "Retain"
            pv = replace(pv, volumeMode=pv.volumeMode or "Filesystem", persistentVolumeReclaimPolicy=policy)
            obj = replace(obj, spec=pv)
        if obj.status is None or not obj.status.phase:
            obj = replace(obj, status=replace(obj.status or PersistentVolumeStatus(), phase="Available"))
        if obj.spec.persistentVolumeReclaimPolicy is None or obj.spec.volumeMode is None:
            spec = replace(
                obj.spec,
                persistentVolumeReclaimPolicy=obj.spec.persistentVolumeReclaimPolicy or "Retain",
                volumeMode=obj.spec.volumeMode or "Filesystem",
            )
            obj = replace(obj, spec=spec)
    elif isinstance(obj, StorageClass):
        if obj.reclaimPolicy is None or obj.volumeBindingMode is None:
            obj = replace(
                obj, reclaimPolicy=obj.reclaimPolicy or "Delete", volumeBindingMode=obj.volumeBindingMode or "Immediate"
            )
    elif isinstance(obj, Secret):
        obj = _secret(obj)
    elif isinstance(obj, PriorityClass):
        if obj.preemptionPolicy is None:
            obj = replace(obj, preemptionPolicy="PreemptLowerPriority")
    elif isinstance(obj, ValidatingWebhookConfiguration | MutatingWebhookConfiguration):
        obj = _webhooks(obj)
    elif isinstance(obj, HorizontalPodAutoscaler):
        # autoscaling/v2's defaults: at least one replica, and 80% CPU when no metric is named
        hpa = obj.spec
        if hpa.minReplicas is None or not hpa.metrics:
            metrics = hpa.metrics or [cpu_metric(DEFAULT_CPU_UTILIZATION)]
            least = 1 if hpa.minReplicas is None else hpa.minReplicas
            obj = replace(obj, spec=replace(hpa, minReplicas=least, metrics=metrics))
    elif isinstance(obj, CustomResourceDefinition):
        obj = _crd(obj)
    elif isinstance(obj, APIService):
        obj = _apiservice(obj)
    elif isinstance(obj, RoleBinding | ClusterRoleBinding) and obj.subjects:
        obj = _default_subjects(obj)
    return obj


# The kinds apply_defaults changes (the offline loader defaults only these, for speed).
DEFAULTED: tuple[type[Object], ...] = (
    Namespace,
    PersistentVolumeClaim,
    PersistentVolume,
    StorageClass,
    Secret,
    PriorityClass,
    ValidatingWebhookConfiguration,
    MutatingWebhookConfiguration,
    HorizontalPodAutoscaler,
    CustomResourceDefinition,
    APIService,
    RoleBinding,
    ClusterRoleBinding,
)


def _webhooks(cfg: ValidatingWebhookConfiguration | MutatingWebhookConfiguration) -> Object:
    """admissionregistration/v1's defaults for each webhook."""
    hooks: list[Any] = []
    for w in cfg.webhooks or []:
        d = replace(
            w,
            failurePolicy=w.failurePolicy or "Fail",
            matchPolicy=w.matchPolicy or "Equivalent",
            timeoutSeconds=w.timeoutSeconds if w.timeoutSeconds is not None else 10,
            namespaceSelector=w.namespaceSelector or LabelSelector(),
            objectSelector=w.objectSelector or LabelSelector(),
            rules=[replace(r, scope=r.scope or "*") for r in w.rules] if w.rules else w.rules,
        )
        if isinstance(d, MutatingWebhook) and d.reinvocationPolicy is None:
            d = replace(d, reinvocationPolicy="Never")
        hooks.append(d)
    return cfg if hooks == (cfg.webhooks or []) else replace(cfg, webhooks=hooks)


def _secret(secret: Secret) -> Secret:
    """A Secret is Opaque unless typed, and its write-only ``stringData`` is merged into
    ``data`` (base64, winning over the same key there): the API server stores no stringData."""
    if secret.type and not secret.stringData:
        return secret
    data = secret.data
    if secret.stringData:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in secret.stringData.items()}
        data = {**(secret.data or {}), **encoded}
    return replace(secret, type=secret.type or "Opaque", data=data, stringData=None)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _conditions(old: list[Condition] | None, want: list[Condition]) -> list[Condition]:
    """``want`` with the transition times of the conditions whose status did not change."""
    before = {c.type: c for c in old or []}
    out = []
    for c in want:
        prev = before.get(c.type)
        keep = prev is not None and prev.status == c.status and prev.lastTransitionTime
        out.append(replace(c, lastTransitionTime=prev.lastTransitionTime if keep and prev else _now()))
    return out


def _crd(crd: CustomResourceDefinition) -> CustomResourceDefinition:
    """The definition's defaults (singular and list kind, conversion None) and the status the
    apiextensions server's controllers settle on: kins accepts the names and establishes the
    kind as it stores the definition (a kind another group serves is refused before that)."""
    s = crd.spec
    names = s.names
    if names.kind and (not names.singular or not names.listKind):
        singular = names.singular or names.kind.lower()
        names = replace(names, singular=singular, listKind=names.listKind or f"{names.kind}List")
    if names is not s.names or s.conversion is None:
        crd = replace(crd, spec=replace(s, names=names, conversion=s.conversion or CustomResourceConversion()))
    old = crd.status or CustomResourceDefinitionStatus()
    want = [
        Condition(type="NamesAccepted", status="True", reason="NoConflicts", message="no conflicts found"),
        Condition(
            type="Established",
            status="True",
            reason="InitialNamesAccepted",
            message="the initial names have been accepted",
        ),
    ]
    stored = list(old.storedVersions or [])
    if crd.storage_version and crd.storage_version not in stored:
        stored.append(crd.storage_version)
    status = CustomResourceDefinitionStatus(
        conditions=_conditions(old.conditions, want),
        acceptedNames=names,
        storedVersions=stored or None,
    )
    return crd if status == crd.status else replace(crd, status=status)


def _apiservice(svc: APIService) -> APIService:
    """Local group versions (no service) are served by the API itself: always available. A
    service-backed one starts unavailable; the availability controller
    (``control/apiservice.py``) then keeps its condition true to the Service's endpoints."""
    old = svc.status.conditions if svc.status else None
    if svc.spec.service is None:
        local = "Local APIServices are always available"
        want = Condition(type="Available", status="True", reason="Local", message=local)
    elif any(c.type == "Available" and c.reason != "Local" for c in old or []):
        return svc  # the controller's
    else:
        ref = svc.spec.service
        want = Condition(
            type="Available",
            status="False",
            reason="MissingEndpoints",
            message=f'endpoints for service/{ref.name} in "{ref.namespace}" have not been seen yet',
        )
    conditions = _conditions(old, [want])
    if svc.status is not None and svc.status.conditions == conditions:
        return svc
    return replace(svc, status=APIServiceStatus(conditions=conditions))


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
