"""A shared informer: the node agents' only view of the cluster.

Like client-go's reflector + indexer, per kind: list through the API, then watch from the list's
resourceVersion (asking for bookmarks), keep a local copy of every object, and hand each change to
the subscribers. A watch that ends is resumed from the last resourceVersion seen; one that is too
old (410 Gone) or fails is replaced by a fresh list after a back-off, and the difference between
the copy and the new list goes out as ADDED/MODIFIED/DELETED events, so subscribers never miss a
change. Nothing here reads the store: a process on another host could run it as it is.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable, Iterable

from .._errors import Gone, NotFound
from ..api.meta import LabelSelector, Object, selector_matches
from ..client import Client
from ..store.base import DELETED, WatchEvent, not_found
from ..store.watch import Watch, relist_events

log = logging.getLogger("kins.informer")

WATCH_SECONDS = 300  # a watch is re-opened (from the last version seen) this often
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0


def _key(obj: Object) -> str:
    return f"{obj.kind}/{obj.key}"


class Informer:
    """Objects of ``kinds``, kept current from the API by one watching thread per kind."""

    def __init__(self, connect: Callable[[], Client], kinds: Iterable[str]) -> None:
        self._connect = connect
        self.kinds = frozenset(kinds)
        self._objects: dict[str, dict[str, Object]] = {k: {} for k in self.kinds}
        self._rv: dict[str, int] = dict.fromkeys(self.kinds, 0)
        self._synced: set[str] = set()
        self._cond = threading.Condition()
        self._subs: list[Watch] = []
        self._stop = threading.Event()
        self._clients: list[Client] = []
        self._threads: list[threading.Thread] = []
        self.relists = 0  # lists after the first: lost watches (observable by tests and status)

    # --- running ------------------------------------------------------------------------------

    def start(self) -> Informer:
        for kind in sorted(self.kinds):
            t = threading.Thread(target=self._run, args=(kind,), name=f"informer-{kind}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def wait_synced(self, timeout: float | None = None) -> bool:
        """True once every kind has been listed (the copy is complete)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._synced >= self.kinds or self._stop.is_set(), timeout)

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            clients, self._clients = self._clients, []
            subs, self._subs = self._subs, []
            self._cond.notify_all()
        for c in clients:  # wakes the threads blocked reading a watch stream
            c.close()
        for w in subs:
            w.close()

    def _run(self, kind: str) -> None:
        backoff = BACKOFF_FIRST
        while not self._stop.is_set():
            client = self._connect()
            with self._cond:
                if self._stop.is_set():
                    client.close()
                    return
                self._clients.append(client)
            try:
                self._list_and_watch(client, kind)
                backoff = BACKOFF_FIRST
            except Gone:
                log.info("watch of %s too old: listing again", kind)
            except Exception as e:
                if self._stop.is_set():
                    return
                log.warning("watch of %s failed (%s): listing again in %.1fs", kind, e, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            finally:
                with self._cond:
                    if client in self._clients:
                        self._clients.remove(client)
                client.close()

    def _list_and_watch(self, client: Client, kind: str) -> None:
        items, rv = client.list_with_rv(kind, all_namespaces=True)
        self._replace(kind, items, rv)
        while not self._stop.is_set():
            for etype, obj, ev_rv in client.watch_stream(kind, rv, timeout=WATCH_SECONDS, bookmarks=True):
                rv = max(rv, ev_rv)
                if obj is None:
                    self._bookmark(kind, ev_rv)
                else:
                    self._apply(kind, WatchEvent(etype, obj, ev_rv))
                if self._stop.is_set():
                    return

    # --- the copy -----------------------------------------------------------------------------

    def _replace(self, kind: str, items: list[Object], rv: int) -> None:
        with self._cond:
            known = self._objects[kind]
            events = relist_events(known, items, rv)
            self._objects[kind] = {_key(o): o for o in items}
            self._rv[kind] = max(self._rv[kind], rv)
            if kind in self._synced:
                self.relists += 1
            self._synced.add(kind)
            self._publish(events, rv)

    def _apply(self, kind: str, ev: WatchEvent) -> None:
        with self._cond:
            objs = self._objects[kind]
            if ev.type == DELETED:
                objs.pop(_key(ev.object), None)
            else:
                objs[_key(ev.object)] = ev.object
            self._rv[kind] = max(self._rv[kind], ev.rv)
            self._publish([ev], ev.rv)

    def _bookmark(self, kind: str, rv: int) -> None:
        with self._cond:
            if rv > self._rv[kind]:
                self._rv[kind] = rv
                self._publish([], rv)

    def _publish(self, events: list[WatchEvent], rv: int) -> None:
        for w in self._subs:
            if events:
                w.push(events)
            else:
                w.poke()
        self._cond.notify_all()

    # --- reading ------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        """The version every watched kind is known to be current at (the oldest of them)."""
        with self._cond:
            return min(self._rv.values(), default=0)

    def wait_version(self, rv: int, timeout: float) -> bool:
        """Block until every kind is known current at ``rv`` or later."""
        with self._cond:
            return self._cond.wait_for(lambda: min(self._rv.values(), default=0) >= rv, timeout)

    def list(
        self, kind: str, namespace: str | None = None, selector: LabelSelector | None = None
    ) -> tuple[builtins.list[Object], int]:
        if kind not in self.kinds:
            raise KeyError(f"{kind} is not informed")
        with self._cond:
            objs = list(self._objects[kind].values())
            rv = self._rv[kind]
        if namespace is not None:
            objs = [o for o in objs if o.metadata.namespace == namespace]
        if selector is not None:
            objs = [o for o in objs if selector_matches(selector, o.metadata.labels or {})]
        objs.sort(key=lambda o: (o.metadata.namespace or "", o.name))
        return objs, rv

    def get(self, kind: str, namespace: str | None, name: str) -> Object:
        with self._cond:
            obj = self._objects[kind].get(f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}")
        if obj is None:
            raise not_found(kind, name)
        return obj

    def subscribe(self, kinds: set[str] | None = None) -> Watch:
        """A queue of the changes to ``kinds`` from now on (close it when done)."""
        w = Watch(kinds, self._unsubscribe)
        with self._cond:
            self._subs.append(w)
        return w

    def _unsubscribe(self, w: Watch) -> None:
        with self._cond:
            if w in self._subs:
                self._subs.remove(w)


__all__ = ["Informer", "NotFound"]
