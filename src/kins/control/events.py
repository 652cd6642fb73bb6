"""The event recorder: what the components report about objects, as core/v1 Events.

Shaped after client-go's recorder and its EventCorrelator:

- ``event()`` only queues (a lock and an append), so the scheduler, controllers and kubelet never
  wait on the store for an event; a background thread writes the queue every ``flush_delay``
  seconds in one transaction (one commit and one watch publication per batch).
- An event identical to one recorded before (same object, source, type, reason and message)
  is not written again: the stored Event's ``count`` grows and its ``lastTimestamp`` moves.
- Like the correlator's aggregator, when one object gets ``SIMILAR_LIMIT`` different messages
  with the same type and reason within ``SIMILAR_WINDOW`` seconds, the next ones are folded into
  one Event whose message starts with "(combined from similar events): ".
- Events whose ``lastTimestamp`` is older than ``ttl`` (the API server's default ``--event-ttl``
  is one hour) are deleted, so a cluster that runs for weeks keeps a bounded number of them.

Offline convergence uses ``NO_EVENTS``: nobody reads them there and they would only cost time.
"""

from __future__ import annotations

import calendar
import contextlib
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from msgspec.structs import replace

from .._errors import ApiRequestError, Conflict, NotFound
from ..api.core import Event, EventSource, ObjectReference
from ..api.meta import Object, ObjectMeta
from ..store.base import Store

log = logging.getLogger("kins.events")

NORMAL = "Normal"
WARNING = "Warning"
TTL_SECONDS = 3600.0
CACHE_SIZE = 4096  # client-go's maxLruCacheEntries
SIMILAR_LIMIT = 10  # client-go's defaultAggregateMaxEvents
SIMILAR_WINDOW = 600.0  # client-go's defaultAggregateIntervalInSeconds
COMBINED_PREFIX = "(combined from similar events): "


class EventSink(Protocol):
    def event(
        self,
        obj: Object | ObjectReference,
        type: str,
        reason: str,
        message: str,
        *,
        component: str,
        host: str | None = None,
        field_path: str | None = None,
    ) -> None: ...


class _NoEvents:
    """Records nothing (offline convergence)."""

    def event(
        self,
        obj: Object | ObjectReference,
        type: str,
        reason: str,
        message: str,
        *,
        component: str,
        host: str | None = None,
        field_path: str | None = None,
    ) -> None:
        return None


NO_EVENTS: EventSink = _NoEvents()


def reference(obj: Object | ObjectReference, field_path: str | None = None) -> ObjectReference:
    """The ``involvedObject`` of an event about ``obj``."""
    if isinstance(obj, ObjectReference):
        return replace(obj, fieldPath=field_path) if field_path else obj
    m = obj.metadata
    return ObjectReference(
        kind=obj.KIND,
        namespace=obj.namespace if obj.NAMESPACED else None,
        name=m.name,
        uid=m.uid,
        apiVersion=obj.apiVersion or obj.API_VERSION,
        resourceVersion=m.resourceVersion,
        fieldPath=field_path,
    )


def timestamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def parse_timestamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


@dataclass(slots=True)
class _Pending:
    ref: ObjectReference
    type: str
    reason: str
    message: str
    component: str
    host: str
    at: float


@dataclass(slots=True)
class _Seen:
    """What the cache knows of a written Event: enough to bump it without reading it back."""

    event: Event
    last: float


