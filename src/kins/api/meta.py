"""Object metadata, label selectors and the base every API object shares.

Attribute names are the Kubernetes JSON field names (``clusterIP``, ``podCIDR``), so code reads
like the API reference and msgspec needs no renaming table.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec


class Base(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Struct base: keyword-only, and fields left at their default are not written out."""


class OwnerReference(Base):
    apiVersion: str
    kind: str
    name: str
    uid: str = ""
    controller: bool | None = None
    blockOwnerDeletion: bool | None = None


class ObjectMeta(Base):
    name: str = ""
    generateName: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    generation: int | None = None
    creationTimestamp: str | None = None
    deletionTimestamp: str | None = None
    deletionGracePeriodSeconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    ownerReferences: list[OwnerReference] | None = None
    finalizers: list[str] | None = None
    managedFields: list[Any] | None = None
    selfLink: str | None = None


class LabelSelectorRequirement(Base):
    key: str
    operator: str
    values: list[str] | None = None


class LabelSelector(Base):
    matchLabels: dict[str, str] | None = None
    matchExpressions: list[LabelSelectorRequirement] | None = None


class Condition(Base):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    lastTransitionTime: str | None = None
    lastProbeTime: str | None = None
    lastUpdateTime: str | None = None
    lastHeartbeatTime: str | None = None
    observedGeneration: int | None = None


class Object(Base):
    """A top-level API object. Subclasses set ``KIND``, ``API_VERSION`` and ``NAMESPACED``."""

    KIND: ClassVar[str] = ""
    API_VERSION: ClassVar[str] = "v1"
    NAMESPACED: ClassVar[bool] = True
    PLURAL: ClassVar[str] = ""

    apiVersion: str = ""
    kind: str = ""
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)

    def __post_init__(self) -> None:
        if not self.kind:
            self.kind = self.KIND
        if not self.apiVersion:
            self.apiVersion = self.API_VERSION

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or ("default" if self.NAMESPACED else "")

    @property
    def key(self) -> str:
        """``namespace/name`` for namespaced objects, ``name`` otherwise."""
        return f"{self.namespace}/{self.name}" if self.NAMESPACED else self.name

    @property
    def labels(self) -> dict[str, str]:
        return self.metadata.labels or {}


def selector_matches(selector: LabelSelector | None, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics. An empty selector matches everything; None nothing."""
    if selector is None:
        return False
    for k, v in (selector.matchLabels or {}).items():
        if labels.get(k) != v:
            return False
    for req in selector.matchExpressions or []:
        values = req.values or []
        present = req.key in labels
        if req.operator == "In":
            if not present or labels[req.key] not in values:
                return False
        elif req.operator == "NotIn":
            if present and labels[req.key] in values:
                return False
        elif req.operator == "Exists":
            if not present:
                return False
        elif req.operator == "DoesNotExist":
            if present:
                return False
        else:
            return False
    return True


def map_selector_matches(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    """A Service-style equality selector: every key must match. Empty/None selects nothing here."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a kubectl ``-l`` selector: ``a=b,c!=d,e in (x,y),f notin (z),g,!h``."""
    match: dict[str, str] = {}
    exprs: list[LabelSelectorRequirement] = []
    parts: list[str] = []
    depth = 0
    cur = ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    for raw in parts:
        p = raw.strip()
        if not p:
            continue
        low = p.replace("\t", " ")
        if " notin " in low or " in " in low:
            op = "NotIn" if " notin " in low else "In"
            key, _, rest = low.partition(" notin " if op == "NotIn" else " in ")
            vals = [v.strip() for v in rest.strip().strip("()").split(",") if v.strip()]
            exprs.append(LabelSelectorRequirement(key=key.strip(), operator=op, values=vals))
        elif "!=" in p:
            k, _, v = p.partition("!=")
            exprs.append(LabelSelectorRequirement(key=k.strip(), operator="NotIn", values=[v.strip()]))
        elif "==" in p or "=" in p:
            k, _, v = p.partition("==") if "==" in p else p.partition("=")
            match[k.strip()] = v.strip()
        elif p.startswith("!"):
            exprs.append(LabelSelectorRequirement(key=p[1:].strip(), operator="DoesNotExist"))
        else:
            exprs.append(LabelSelectorRequirement(key=p, operator="Exists"))
    return LabelSelector(matchLabels=match or None, matchExpressions=exprs or None)
