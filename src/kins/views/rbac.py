"""``kubectl get`` rows of ServiceAccounts and RBAC objects, as kubectl's printers make them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..api.rbac import ClusterRole, ClusterRoleBinding, Role, RoleBinding, ServiceAccount, Subject
from .common import age


def _sa_row(sa: ServiceAccount, now: datetime) -> list[str]:
    return [sa.name, str(len(sa.secrets or [])), age(sa.metadata.creationTimestamp, now)]


def _role_row(r: Role | ClusterRole, now: datetime) -> list[str]:
    # CREATED AT: the timestamp itself (RFC 3339), not an age.
    return [r.name, r.metadata.creationTimestamp or ""]


def _names(subjects: list[Subject] | None, kind: str) -> str:
    out = []
    for s in subjects or []:
        if s.kind == kind:
            out.append(f"{s.namespace or ''}/{s.name}" if kind == "ServiceAccount" else s.name)
    return ", ".join(out)


def _binding_row(b: RoleBinding | ClusterRoleBinding, now: datetime) -> list[str]:
    return [
        b.name,
        f"{b.roleRef.kind}/{b.roleRef.name}",
        age(b.metadata.creationTimestamp, now),
        _names(b.subjects, "User"),
        _names(b.subjects, "Group"),
        _names(b.subjects, "ServiceAccount"),
    ]


_BINDING = ("NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS")

# kind -> (columns, how many of them are -o wide only, row function), as views.table.COLUMNS
COLUMNS: dict[str, tuple[tuple[str, ...], int, Callable[[Any, datetime], list[str]]]] = {
    "ServiceAccount": (("NAME", "SECRETS", "AGE"), 0, _sa_row),
    "Role": (("NAME", "CREATED AT"), 0, _role_row),
    "ClusterRole": (("NAME", "CREATED AT"), 0, _role_row),
    "RoleBinding": (_BINDING, 3, _binding_row),
    "ClusterRoleBinding": (_BINDING, 3, _binding_row),
}
