"""Kubernetes' protobuf wire format, driven by a table of messages (no generated code).

``protobuf_schema.json`` (written by ``scripts/gen_protobuf_schema.py`` from upstream's
``generated.proto`` files and the Go types beside them) lists each message's fields with their
JSON names. Objects travel as ``k8s\\0`` followed by a ``runtime.Unknown`` whose ``raw`` is the
object's message; watch streams send each ``meta.v1.WatchEvent`` (without that prefix) after
its 4-byte big-endian length, the event's object enveloped as above.

Decoding yields what Go's JSON encoding of the same object gives (so a protobuf body is checked
exactly as its JSON twin): a pointer field present is kept even at its zero value, a value
field at its zero value is dropped when its JSON tag says ``omitempty``. The types with a JSON
form of their own (Time, MicroTime, Duration, Quantity, IntOrString, FieldsV1, RawExtension,
apiextensions' JSON and JSONSchemaProps unions, the list wrappers) are converted here.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from datetime import UTC, datetime
from functools import cache, lru_cache
from importlib import resources
from typing import Any

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
WATCH_MEDIA_TYPE = MEDIA_TYPE + ";stream=watch"

META = "k8s.io.apimachinery.pkg.apis.meta.v1"
RUNTIME = "k8s.io.apimachinery.pkg.runtime"
APIEXT = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1"
UNKNOWN = f"{RUNTIME}.Unknown"
WATCH_EVENT = f"{META}.WatchEvent"

REPEATED, POINTER, OMITEMPTY, INLINE = 1, 2, 4, 8

# wire types
VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5
_WIRE = {"double": FIXED64, "float": FIXED32}
_SMALL = [bytes((i,)) for i in range(0x80)]
_VARINT_KINDS = frozenset({"bool", "int32", "int64", "uint32", "uint64", "sint32", "sint64"})


class ProtobufError(ValueError):
    """A body that is not a valid Kubernetes protobuf message, or an object with no message."""


# --- the schema -------------------------------------------------------------------------------


# How a field is encoded (the common cases get a path of their own).
C_SCALAR, C_STRING, C_MESSAGE, C_MAP, C_INT, C_BOOL = 0, 1, 2, 3, 4, 5
_PLAIN_INTS = frozenset({"int32", "int64", "uint32", "uint64"})


class Field:
    __slots__ = ("code", "flags", "json", "key", "kind", "message", "number", "tag", "value")

    def __init__(self, number: int, json_name: str, type_: str | list[str], flags: int) -> None:
        self.number = number
        self.json = json_name
        self.flags = flags
        self.key: str | None = None
        self.value: str | None = None  # a map's value kind
        if isinstance(type_, list):
            self.kind = "map"
            self.key, self.value = type_
            wire = LEN
        else:
            self.kind = type_
            wire = _WIRE.get(type_, VARINT if type_ in _VARINT_KINDS else LEN)
        self.message: Message | None = None  # resolved after loading
        self.tag = _varint((number << 3) | wire)
        self.code = {"map": C_MAP, "string": C_STRING, "bool": C_BOOL}.get(self.kind, C_SCALAR)
        if self.kind in _PLAIN_INTS:
            self.code = C_INT


class Message:
    __slots__ = ("by_json", "by_number", "fields", "inline_owner", "name", "special")

    def __init__(self, name: str, fields: list[Field], special: str | None) -> None:
        self.name = name
        self.fields = sorted(fields, key=lambda f: f.number)
        self.by_number = {f.number: f for f in fields}
        self.special = special
        self.by_json = {f.json: f for f in fields if not f.flags & INLINE}
        self.inline_owner: dict[str, Field] = {}  # JSON key -> the inlined field it belongs to

    def resolve(self) -> None:
        for f in self.fields:
            if f.message is not None and f.code == C_SCALAR:
                f.code = C_MESSAGE
            if f.flags & INLINE and f.message is not None:
                for key in _json_keys(f.message):
                    self.inline_owner.setdefault(key, f)


def _json_keys(msg: Message) -> list[str]:
    keys = list(msg.by_json)
    for f in msg.fields:
        if f.flags & INLINE and f.message is not None:
            keys.extend(_json_keys(f.message))
    return keys


# Messages whose JSON is not an object of their fields.
SPECIAL = {
    f"{META}.Time": "time",
    f"{META}.MicroTime": "microtime",
    f"{META}.Duration": "duration",
    f"{META}.FieldsV1": "raw_json",
    f"{RUNTIME}.RawExtension": "raw_json",
    f"{APIEXT}.JSON": "raw_json",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "intorstring",
    f"{APIEXT}.JSONSchemaPropsOrArray": "schema_or_array",
    f"{APIEXT}.JSONSchemaPropsOrBool": "schema_or_bool",
    f"{APIEXT}.JSONSchemaPropsOrStringArray": "schema_or_strings",
}


class Schema:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.sources: list[dict[str, str]] = doc["sources"]
        self.packages: dict[str, str] = doc["packages"]
        wrappers = set(doc["listWrappers"])
        self.messages: dict[str, Message] = {}
        for name, entries in doc["messages"].items():
            special = SPECIAL.get(name) or ("list" if name in wrappers else None)
            self.messages[name] = Message(name, [Field(*e) for e in entries], special)
        for msg in self.messages.values():
            for f in msg.fields:
                sub = f.value if f.kind == "map" else f.kind
                if sub is not None and sub in self.messages:
                    f.message = self.messages[sub]
        for msg in self.messages.values():
            msg.resolve()

    def message_for(self, api_version: str, kind: str) -> Message | None:
        """The message of a kind served at ``api_version``; the meta kinds (Status, WatchEvent,
        List ...) are the same message in every group version, as upstream registers them."""
        package = self.packages.get(api_version)
        if package is not None:
            msg = self.messages.get(f"{package}.{kind}")
            if msg is not None:
                return msg
        return self.messages.get(f"{META}.{kind}")


@cache
def schema() -> Schema:
    text = resources.files("kins.apiserver").joinpath("protobuf_schema.json").read_bytes()
    return Schema(json.loads(text))


def has_message(api_version: str, kind: str) -> bool:
    return schema().message_for(api_version, kind) is not None


# --- wire primitives --------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    if 0 <= n < 0x80:
        return _SMALL[n]
    if n < 0:
        n += 1 << 64
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError("varint too long")


def _signed(n: int, bits: int = 64) -> int:
    n &= (1 << 64) - 1
    if n >= 1 << 63:
        n -= 1 << 64
    if bits == 32:
        n = (n + (1 << 31)) % (1 << 32) - (1 << 31)
    return n


def _scalar(kind: str, wire: int, buf: bytes, pos: int) -> tuple[Any, int]:
    if wire == VARINT:
        n, pos = _read_varint(buf, pos)
        if kind == "bool":
            return n != 0, pos
        if kind == "int64":
            return _signed(n), pos
        if kind == "int32":
            return _signed(n, 32), pos
        if kind in ("sint32", "sint64"):
            return (n >> 1) ^ -(n & 1), pos
        return n, pos
    if wire == FIXED64:
        return struct.unpack_from("<d", buf, pos)[0], pos + 8
    if wire == FIXED32:
        return struct.unpack_from("<f", buf, pos)[0], pos + 4
    raise ProtobufError(f"wire type {wire} for a {kind}")


# --- decoding ---------------------------------------------------------------------------------


def _zero(value: Any) -> bool:
    return value is None or value == "" or value is False or (value == 0 and not isinstance(value, bool))


def _decode_value(f: Field, kind: str, msg: Message | None, wire: int, buf: bytes, pos: int) -> tuple[Any, int]:
    if wire == LEN:
        size, pos = _read_varint(buf, pos)
        end = pos + size
        if end > len(buf):
            raise ProtobufError(f"field {f.json or f.number}: truncated")
        if msg is not None:
            return _decode_message(msg, buf, pos, end), end
        if kind == "string":
            try:
                return buf[pos:end].decode(), end
            except UnicodeDecodeError:
                raise ProtobufError(f"field {f.json}: not UTF-8") from None
        if kind == "bytes":
            return base64.b64encode(buf[pos:end]).decode(), end
        raise ProtobufError(f"field {f.json}: a length-delimited {kind}")
    if msg is not None or kind in ("string", "bytes"):
        raise ProtobufError(f"field {f.json}: wire type {wire} for a {kind}")
    return _scalar(kind, wire, buf, pos)


def _skip(wire: int, buf: bytes, pos: int) -> int:
    if wire == VARINT:
        return _read_varint(buf, pos)[1]
    if wire == FIXED64:
        return pos + 8
    if wire == FIXED32:
        return pos + 4
    if wire == LEN:
        size, pos = _read_varint(buf, pos)
        return pos + size
    raise ProtobufError(f"unsupported wire type {wire}")


def _fields(msg: Message, buf: bytes, pos: int, end: int) -> dict[int, Any]:
    """Field number -> value (a list for repeated fields, a dict for maps)."""
    values: dict[int, Any] = {}
    while pos < end:
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        f = msg.by_number.get(number)
        if f is None:
            pos = _skip(wire, buf, pos)
            continue
        if f.kind == "map":
            if wire != LEN:
                raise ProtobufError(f"field {f.json}: a map entry must be length-delimited")
            size, pos = _read_varint(buf, pos)
            k: Any = "" if f.key == "string" else 0
            v: Any = None
            entry_end = pos + size
            while pos < entry_end:
                ekey, pos = _read_varint(buf, pos)
                enum, ewire = ekey >> 3, ekey & 7
                if enum == 1:
                    k, pos = _decode_value(f, f.key or "string", None, ewire, buf, pos)
                elif enum == 2:
                    v, pos = _decode_value(f, f.value or "string", f.message, ewire, buf, pos)
                else:
                    pos = _skip(ewire, buf, pos)
            if v is None:
                v = _empty(f.value or "string", f.message)
            values.setdefault(number, {})[k] = v
            continue
        if f.flags & REPEATED:
            items = values.setdefault(number, [])
            if wire == LEN and f.message is None and f.kind not in ("string", "bytes"):
                size, pos = _read_varint(buf, pos)  # packed
                packed_end = pos + size
                inner = FIXED64 if f.kind == "double" else FIXED32 if f.kind == "float" else VARINT
                while pos < packed_end:
                    item, pos = _scalar(f.kind, inner, buf, pos)
                    items.append(item)
                continue
            item, pos = _decode_value(f, f.kind, f.message, wire, buf, pos)
            items.append(item)
            continue
        values[number], pos = _decode_value(f, f.kind, f.message, wire, buf, pos)
    if pos != end:
        raise ProtobufError(f"{msg.name}: a field runs past the end of its message")
    return values


def _empty(kind: str, msg: Message | None) -> Any:
    if msg is not None:
        return _decode_message(msg, b"", 0, 0)
    return {"string": "", "bytes": "", "bool": False, "double": 0.0, "float": 0.0}.get(kind, 0)


def _decode_message(msg: Message, buf: bytes, pos: int, end: int) -> Any:
    if msg.special is not None:
        return _SPECIAL_DECODE[msg.special](msg, _fields(msg, buf, pos, end), end > pos)
    values = _fields(msg, buf, pos, end)
    out: dict[str, Any] = {}
    for f in msg.fields:
        if f.number not in values:
            continue
        value = values[f.number]
        if f.flags & INLINE:
            if isinstance(value, dict):
                out.update(value)
            continue
        # Go's omitempty leaves out zero scalars; a struct (IntOrString 0 too) is always written.
        if value is None or (f.message is None and not f.flags & POINTER and f.flags & OMITEMPTY and _zero(value)):
            continue
        out[f.json] = value
    return out


def _time(fmt: str) -> Any:
    def decode(msg: Message, values: dict[int, Any], present: bool) -> str | None:
        if not present:
            return None  # the zero time: null in JSON
        seconds, nanos = values.get(1, 0), values.get(2, 0)
        t = datetime.fromtimestamp(seconds, UTC)
        if fmt == "micro":
            return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    return decode


def _raw_json(msg: Message, values: dict[int, Any], present: bool) -> Any:
    raw = values.get(1)
    if not raw:
        return None
    data = base64.b64decode(raw)
    if data.startswith(MAGIC):
        return decode_object(data)
    try:
        return json.loads(data)
    except ValueError:
        raise ProtobufError(f"{msg.name}: raw is neither JSON nor a protobuf object") from None


def _intorstring(msg: Message, values: dict[int, Any], present: bool) -> int | str:
    return values.get(3, "") if values.get(1, 0) == 1 else values.get(2, 0)


def _schema_or_array(msg: Message, values: dict[int, Any], present: bool) -> Any:
    return values[1] if 1 in values else values.get(2, [])


def _schema_or_bool(msg: Message, values: dict[int, Any], present: bool) -> Any:
    return values[2] if 2 in values else values.get(1, False)


def _list(msg: Message, values: dict[int, Any], present: bool) -> list[Any]:
    return values.get(1, [])


_SPECIAL_DECODE: dict[str, Any] = {
    "time": _time("seconds"),
    "microtime": _time("micro"),
    "duration": lambda msg, values, present: _go_duration(values.get(1, 0)),
    "raw_json": _raw_json,
    "quantity": lambda msg, values, present: values.get(1, ""),
    "intorstring": _intorstring,
    "schema_or_array": _schema_or_array,
    "schema_or_bool": _schema_or_bool,
    "schema_or_strings": _schema_or_array,
    "list": _list,
}


def decode_message(name: str, data: bytes) -> Any:
    """A message's bytes (no envelope) -> its JSON form."""
    msg = schema().messages.get(name)
    if msg is None:
        raise ProtobufError(f"no protobuf message {name}")
    return _decode_message(msg, data, 0, len(data))


