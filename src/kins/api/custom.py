"""Custom resources: the types a CustomResourceDefinition defines, and what the API server does
with their objects.

Each served version of a definition becomes a msgspec struct built at run time, one field (of
type ``Any``) per top-level property of the version's schema. Objects are stored in the storage
version; the other versions differ only in ``apiVersion`` (conversion strategy None). On the
way in (``load.to_object``), a body is pruned of the fields its version's structural schema
does not declare (unless ``x-kubernetes-preserve-unknown-fields``), given the schema's
defaults, and checked against its simple keywords (type, required, enum, bounds, lengths,
pattern, item counts) in the apiextensions server's words. CEL rules
(``x-kubernetes-validations``) and ``anyOf``/``oneOf`` are not evaluated.
"""

from __future__ import annotations

import copy
import keyword
import re
from functools import lru_cache
from typing import Any, ClassVar

import msgspec

from . import registry
from .apiextensions import (
    CustomResourceColumnDefinition,
    CustomResourceDefinition,
    CustomResourceDefinitionVersion,
    CustomResourceSubresourceScale,
)
from .meta import Object

Schema = dict[str, Any]
_ROOT_FIELDS = ("apiVersion", "kind", "metadata")


class CustomObject(Object):
    """What every custom resource's type derives from; the class attributes come from the
    definition."""

    SCHEMA: ClassVar[Schema] = {}
    SUBRESOURCES: ClassVar[tuple[str, ...]] = ()
    SCALE: ClassVar[CustomResourceSubresourceScale | None] = None
    COLUMNS: ClassVar[tuple[CustomResourceColumnDefinition, ...]] = ()
    DEFINITION: ClassVar[str] = ""  # the CustomResourceDefinition's name
    SINGULAR: ClassVar[str] = ""
    DEPRECATION: ClassVar[str | None] = None  # the warning requests to a deprecated version get

    def to_stored(self) -> Object:
        """This object in the storage version (only ``apiVersion`` changes)."""
        stored = registry.STORED[self.KIND]
        if type(self) is stored:
            return self
        doc = msgspec.to_builtins(self)
        doc["apiVersion"] = stored.API_VERSION
        return msgspec.convert(doc, stored)

    @classmethod
    def from_stored(cls, doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "apiVersion": cls.API_VERSION}

    @classmethod
    def prepare(cls, doc: dict[str, Any]) -> dict[str, Any]:
        """A body as the API server keeps it: unknown fields pruned, defaults filled in."""
        out = copy.deepcopy(doc)
        _prune(out, cls.SCHEMA, "", [], root=True)
        _default(out, cls.SCHEMA)
        return out

    @classmethod
    def schema_errors(cls, doc: dict[str, Any]) -> list[tuple[str, str]]:
        """(field path, message) of each way a prepared body breaks this version's schema."""
        return object_errors(doc, cls.SCHEMA)

    @classmethod
    def pruned_paths(cls, doc: dict[str, Any]) -> list[str]:
        """The fields of ``doc`` that pruning would drop (what ``fieldValidation`` reports)."""
        paths: list[str] = []
        _prune(copy.deepcopy(doc), cls.SCHEMA, "", paths, root=True)
        return paths


# --- the types ---------------------------------------------------------------------------------

_RESERVED = frozenset(dir(CustomObject)) | set(_ROOT_FIELDS)


def _attr_name(prop: str, i: int) -> str:
    if prop.isidentifier() and not keyword.iskeyword(prop) and prop not in _RESERVED and not prop.startswith("_"):
        return prop
    return f"field_{i}"


def _version_type(crd: CustomResourceDefinition, v: CustomResourceDefinitionVersion) -> type[CustomObject]:
    names = crd.spec.names
    schema: Schema = (v.schema.openAPIV3Schema if v.schema else None) or {}
    props = [p for p in (schema.get("properties") or {}) if p not in _ROOT_FIELDS]
    subs = v.subresources
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        # the struct keeps declared fields only; spec and status are what such objects carry
        props += [p for p in ("spec", "status") if p not in props]
    elif subs is not None and subs.status is not None and "status" not in props:
        props.append("status")
    fields: list[tuple[str, Any, Any]] = []
    for i, prop in enumerate(props):
        attr = _attr_name(prop, i)
        fields.append((attr, Any, None if attr == prop else msgspec.field(default=None, name=prop)))
    namespace = {
        "KIND": names.kind,
        "API_VERSION": f"{crd.spec.group}/{v.name}",
        "PLURAL": names.plural,
        "NAMESPACED": crd.spec.scope != "Cluster",
        "SCHEMA": schema,
        "OPENAPI_SCHEMA": schema,  # what the OpenAPI documents publish for the kind
        "SUBRESOURCES": tuple(
            s for s, on in (("status", subs and subs.status is not None), ("scale", subs and subs.scale)) if on
        ),
        "SCALE": subs.scale if subs else None,
        "COLUMNS": tuple(v.additionalPrinterColumns or ()),
        "DEFINITION": crd.name,
        "SINGULAR": names.singular or names.kind.lower(),
        "DEPRECATION": (v.deprecationWarning or f"{crd.spec.group}/{v.name} {names.kind} is deprecated")
        if v.deprecated
        else None,
        "__module__": __name__,
    }
    cls: type[CustomObject] = msgspec.defstruct(
        names.kind, fields, bases=(CustomObject,), namespace=namespace, kw_only=True, omit_defaults=True
    )  # type: ignore[assignment]
    return cls


