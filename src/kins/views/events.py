"""Events: kubectl's ``get events`` table and the rows of a describe page's Events section."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..api.core import Event
from ..api.meta import Object
from .common import age, escape_terminal, tabwrite

COLUMNS = ("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")
WIDE_COLUMNS = (
    *COLUMNS[:4],
    "SUBOBJECT",
    "SOURCE",
    "MESSAGE",
    "FIRST SEEN",
    "COUNT",
    "NAME",
)


@dataclass(frozen=True)
class EventRow:
    """One row of a describe page's Events table."""

    type: str
    reason: str
    message: str
    source: str = ""
    first_timestamp: str | None = None
    last_timestamp: str | None = None
    count: int = 1


def event_source(ev: Event) -> str:
    """kubectl's SOURCE cell: component, then host after a comma when there is one."""
    src = ev.source
    component = (src.component if src else None) or ev.reportingComponent or ""
    host = (src.host if src else None) or ev.reportingInstance or ""
    return f"{component}, {host}" if host else component


def event_row(ev: Event, now: datetime, wide: bool) -> list[str]:
    """The cells of one event's line, kubectl's columns (``WIDE_COLUMNS`` when ``wide``)."""
    first = age(ev.firstTimestamp or ev.eventTime, now)
    last = age(ev.lastTimestamp, now) if ev.lastTimestamp else first
    ref = ev.involvedObject
    kind = (ref.kind or "").lower()
    target = f"{kind}/{ref.name}" if ref.name else kind
    message = (ev.message or "").strip()
    if not wide:
        return [last, ev.type or "", ev.reason or "", target, message]
    count = ev.count or 1  # singleton events of the newer API carry no count
    return [
        last,
        ev.type or "",
        ev.reason or "",
        target,
        ref.fieldPath or "",
        event_source(ev),
        message,
        first,
        str(count),
        ev.name,
    ]


def format_events(events: Sequence[Event], *, wide: bool, all_namespaces: bool, now: datetime) -> str:
    """``kubectl get events [-o wide] [-A]`` for ``events`` in the order given (non-empty)."""
    header = list(WIDE_COLUMNS if wide else COLUMNS)
    if all_namespaces:
        header.insert(0, "NAMESPACE")
    lines = ["\t".join(header)]
    for ev in events:
        cells = event_row(ev, now, wide)
        if all_namespaces:
            cells.insert(0, ev.namespace)
        lines.append("\t".join(escape_terminal(c).replace("\t", " ").replace("\n", " ") for c in cells))
    return tabwrite("\n".join(lines) + "\n", minwidth=6, padding=3)


def events_for(obj: Object, events: Iterable[Object]) -> list[EventRow]:
    """The describe page's Events rows about ``obj``: matched on the involved object's kind,
    name, namespace and uid (as kubectl's field selector does), oldest last-seen first."""
    uid = obj.metadata.uid
    ns = obj.namespace if obj.NAMESPACED else None
    mine = [
        e
        for e in events
        if isinstance(e, Event)
        and e.involvedObject.kind == obj.KIND
        and e.involvedObject.name == obj.name
        and (ns is None or (e.involvedObject.namespace or "") == ns)
        and (not uid or not e.involvedObject.uid or e.involvedObject.uid == uid)
    ]
    mine.sort(key=lambda e: (e.lastTimestamp or e.firstTimestamp or "", int(e.metadata.resourceVersion or 0)))
    return [
        EventRow(
            type=e.type or "",
            reason=e.reason or "",
            message=e.message or "",
            source=(e.source.component if e.source else None) or e.reportingComponent or "",
            first_timestamp=e.firstTimestamp,
            last_timestamp=e.lastTimestamp or e.firstTimestamp,
            count=e.count or 1,
        )
        for e in mine
    ]


__all__ = ["COLUMNS", "WIDE_COLUMNS", "EventRow", "event_source", "events_for", "format_events"]