def unwrap(data: bytes) -> tuple[str, str, bytes]:
    """``k8s\\0`` + runtime.Unknown -> (apiVersion, kind, raw)."""
    if not data.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf prefix k8s\\x00")
    values = _fields(schema().messages[UNKNOWN], data, len(MAGIC), len(data))
    if values.get(4) or values.get(3):
        raise ProtobufError(f"unsupported content encoding {values.get(3)!r} / type {values.get(4)!r}")
    type_meta = values.get(1) or {}
    raw = base64.b64decode(values.get(2) or "")
    return type_meta.get("apiVersion", ""), type_meta.get("kind", ""), raw


def decode_object(data: bytes) -> dict[str, Any]:
    """An enveloped object -> its JSON form, ``kind`` and ``apiVersion`` first."""
    try:
        return _decode_object(data)
    except (IndexError, struct.error, UnicodeDecodeError, binascii.Error) as e:
        raise ProtobufError(f"the message is truncated or malformed ({e})") from None


def _decode_object(data: bytes) -> dict[str, Any]:
    api_version, kind, raw = unwrap(data)
    msg = schema().message_for(api_version, kind)
    if msg is None:
        raise ProtobufError(f"no protobuf message for {kind} in {api_version or 'no apiVersion'}")
    body = _decode_message(msg, raw, 0, len(raw))
    if not isinstance(body, dict):
        raise ProtobufError(f"{kind} is not an object")
    return {"kind": kind, "apiVersion": api_version, **body}


