"""The RBAC bootstrap policy written at start-up: missing bootstrap ClusterRoles and
ClusterRoleBindings are created (a cluster's own changes to existing ones are kept)."""

from __future__ import annotations

from .._errors import Conflict, NotFound
from ..api.bootstrappolicy import cluster_role_bindings, cluster_roles
from ..store.base import Store


def ensure_bootstrap_policy(store: Store) -> int:
    """Create what is missing; the number of objects created."""
    created = 0
    with store.transaction():
        for obj in [*cluster_roles(), *cluster_role_bindings()]:
            try:
                store.get(obj.kind, None, obj.name)
                continue
            except NotFound:
                pass
            try:
                store.create(obj)
                created += 1
            except Conflict:
                pass
    return created
