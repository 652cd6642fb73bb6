"""Identity and access kinds: ``v1`` ServiceAccount and ``rbac.authorization.k8s.io/v1`` Role,
ClusterRole, RoleBinding, ClusterRoleBinding.

ServiceAccount is a core kind; it lives here beside the RBAC kinds that name it as a subject.
"""

from __future__ import annotations

import msgspec

from .core import LocalObjectReference, ObjectReference
from .meta import Base, LabelSelector, Object

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_VERSION = f"{RBAC_GROUP}/v1"

# Subject kinds a binding may name, with the apiGroup each takes (as the API defaults them).
SUBJECT_KINDS = {"ServiceAccount": "", "User": RBAC_GROUP, "Group": RBAC_GROUP}

# What ``kubectl create role`` and the validation accept as verbs: any word, but these are the
# ones the API server's request resolver produces (plus the special ones RBAC knows).
STANDARD_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


class ServiceAccount(Object):
    """An identity for the processes of pods, with tokens the API issues (TokenRequest)."""

    KIND = "ServiceAccount"
    PLURAL = "serviceaccounts"
    secrets: list[ObjectReference] | None = None
    imagePullSecrets: list[LocalObjectReference] | None = None
    automountServiceAccountToken: bool | None = None


class PolicyRule(Base):
    """Verbs allowed on resources of API groups (optionally by name), or on non-resource URLs."""

    verbs: list[str] | None = None
    apiGroups: list[str] | None = None
    resources: list[str] | None = None
    resourceNames: list[str] | None = None
    nonResourceURLs: list[str] | None = None


class AggregationRule(Base):
    """Selects the ClusterRoles whose rules make up an aggregated ClusterRole."""

    clusterRoleSelectors: list[LabelSelector] | None = None


class Role(Object):
    """Rules of access within one namespace, granted by RoleBindings."""

    KIND = "Role"
    API_VERSION = RBAC_VERSION
    PLURAL = "roles"
    rules: list[PolicyRule] | None = None


class ClusterRole(Object):
    """Rules of access cluster-wide or, through RoleBindings, within namespaces."""

    KIND = "ClusterRole"
    API_VERSION = RBAC_VERSION
    PLURAL = "clusterroles"
    NAMESPACED = False
    rules: list[PolicyRule] | None = None
    aggregationRule: AggregationRule | None = None


class Subject(Base):
    """Who a binding grants to: a User, a Group or a ServiceAccount."""

    kind: str = ""
    name: str = ""
    apiGroup: str | None = None
    namespace: str | None = None


class RoleRef(Base):
    """The Role or ClusterRole a binding grants; it cannot change once the binding exists."""

    apiGroup: str = ""
    kind: str = ""
    name: str = ""


class RoleBinding(Object):
    """Grants a Role or ClusterRole to subjects within the binding's namespace."""

    KIND = "RoleBinding"
    API_VERSION = RBAC_VERSION
    PLURAL = "rolebindings"
    subjects: list[Subject] | None = None
    roleRef: RoleRef = msgspec.field(default_factory=RoleRef)


class ClusterRoleBinding(Object):
    """Grants a ClusterRole to subjects across the cluster."""

    KIND = "ClusterRoleBinding"
    API_VERSION = RBAC_VERSION
    PLURAL = "clusterrolebindings"
    NAMESPACED = False
    subjects: list[Subject] | None = None
    roleRef: RoleRef = msgspec.field(default_factory=RoleRef)


def service_account_username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def service_account_groups(namespace: str) -> list[str]:
    return ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]
