"""Objects as the API answers with them: every defaulted field written out.

The structs leave out fields equal to their default, which keeps manifests and the store
small. The Kubernetes API server always answers with its defaults filled in, and clients rely
on it: ``kubectl describe svc`` prints ``Type:`` and each port's protocol from them, and the
official Python client refuses a ContainerStatus without ``ready`` and ``restartCount``. So the
API puts back the scalar defaults (``type: ClusterIP``, ``protocol: TCP``, ``ready: false`` ...),
and the strings the API server always writes even when empty (a Node's ``nodeInfo.bootID``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

_SCALARS = (str, int, float, bool)
# Kind -> (path to a map in the encoded object, keys the API server writes even when empty).
ALWAYS_WRITTEN: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Node": (
        ("status", "nodeInfo"),
        (
            "machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion",
            "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture",
        ),
    ),
}  # fmt: skip


@cache
def _scalar_defaults(cls: type[msgspec.Struct]) -> tuple[tuple[str, str, Any], ...]:
    """(attribute, JSON name, default) of the fields whose default is a meaningful scalar."""
    fields = cls.__struct_fields__
    encoded = cls.__struct_encode_fields__
    defaults = cls.__struct_defaults__
    first = len(fields) - len(defaults)
    out = []
    for i, default in enumerate(defaults):
        # "" is "unset" for the strings that default to it (name, apiVersion before it is set).
        if isinstance(default, _SCALARS) and default != "":
            out.append((fields[first + i], encoded[first + i], default))
    return tuple(out)


def _fill(obj: Any, doc: Any) -> None:
    if isinstance(obj, msgspec.Struct) and isinstance(doc, dict):
        for attr, name, default in _scalar_defaults(type(obj)):
            if name not in doc and getattr(obj, attr) == default:
                doc[name] = default
        for attr, name in zip(obj.__struct_fields__, obj.__struct_encode_fields__, strict=True):
            value = getattr(obj, attr)
            if isinstance(value, msgspec.Struct | list) and name in doc:
                _fill(value, doc[name])
    elif isinstance(obj, list) and isinstance(doc, list):
        for item, out in zip(obj, doc, strict=False):
            if isinstance(item, msgspec.Struct):
                _fill(item, out)


def encode_value(value: Any) -> Any:
    """One field's value (a struct, a list of them, a scalar) as ``encode`` writes it."""
    doc = msgspec.to_builtins(value)
    _fill(value, doc)
    return doc


def encode(obj: msgspec.Struct) -> dict[str, Any]:
    """``obj`` as plain JSON data, with the scalar defaults written out."""
    doc = msgspec.to_builtins(obj)
    assert isinstance(doc, dict)
    _fill(obj, doc)
    written = ALWAYS_WRITTEN.get(doc.get("kind", ""))
    if written is not None:
        path, keys = written
        target: Any = doc
        for part in path:
            target = target.get(part) if isinstance(target, dict) else None
        if isinstance(target, dict):
            # in the type's field order, the others (swap) after them, as the API server writes it
            filled = {key: target.get(key, "") for key in keys}
            filled.update(target)
            target.clear()
            target.update(filled)
    return doc
