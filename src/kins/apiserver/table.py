"""Server-side ``Table`` responses (meta.k8s.io), what ``kubectl get`` asks for.

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io, ...`` and prints the
columns it gets back, so its tables carry exactly the cells ``kins get`` prints: the rows come
from kins.views.table. Columns shown only with ``-o wide`` have priority 1. Each row carries the
object's metadata (``includeObject=Metadata``, the default), which kubectl reads for
``--all-namespaces`` and for watch events.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..api.meta import Object
from ..views.common import age
from ..views.events import COLUMNS as EVENT_COLUMNS
from ..views.events import WIDE_COLUMNS as EVENT_WIDE_COLUMNS
from ..views.events import event_row
from ..views.table import layout
from .encode import encode

TABLE_GROUP = "meta.k8s.io"
TABLE_VERSIONS = ("v1", "v1beta1")
INCLUDE_OBJECT = ("None", "Metadata", "Object")


def _media_params(media_range: str) -> tuple[str, dict[str, str]]:
    kind, *params = (p.strip() for p in media_range.split(";"))
    out: dict[str, str] = {}
    for p in params:
        k, _, v = p.partition("=")
        out[k.strip().lower()] = v.strip().strip('"')
    return kind.lower(), out


def table_version(accept: str) -> str | None:
    """The Table version to answer with, or None for the plain object.

    The first media range the server can produce wins, as kubectl lists its preference first.
    """
    for media_range in accept.split(","):
        kind, params = _media_params(media_range)
        if kind not in ("application/json", "application/*", "*/*"):
            continue
        if params.get("as") == "Table":
            if params.get("g") == TABLE_GROUP and params.get("v") in TABLE_VERSIONS:
                return params["v"]
            continue  # a Table this server does not make: try the next range
        if "as" not in params:
            return None
    return None


def _default_row(obj: Object, now: datetime) -> list[str]:
    return [obj.name, age(obj.metadata.creationTimestamp, now)]


def _event_row(ev: Any, now: datetime) -> list[str]:
    return event_row(ev, now, wide=True)


# kubectl's event table is not "the plain columns plus wide ones at the end": MESSAGE sits among
# the wide-only columns, so each column carries its own priority (1 = shown with -o wide only).
_EVENT_PRIORITIES = tuple(0 if c in EVENT_COLUMNS else 1 for c in EVENT_WIDE_COLUMNS)


def _layout(kind: str) -> tuple[tuple[str, ...], tuple[int, ...], Any]:
    """Columns, each column's priority and the row function of ``kind``."""
    if kind == "Event":
        return EVENT_WIDE_COLUMNS, _EVENT_PRIORITIES, _event_row
    found = layout(kind)
    if found is not None:
        columns, n_wide, row = found
        return columns, tuple(1 if i >= len(columns) - n_wide else 0 for i in range(len(columns))), row
    # Kinds without a kubectl layout get the API server's default: name and age.
    return ("NAME", "AGE"), (0, 0), _default_row


def column_definitions(kind: str) -> list[dict[str, Any]]:
    columns, priorities, _ = _layout(kind)
    return [
        {
            "name": name,
            "type": "string",
            "format": "name" if name == "NAME" else "",
            "description": "",
            "priority": priority,
        }
        for name, priority in zip(columns, priorities, strict=True)
    ]


def _row_object(obj: Object, api_version: str, kind: str, include: str, version: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    doc = encode(obj)
    if include == "Object":
        doc["apiVersion"], doc["kind"] = api_version, kind
        return doc
    return {"kind": "PartialObjectMetadata", "apiVersion": f"{TABLE_GROUP}/{version}", "metadata": doc["metadata"]}


def table(
    kind: str,
    api_version: str,
    objs: Sequence[Object],
    *,
    version: str = "v1",
    include: str = "Metadata",
    resource_version: str | None = None,
    continue_token: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A ``Table`` of ``objs`` (all of ``kind``, served as ``api_version``)."""
    now = now or datetime.now(UTC)
    _, _, row = _layout(kind)
    rows: list[dict[str, Any]] = []
    for obj in objs:
        entry: dict[str, Any] = {"cells": row(obj, now)}
        embedded = _row_object(obj, api_version, kind, include, version)
        if embedded is not None:
            entry["object"] = embedded
        rows.append(entry)
    meta: dict[str, Any] = {}
    if resource_version is not None:
        meta["resourceVersion"] = resource_version
    if continue_token:
        meta["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": f"{TABLE_GROUP}/{version}",
        "metadata": meta,
        "columnDefinitions": column_definitions(kind),
        "rows": rows,
    }
