"""The REST resources the API serves, derived from kins.api.registry.

Shared by the server (routing, discovery) and the client (URL building), so a kind added to
the registry is served and reachable without editing either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from . import registry
from .meta import Base, LabelSelector, Object, ObjectMeta
from .networking import LegacyIngress
from .registry import CATEGORIES, KINDS, RESOURCES, SHORT_NAMES, STORED

# Kinds whose replicas can be read and set through the ``/scale`` subresource.
SCALABLE = frozenset({"Deployment", "ReplicaSet", "StatefulSet"})


@dataclass(frozen=True)
class Resource:
    kind: str
    group_version: str  # "v1" for the core group, "apps/v1" otherwise
    plural: str
    namespaced: bool
    cls: type[Object]  # what request bodies on this path decode into
    stored: type[Object]  # what the store holds (legacy Ingress is stored as v1)

    @property
    def group(self) -> str:
        return self.group_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.group_version.rpartition("/")[2]

    @property
    def legacy(self) -> bool:
        """Served in another version than the one stored (converted on the way in and out)."""
        return self.cls is not self.stored

    @property
    def short_names(self) -> list[str]:
        return [n for n in SHORT_NAMES.get(self.kind, ()) if RESOURCES.get(n) == self.kind]

    @property
    def singular(self) -> str:
        return getattr(self.stored, "SINGULAR", "") or self.kind.lower()

    @property
    def categories(self) -> list[str]:
        return CATEGORIES.get(self.kind, [])

    @property
    def subresources(self) -> list[str]:
        declared: tuple[str, ...] | None = getattr(self.stored, "SUBRESOURCES", None)
        if declared is not None:  # a custom resource: what its definition declares
            return list(declared)
        subs = ["status"] if "status" in self.stored.__struct_fields__ else []
        if self.kind in SCALABLE:
            subs.append("scale")
        if self.kind == "Namespace":
            subs.append("finalize")  # PUT: spec.finalizers (what the namespace controller removes)
        if self.kind == "Pod":
            subs.append("ephemeralcontainers")
        return subs

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        """The URL path of the collection, an object or one of its subresources."""
        root = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        parts = [root]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
            if sub:
                parts.append(sub)
        return "/".join(parts)


def _build() -> list[Resource]:
    out = []
    for (api_version, kind), cls in KINDS.items():
        stored = STORED[kind]
        out.append(Resource(kind, api_version, cls.PLURAL, cls.NAMESPACED, cls, stored))
    return out


# Rebuilt in place when the registry changes (a CRD registered), so importers keep valid references.
ALL: list[Resource] = []
# (group/version, plural) -> resource, for routing.
BY_PATH: dict[tuple[str, str], Resource] = {}
# kind -> the canonical (stored) resource, for clients.
BY_KIND: dict[str, Resource] = {}
GROUP_VERSIONS: list[str] = []
# Old versions of built-in kinds: served, but not advertised with short names.
LEGACY_TYPES: tuple[type[Object], ...] = (LegacyIngress,)


def _replace(table: dict[Any, Resource], new: dict[Any, Resource]) -> None:
    """New entries first, stale ones after: a reader never misses a kind that stays served."""
    table.update(new)
    for key in [k for k in table if k not in new]:
        del table[key]


def _rebuild() -> None:
    ALL[:] = _build()
    _replace(BY_PATH, {(r.group_version, r.plural): r for r in ALL})
    _replace(BY_KIND, {r.kind: r for r in ALL if not r.legacy})
    GROUP_VERSIONS[:] = sorted({r.group_version for r in ALL}, key=lambda gv: (gv != "v1", gv))


_rebuild()
registry.HOOKS.append(_rebuild)


def resources_in_category(category: str) -> list[Resource]:
    """The resources of a discovery category (``all``) in the order ``kubectl get all`` lists them:
    group by group (core first, custom resources last), by name within a group."""
    found = [r for r in BY_KIND.values() if category in r.categories]
    custom = {r.kind for r in found if getattr(r.stored, "SUBRESOURCES", None) is not None}
    return sorted(found, key=lambda r: (r.kind in custom, r.group_version != "v1", r.group, r.plural))


def resource_for(kind_or_name: str) -> Resource:
    """``Pod``, ``pods``, ``po`` or ``deployments.apps`` -> its resource. KeyError if unknown."""
    if kind_or_name in BY_KIND:
        return BY_KIND[kind_or_name]
    return BY_KIND[RESOURCES[kind_or_name.split(".", 1)[0].lower()]]


# --- autoscaling/v1 Scale ---------------------------------------------------------------------


class ScaleSpec(Base):
    replicas: int = 0


class ScaleStatus(Base):
    replicas: int = 0
    selector: str | None = None


class Scale(msgspec.Struct, kw_only=True):
    """Not ``Base``: kind and apiVersion are defaults here and must still be written out."""

    apiVersion: str = "autoscaling/v1"
    kind: str = "Scale"
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: ScaleSpec = msgspec.field(default_factory=ScaleSpec)
    status: ScaleStatus = msgspec.field(default_factory=ScaleStatus)


def selector_string(sel: LabelSelector | None) -> str:
    """A LabelSelector in the ``-l`` text form (what Scale.status.selector carries)."""
    if sel is None:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((sel.matchLabels or {}).items())]
    for req in sel.matchExpressions or []:
        vals = ",".join(req.values or [])
        if req.operator == "In":
            parts.append(f"{req.key} in ({vals})")
        elif req.operator == "NotIn":
            parts.append(f"{req.key} notin ({vals})")
        elif req.operator == "Exists":
            parts.append(req.key)
        elif req.operator == "DoesNotExist":
            parts.append(f"!{req.key}")
    return ",".join(parts)