# --- registration ------------------------------------------------------------------------------


class DefinitionConflict(Exception):
    """The definition's kind is served by something else (a built-in or another definition)."""


def owner_of(kind: str) -> str | None:
    """The name of the definition that serves ``kind`` (None for built-in and unknown kinds)."""
    cls = registry.STORED.get(kind)
    return cls.DEFINITION if cls is not None and issubclass(cls, CustomObject) else None


def builtin_for(crd: CustomResourceDefinition) -> bool:
    """A definition of a kind kins has built in (the ClusterNetworkPolicy CRD, say): stored,
    while the built-in type keeps serving the kind."""
    cls = registry.STORED.get(crd.spec.names.kind)
    return (
        cls is not None
        and crd.spec.names.kind in registry.BUILTIN_KINDS
        and cls.API_VERSION.split("/")[0] == crd.spec.group
    )


def check_conflict(crd: CustomResourceDefinition) -> str | None:
    """Why ``crd`` cannot be served, or None. kins keys objects by kind alone, so a kind can be
    defined once, whatever the group."""
    kind = crd.spec.names.kind
    if builtin_for(crd):
        return None
    for served, served_cls in registry.STORED.items():
        if owner_of(served) == crd.name:
            if served != kind:
                return f"the kind may not change from {served} (objects are stored under their kind)"
            namespaced = crd.spec.scope != "Cluster"
            if namespaced != served_cls.NAMESPACED:
                return "the scope may not change (objects are stored under their namespace)"
    cls = registry.STORED.get(kind)
    if cls is None:
        return None
    owner = owner_of(kind)
    if owner == crd.name:
        return None
    group = cls.API_VERSION.rpartition("/")[0] or "core"
    return f"kind {kind} is already served by the {group} group{f' (definition {owner})' if owner else ''}"


def register_definition(crd: CustomResourceDefinition) -> bool:
    """Serve the kind ``crd`` defines (every served version, stored in the storage version).
    False when the kind is built in and stays served by its built-in type."""
    if builtin_for(crd):
        return False
    reason = check_conflict(crd)
    if reason is not None:
        raise DefinitionConflict(reason)
    types = {v.name: _version_type(crd, v) for v in crd.spec.versions}
    storage = types.get(crd.storage_version)
    if storage is None:
        raise DefinitionConflict("the definition has no storage version")
    names = crd.spec.names
    registry.register(
        [types[v.name] for v in crd.spec.versions if v.served or v.storage],
        storage,
        singular=names.singular or names.kind.lower(),
        short_names=names.shortNames or (),
        categories=names.categories or (),
    )
    return True


def unregister_definition(crd: CustomResourceDefinition) -> bool:
    """Stop serving the kind ``crd`` defined; False when it did not serve one."""
    kind = crd.spec.names.kind
    if owner_of(kind) != crd.name:
        return False
    registry.unregister(kind)
    return True


# --- pruning and defaulting --------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _prune(value: Any, schema: Schema, path: str, dropped: list[str], *, root: bool = False) -> None:
    if isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        for key in list(value):
            where = _join(path, key)
            if (root or embedded) and key in _ROOT_FIELDS:
                continue
            if key in props:
                _prune_item(value, key, props[key], where, dropped)
            elif isinstance(extra, dict):
                _prune_item(value, key, extra, where, dropped)
            elif not (preserve or extra is True):
                del value[key]
                dropped.append(where)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _prune(item, items, f"{path}[{i}]", dropped)


def _prune_item(parent: dict[str, Any], key: str, schema: Schema, where: str, dropped: list[str]) -> None:
    item = parent[key]
    if item is None and not schema.get("nullable"):
        del parent[key]  # a null where the schema allows none is dropped, as the API server does
        return
    _prune(item, schema, where, dropped)


