"""``-o yaml`` and ``-o json`` in kubectl's exact style.

kubectl turns objects into JSON with sorted keys, then (for YAML) into go-yaml v2 output:
block style, two-space indent, list items at their parent key's indent, and strings quoted
only when a plain scalar would read back as something else (``"80"``, ``"true"``,
timestamps, ``""``) — double quotes then, single quotes when the text merely cannot be
plain (``'*'``, ``'a: b'``), a literal block for multi-line text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from ..api.load import to_dict
from ..api.meta import Object


def _shown(obj: Object) -> Any:
    """The object as kubectl prints it: without managedFields (``--show-managed-fields`` off)."""
    doc = to_dict(obj)
    meta = doc.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return doc


def _document(objs: Sequence[Object], as_list: bool | None) -> Any:
    if as_list is None:
        as_list = len(objs) != 1
    if not as_list:
        return _shown(objs[0])
    items = [_shown(o) for o in objs]
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


# --- JSON -------------------------------------------------------------------------------------

# encoding/json escapes these by default (HTML safety), and kubectl keeps that default.
_GO_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_JSON_RE = re.compile("[<>&\u2028\u2029]")


def to_json(objs: Sequence[Object], *, as_list: bool | None = None) -> str:
    """``kubectl get -o json``: 4-space indent, sorted keys, trailing newline. ``as_list``
    forces (True) or suppresses (False) the ``kind: List`` wrapper; by default only a single
    object is printed bare."""
    text = json.dumps(_document(objs, as_list), indent=4, sort_keys=True, ensure_ascii=False)
    return _GO_JSON_RE.sub(lambda m: _GO_JSON_ESCAPES[m.group(0)], text) + "\n"


# --- YAML -------------------------------------------------------------------------------------

_NULLS = {"", "~", "null", "Null", "NULL"}
_BOOLS = {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"}
_BOOLS |= {"true", "True", "TRUE", "false", "False", "FALSE"}
_SPECIAL_FLOATS = {
    *[".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN"],
}
_GO_INT = re.compile(r"^[-+]?(0[xX][0-9a-fA-F]+|0[oO]?[0-7]+|0[bB][01]+|[0-9]+)$")
_YAML_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_TIMESTAMPS = (
    re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$"),
    re.compile(r"^\d{4}-\d{1,2}-\d{1,2}[Tt]\d{1,2}:\d{1,2}:\d{1,2}(\.\d+)?(Z|[-+]\d{2}:\d{2})$"),
    re.compile(r"^\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{1,2}:\d{1,2}(\.\d+)?$"),
)
_BEST_WIDTH = 80
_BASE60 = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")


def _reads_as_non_string(s: str) -> bool:
    """go-yaml v2's resolve(): would this text, unquoted, load as null/bool/number/time?"""
    if s in _NULLS or s in _BOOLS or s in _SPECIAL_FLOATS or s == "<<":
        return True
    if s[0] in "0123456789+-.":
        if any(t.match(s) for t in _TIMESTAMPS):
            return True
        plain = s.replace("_", "")
        if _GO_INT.match(plain) or _YAML_FLOAT.match(plain):
            return True
    return bool(_BASE60.match(s))


def _printable(ch: str) -> bool:
    o = ord(ch)
    return (
        o == 0x0A
        or o == 0x09
        or 0x20 <= o <= 0x7E
        or o == 0x85
        or (0xA0 <= o <= 0xD7FF)
        or (0xE000 <= o <= 0xFFFD and o != 0xFEFF)
        or 0x10000 <= o <= 0x10FFFF
    )


def _plain_allowed(s: str) -> bool:
    """The emitter's analysis of whether a scalar may be written plain in block context."""
    if s.startswith(("---", "...")):
        return False
    if s[0] in " \t" or s[-1] in " \t":
        return False
    for i, ch in enumerate(s):
        nxt = s[i + 1] if i + 1 < len(s) else ""
        followed_by_space = nxt in ("", " ", "\t", "\n")
        if not _printable(ch) or ch in "\n\t":
            return False
        if i == 0:
            if ch in "#,[]{}&*!|>'\"%@`":
                return False
            if ch in "?:-" and followed_by_space:
                return False
        else:
            if ch == ":" and followed_by_space:
                return False
            if ch == "#" and s[i - 1] in " \t":
                return False
    return True


def _escape(ch: str) -> str:
    if ch == '"':
        return '\\"'
    if ch == "\\":
        return "\\\\"
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    if not _printable(ch) or ch == "\ufeff":
        o = ord(ch)
        return f"\\x{o:02X}" if o <= 0xFF else f"\\u{o:04X}" if o <= 0xFFFF else f"\\U{o:08X}"
    return ch


