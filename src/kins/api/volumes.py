"""Storage facts shared by the API server's admission, the controllers and the kubelet: the
annotations and finalizers upstream uses, the default StorageClass, quantities as numbers, and
whether a PersistentVolume can serve a claim (on a node).

Pure functions: callers hand in the objects they read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from msgspec.structs import replace

from .core import NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, Quantity
from .meta import ObjectMeta, selector_matches
from .storage import PersistentVolume, PersistentVolumeClaim, StorageClass

DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)
LOCAL_PATH = "local-path"
LOCAL_PATH_PROVISIONER = "rancher.io/local-path"
NO_PROVISIONER = "kubernetes.io/no-provisioner"

# Annotations the PV controller, the scheduler and provisioners write.
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
LOCAL_PATH_NODE = "local.path.provisioner/selected-node"

PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"

HOSTNAME_LABEL = "kubernetes.io/hostname"

_SUFFIX: dict[str, int | Decimal] = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "m": Decimal("0.001"),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(?:([eE][-+]?[0-9]+)|([a-zA-Z]*))$")


def quantity(q: Quantity | None) -> Decimal:
    """A resource quantity as a number ("1Gi" -> 1073741824); 0 for what is not one."""
    if q is None:
        return Decimal(0)
    if isinstance(q, int | float):
        return Decimal(str(q))
    m = _QUANTITY.match(q.strip())
    if m is None:
        return Decimal(0)
    try:
        n = Decimal(m.group(1))
        if m.group(2):
            return n * Decimal(10) ** int(m.group(2)[1:])
        return n * _SUFFIX.get(m.group(3) or "", 0)
    except InvalidOperation:
        return Decimal(0)


def is_default(sc: StorageClass) -> bool:
    ann = sc.metadata.annotations or {}
    return any(ann.get(a) == "true" for a in DEFAULT_CLASS_ANNOTATIONS)


def default_class(classes: Iterable[StorageClass]) -> StorageClass | None:
    """The class a claim without ``storageClassName`` gets: of several defaults the newest (as
    the DefaultStorageClass admission picks since 1.28), ties by name."""
    defaults = [c for c in classes if is_default(c) and not c.metadata.deletionTimestamp]
    if not defaults:
        return None
    return max(defaults, key=lambda c: (c.metadata.creationTimestamp or "", c.name))


def admit_claim(pvc: PersistentVolumeClaim, classes: Iterable[StorageClass]) -> PersistentVolumeClaim:
    """What admission does to a new claim: the default class when none is named (an explicit
    ``""`` asks for no class and is kept), and the protection finalizer."""
    if pvc.spec.storageClassName is None:
        sc = default_class(classes)
        if sc is not None:
            pvc = replace(pvc, spec=replace(pvc.spec, storageClassName=sc.name))
    return with_finalizer(pvc, PVC_PROTECTION)


_V = TypeVar("_V", PersistentVolume, PersistentVolumeClaim)


def with_finalizer(obj: _V, finalizer: str) -> _V:
    fins: list[str] = obj.metadata.finalizers or []
    if finalizer in fins or obj.metadata.deletionTimestamp:
        return obj
    return replace(obj, metadata=replace(obj.metadata, finalizers=[*fins, finalizer]))


def annotate(meta: ObjectMeta, values: dict[str, str]) -> ObjectMeta:
    """``meta`` with ``values`` added to its annotations."""
    return replace(meta, annotations={**(meta.annotations or {}), **values})


def claim_class(pvc: PersistentVolumeClaim) -> str:
    return pvc.spec.storageClassName or ""


def claim_request(pvc: PersistentVolumeClaim) -> Decimal:
    return quantity(((pvc.spec.resources.requests if pvc.spec.resources else None) or {}).get("storage"))


def pod_claims(pod: Pod) -> list[str]:
    """The names of the claims a pod's volumes use, in volume order (an ``ephemeral`` volume's
    is ``<pod>-<volume>``)."""
    out = []
    for v in pod.spec.volumes or []:
        if v.persistentVolumeClaim is not None:
            out.append(v.persistentVolumeClaim.claimName)
        elif v.ephemeral is not None:
            out.append(f"{pod.name}-{v.name}")
    return out


def ephemeral_claims(pod: Pod) -> dict[str, str]:
    """The pod's ``ephemeral`` volumes: volume name -> the name of its claim."""
    return {v.name: f"{pod.name}-{v.name}" for v in pod.spec.volumes or [] if v.ephemeral is not None}


def node_selector_matches(sel: NodeSelector | None, labels: dict[str, str], name: str) -> bool:
    """A required NodeSelector (terms ORed, requirements ANDed) against a node's labels (its
    name for ``matchFields`` on ``metadata.name``); None matches every node."""
    if sel is None:
        return True
    terms = sel.nodeSelectorTerms or []
    for t in terms:
        reqs = [(r, labels.get(r.key)) for r in t.matchExpressions or []]
        reqs += [(r, name if r.key == "metadata.name" else None) for r in t.matchFields or []]
        if reqs and all(_requirement(r, v) for r, v in reqs):
            return True
    return False


def _requirement(r: NodeSelectorRequirement, value: str | None) -> bool:
    values = r.values or []
    op = r.operator
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and values:
        try:
            a, b = int(value), int(values[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def pv_fits_node(pv: PersistentVolume, labels: dict[str, str], name: str) -> bool:
    na = pv.spec.nodeAffinity
    return node_selector_matches(na.required if na is not None else None, labels, name)


def pv_matches_claim(pv: PersistentVolume, pvc: PersistentVolumeClaim) -> str | None:
    """None when ``pv`` can serve ``pvc`` (class, size, access modes, volume mode, selector),
    else why not, in the PV controller's words."""
    if (pv.spec.storageClassName or "") != claim_class(pvc):
        return "storageClassName does not match"
    if quantity((pv.spec.capacity or {}).get("storage")) < claim_request(pvc):
        return "requested PV is too small"
    if not set(pvc.spec.accessModes or []) <= set(pv.spec.accessModes or []):
        return "incompatible accessMode"
    if (pv.spec.volumeMode or "Filesystem") != (pvc.spec.volumeMode or "Filesystem"):
        return "incompatible volumeMode"
    if pvc.spec.selector is not None and not selector_matches(pvc.spec.selector, pv.labels):
        return "volume labels do not match the claim's selector"
    return None


def hostname_affinity(node: str) -> NodeSelector:
    """The required node affinity of a volume on one node (as local-path writes it)."""
    req = NodeSelectorRequirement(key=HOSTNAME_LABEL, operator="In", values=[node])
    return NodeSelector(nodeSelectorTerms=[NodeSelectorTerm(matchExpressions=[req])])
