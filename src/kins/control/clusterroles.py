"""The ClusterRole aggregation controller: a ClusterRole with an ``aggregationRule`` holds the
rules of every ClusterRole its selectors match (``admin``, ``edit`` and ``view`` are built so)."""

from __future__ import annotations

from collections.abc import Iterable

from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.meta import selector_matches
from ..api.rbac import ClusterRole, PolicyRule
from ..store.base import DELETED, Store, WatchEvent


class ClusterRoleAggregation:
    """Keys: the names of aggregated ClusterRoles; any ClusterRole change re-evaluates them all
    (there are few, and a label change can move a role in or out of any of them)."""

    name = "clusterrole-aggregation"
    kinds = frozenset({"ClusterRole"})

    def __init__(self, store: Store) -> None:
        self.store = store
        self._aggregated: set[str] = set()

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        role = ev.object
        if isinstance(role, ClusterRole):
            if ev.type != DELETED and role.aggregationRule is not None:
                self._aggregated.add(role.name)
            else:
                self._aggregated.discard(role.name)
        return sorted(self._aggregated)

    def start_keys(self) -> Iterable[str]:
        return sorted(self._aggregated)

    def reconcile(self, key: str) -> bool:
        try:
            role = self.store.get("ClusterRole", None, key)
        except NotFound:
            return False
        if not isinstance(role, ClusterRole) or role.aggregationRule is None:
            return False
        selectors = role.aggregationRule.clusterRoleSelectors or []
        rules: list[PolicyRule] = []
        others = sorted(
            (r for r in self.store.list("ClusterRole")[0] if isinstance(r, ClusterRole) and r.name != key),
            key=lambda r: r.name,
        )
        for other in others:
            if any(selector_matches(sel, other.labels) for sel in selectors):
                rules.extend(rule for rule in other.rules or [] if rule not in rules)
        if (role.rules or []) == rules:
            return False
        try:
            self.store.update(replace(role, rules=rules or None), check_rv=True)
        except Conflict:
            return False  # changed meanwhile: the change's event brings it back
        return True
