"""kubectl's JSONPath templates (``-o jsonpath=...``, ``-o custom-columns=...``, a custom
resource's printer columns).

The forms kubectl documents: ``{.items[*].metadata.name}``, ``{.items[0]}``, ``{.a['b.c']}``,
``{..name}`` (recursive), slices ``[1:3]`` and ``[-1]``, unions ``['a','b']``, filters
``[?(@.status.phase=="Running")]`` (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, or a bare path
for "exists"), ``{range .items[*]}...{end}``, string literals ``{"\\n"}`` and ``{@}``. Missing
keys print nothing (kubectl allows them). A result prints as text when it is a string, as JSON
(sorted keys, compact) when it is an object or a list.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class JSONPathError(ValueError):
    """A template kubectl would refuse to parse."""


# --- path expressions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    names: tuple[str, ...]  # one name, several for a union; "*" for every value


@dataclass(frozen=True)
class Recursive:
    name: str  # "*" for every value below


@dataclass(frozen=True)
class Index:
    indices: tuple[int, ...]


@dataclass(frozen=True)
class Slice:
    start: int | None
    stop: int | None
    step: int | None


@dataclass(frozen=True)
class Filter:
    left: Path
    op: str  # "" for "exists"
    right: Any  # a literal or a Path


@dataclass(frozen=True)
class Path:
    from_root: bool
    steps: tuple[Any, ...]


_NAME = re.compile(r"[^.\[\]\s()=!<>,'\"]+")
_COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")


def _unquote(text: str) -> str:
    body = text[1:-1]
    if text[0] == '"':
        try:
            out: str = json.loads(text)
            return out
        except json.JSONDecodeError:
            return body
    return body.replace("\\'", "'")


def _split_top(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside quotes and brackets."""
    parts, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _literal(text: str) -> Any:
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return _unquote(t)
    if t in ("true", "false"):
        return t == "true"
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        raise JSONPathError(f"unrecognized filter value {t!r}") from None


def _filter(text: str) -> Filter:
    body = text.strip()
    for op in _COMPARISONS:
        i = _find_op(body, op)
        if i >= 0:
            left, right = body[:i].strip(), body[i + len(op) :].strip()
            rhs = parse_path(right) if right.startswith(("@", "$")) else _literal(right)
            return Filter(parse_path(left), op, rhs)
    return Filter(parse_path(body), "", None)


def _find_op(text: str, op: str) -> int:
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif text.startswith(op, i):
            # "<" must not be the start of "<=" (checked first) and so on
            return i
    return -1


def _bracket(inner: str) -> Any:
    s = inner.strip()
    if s.startswith("?"):
        f = s[1:].strip()
        if not (f.startswith("(") and f.endswith(")")):
            raise JSONPathError(f"unclosed filter in [{inner}]")
        return _filter(f[1:-1])
    if s == "*":
        return Field(("*",))
    parts = [p.strip() for p in _split_top(s, ",")]
    if all(len(p) >= 2 and p[0] == p[-1] and p[0] in "'\"" for p in parts):
        return Field(tuple(_unquote(p) for p in parts))
    if ":" in s:
        bounds = s.split(":")
        if len(bounds) > 3:
            raise JSONPathError(f"invalid slice [{inner}]")
        try:
            nums = [int(b) if b.strip() else None for b in bounds] + [None] * (3 - len(bounds))
        except ValueError:
            raise JSONPathError(f"invalid array index [{inner}]") from None
        return Slice(nums[0], nums[1], nums[2])
    try:
        return Index(tuple(int(p) for p in parts))
    except ValueError:
        raise JSONPathError(f"invalid array index [{inner}]") from None


def parse_path(text: str) -> Path:
    """A path like ``.items[*].metadata.name``, ``@.a`` or ``$..name``."""
    s = text.strip()
    from_root = s.startswith("$")
    if s[:1] in ("$", "@"):
        s = s[1:]
    steps: list[Any] = []
    i = 0
    while i < len(s):
        if s.startswith("..", i):
            m = _NAME.match(s, i + 2)
            if m is None:
                if s.startswith("*", i + 2):
                    steps.append(Recursive("*"))
                    i += 3
                    continue
                if s.startswith("[", i + 2):
                    steps.append(Recursive("*"))
                    i += 2
                    continue
                raise JSONPathError(f"invalid recursive descent in {text!r}")
            steps.append(Recursive(m.group(0)))
            i = m.end()
        elif s[i] == ".":
            m = _NAME.match(s, i + 1)
            if m is None:
                i += 1  # "." alone (the current object) or before a bracket
                continue
            steps.append(Field((m.group(0),)))
            i = m.end()
        elif s[i] == "[":
            depth, j, quote = 0, i, ""
            while j < len(s):
                ch = s[j]
                if quote:
                    if ch == quote:
                        quote = ""
                elif ch in "'\"":
                    quote = ch
                elif ch == "[":
                    depth += 1
                elif ch == "]":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(s):
                raise JSONPathError(f"unterminated array notation in {text!r}")
            steps.append(_bracket(s[i + 1 : j]))
            i = j + 1
        elif s[i].isspace():
            i += 1
        else:
            m = _NAME.match(s, i)
            if m is None:
                raise JSONPathError(f"unrecognized character in action: {s[i]!r}")
            steps.append(Field((m.group(0),)))
            i = m.end()
    return Path(from_root, tuple(steps))


