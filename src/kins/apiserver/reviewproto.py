"""Request bodies of the identity endpoints in Kubernetes' protobuf encoding.

Typed clients (kubectl 1.3x's ``create token``, ``auth can-i``, ``auth whoami``) send these
create-only kinds as ``application/vnd.kubernetes.protobuf``: the ``k8s\\x00`` envelope
(runtime.Unknown) around the message. Only the fields the endpoints read are decoded, into the
JSON shape; answers go back as JSON, which those clients accept too.
"""

from __future__ import annotations

from typing import Any

MAGIC = b"k8s\x00"

# field number -> (JSON name, type, sub-schema); types: "str", "int", "msg", "strs" (repeated)
Schema = dict[int, tuple[str, str, Any]]

_BOUND_REF: Schema = {
    1: ("kind", "str", None),
    2: ("apiVersion", "str", None),
    3: ("name", "str", None),
    4: ("uid", "str", None),
}
_TOKEN_SPEC: Schema = {
    1: ("audiences", "strs", None),
    3: ("boundObjectRef", "msg", _BOUND_REF),
    4: ("expirationSeconds", "int", None),
}
_RESOURCE_ATTRS: Schema = {
    1: ("namespace", "str", None),
    2: ("verb", "str", None),
    3: ("group", "str", None),
    4: ("version", "str", None),
    5: ("resource", "str", None),
    6: ("subresource", "str", None),
    7: ("name", "str", None),
}
_NON_RESOURCE_ATTRS: Schema = {1: ("path", "str", None), 2: ("verb", "str", None)}
_ACCESS_SPEC: Schema = {
    1: ("resourceAttributes", "msg", _RESOURCE_ATTRS),
    2: ("nonResourceAttributes", "msg", _NON_RESOURCE_ATTRS),
}
_RULES_SPEC: Schema = {1: ("namespace", "str", None)}
_META: Schema = {1: ("name", "str", None), 3: ("namespace", "str", None)}

SCHEMAS: dict[str, Schema] = {
    "TokenRequest": {1: ("metadata", "msg", _META), 2: ("spec", "msg", _TOKEN_SPEC)},
    "SelfSubjectAccessReview": {1: ("metadata", "msg", _META), 2: ("spec", "msg", _ACCESS_SPEC)},
    "SelfSubjectRulesReview": {1: ("metadata", "msg", _META), 2: ("spec", "msg", _RULES_SPEC)},
    "SelfSubjectReview": {1: ("metadata", "msg", _META)},
}
_UNKNOWN: Schema = {2: ("raw", "bytes", None)}


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _decode(data: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value: Any
            value, i = _varint(data, i)
        elif wire == 2:
            n, i = _varint(data, i)
            if i + n > len(data):
                raise ValueError("truncated field")
            value, i = data[i : i + n], i + n
        elif wire == 1:
            value, i = data[i : i + 8], i + 8
        elif wire == 5:
            value, i = data[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        field = schema.get(num)
        if field is None:
            continue
        name, kind, sub = field
        if kind == "str":
            out[name] = value.decode()
        elif kind == "strs":
            out.setdefault(name, []).append(value.decode())
        elif kind == "int":
            out[name] = value
        elif kind == "msg":
            out[name] = _decode(value, sub)
        else:
            out[name] = value
    return out


def decode_body(data: bytes, kind: str) -> dict[str, Any]:
    """A protobuf request body of ``kind`` as its JSON form; ValueError if it is not one."""
    if not data.startswith(MAGIC):
        raise ValueError("not a Kubernetes protobuf message")
    raw = _decode(data[len(MAGIC) :], _UNKNOWN).get("raw", b"")
    return _decode(raw, SCHEMAS[kind])
