"""Which Python type holds each (apiVersion, kind), and the resource names kubectl accepts.

The tables start with the built-in kinds; a CustomResourceDefinition adds its kind at run time
(``register``) and takes it away (``unregister``). Both update every table here, bump
``GENERATION`` and call the ``HOOKS`` through which the modules that derive tables from these
(``api.resources``, the stores' caches, the OpenAPI documents) rebuild or forget them. The
tables are mutated in place, so a module that imported one by name keeps seeing the current
contents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .admissionregistration import MutatingWebhookConfiguration, ValidatingWebhookConfiguration
from .apiextensions import CustomResourceDefinition
from .apiregistration import APIService
from .apps import DaemonSet, Deployment, ReplicaSet, StatefulSet
from .autoscaling import HorizontalPodAutoscaler, HorizontalPodAutoscalerV1
from .batch import CronJob, Job
from .coordination import Lease
from .core import ConfigMap, Endpoints, Event, Namespace, Node, Pod, Secret, Service
from .discovery import EndpointSlice
from .meta import Object
from .networking import Ingress, IngressClass, LegacyIngress, NetworkPolicy
from .policy import ClusterNetworkPolicy
from .quota import LimitRange, ResourceQuota
from .rbac import ClusterRole, ClusterRoleBinding, Role, RoleBinding, ServiceAccount
from .replication import ReplicationController
from .scheduling import PodDisruptionBudget, PriorityClass
from .storage import PersistentVolume, PersistentVolumeClaim, StorageClass

KINDS: dict[tuple[str, str], type[Object]] = {
    ("v1", "Namespace"): Namespace,
    ("v1", "Node"): Node,
    ("v1", "Pod"): Pod,
    ("v1", "Service"): Service,
    ("v1", "Endpoints"): Endpoints,
    ("v1", "ConfigMap"): ConfigMap,
    ("v1", "Secret"): Secret,
    ("v1", "Event"): Event,
    ("v1", "PersistentVolume"): PersistentVolume,
    ("v1", "PersistentVolumeClaim"): PersistentVolumeClaim,
    ("v1", "ResourceQuota"): ResourceQuota,
    ("v1", "LimitRange"): LimitRange,
    ("v1", "ReplicationController"): ReplicationController,
    ("apps/v1", "Deployment"): Deployment,
    ("apps/v1", "ReplicaSet"): ReplicaSet,
    ("apps/v1", "StatefulSet"): StatefulSet,
    ("apps/v1", "DaemonSet"): DaemonSet,
    ("batch/v1", "Job"): Job,
    ("batch/v1", "CronJob"): CronJob,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): HorizontalPodAutoscaler,
    ("autoscaling/v1", "HorizontalPodAutoscaler"): HorizontalPodAutoscalerV1,
    ("discovery.k8s.io/v1", "EndpointSlice"): EndpointSlice,
    ("networking.k8s.io/v1", "Ingress"): Ingress,
    ("networking.k8s.io/v1", "IngressClass"): IngressClass,
    ("networking.k8s.io/v1", "NetworkPolicy"): NetworkPolicy,
    ("policy/v1", "PodDisruptionBudget"): PodDisruptionBudget,
    ("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy"): ClusterNetworkPolicy,
    ("storage.k8s.io/v1", "StorageClass"): StorageClass,
    ("coordination.k8s.io/v1", "Lease"): Lease,
    ("scheduling.k8s.io/v1", "PriorityClass"): PriorityClass,
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"): ValidatingWebhookConfiguration,
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"): MutatingWebhookConfiguration,
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): CustomResourceDefinition,
    ("apiregistration.k8s.io/v1", "APIService"): APIService,
    ("extensions/v1beta1", "Ingress"): LegacyIngress,
    ("networking.k8s.io/v1beta1", "Ingress"): LegacyIngress,
    ("v1", "ServiceAccount"): ServiceAccount,
    ("rbac.authorization.k8s.io/v1", "Role"): Role,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ClusterRole,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): RoleBinding,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ClusterRoleBinding,
}

# Types served on a path but converted before they are stored (legacy Ingress to v1,
# autoscaling/v1 to v2).
CONVERTED: set[type[Object]] = {LegacyIngress, HorizontalPodAutoscalerV1}

# The canonical type stored for a kind.
STORED: dict[str, type[Object]] = {cls.KIND: cls for cls in KINDS.values() if cls not in CONVERTED}

# Short names as the API server's discovery lists them.
SHORT_NAMES: dict[str, list[str]] = {
    "Namespace": ["ns"],
    "Node": ["no"],
    "Pod": ["po"],
    "Service": ["svc"],
    "Endpoints": ["ep"],
    "ConfigMap": ["cm"],
    "Event": ["ev"],
    "PersistentVolume": ["pv"],
    "PersistentVolumeClaim": ["pvc"],
    "ResourceQuota": ["quota"],
    "LimitRange": ["limits"],
    "ReplicationController": ["rc"],
    "Deployment": ["deploy"],
    "ReplicaSet": ["rs"],
    "StatefulSet": ["sts"],
    "DaemonSet": ["ds"],
    "CronJob": ["cj"],
    "HorizontalPodAutoscaler": ["hpa"],
    "Ingress": ["ing"],
    "NetworkPolicy": ["netpol"],
    "ClusterNetworkPolicy": ["cnp"],
    "PodDisruptionBudget": ["pdb"],
    "StorageClass": ["sc"],
    "PriorityClass": ["pc"],
    "CustomResourceDefinition": ["crd", "crds"],
    "ServiceAccount": ["sa"],
    "Role": [],
    "ClusterRole": [],
    "RoleBinding": [],
    "ClusterRoleBinding": [],
}

# Discovery categories (``kubectl get all`` expands ``all`` through them).
_ALL = "Pod Service ReplicationController Deployment ReplicaSet StatefulSet DaemonSet Job CronJob "
_ALL += "HorizontalPodAutoscaler"
_API_EXTENSIONS = "CustomResourceDefinition APIService MutatingWebhookConfiguration ValidatingWebhookConfiguration"
CATEGORIES: dict[str, list[str]] = {
    **{kind: ["all"] for kind in _ALL.split()},
    **{kind: ["api-extensions"] for kind in _API_EXTENSIONS.split()},
}

# kubectl resource names and short names -> kind
RESOURCES: dict[str, str] = {}

# Bumped by every change of the tables; HOOKS are called after it.
GENERATION = 0
HOOKS: list[Callable[[], None]] = []


def _index(kind: str, cls: type[Object]) -> None:
    for n in (cls.PLURAL, kind.lower(), *SHORT_NAMES.get(kind, ())):
        RESOURCES.setdefault(n, kind)


for _kind, _cls in STORED.items():
    _index(_kind, _cls)
BUILTIN_KINDS = frozenset(STORED)


def _changed() -> None:
    global GENERATION
    GENERATION += 1
    for hook in HOOKS:
        hook()


def register(
    served: Iterable[type[Object]],
    storage: type[Object],
    *,
    singular: str,
    short_names: Iterable[str] = (),
    categories: Iterable[str] = (),
) -> None:
    """Serve a kind at run time (a custom resource): ``served`` holds one type per served version,
    ``storage`` the type its objects are stored as. Replaces what an earlier call registered."""
    kind = storage.KIND
    if kind in BUILTIN_KINDS:
        raise ValueError(f"{kind} is built in")
    _drop(kind)
    for cls in served:
        KINDS[(cls.API_VERSION, kind)] = cls
        if cls is not storage:
            CONVERTED.add(cls)
    STORED[kind] = storage
    SHORT_NAMES[kind] = list(short_names)
    CATEGORIES[kind] = list(categories)
    for n in (storage.PLURAL, singular, *SHORT_NAMES[kind]):
        RESOURCES.setdefault(n, kind)  # a name a kind already has keeps meaning that kind
    _changed()


def unregister(kind: str) -> None:
    """Stop serving a kind added by ``register`` (built-in kinds stay)."""
    if kind in BUILTIN_KINDS:
        raise ValueError(f"{kind} is built in")
    _drop(kind)
    _changed()


def _drop(kind: str) -> None:
    for key in [k for k in KINDS if k[1] == kind]:
        CONVERTED.discard(KINDS.pop(key))
    STORED.pop(kind, None)
    SHORT_NAMES.pop(kind, None)
    CATEGORIES.pop(kind, None)
    for n in [n for n, k in RESOURCES.items() if k == kind]:
        del RESOURCES[n]


def resolve_resource(name: str) -> str:
    """``po`` / ``pods`` / ``pod`` -> ``Pod``. Raises KeyError for an unknown resource type."""
    base = name.split(".", 1)[0].lower()
    return RESOURCES[base]
