"""What a request asks to do (verb, API group, resource, subresource, namespace, name, or a
non-resource path) and whether RBAC lets its user do it.

The attributes are resolved from the URL as the API server's request-info resolver does; the
RBAC evaluation walks the ClusterRoleBindings and the RoleBindings of the request's namespace
for rules that name the user, one of its groups or its ServiceAccount.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .._errors import NotFound
from ..api.rbac import ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject
from ..store.base import Store
from .authn import UserInfo, service_account_of

_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "GET": "get", "HEAD": "get", "DELETE": "delete"}
# Subresources a websocket (GET) or SPDY (POST) upgrade opens: authorized as ``create``.
_CONNECT = frozenset({"exec", "attach", "portforward"})


@dataclass(frozen=True)
class Attributes:
    verb: str
    resource_request: bool
    path: str
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    @property
    def qualified_resource(self) -> str:
        return f"{self.resource}.{self.api_group}" if self.api_group else self.resource


def request_attributes(method: str, path: str, query: dict[str, str]) -> Attributes:
    """The authorization attributes of ``method path?query``."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return Attributes(method.lower(), False, path)
    if not rest:
        return Attributes(method.lower(), False, path)
    verb = _VERBS.get(method, method.lower())
    watch = False
    if rest[0] == "watch":
        watch, rest = True, rest[1:]
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces":
        if len(rest) == 2 or (len(rest) == 3 and rest[2] in ("status", "finalize")):
            # A namespace itself: its name doubles as the namespace, as upstream resolves it.
            namespace = rest[1]
        else:
            namespace, rest = rest[1], rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if not name:
        if verb == "get":
            verb = "list"
        elif verb == "delete":
            verb = "deletecollection"
    if watch or (verb in ("get", "list") and query.get("watch", "").lower() in ("1", "true")):
        verb = "watch"
    if sub in _CONNECT and verb == "get":
        verb = "create"
    return Attributes(verb, True, path, group, version, resource, sub, namespace, name)


# --- RBAC -------------------------------------------------------------------------------------


def _subject_matches(s: Subject, user: UserInfo, binding_ns: str) -> bool:
    if s.kind == "User":
        return s.name == user.name
    if s.kind == "Group":
        return s.name in user.groups
    if s.kind == "ServiceAccount":
        sa = service_account_of(user.name)
        return sa is not None and sa == (s.namespace or binding_ns, s.name)
    return False


def _has(values: list[str] | None, want: str) -> bool:
    return bool(values) and ("*" in values or want in values)  # type: ignore[operator]


def _resource_matches(rule: PolicyRule, a: Attributes) -> bool:
    res = rule.resources or []
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    for r in res:
        if r == "*" or r == combined:
            return True
        if a.subresource and r == f"*/{a.subresource}":
            return True
    return False


def _url_matches(rule: PolicyRule, path: str) -> bool:
    urls = rule.nonResourceURLs or []
    return any(u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1])) for u in urls)


def rule_allows(rule: PolicyRule, a: Attributes) -> bool:
    if not _has(rule.verbs, a.verb):
        return False
    if not a.resource_request:
        return _url_matches(rule, a.path)
    if not _has(rule.apiGroups, a.api_group) or not _resource_matches(rule, a):
        return False
    if rule.resourceNames:
        return a.name in rule.resourceNames
    return True


class RBAC:
    """RBAC over the store's bindings and roles."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _role_rules(self, kind: str, ns: str | None, name: str, errors: list[str]) -> list[PolicyRule]:
        try:
            role = self.store.get(kind, ns if kind == "Role" else None, name)
        except NotFound:
            what = "role" if kind == "Role" else "clusterrole"
            errors.append(f'{what}.rbac.authorization.k8s.io "{name}" not found')
            return []
        return list(role.rules or []) if isinstance(role, Role | ClusterRole) else []

    def rules_for(self, user: UserInfo, namespace: str, errors: list[str]) -> Iterator[PolicyRule]:
        """Every rule that applies to ``user`` in ``namespace`` ("" for cluster scope only)."""
        for b in self.store.list("ClusterRoleBinding")[0]:
            if isinstance(b, ClusterRoleBinding) and any(_subject_matches(s, user, "") for s in b.subjects or []):
                yield from self._role_rules("ClusterRole", None, b.roleRef.name, errors)
        if namespace:
            for b in self.store.list("RoleBinding", namespace)[0]:
                if isinstance(b, RoleBinding) and any(_subject_matches(s, user, namespace) for s in b.subjects or []):
                    yield from self._role_rules(b.roleRef.kind, namespace, b.roleRef.name, errors)

    def authorize(self, user: UserInfo, a: Attributes) -> tuple[bool, str]:
        """(allowed, reason): the reason names bindings whose role is missing, as RBAC does."""
        if user.master:
            return True, ""
        errors: list[str] = []
        for rule in self.rules_for(user, a.namespace if a.resource_request else "", errors):
            if rule_allows(rule, a):
                return True, ""
        return False, f"RBAC: {', '.join(errors)}" if errors else ""


def forbidden_message(user: UserInfo, a: Attributes, reason: str = "") -> str:
    """The API server's words for a refusal."""
    if not a.resource_request:
        msg = f'User "{user.name}" cannot {a.verb} path "{a.path}"'
    else:
        res = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
        msg = f'User "{user.name}" cannot {a.verb} resource "{res}" in API group "{a.api_group}" {scope}'
    if reason:
        msg = f"{msg}: {reason}"
    if not a.resource_request or not a.resource:
        return f"forbidden: {msg}"
    if a.name:
        return f'{a.qualified_resource} "{a.name}" is forbidden: {msg}'
    return f"{a.qualified_resource} is forbidden: {msg}"
