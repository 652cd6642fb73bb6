"""``-o custom-columns=NAME:.metadata.name,IP:.status.podIP`` as kubectl prints it: the headers
as given, one row per object, each cell the values its JSONPath selects (joined with commas,
``<none>`` when nothing), aligned as kubectl's tables are."""

from __future__ import annotations

from typing import Any

from .common import tabwrite
from .jsonpath import JSONPathError, Template, go_value, parse

_NONE = "<none>"


def parse_custom_columns(spec: str) -> list[tuple[str, Template]]:
    """(header, template) of each ``HEADER:PATH`` (a path without braces gets them)."""
    if not spec:
        raise JSONPathError("custom-columns format specified but no custom columns given")
    columns = []
    for part in spec.split(","):
        header, sep, path = part.partition(":")
        if not sep or not header:
            raise JSONPathError(f"unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>")
        text = path if path.startswith("{") else "{" + (path if path.startswith((".", "[")) else "." + path) + "}"
        columns.append((header, parse(text)))
    return columns


def _cell(template: Template, doc: Any) -> str:
    values = [v for found in template.results(doc) for v in found]
    if not values:
        return _NONE
    return ",".join(go_value(v) for v in values)


def custom_columns(columns: list[tuple[str, Template]], docs: list[Any]) -> str:
    lines = ["\t".join(h for h, _ in columns)]
    for doc in docs:
        lines.append("\t".join(_cell(t, doc).replace("\t", " ") for _, t in columns))
    return tabwrite("\n".join(lines) + "\n", minwidth=6, padding=3)
