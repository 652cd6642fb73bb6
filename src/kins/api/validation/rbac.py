"""The rbac.authorization.k8s.io group (Role, ClusterRole, RoleBinding, ClusterRoleBinding) and
ServiceAccount, with the RBAC validation's words."""

from __future__ import annotations

from ..._errors import ValidationError
from ..config import ClusterConfig
from ..meta import Object
from ..rbac import (
    RBAC_GROUP,
    SUBJECT_KINDS,
    ClusterRole,
    ClusterRoleBinding,
    PolicyRule,
    Role,
    RoleBinding,
    ServiceAccount,
    Subject,
)
from .common import Check, Errors, is_dns1123_subdomain, is_path_segment_name


def _rule(e: Errors, field: str, rule: PolicyRule, namespaced: bool) -> None:
    if not rule.verbs:
        e.required(f"{field}.verbs", "verbs must contain at least one value")
    if rule.nonResourceURLs:
        if namespaced:
            e.invalid(
                f"{field}.nonResourceURLs", rule.nonResourceURLs, "namespaced rules cannot apply to non-resource URLs"
            )
        if rule.apiGroups or rule.resources or rule.resourceNames:
            e.invalid(
                f"{field}.nonResourceURLs",
                rule.nonResourceURLs,
                "rules cannot apply to both regular resources and non-resource URLs",
            )
        return
    if not rule.apiGroups:
        e.required(f"{field}.apiGroups", "resource rules must supply at least one api group")
    if not rule.resources:
        e.required(f"{field}.resources", "resource rules must supply at least one resource")


def _role(e: Errors, r: Role, cfg: ClusterConfig | None) -> None:
    for i, rule in enumerate(r.rules or []):
        _rule(e, f"rules[{i}]", rule, True)


def _cluster_role(e: Errors, r: ClusterRole, cfg: ClusterConfig | None) -> None:
    for i, rule in enumerate(r.rules or []):
        _rule(e, f"rules[{i}]", rule, False)
    agg = r.aggregationRule
    if agg is not None:
        if not agg.clusterRoleSelectors:
            e.required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            )
        for i, sel in enumerate(agg.clusterRoleSelectors or []):
            e.label_selector(f"aggregationRule.clusterRoleSelectors[{i}]", sel)


def _subject(e: Errors, field: str, s: Subject, namespaced: bool) -> None:
    if not s.name:
        e.required(f"{field}.name")
    if s.kind not in SUBJECT_KINDS:
        e.unsupported(f"{field}.kind", s.kind, SUBJECT_KINDS)
        return
    want = SUBJECT_KINDS[s.kind]
    if (s.apiGroup or "") != want:
        e.unsupported(f"{field}.apiGroup", s.apiGroup or "", [want])
    if s.kind == "ServiceAccount":
        if s.name:
            e.invalid_each(f"{field}.name", s.name, is_dns1123_subdomain(s.name))
        if not s.namespace and not namespaced:
            e.required(f"{field}.namespace")
    elif s.name:
        # Users and groups are any name the authenticator may produce, but not a bad path.
        e.invalid_each(f"{field}.name", s.name, is_path_segment_name(s.name) if s.kind == "Group" else ())


def _binding(e: Errors, b: RoleBinding | ClusterRoleBinding, namespaced: bool) -> None:
    ref = b.roleRef
    if ref.apiGroup != RBAC_GROUP:
        e.unsupported("roleRef.apiGroup", ref.apiGroup, [RBAC_GROUP])
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.kind not in kinds:
        e.unsupported("roleRef.kind", ref.kind, kinds)
    if not ref.name:
        e.required("roleRef.name")
    else:
        e.invalid_each("roleRef.name", ref.name, is_path_segment_name(ref.name))
    for i, s in enumerate(b.subjects or []):
        _subject(e, f"subjects[{i}]", s, namespaced)


def _role_binding(e: Errors, b: RoleBinding, cfg: ClusterConfig | None) -> None:
    _binding(e, b, True)


def _cluster_role_binding(e: Errors, b: ClusterRoleBinding, cfg: ClusterConfig | None) -> None:
    _binding(e, b, False)


def _service_account(e: Errors, sa: ServiceAccount, cfg: ClusterConfig | None) -> None:
    for i, ref in enumerate(sa.secrets or []):
        if not ref.name:
            e.required(f"secrets[{i}].name")


CHECKS: dict[type[Object], Check] = {
    ServiceAccount: _service_account,
    Role: _role,
    ClusterRole: _cluster_role,
    RoleBinding: _role_binding,
    ClusterRoleBinding: _cluster_role_binding,
}


def validate_update(obj: Object, old: Object) -> list[ValidationError]:
    """What an update may not change: a binding's roleRef (delete and recreate it instead)."""
    if isinstance(obj, RoleBinding | ClusterRoleBinding) and isinstance(old, type(obj)) and obj.roleRef != old.roleRef:
        e = Errors(obj)
        ref = obj.roleRef
        # The value as Go's %#v prints the internal struct, which is what the API says.
        shown = f'rbac.RoleRef{{APIGroup:"{ref.apiGroup}", Kind:"{ref.kind}", Name:"{ref.name}"}}'
        e.add("roleRef", f"Invalid value: {shown}: cannot change roleRef")
        return e.errs
    return []