# --- encoding ---------------------------------------------------------------------------------


def _len_field(tag: bytes, payload: bytes) -> bytes:
    n = len(payload)
    return tag + (_SMALL[n] if n < 0x80 else _varint(n)) + payload


def _encode_scalar(f: Field, kind: str, value: Any) -> bytes:
    try:
        if kind == "string":
            return _len_field(f.tag, value.encode())
        if kind == "bytes":
            return _len_field(f.tag, base64.b64decode(value) if isinstance(value, str) else bytes(value))
        if kind == "bool":
            return f.tag + (b"\x01" if value else b"\x00")
        if kind in ("sint32", "sint64"):
            return f.tag + _varint((value << 1) ^ (value >> 63))
        if kind == "double":
            return f.tag + struct.pack("<d", value)
        if kind == "float":
            return f.tag + struct.pack("<f", value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(value)
        return f.tag + _varint(value)
    except (TypeError, AttributeError, ValueError, struct.error):
        raise ProtobufError(f"field {f.json}: {value!r} is not a {kind}") from None


def _encode_field(f: Field, kind: str, msg: Message | None, value: Any) -> bytes:
    if msg is not None:
        return _len_field(f.tag, _encode_message(msg, value))
    return _encode_scalar(f, kind, value)


def _map_entry(f: Field, key: Any, value: Any) -> bytes:
    key_field = _ENTRY_KEY[f.key or "string"]
    value_field = _entry_value(f.value or "string")
    body = _encode_scalar(key_field, key_field.kind, key)
    if value is not None:
        body += _encode_field(value_field, value_field.kind, f.message, value)
    return _len_field(f.tag, body)


@cache
def _entry_value(kind: str) -> Field:
    return Field(2, "value", kind, 0)


_ENTRY_KEY = {k: Field(1, "key", k, 0) for k in ("string", "int32", "int64", "bool")}


def _encode_message(msg: Message, value: Any) -> bytes:
    """The hot path of every protobuf answer: the document's keys drive it (objects are sparse
    next to their messages), strings and nested messages inline."""
    if msg.special is not None:
        return _SPECIAL_ENCODE[msg.special](msg, value)
    if not isinstance(value, dict):
        raise ProtobufError(f"{msg.name}: {type(value).__name__} where an object belongs")
    parts: list[bytes] = []
    append = parts.append
    by_json = msg.by_json
    inlined: dict[Field, dict[str, Any]] | None = None
    for key, v in value.items():
        f = by_json.get(key)
        if f is None:
            owner = msg.inline_owner.get(key)
            if owner is not None:
                inlined = inlined if inlined is not None else {}
                inlined.setdefault(owner, {})[key] = v
            continue  # a field upstream does not have (kind and apiVersion among them)
        if v is None:
            continue
        code = f.code
        tag = f.tag
        if f.flags & REPEATED and code != C_MAP:
            if not isinstance(v, list):
                raise ProtobufError(f"field {f.json}: must be a list")
            if code == C_MESSAGE:
                sub = f.message
                assert sub is not None
                for item in v:
                    b = _encode_message(sub, item)
                    n = len(b)
                    append(tag + (_SMALL[n] if n < 0x80 else _varint(n)) + b)
            elif code == C_STRING:
                for item in v:
                    b = item.encode() if item.__class__ is str else _utf8(f, item)
                    n = len(b)
                    append(tag + (_SMALL[n] if n < 0x80 else _varint(n)) + b)
            else:
                parts.extend(_encode_scalar(f, f.kind, item) for item in v)
        elif code == C_STRING:
            b = v.encode() if v.__class__ is str else _utf8(f, v)
            n = len(b)
            append(tag + (_SMALL[n] if n < 0x80 else _varint(n)) + b)
        elif code == C_INT and v.__class__ is int:
            append(tag + (_SMALL[v] if 0 <= v < 0x80 else _varint(v)))
        elif code == C_BOOL and v.__class__ is bool:
            append(tag + (b"\x01" if v else b"\x00"))
        elif code == C_MESSAGE:
            assert f.message is not None
            b = _encode_message(f.message, v)
            n = len(b)
            append(tag + (_SMALL[n] if n < 0x80 else _varint(n)) + b)
        elif code == C_MAP:
            if not isinstance(v, dict):
                raise ProtobufError(f"field {f.json}: a map must be an object")
            if f.key == "string" and f.value == "string":
                for k in sorted(v):
                    kb, vb = _utf8(f, k), _utf8(f, v[k])
                    entry = b"\x0a" + _len(len(kb)) + kb + b"\x12" + _len(len(vb)) + vb
                    append(tag + _len(len(entry)) + entry)
            else:
                parts.extend(_map_entry(f, k, v[k]) for k in sorted(v))
        else:
            append(_encode_scalar(f, f.kind, v))
    if inlined:
        for owner, sub_doc in inlined.items():
            assert owner.message is not None
            b = _encode_message(owner.message, sub_doc)
            append(owner.tag + _len(len(b)) + b)
    return b"".join(parts)


def _len(n: int) -> bytes:
    return _SMALL[n] if n < 0x80 else _varint(n)


def _utf8(f: Field, value: Any) -> bytes:
    if not isinstance(value, str):
        raise ProtobufError(f"field {f.json}: {value!r} is not a string")
    return value.encode()


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def _parse_time(text: Any) -> tuple[int, int]:
    m = _RFC3339.match(text) if isinstance(text, str) else None
    if m is None:
        raise ProtobufError(f"{text!r} is not an RFC 3339 time")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    t = datetime.fromisoformat(m.group(1) + zone)
    nanos = int((m.group(2) or "0").ljust(9, "0"))
    return int(t.timestamp()), nanos


@lru_cache(maxsize=8192)
def _time_bytes(value: Any, micro: bool) -> bytes:
    seconds, nanos = _parse_time(value)
    out = b"\x08" + _varint(seconds)
    nanos = (nanos // 1000) * 1000 if micro else 0  # Time's JSON carries whole seconds
    return out + (b"\x10" + _varint(nanos) if nanos else b"")


def _encode_time(micro: bool) -> Any:
    def encode(msg: Message, value: Any) -> bytes:
        if not isinstance(value, str):
            raise ProtobufError(f"{value!r} is not an RFC 3339 time")
        return _time_bytes(value, micro)

    return encode


def _encode_raw(msg: Message, value: Any) -> bytes:
    return _len_field(b"\x0a", json.dumps(value, separators=(",", ":")).encode())


def _encode_intorstring(msg: Message, value: Any) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ProtobufError(f"{value!r} is neither an integer nor a string")
    if isinstance(value, int):
        return b"\x08\x00\x10" + _varint(value)
    return b"\x08\x01" + _len_field(b"\x1a", value.encode())


def _encode_union(bool_first: bool) -> Any:
    """JSONSchemaPropsOr*: an object is the schema (field 1, or 2 for OrBool); otherwise the list
    (field 2) or the bool (field 1)."""

    def encode(msg: Message, value: Any) -> bytes:
        schema_field = msg.by_number[2 if bool_first else 1]
        other = msg.by_number[1 if bool_first else 2]
        if isinstance(value, dict):
            return _encode_field(schema_field, schema_field.kind, schema_field.message, value)
        if isinstance(value, list):
            return b"".join(_encode_field(other, other.kind, other.message, v) for v in value)
        return _encode_scalar(other, other.kind, value)

    return encode


def _encode_list(msg: Message, value: Any) -> bytes:
    f = msg.by_number[1]
    if not isinstance(value, list):
        raise ProtobufError(f"{msg.name}: must be a list")
    return b"".join(_encode_field(f, f.kind, f.message, v) for v in value)


def _encode_quantity(msg: Message, value: Any) -> bytes:
    return _len_field(b"\x0a", str(value).encode())


_SPECIAL_ENCODE: dict[str, Any] = {
    "time": _encode_time(False),
    "microtime": _encode_time(True),
    "duration": lambda msg, value: b"\x08" + _varint(_parse_go_duration(value)),
    "raw_json": _encode_raw,
    "quantity": _encode_quantity,
    "intorstring": _encode_intorstring,
    "schema_or_array": _encode_union(False),
    "schema_or_bool": _encode_union(True),
    "schema_or_strings": _encode_union(False),
    "list": _encode_list,
}


def encode_message(name: str, value: Any) -> bytes:
    msg = schema().messages.get(name)
    if msg is None:
        raise ProtobufError(f"no protobuf message {name}")
    return _encode_message(msg, value)


def wrap(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _len_field(b"\x0a", api_version.encode()) + _len_field(b"\x12", kind.encode())
    return MAGIC + _len_field(b"\x0a", type_meta) + _len_field(b"\x12", raw) + b"\x1a\x00\x22\x00"


def encode_object(doc: dict[str, Any]) -> bytes:
    """An object's JSON form (with ``apiVersion`` and ``kind``) -> ``k8s\\0`` + runtime.Unknown."""
    return wrap(doc.get("apiVersion", ""), doc.get("kind", ""), encode_body(doc))


def encode_body(doc: dict[str, Any]) -> bytes:
    """An object's message, without the envelope (a list's items are these)."""
    api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
    msg = schema().message_for(api_version, kind)
    if msg is None:
        raise ProtobufError(f"no protobuf message for {kind} in {api_version}")
    return _encode_message(msg, doc)


def encode_list(api_version: str, kind: str, meta: dict[str, Any], items: list[bytes]) -> bytes:
    """A ``<Kind>List`` from its ListMeta and its items' messages (metadata = 1, items = 2)."""
    parts = [_len_field(b"\x0a", encode_message(f"{META}.ListMeta", meta))]
    parts.extend(_len_field(b"\x12", item) for item in items)
    return wrap(api_version, kind, b"".join(parts))


def encode_watch_event(event_type: str, obj: dict[str, Any]) -> bytes:
    """One frame of a protobuf watch: length, then a WatchEvent holding the enveloped object."""
    return watch_frame(event_type, encode_object(obj))


def watch_frame(event_type: str, enveloped: bytes) -> bytes:
    """A watch frame around an object already enveloped (``k8s\\0`` + Unknown)."""
    raw_ext = _len_field(b"\x0a", enveloped)
    body = _len_field(b"\x0a", event_type.encode()) + _len_field(b"\x12", raw_ext)
    return struct.pack(">I", len(body)) + body


def decode_watch_events(data: bytes) -> list[dict[str, Any]]:
    """A protobuf watch stream's frames -> ``{"type", "object"}`` events (for clients and tests)."""
    out = []
    pos = 0
    while pos + 4 <= len(data):
        (size,) = struct.unpack_from(">I", data, pos)
        frame = data[pos + 4 : pos + 4 + size]
        if len(frame) < size:
            break
        out.append(decode_message(WATCH_EVENT, frame))
        pos += 4 + size
    return out


# --- Go durations -----------------------------------------------------------------------------

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def _parse_go_duration(text: Any) -> int:
    if not isinstance(text, str):
        raise ProtobufError(f"{text!r} is not a duration")
    s = text.strip()
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    if s == "0":
        return 0
    total = 0
    pos = 0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += round(float(m.group(1)) * _UNITS[m.group(2)])
        pos = m.end()
    if pos != len(s) or not s:
        raise ProtobufError(f"{text!r} is not a duration")
    return sign * total


def _go_duration(ns: int) -> str:
    """time.Duration.String(): 1h2m3.5s, 1.5ms, 0s."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if ns >= size:
                return sign + _fraction(ns, size) + unit
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + _fraction(rest, 10**9) + "s"


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{str(frac).rjust(digits, '0').rstrip('0')}"