class EventRecorder:
    """Queues events and writes them to ``store`` in the background (see the module's notes)."""

    def __init__(
        self,
        store: Store,
        *,
        ttl: float = TTL_SECONDS,
        flush_delay: float = 0.5,
        sweep_every: float = 60.0,
        expire: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.flush_delay = flush_delay
        self.sweep_every = sweep_every
        self.expires = expire  # one recorder per cluster expires Events; agents' only write
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: OrderedDict[tuple[str, ...], _Seen] = OrderedDict()
        # (object, source, type, reason) -> message -> when it was last seen
        self._similar: OrderedDict[tuple[str, ...], dict[str, float]] = OrderedDict()
        self._serial = 0
        self._next_sweep = 0.0

    # --- recording (any thread, never blocks on the store) --------------------------------------

    def event(
        self,
        obj: Object | ObjectReference,
        type: str,
        reason: str,
        message: str,
        *,
        component: str,
        host: str | None = None,
        field_path: str | None = None,
    ) -> None:
        p = _Pending(reference(obj, field_path), type, reason, message, component, host or "", self.clock())
        with self._lock:
            self._pending.append(p)
        self._wake.set()

    # --- writing --------------------------------------------------------------------------------

    def flush(self) -> int:
        """Write what is queued (one transaction); the number of Events created or updated."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        # Repeats inside one batch collapse into a single write.
        todo: OrderedDict[tuple[str, ...], tuple[_Pending, int]] = OrderedDict()
        for p in batch:
            p.message = self._aggregate(p)
            key = _key(p)
            if p.message.startswith(COMBINED_PREFIX):
                key = (*key[:-1], COMBINED_PREFIX)  # one Event for all of them, latest message shown
            prev = todo.get(key)
            todo[key] = (p, (prev[1] if prev else 0) + 1)
            todo.move_to_end(key)
        written = 0
        with self.store.transaction():
            for key, (p, n) in todo.items():
                try:
                    self._write(key, p, n)
                except (NotFound, ApiRequestError) as e:
                    # The API refuses events in a namespace that is gone or Terminating (403):
                    # dropped, as client-go's recorder drops them; the rest of the batch goes on.
                    if isinstance(e, ApiRequestError) and e.code != 403:
                        raise
                    log.debug("event %s dropped: %s", p.reason, e)
                    continue
                written += 1
        return written

    def _aggregate(self, p: _Pending) -> str:
        """The message to record: ``p``'s own, or the combined form once the object has had too
        many different messages of this type and reason lately."""
        r = p.ref
        key = (r.kind or "", r.namespace or "", r.name or "", r.uid or "", p.component, p.host, p.type, p.reason)
        msgs = self._similar.get(key)
        if msgs is None:
            msgs = self._similar[key] = {}
            if len(self._similar) > CACHE_SIZE:
                self._similar.popitem(last=False)
        else:
            self._similar.move_to_end(key)
        horizon = p.at - SIMILAR_WINDOW
        for m in [m for m, t in msgs.items() if t < horizon]:
            del msgs[m]
        if p.message in msgs or len(msgs) < SIMILAR_LIMIT:
            msgs[p.message] = p.at
            return p.message
        return COMBINED_PREFIX + p.message

    def _write(self, key: tuple[str, ...], p: _Pending, n: int) -> None:
        now = timestamp(p.at)
        seen = self._seen.get(key)
        if seen is not None and p.at - seen.last < self.ttl:
            ev = seen.event
            bumped = replace(ev, count=(ev.count or 1) + n, lastTimestamp=now, message=p.message)
            try:
                stored = self.store.update(bumped, check_rv=False)
            except NotFound:
                seen = None  # expired or deleted meanwhile: record it afresh
            else:
                assert isinstance(stored, Event)
                self._seen[key] = _Seen(stored, p.at)
                self._seen.move_to_end(key)
                return
        created = self._create(p, n, now)
        self._seen[key] = _Seen(created, p.at)
        self._seen.move_to_end(key)
        if len(self._seen) > CACHE_SIZE:
            self._seen.popitem(last=False)

    def _create(self, p: _Pending, n: int, now: str) -> Event:
        r = p.ref
        ns = r.namespace or "default"  # events about cluster-scoped objects live in default
        ev = Event(
            metadata=ObjectMeta(name="", namespace=ns),
            involvedObject=r,
            reason=p.reason,
            message=p.message,
            source=EventSource(component=p.component, host=p.host or None),
            firstTimestamp=now,
            lastTimestamp=now,
            count=n,
            type=p.type,
            reportingComponent=p.component,
            reportingInstance=p.host,
        )
        while True:
            # client-go names an event <object>.<creation time in hex nanoseconds>.
            self._serial += 1
            name = f"{r.name}.{time.time_ns() + self._serial:x}"
            try:
                created = self.store.create(replace(ev, metadata=replace(ev.metadata, name=name)))
            except Conflict:
                continue
            assert isinstance(created, Event)
            return created

    def expire(self) -> int:
        """Delete Events last seen more than ``ttl`` seconds ago; how many went."""
        cut = self.clock() - self.ttl
        gone = 0
        with self.store.transaction():
            for ev in self.store.list("Event")[0]:
                assert isinstance(ev, Event)
                last = parse_timestamp(ev.lastTimestamp or ev.firstTimestamp or ev.metadata.creationTimestamp)
                if last is not None and last < cut:
                    with contextlib.suppress(NotFound):
                        self.store.delete("Event", ev.namespace, ev.name)
                        gone += 1
        if gone:
            for key in [k for k, s in self._seen.items() if s.last < cut]:
                del self._seen[key]
        return gone

    # --- the background writer ------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kins-events", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the writer after a last flush."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=self.sweep_every)
            self._wake.clear()
            # Let a burst (a Deployment's pods starting) gather into one transaction.
            self._stop.wait(self.flush_delay)
            try:
                self.flush()
                if self.expires and self.clock() >= self._next_sweep:
                    self._next_sweep = self.clock() + self.sweep_every
                    self.expire()
            except Exception:
                if self._stop.is_set():
                    return  # the store closed under us at shutdown
                log.exception("writing events failed")
        with contextlib.suppress(Exception):
            self.flush()


def _key(p: _Pending) -> tuple[str, ...]:
    r = p.ref
    return (
        r.kind or "",
        r.namespace or "",
        r.name or "",
        r.uid or "",
        r.fieldPath or "",
        p.component,
        p.host,
        p.type,
        p.reason,
        p.message,
    )


_SHARED: weakref.WeakKeyDictionary[object, EventRecorder] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def shared_recorder(store: Store) -> EventRecorder:
    """The one running recorder of a live cluster's store (its controllers and kubelets share
    it, so the same event from two places is aggregated into one)."""
    raw: object = getattr(store, "raw", store)
    with _SHARED_LOCK:
        rec = _SHARED.get(raw)
        if rec is None:
            rec = _SHARED[raw] = EventRecorder(raw)  # type: ignore[arg-type]
            rec.start()
        return rec


__all__ = [
    "COMBINED_PREFIX",
    "NORMAL",
    "NO_EVENTS",
    "TTL_SECONDS",
    "WARNING",
    "EventRecorder",
    "EventSink",
    "reference",
    "shared_recorder",
]
