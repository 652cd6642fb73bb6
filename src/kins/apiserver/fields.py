"""Unknown fields of a request body, for the API's ``fieldValidation`` parameter.

The typed structs ignore fields they do not know, so a misspelt field (``replica:``) would be
dropped without a word. kubectl asks for ``fieldValidation=Strict`` (the default of
``kubectl apply``/``create``) and then leaves validation to the server: the API refuses such a
body, naming every unknown field the way the API server does (``spec.template.spec.containers[0].imag``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec.inspect as mi


@cache
def _info(cls: type) -> mi.Type:
    return mi.type_info(cls)


def _pick(value: Any, t: mi.Type) -> mi.Type | None:
    """The member of an optional or union type that ``value``'s shape belongs to."""
    if not isinstance(t, mi.UnionType):
        return t
    for member in t.types:
        if isinstance(value, dict) and isinstance(member, mi.StructType | mi.DictType):
            return member
        if isinstance(value, list) and isinstance(member, mi.ListType | mi.SetType | mi.FrozenSetType):
            return member
    return None


def _walk(value: Any, t: mi.Type | None, path: str, out: list[str]) -> None:
    t = _pick(value, t) if t is not None else None
    if isinstance(t, mi.StructType) and isinstance(value, dict):
        fields = {f.encode_name: f.type for f in t.fields}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in fields:
                out.append(where)
            else:
                _walk(item, fields[key], where, out)
    elif isinstance(t, mi.DictType) and isinstance(value, dict):
        for key, item in value.items():
            _walk(item, t.value_type, f"{path}.{key}" if path else str(key), out)
    elif isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType) and isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, t.item_type, f"{path}[{i}]", out)


def unknown_fields(doc: Any, cls: type) -> list[str]:
    """Paths of the fields in ``doc`` that ``cls`` (a msgspec struct) does not have."""
    pruned = getattr(cls, "pruned_paths", None)
    if pruned is not None:  # a custom resource: what its schema does not declare
        paths: list[str] = pruned(doc)
        return paths
    out: list[str] = []
    _walk(doc, _info(cls), "", out)
    return out
