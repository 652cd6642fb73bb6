"""Watches: per-watcher event queues fed by a store, usable from threads and from asyncio.

A store owns one ``WatchHub``; after each commit it hands the hub the committed events, and
the hub copies them into the queue of every open watch interested in the kind. Consumers pull
with a blocking ``next(timeout)``, iterate, ``drain()`` without blocking, or ``async for`` from
an event loop (the loop is woken with ``call_soon_threadsafe``, so writers never block on it).

``relist_events`` turns a fresh list into the ADDED/MODIFIED/DELETED events that bring a cache
from what it knew to what is there (flannel's lease watcher does this after a lost watch).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping

from ..api.meta import Object
from .events import ADDED, DELETED, MODIFIED, WatchEvent


class Watch:
    """An open watch. Thread-safe; ``close()`` may be called from any thread."""

    def __init__(self, kinds: set[str] | None, on_close: Callable[[Watch], None] | None = None) -> None:
        self.kinds = frozenset(kinds) if kinds is not None else None
        self._queue: deque[WatchEvent] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._on_close = on_close
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        # The newest version handed to this watch, of any kind: nothing it wants changed up to
        # it beyond what is queued (what a watch bookmark tells the client).
        self.seen_rv = 0
        self._poked = False

    @property
    def closed(self) -> bool:
        return self._closed

    def push(self, events: Iterable[WatchEvent]) -> None:
        kinds = self.kinds
        events = events if isinstance(events, list) else list(events)
        with self._cond:
            if self._closed:
                return
            if events:
                self.seen_rv = max(self.seen_rv, events[-1].rv)
            before = len(self._queue)
            if kinds is None:
                self._queue.extend(events)
            else:
                self._queue.extend(e for e in events if e.object.kind in kinds)
            if len(self._queue) == before:
                return
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, ev in waiters:
            loop.call_soon_threadsafe(ev.set)

    def next(self, timeout: float | None = None) -> WatchEvent | None:
        """The next event; None after ``timeout`` seconds, after ``poke`` or once the watch is
        closed."""
        with self._cond:
            if not self._queue and not self._closed and not self._poked:
                self._cond.wait_for(lambda: self._queue or self._closed or self._poked, timeout)
            self._poked = False
            return self._queue.popleft() if self._queue else None

    def poke(self) -> None:
        """Wake a blocked ``next`` with no event (the source has news of another sort)."""
        with self._cond:
            self._poked = True
            self._cond.notify_all()

    def drain(self) -> list[WatchEvent]:
        """Every queued event, without blocking."""
        with self._cond:
            out = list(self._queue)
            self._queue.clear()
            return out

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, ev in waiters:
            loop.call_soon_threadsafe(ev.set)
        if self._on_close is not None:
            self._on_close(self)

    def __iter__(self) -> Iterator[WatchEvent]:
        while True:
            ev = self.next()
            if ev is None:
                return
            yield ev

    async def aiter(self) -> AsyncIterator[WatchEvent]:
        """Events as an async iterator; ends when the watch is closed."""
        loop = asyncio.get_running_loop()
        while True:
            wake = asyncio.Event()
            with self._cond:
                if self._queue:
                    ev = self._queue.popleft()
                elif self._closed:
                    return
                else:
                    self._waiters.append((loop, wake))
                    ev = None
            if ev is None:
                await wake.wait()
                continue
            yield ev

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self.aiter()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WatchHub:
    """The set of open watches of one store."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watches: list[Watch] = []

    def open(self, kinds: set[str] | None, backlog: Iterable[WatchEvent]) -> Watch:
        """A new watch, primed with ``backlog`` (call under the store's write lock so that no
        commit can fall between the backlog and the registration)."""
        w = Watch(kinds, self._remove)
        w.push(backlog)
        with self._lock:
            self._watches.append(w)
        return w

    def _remove(self, w: Watch) -> None:
        with self._lock:
            if w in self._watches:
                self._watches.remove(w)

    def __bool__(self) -> bool:
        return bool(self._watches)

    def publish(self, events: list[WatchEvent]) -> None:
        if not events:
            return
        with self._lock:
            watches = list(self._watches)
        for w in watches:
            w.push(events)


def relist_events(known: Mapping[str, Object], current: Iterable[Object], rv: int) -> list[WatchEvent]:
    """Events that turn ``known`` (key -> object) into ``current``: ADDED for new keys, MODIFIED
    for a changed resourceVersion, DELETED for keys that disappeared (in key order)."""
    out: list[WatchEvent] = []
    seen: set[str] = set()
    for obj in current:
        k = f"{obj.kind}/{obj.key}"
        seen.add(k)
        old = known.get(k)
        if old is None:
            out.append(WatchEvent(ADDED, obj, rv))
        elif old.metadata.resourceVersion != obj.metadata.resourceVersion:
            out.append(WatchEvent(MODIFIED, obj, rv))
    for k in sorted(set(known) - seen):
        out.append(WatchEvent(DELETED, known[k], rv))
    return out