# --- evaluation --------------------------------------------------------------------------------


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value[k] for k in sorted(value)]
    if isinstance(value, list):
        return list(value)
    return []


def _descend(value: Any, name: str) -> list[Any]:
    out: list[Any] = []
    if isinstance(value, dict):
        if name == "*":
            out.extend(_children(value))
        elif name in value:
            out.append(value[name])
        for k in sorted(value):
            out.extend(_descend(value[k], name))
    elif isinstance(value, list):
        if name == "*":
            out.extend(value)
        for item in value:
            out.extend(_descend(item, name))
    return out


def _compare(a: Any, op: str, b: Any) -> bool:
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    try:
        return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])
    except TypeError:
        return False


def _keep(item: Any, f: Filter, root: Any) -> bool:
    left = evaluate(f.left, item, root)
    if not f.op:
        return bool(left)
    right = evaluate(f.right, item, root) if isinstance(f.right, Path) else [f.right]
    return any(_compare(a, f.op, b) for a in left for b in right)


def _step(values: list[Any], step: Any, root: Any) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(step, Field):
            if step.names == ("*",):
                out.extend(_children(v))
            elif isinstance(v, dict):
                out.extend(v[n] for n in step.names if n in v)
        elif isinstance(step, Recursive):
            out.extend(_descend(v, step.name))
        elif isinstance(step, Index) and isinstance(v, list):
            for i in step.indices:
                if -len(v) <= i < len(v):
                    out.append(v[i])
        elif isinstance(step, Slice) and isinstance(v, list):
            out.extend(v[step.start : step.stop : step.step])
        elif isinstance(step, Filter):
            items = v if isinstance(v, list) else [v]
            out.extend(item for item in items if _keep(item, step, root))
    return out


def evaluate(path: Path, current: Any, root: Any | None = None) -> list[Any]:
    """Every value ``path`` selects (missing keys select nothing)."""
    values = [root if path.from_root and root is not None else current]
    for step in path.steps:
        values = _step(values, step, current if root is None else root)
    return values


# --- templates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Action:
    path: Path


@dataclass(frozen=True)
class Range:
    path: Path
    body: tuple[Any, ...]


def _actions(template: str) -> list[tuple[str, str]]:
    """(``text`` | ``action``, content) in order."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(template):
        j = template.find("{", i)
        if j < 0:
            out.append(("text", template[i:]))
            break
        if j > i:
            out.append(("text", template[i:j]))
        k, quote = j + 1, ""
        while k < len(template):
            ch = template[k]
            if quote:
                if ch == "\\":
                    k += 1
                elif ch == quote:
                    quote = ""
            elif ch in "'\"":
                quote = ch
            elif ch == "}":
                break
            k += 1
        if k >= len(template):
            raise JSONPathError(f"unclosed action in {template!r}")
        out.append(("action", template[j + 1 : k].strip()))
        i = k + 1
    return out


def _parse_nodes(tokens: list[tuple[str, str]], pos: int, in_range: bool) -> tuple[list[Any], int]:
    nodes: list[Any] = []
    while pos < len(tokens):
        what, content = tokens[pos]
        pos += 1
        if what == "text":
            nodes.append(Text(content))
        elif content == "end":
            if not in_range:
                raise JSONPathError("not in range, nothing to end")
            return nodes, pos
        elif content.startswith("range ") or content == "range":
            body, pos = _parse_nodes(tokens, pos, True)
            nodes.append(Range(parse_path(content[len("range") :]), tuple(body)))
        elif len(content) >= 2 and content[0] == content[-1] and content[0] in "'\"":
            nodes.append(Text(_unquote(content)))
        else:
            nodes.append(Action(parse_path(content)))
    if in_range:
        raise JSONPathError("unterminated range: {range} needs an {end}")
    return nodes, pos


@dataclass(frozen=True)
class Template:
    nodes: tuple[Any, ...]

    def render(self, data: Any) -> str:
        return "".join(_render(self.nodes, data, data))

    def results(self, data: Any) -> list[list[Any]]:
        """Each action's values (what custom columns read)."""
        return [evaluate(n.path, data, data) for n in self.nodes if isinstance(n, Action)]


def _render(nodes: tuple[Any, ...], current: Any, root: Any) -> list[str]:
    out: list[str] = []
    for n in nodes:
        if isinstance(n, Text):
            out.append(n.text)
        elif isinstance(n, Action):
            out.append(" ".join(to_text(v) for v in evaluate(n.path, current, root)))
        else:
            for item in evaluate(n.path, current, root):
                out.extend(_render(n.body, item, root))
    return out


def parse(template: str) -> Template:
    """A kubectl JSONPath template; JSONPathError when it does not parse."""
    nodes, _ = _parse_nodes(_actions(template), 0, False)
    return Template(tuple(nodes))


def to_text(value: Any) -> str:
    """A value as a template prints it: strings bare, the rest as Go's JSON encoder writes it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return go_number(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def go_number(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def go_value(value: Any) -> str:
    """Go's ``%v`` of decoded JSON (what custom columns print): ``map[a:1 b:x]``, ``[x y]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, int | float):
        return go_number(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    return str(value)
