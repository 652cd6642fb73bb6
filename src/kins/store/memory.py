"""The in-memory store: nested dicts, no copies, for offline rendering and tests.

Offline rendering pushes tens of thousands of objects through it, so a create is a dict lookup,
two ``structs.replace`` calls and a tuple append. Objects are stored as given (with fresh
metadata); readers get the stored objects back and must not mutate them.
"""

from __future__ import annotations

import builtins
import random
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from msgspec.structs import replace

from .._errors import Gone
from ..api.meta import LabelSelector, Object, selector_matches
from .base import (
    ADDED,
    DELETED,
    MODIFIED,
    Clock,
    UidSource,
    WatchEvent,
    already_exists,
    check_fresh,
    created,
    key_namespace,
    missing_name,
    not_found,
    random_suffix,
    updated,
)
from .watch import Watch, WatchHub

_Journal = list[tuple[str, str, str, Object | None]]


class MemoryStore:
    def __init__(self, history: int = 200_000, rng: random.Random | None = None) -> None:
        # kind -> namespace ("" when cluster-scoped) -> name -> object
        self._objs: dict[str, dict[str, dict[str, Object]]] = {}
        self._rv = 0
        self._history: deque[WatchEvent] = deque(maxlen=history)
        self._trimmed = 0  # every event with rv <= this has left the history
        self._lock = threading.RLock()
        self._depth = 0
        self._journal: _Journal = []
        self._pending: builtins.list[WatchEvent] = []
        self._hub = WatchHub()
        self._uid = UidSource()
        self._clock = Clock()
        self._rng = rng or random.Random()

    @property
    def resource_version(self) -> int:
        return self._rv

    # --- reads ---------------------------------------------------------------------------------

    def get(self, kind: str, namespace: str | None, name: str) -> Object:
        obj = self._objs.get(kind, {}).get(key_namespace(kind, namespace), {}).get(name)
        if obj is None:
            raise not_found(kind, name)
        return obj

    def list(
        self, kind: str, namespace: str | None = None, selector: LabelSelector | None = None
    ) -> tuple[builtins.list[Object], int]:
        with self._lock:
            by_ns = self._objs.get(kind, {})
            if namespace is None:
                items = [o for ns in sorted(by_ns) for _, o in sorted(by_ns[ns].items())]
            else:
                items = [o for _, o in sorted(by_ns.get(namespace, {}).items())]
            rv = self._rv
        if selector is not None:
            items = [o for o in items if selector_matches(selector, o.metadata.labels or {})]
        return items, rv

    def keys(self, kind: str) -> builtins.list[tuple[str, str]]:
        """(namespace, name) of every object of a kind, unsorted: cheap for controllers' resyncs."""
        with self._lock:
            return [(ns, n) for ns, b in self._objs.get(kind, {}).items() for n in b]

    # --- writes --------------------------------------------------------------------------------

    def create(self, obj: Object) -> Object:
        meta = obj.metadata
        ns = (meta.namespace or "default") if obj.NAMESPACED else ""
        kind = obj.KIND
        with self._lock:
            bucket = self._objs.setdefault(kind, {}).setdefault(ns, {})
            name = meta.name
            if not name:
                if not meta.generateName:
                    raise missing_name(obj)
                name = meta.generateName + random_suffix(self._rng)
                while name in bucket:
                    name = meta.generateName + random_suffix(self._rng)
            elif name in bucket:
                raise already_exists(kind, name)
            self._rv += 1
            rv = self._rv
            new = created(obj, name, ns, self._uid(), rv, self._clock.now())
            bucket[name] = new
            self._record(WatchEvent(ADDED, new, rv), kind, ns, name, None)
            return new

    def bulk_create(self, objs: builtins.list[Object]) -> builtins.list[Object]:
        with self.transaction():
            return [self.create(o) for o in objs]

    def update(self, obj: Object, *, check_rv: bool = True) -> Object:
        meta = obj.metadata
        ns = (meta.namespace or "default") if obj.NAMESPACED else ""
        kind, name = obj.KIND, meta.name
        with self._lock:
            bucket = self._objs.get(kind, {}).get(ns)
            old = bucket.get(name) if bucket else None
            if bucket is None or old is None:
                raise not_found(kind, name)
            check_fresh(obj, old, check_rv)
            self._rv += 1
            rv = self._rv
            new = updated(obj, old, ns, rv)
            bucket[name] = new
            self._record(WatchEvent(MODIFIED, new, rv), kind, ns, name, old)
            return new

    def delete(self, kind: str, namespace: str | None, name: str) -> Object:
        with self._lock:
            ns = key_namespace(kind, namespace)
            bucket = self._objs.get(kind, {}).get(ns)
            old = bucket.pop(name, None) if bucket else None
            if old is None:
                raise not_found(kind, name)
            self._rv += 1
            rv = self._rv
            gone = replace(old, metadata=replace(old.metadata, resourceVersion=str(rv)))
            self._record(WatchEvent(DELETED, gone, rv), kind, ns, name, old)
            return gone

    def _record(self, ev: WatchEvent, kind: str, ns: str, name: str, old: Object | None) -> None:
        if self._depth:
            self._journal.append((kind, ns, name, old))
            self._pending.append(ev)
        else:
            self._append_history([ev])
            if self._hub:
                self._hub.publish([ev])

    def _append_history(self, events: builtins.list[WatchEvent]) -> None:
        h = self._history
        drop = len(h) + len(events) - (h.maxlen or 0)
        if drop > 0:  # remember the newest event that falls out: watches from before it get Gone
            self._trimmed = h[drop - 1].rv if drop <= len(h) else events[drop - len(h) - 1].rv
        h.extend(events)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside commit together (watchers see them after the block) or are undone."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            start_rv = self._rv
            self._journal, self._pending = [], []
            try:
                yield
            except BaseException:
                for kind, ns, name, old in reversed(self._journal):
                    bucket = self._objs.setdefault(kind, {}).setdefault(ns, {})
                    if old is None:
                        bucket.pop(name, None)
                    else:
                        bucket[name] = old
                self._rv = start_rv
                raise
            finally:
                self._depth = 0
                events, self._pending, self._journal = self._pending, [], []
            if events and self._rv != start_rv:
                self._append_history(events)
                self._hub.publish(events)

    # --- watch ---------------------------------------------------------------------------------

    def watch(self, kinds: set[str] | None, since: int) -> Watch:
        with self._lock:
            if since < self._trimmed:
                raise Gone(f"too old resource version: {since} ({self._trimmed + 1})")
            backlog: builtins.list[WatchEvent] = []
            for ev in reversed(self._history):
                if ev.rv <= since:
                    break
                backlog.append(ev)
            backlog.reverse()
            return self._hub.open(kinds, backlog)
