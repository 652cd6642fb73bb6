"""The REST resources the API serves, derived from kins.api.registry.

Shared by the server (routing, discovery) and the client (URL building), so a kind added to
the registry is served and reachable without editing either.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from .meta import Base, LabelSelector, Object, ObjectMeta
from .networking import LegacyIngress
from .registry import KINDS, RESOURCES, STORED

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
        return self.cls is not self.stored

    @property
    def short_names(self) -> list[str]:
        return sorted(n for n, k in RESOURCES.items() if k == self.kind and n not in (self.plural, self.kind.lower()))

    @property
    def subresources(self) -> list[str]:
        subs = ["status"] if "status" in self.stored.__struct_fields__ else []
        if self.kind in SCALABLE:
            subs.append("scale")
        if self.kind == "Namespace":
            subs.append("finalize")  # PUT: spec.finalizers (what the namespace controller removes)
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


ALL: list[Resource] = _build()
# (group/version, plural) -> resource, for routing.
BY_PATH: dict[tuple[str, str], Resource] = {(r.group_version, r.plural): r for r in ALL}
# kind -> the canonical (non-legacy) resource, for clients.
BY_KIND: dict[str, Resource] = {r.kind: r for r in ALL if not r.legacy}
GROUP_VERSIONS: list[str] = sorted({r.group_version for r in ALL}, key=lambda gv: (gv != "v1", gv))
LEGACY_TYPES: tuple[type[Object], ...] = (LegacyIngress,)


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