def _fold(s: str, style: str, column: int, indent: int) -> str:
    """Write a flow scalar the way go-yaml v2 does, breaking at a space once the line is past
    column 80 (the emitter's default best width); continuation lines start at ``indent``."""
    quote = {"plain": "", "single": "'", "double": '"'}[style]
    out = [quote]
    col = column + len(quote)
    spaces = False
    last = len(s) - 1
    for i, ch in enumerate(s):
        nxt_space = i < last and s[i + 1] == " "
        if ch == " ":
            inner = style == "plain" or 0 < i < last
            if not spaces and col > _BEST_WIDTH and inner and (style == "double" or not nxt_space):
                out.append("\n" + " " * indent)
                col = indent
                if style == "double" and nxt_space:
                    out.append("\\")
                    col += 1
            else:
                out.append(" ")
                col += 1
            spaces = True
            continue
        spaces = False
        text = ch if style == "plain" else ("''" if ch == "'" else ch) if style == "single" else _escape(ch)
        out.append(text)
        col += len(text)
    out.append(quote)
    return "".join(out)


def _literal(s: str, indent: int) -> str | None:
    """A ``|`` block for multi-line text, or None when it has to be double-quoted."""
    lines = s.split("\n")
    if any(not all(_printable(c) for c in line) or "\t" in line for line in lines):
        return None
    if any(line.endswith(" ") for line in lines[:-1]):
        return None  # a space before a line break cannot round-trip in a literal block
    header = "|"
    if s[0] in " \n":
        header += "2"
    if not s.endswith("\n"):
        header += "-"
    elif s.endswith("\n\n") or s == "\n":
        header += "+"
    body = s[:-1] if s.endswith("\n") else s
    pad = " " * indent
    return header + "".join("\n" + (pad + line if line else "") for line in body.split("\n"))


def _scalar(v: Any, indent: int, column: int, *, key: bool = False) -> str:
    """One scalar starting at ``column``; ``indent`` is where continuation lines start.
    Mapping keys are never folded."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if v == v and v not in (float("inf"), float("-inf")) else json.dumps(v)
    s = str(v)
    width = 1 << 30 if key else column
    if "\n" in s and not key:
        lit = _literal(s, indent)
        if lit is not None:
            return lit
        return _fold(s, "double", width, indent)
    if s == "" or _reads_as_non_string(s) or "\n" in s:
        return _fold(s, "double", width, indent)
    if _plain_allowed(s):
        return _fold(s, "plain", width, indent)
    if all(_printable(c) for c in s):
        return _fold(s, "single", width, indent)
    return _fold(s, "double", width, indent)


def _emit(value: Any, indent: int, out: list[str], first_prefix: str) -> None:
    """Write ``value`` as block content at ``indent``; ``first_prefix`` replaces the
    indentation of the first line (used for ``- `` list items)."""
    pad = " " * indent
    prefix = first_prefix
    if isinstance(value, dict):
        for k in sorted(value):
            v = value[k]
            key = _scalar(str(k), indent, len(prefix), key=True)
            head = f"{prefix}{key}:"
            if isinstance(v, dict) and v:
                out.append(head)
                _emit(v, indent + 2, out, " " * (indent + 2))
            elif isinstance(v, list) and v:
                out.append(head)
                _emit(v, indent, out, pad)
            else:
                out.append(f"{head} {_inline(v, indent + 2, len(head) + 1)}")
            prefix = pad
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                _emit(item, indent + 2, out, prefix + "- ")
            else:
                out.append(f"{prefix}- {_inline(item, indent + 2, len(prefix) + 2)}")
            prefix = pad
    else:
        out.append(prefix + _inline(value, indent, len(prefix)))


def _inline(v: Any, indent: int, column: int) -> str:
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    return _scalar(v, indent, column)


def dump_yaml(value: Any) -> str:
    """Any JSON-shaped value as go-yaml v2 block YAML (keys sorted)."""
    out: list[str] = []
    if isinstance(value, dict | list) and value:
        _emit(value, 0, out, "")
    else:
        out.append(_inline(value, 0, 0))
    return "\n".join(out) + "\n"


def to_yaml(objs: Sequence[Object], *, as_list: bool | None = None) -> str:
    """``kubectl get -o yaml``; ``as_list`` as for :func:`to_json`."""
    return dump_yaml(_document(objs, as_list))


__all__ = ["dump_yaml", "to_json", "to_yaml"]
