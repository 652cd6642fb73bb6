"""Which Python type holds each (apiVersion, kind), and the resource names kubectl accepts."""

from __future__ import annotations

from .apps import DaemonSet, Deployment, ReplicaSet, StatefulSet
from .batch import CronJob, Job
from .core import ConfigMap, Endpoints, Event, Namespace, Node, Pod, Secret, Service
from .discovery import EndpointSlice
from .meta import Object
from .networking import Ingress, IngressClass, LegacyIngress, NetworkPolicy
from .policy import ClusterNetworkPolicy
from .rbac import ClusterRole, ClusterRoleBinding, Role, RoleBinding, ServiceAccount

KINDS: dict[tuple[str, str], type[Object]] = {
    ("v1", "Namespace"): Namespace,
    ("v1", "Node"): Node,
    ("v1", "Pod"): Pod,
    ("v1", "Service"): Service,
    ("v1", "Endpoints"): Endpoints,
    ("v1", "ConfigMap"): ConfigMap,
    ("v1", "Secret"): Secret,
    ("v1", "Event"): Event,
    ("apps/v1", "Deployment"): Deployment,
    ("apps/v1", "ReplicaSet"): ReplicaSet,
    ("apps/v1", "StatefulSet"): StatefulSet,
    ("apps/v1", "DaemonSet"): DaemonSet,
    ("batch/v1", "Job"): Job,
    ("batch/v1", "CronJob"): CronJob,
    ("discovery.k8s.io/v1", "EndpointSlice"): EndpointSlice,
    ("networking.k8s.io/v1", "Ingress"): Ingress,
    ("networking.k8s.io/v1", "IngressClass"): IngressClass,
    ("networking.k8s.io/v1", "NetworkPolicy"): NetworkPolicy,
    ("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy"): ClusterNetworkPolicy,
    ("extensions/v1beta1", "Ingress"): LegacyIngress,
    ("networking.k8s.io/v1beta1", "Ingress"): LegacyIngress,
    ("v1", "ServiceAccount"): ServiceAccount,
    ("rbac.authorization.k8s.io/v1", "Role"): Role,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ClusterRole,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): RoleBinding,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ClusterRoleBinding,
}

# The canonical type stored for a kind (legacy Ingress is converted to v1 on the way in).
STORED: dict[str, type[Object]] = {cls.KIND: cls for (_, _), cls in KINDS.items() if cls is not LegacyIngress}

# kubectl resource names and short names -> kind
RESOURCES: dict[str, str] = {}
_SHORT = {
    "Namespace": ["ns"],
    "Node": ["no"],
    "Pod": ["po"],
    "Service": ["svc"],
    "Endpoints": ["ep"],
    "ConfigMap": ["cm"],
    "Secret": [],
    "Event": ["ev"],
    "Deployment": ["deploy"],
    "ReplicaSet": ["rs"],
    "StatefulSet": ["sts"],
    "DaemonSet": ["ds"],
    "Job": [],
    "CronJob": ["cj"],
    "EndpointSlice": [],
    "Ingress": ["ing"],
    "IngressClass": [],
    "NetworkPolicy": ["netpol"],
    "ClusterNetworkPolicy": ["cnp"],
    "ServiceAccount": ["sa"],
    "Role": [],
    "ClusterRole": [],
    "RoleBinding": [],
    "ClusterRoleBinding": [],
}
for _kind, _cls in STORED.items():
    for _n in (_cls.PLURAL, _kind.lower(), *_SHORT[_kind]):
        RESOURCES[_n] = _kind


def resolve_resource(name: str) -> str:
    """``po`` / ``pods`` / ``pod`` -> ``Pod``. Raises KeyError for an unknown resource type."""
    base = name.split(".", 1)[0].lower()
    return RESOURCES[base]