def _default(value: Any, schema: Schema) -> None:
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _default(value[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                if key not in (schema.get("properties") or {}):
                    _default(item, extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default(item, schema["items"])


# --- validation --------------------------------------------------------------------------------

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _format(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _type_ok(value: Any, schema: Schema) -> bool:
    t = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, int | str) and not isinstance(value, bool)
    if not t or t not in _TYPES:
        return True
    if isinstance(value, bool) and t != "boolean":
        return False
    return isinstance(value, _TYPES[t])


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:
        return None


def schema_errors(value: Any, schema: Schema, path: str) -> list[tuple[str, str]]:
    """(field path, message) for each way ``value`` breaks ``schema``'s simple keywords."""
    out: list[tuple[str, str]] = []
    _check(value, schema, path, out)
    return out


def _check(value: Any, schema: Schema, path: str, out: list[tuple[str, str]]) -> None:
    if value is None:
        if not schema.get("nullable"):
            t = schema.get("type")
            out.append((path, f'Invalid value: "null": {path} in body must be of type {t}: "null"'))
        return
    if not _type_ok(value, schema):
        t = schema.get("type")
        shown = {dict: "object", list: "array", str: "string", bool: "boolean", float: "number"}.get(
            type(value), "integer"
        )
        out.append((path, f"Invalid value: {_format(shown)}: {path} in body must be of type {t}: {_format(shown)}"))
        return
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        listed = ", ".join(_format(e) for e in enum)
        out.append((path, f"Unsupported value: {_format(value)}: supported values: {listed}"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if isinstance(lo, int | float) and (value <= lo if schema.get("exclusiveMinimum") else value < lo):
            cmp = "greater than" if schema.get("exclusiveMinimum") else "greater than or equal to"
            out.append((path, f"Invalid value: {_format(value)}: {path} in body should be {cmp} {lo}"))
        if isinstance(hi, int | float) and (value >= hi if schema.get("exclusiveMaximum") else value > hi):
            cmp = "less than" if schema.get("exclusiveMaximum") else "less than or equal to"
            out.append((path, f"Invalid value: {_format(value)}: {path} in body should be {cmp} {hi}"))
    if isinstance(value, str):
        n = len(value)
        if isinstance(schema.get("maxLength"), int) and n > schema["maxLength"]:
            out.append((path, f"Too long: may not be more than {schema['maxLength']} bytes"))
        if isinstance(schema.get("minLength"), int) and n < schema["minLength"]:
            at_least = f"should be at least {schema['minLength']} chars long"
            out.append((path, f"Invalid value: {_format(value)}: {path} in body {at_least}"))
        pat = schema.get("pattern")
        rx = _pattern(pat) if isinstance(pat, str) else None
        if rx is not None and rx.search(value) is None:
            out.append((path, f"Invalid value: {_format(value)}: {path} in body should match '{pat}'"))
    if isinstance(value, list):
        if isinstance(schema.get("maxItems"), int) and len(value) > schema["maxItems"]:
            out.append((path, f"Too many: {len(value)}: must have at most {schema['maxItems']} items"))
        if isinstance(schema.get("minItems"), int) and len(value) < schema["minItems"]:
            at_least = f"should have at least {schema['minItems']} items"
            out.append((path, f"Invalid value: {len(value)}: {path} in body {at_least}"))
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _check(item, items, f"{path}[{i}]", out)
    if isinstance(value, dict):
        for req in schema.get("required") or []:
            if req not in value:
                out.append((_join(path, req), "Required value"))
        props: dict[str, Schema] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                _check(item, props[key], _join(path, key), out)
            elif isinstance(extra, dict):
                _check(item, extra, _join(path, key), out)


def object_errors(doc: dict[str, Any], schema: Schema) -> list[tuple[str, str]]:
    """The schema errors of a custom object (apiVersion, kind and metadata are checked elsewhere)."""
    out: list[tuple[str, str]] = []
    for req in schema.get("required") or []:
        if req not in doc and req not in _ROOT_FIELDS:
            out.append((req, "Required value"))
    for key, sub in (schema.get("properties") or {}).items():
        if key in doc and key not in _ROOT_FIELDS:
            _check(doc[key], sub, key, out)
    return out


# --- the scale subresource ---------------------------------------------------------------------


def _path_parts(path: str) -> list[str]:
    return [p for p in path.split(".") if p]


def read_path(doc: Any, path: str) -> Any:
    """The value at a definition's simple JSON path (``.spec.replicas``), or None."""
    for part in _path_parts(path):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def scale_fields(obj: CustomObject) -> tuple[int, int, str | None]:
    """(spec replicas, status replicas, label selector) through the definition's scale paths."""
    scale = type(obj).SCALE
    assert scale is not None
    doc = msgspec.to_builtins(obj)
    spec = read_path(doc, scale.specReplicasPath)
    status = read_path(doc, scale.statusReplicasPath)
    selector = read_path(doc, scale.labelSelectorPath) if scale.labelSelectorPath else None
    return (
        spec if isinstance(spec, int) else 0,
        status if isinstance(status, int) else 0,
        selector if isinstance(selector, str) else None,
    )


def with_replicas(obj: CustomObject, replicas: int) -> CustomObject:
    """``obj`` with ``replicas`` written at the definition's spec replicas path."""
    scale = type(obj).SCALE
    assert scale is not None
    doc = msgspec.to_builtins(obj)
    parts = _path_parts(scale.specReplicasPath)
    cur = doc
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[parts[-1]] = replicas
    return msgspec.convert(doc, type(obj))
