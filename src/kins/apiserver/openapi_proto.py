"""The OpenAPI v2 document as gnostic's ``openapi.v2.Document`` protobuf message.

kubectl 1.27 downloads ``/openapi/v2`` with ``Accept:
application/com.github.proto-openapi.spec.v2@v1.0+protobuf`` only (client-go's discovery
``OpenAPISchema``), and decodes the answer as that message: no JSON fallback. This module
writes the messages of gnostic's ``openapiv2/OpenAPIv2.proto`` a Swagger 2.0 document needs,
from the document's JSON form. Field numbers are that file's. Vendor extensions, defaults,
enums and examples are ``Any`` messages whose ``yaml`` member holds the value as YAML (JSON
text is YAML), as gnostic's compiler stores them.

Only the proto3 wire format is needed: varints (field type 0), 64-bit doubles (1) and
length-delimited strings and messages (2). Zero values are left out, except in a ``oneof``,
and a present submessage is written even when empty (kubectl tells ``properties: {}`` from
none).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import msgspec

Json = dict[str, Any]


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class _Writer:
    def __init__(self) -> None:
        self.buf = bytearray()

    def string(self, num: int, value: Any) -> None:
        if isinstance(value, str) and value:
            self.bytes_(num, value.encode())

    def strings(self, num: int, values: Any) -> None:
        for v in values if isinstance(values, list) else []:
            if isinstance(v, str):
                self.bytes_(num, v.encode())

    def bytes_(self, num: int, data: bytes) -> None:
        self.buf += _varint(num << 3 | 2) + _varint(len(data)) + data

    def bool_(self, num: int, value: Any, *, always: bool = False) -> None:
        if isinstance(value, bool) and (value or always):
            self.buf += _varint(num << 3) + _varint(int(value))

    def int_(self, num: int, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool) and value:
            self.buf += _varint(num << 3) + _varint(value)

    def double(self, num: int, value: Any) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool) and value:
            self.buf += _varint(num << 3 | 1) + struct.pack("<d", float(value))

    def message(self, num: int, data: bytes) -> None:
        self.bytes_(num, data)


def _any(value: Any) -> bytes:
    """``Any{yaml}``: the value as YAML text (its JSON form)."""
    w = _Writer()
    w.string(2, msgspec.json.encode(value).decode())
    return bytes(w.buf)


def _named_any(name: str, value: Any) -> bytes:
    w = _Writer()
    w.string(1, name)
    w.message(2, _any(value))
    return bytes(w.buf)


def _extensions(w: _Writer, num: int, obj: Json) -> None:
    for key, value in obj.items():
        if key.startswith("x-"):
            w.message(num, _named_any(key, value))


def _named(num_name: int, num_value: int, name: str, value: bytes) -> bytes:
    w = _Writer()
    w.string(num_name, name)
    w.message(num_value, value)
    return bytes(w.buf)


# --- Schema -----------------------------------------------------------------------------------


def schema(s: Json) -> bytes:
    w = _Writer()
    w.string(1, s.get("$ref"))
    w.string(2, s.get("format"))
    w.string(3, s.get("title"))
    w.string(4, s.get("description"))
    if "default" in s:
        w.message(5, _any(s["default"]))
    w.double(6, s.get("multipleOf"))
    w.double(7, s.get("maximum"))
    w.bool_(8, s.get("exclusiveMaximum"))
    w.double(9, s.get("minimum"))
    w.bool_(10, s.get("exclusiveMinimum"))
    w.int_(11, s.get("maxLength"))
    w.int_(12, s.get("minLength"))
    w.string(13, s.get("pattern"))
    w.int_(14, s.get("maxItems"))
    w.int_(15, s.get("minItems"))
    w.bool_(16, s.get("uniqueItems"))
    w.int_(17, s.get("maxProperties"))
    w.int_(18, s.get("minProperties"))
    w.strings(19, s.get("required"))
    for value in s.get("enum") or []:
        w.message(20, _any(value))
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        w.message(21, _field_message(1, schema(extra)))
    elif isinstance(extra, bool):
        inner = _Writer()
        inner.bool_(2, extra, always=True)  # a oneof member: written even when false
        w.message(21, bytes(inner.buf))
    kind = s.get("type")
    if isinstance(kind, str | list):
        inner = _Writer()
        inner.strings(1, [kind] if isinstance(kind, str) else kind)
        w.message(22, bytes(inner.buf))
    items = s.get("items")
    if isinstance(items, dict | list):
        inner = _Writer()
        for item in [items] if isinstance(items, dict) else items:
            inner.message(1, schema(item))
        w.message(23, bytes(inner.buf))
    for sub in s.get("allOf") or []:
        w.message(24, schema(sub))
    props = s.get("properties")
    if isinstance(props, dict):
        inner = _Writer()
        for name, sub in props.items():
            inner.message(1, _named(1, 2, name, schema(sub)))
        w.message(25, bytes(inner.buf))
    w.string(26, s.get("discriminator"))
    w.bool_(27, s.get("readOnly"))
    if "example" in s:
        w.message(30, _any(s["example"]))
    _extensions(w, 31, s)
    return bytes(w.buf)


def _field_message(num: int, data: bytes) -> bytes:
    w = _Writer()
    w.message(num, data)
    return bytes(w.buf)


# --- paths ------------------------------------------------------------------------------------

# Non-body parameters: NonBodyParameter's member number, and that message's field numbers.
# Query and form parameters have ``allow_empty_value`` (5) and so number the rest one higher.
_SUBSCHEMA: dict[str, tuple[int, bool]] = {
    "header": (1, False),
    "formData": (2, True),
    "query": (3, True),
    "path": (4, False),
}


def _parameter(p: Json) -> bytes:
    where = p.get("in", "")
    param = _Writer()
    if where == "body":
        body = _Writer()
        body.string(1, p.get("description"))
        body.string(2, p.get("name"))
        body.string(3, where)
        body.bool_(4, p.get("required"))
        if isinstance(p.get("schema"), dict):
            body.message(5, schema(p["schema"]))
        _extensions(body, 6, p)
        param.message(1, bytes(body.buf))
    else:
        member, shifted = _SUBSCHEMA.get(where, (3, True))
        o = 1 if shifted else 0
        sub = _Writer()
        sub.bool_(1, p.get("required"))
        sub.string(2, where)
        sub.string(3, p.get("description"))
        sub.string(4, p.get("name"))
        if shifted:
            sub.bool_(5, p.get("allowEmptyValue"))
        sub.string(5 + o, p.get("type"))
        sub.string(6 + o, p.get("format"))
        sub.string(8 + o, p.get("collectionFormat"))
        if "default" in p:
            sub.message(9 + o, _any(p["default"]))
        sub.bool_(19 + o, p.get("uniqueItems"))
        for value in p.get("enum") or []:
            sub.message(20 + o, _any(value))
        _extensions(sub, 22 + o, p)
        non_body = _field_message(member, bytes(sub.buf))
        param.message(2, non_body)
    # ParametersItem{parameter = 1}
    return _field_message(1, bytes(param.buf))


def _response(r: Json) -> bytes:
    w = _Writer()
    w.string(1, r.get("description"))
    if isinstance(r.get("schema"), dict):
        w.message(2, _field_message(1, schema(r["schema"])))  # SchemaItem{schema = 1}
    _extensions(w, 5, r)
    return _field_message(1, bytes(w.buf))  # ResponseValue{response = 1}


def _operation(op: Json) -> bytes:
    w = _Writer()
    w.strings(1, op.get("tags"))
    w.string(2, op.get("summary"))
    w.string(3, op.get("description"))
    w.string(5, op.get("operationId"))
    w.strings(6, op.get("produces"))
    w.strings(7, op.get("consumes"))
    for p in op.get("parameters") or []:
        w.message(8, _parameter(p))
    responses = op.get("responses")
    if isinstance(responses, dict):
        inner = _Writer()
        for code, r in responses.items():
            if not code.startswith("x-"):
                inner.message(1, _named(1, 2, code, _response(r)))
        w.message(9, bytes(inner.buf))
    w.strings(10, op.get("schemes"))
    w.bool_(11, op.get("deprecated"))
    _extensions(w, 13, op)
    return bytes(w.buf)


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(item: Json) -> bytes:
    w = _Writer()
    w.string(1, item.get("$ref"))
    for method, num in _METHODS.items():
        if isinstance(item.get(method), dict):
            w.message(num, _operation(item[method]))
    for p in item.get("parameters") or []:
        w.message(9, _parameter(p))
    _extensions(w, 10, item)
    return bytes(w.buf)


def _info(info: Json) -> bytes:
    w = _Writer()
    w.string(1, info.get("title"))
    w.string(2, info.get("version"))
    w.string(3, info.get("description"))
    _extensions(w, 7, info)
    return bytes(w.buf)


def _map_message(num: int, entries: dict[str, Any], encode: Callable[[Any], bytes]) -> bytes:
    w = _Writer()
    for name, value in entries.items():
        w.message(num, _named(1, 2, name, encode(value)))
    return bytes(w.buf)


def encode_document(doc: Json) -> bytes:
    """A Swagger 2.0 document (its JSON form) as an ``openapi.v2.Document`` message."""
    w = _Writer()
    w.string(1, doc.get("swagger"))
    if isinstance(doc.get("info"), dict):
        w.message(2, _info(doc["info"]))
    w.string(3, doc.get("host"))
    w.string(4, doc.get("basePath"))
    w.strings(5, doc.get("schemes"))
    w.strings(6, doc.get("consumes"))
    w.strings(7, doc.get("produces"))
    if isinstance(doc.get("paths"), dict):
        paths = {k: v for k, v in doc["paths"].items() if not k.startswith("x-")}
        inner = _Writer()
        _extensions(inner, 1, doc["paths"])
        inner.buf += _map_message(2, paths, _path_item)
        w.message(8, bytes(inner.buf))
    if isinstance(doc.get("definitions"), dict):
        w.message(9, _map_message(1, doc["definitions"], schema))
    _extensions(w, 16, doc)
    return bytes(w.buf)
