"""The SQLite store: the embedded default, kept in the cluster's state directory.

One table holds the objects (msgspec JSON, decoded back into their typed class), one the event
log that watches replay from (pruned to the newest ``history`` events), one the counters. WAL
journaling lets other connections and processes read while one writes; every write is a
transaction (``BEGIN IMMEDIATE`` takes the write lock up front), so a killed writer leaves the
database at its last commit. The resourceVersion counter is read inside each write transaction,
which keeps several writers on one file correct too.
"""

from __future__ import annotations

import builtins
import random
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
from msgspec.structs import replace

from .._errors import Gone
from ..api import registry
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    rv INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (kind, namespace, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    rv INTEGER PRIMARY KEY, type TEXT NOT NULL, kind TEXT NOT NULL, data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('rv', 0), ('trimmed', 0);
"""

_encode = msgspec.json.Encoder().encode


class SqliteStore:
    def __init__(self, path: str | Path, history: int = 100_000, rng: random.Random | None = None) -> None:
        self.path = str(path)
        self._history = history
        # One connection, serialized by a lock: a transaction holds the lock for its whole block,
        # so another thread never sees half of it. Other processes use their own connections.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0
        self._rv = 0
        self._pending: builtins.list[WatchEvent] = []
        self._hub = WatchHub()
        self._uid = UidSource()
        self._clock = Clock()
        self._rng = rng or random.Random()
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {}
        self._decoders_generation = registry.GENERATION

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _decode(self, kind: str, data: bytes) -> Object:
        if self._decoders_generation != registry.GENERATION:
            # A custom resource's type changed (its definition was created, updated or deleted).
            self._decoders.clear()
            self._decoders_generation = registry.GENERATION
        dec = self._decoders.get(kind)
        if dec is None:
            dec = self._decoders[kind] = msgspec.json.Decoder(registry.STORED[kind])
        obj: Object = dec.decode(data)
        return obj

    def _counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0])

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv if self._depth else self._counter("rv")

    # --- reads ---------------------------------------------------------------------------------

    def get(self, kind: str, namespace: str | None, name: str) -> Object:
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM objects WHERE kind = ? AND namespace = ? AND name = ?",
                (kind, key_namespace(kind, namespace), name),
            ).fetchone()
        if row is None:
            raise not_found(kind, name)
        return self._decode(kind, row[0])

    def list(
        self, kind: str, namespace: str | None = None, selector: LabelSelector | None = None
    ) -> tuple[builtins.list[Object], int]:
        with self._lock, self._read():
            if namespace is None:
                rows = self._db.execute(
                    "SELECT data FROM objects WHERE kind = ? ORDER BY namespace, name", (kind,)
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT data FROM objects WHERE kind = ? AND namespace = ? ORDER BY name",
                    (kind, namespace),
                ).fetchall()
            rv = self._rv if self._depth else self._counter("rv")
        items = [self._decode(kind, r[0]) for r in rows]
        if selector is not None:
            items = [o for o in items if selector_matches(selector, o.metadata.labels or {})]
        return items, rv

    @contextmanager
    def _read(self) -> Iterator[None]:
        """One snapshot for several statements (a list and its resourceVersion agree)."""
        if self._depth:
            yield
            return
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def _row(self, kind: str, ns: str, name: str) -> Object | None:
        row = self._db.execute(
            "SELECT data FROM objects WHERE kind = ? AND namespace = ? AND name = ?", (kind, ns, name)
        ).fetchone()
        return None if row is None else self._decode(kind, row[0])

    # --- writes --------------------------------------------------------------------------------

    def create(self, obj: Object) -> Object:
        meta = obj.metadata
        ns = (meta.namespace or "default") if obj.NAMESPACED else ""
        kind = obj.KIND
        with self.transaction():
            name = meta.name
            if not name:
                if not meta.generateName:
                    raise missing_name(obj)
                name = meta.generateName + random_suffix(self._rng)
                while self._row(kind, ns, name) is not None:
                    name = meta.generateName + random_suffix(self._rng)
            self._rv += 1
            rv = self._rv
            new = created(obj, name, ns, self._uid(), rv, self._clock.now())
            data = _encode(new)
            try:
                self._db.execute("INSERT INTO objects VALUES (?, ?, ?, ?, ?)", (kind, ns, name, rv, data))
            except sqlite3.IntegrityError:
                self._rv -= 1
                raise already_exists(kind, name) from None
            self._event(ADDED, new, kind, rv, data)
            return new

    def bulk_create(self, objs: builtins.list[Object]) -> builtins.list[Object]:
        with self.transaction():
            return [self.create(o) for o in objs]

    def update(self, obj: Object, *, check_rv: bool = True) -> Object:
        meta = obj.metadata
        ns = (meta.namespace or "default") if obj.NAMESPACED else ""
        kind, name = obj.KIND, meta.name
        with self.transaction():
            old = self._row(kind, ns, name)
            if old is None:
                raise not_found(kind, name)
            check_fresh(obj, old, check_rv)
            self._rv += 1
            rv = self._rv
            new = updated(obj, old, ns, rv)
            data = _encode(new)
            self._db.execute(
                "UPDATE objects SET rv = ?, data = ? WHERE kind = ? AND namespace = ? AND name = ?",
                (rv, data, kind, ns, name),
            )
            self._event(MODIFIED, new, kind, rv, data)
            return new

    def delete(self, kind: str, namespace: str | None, name: str) -> Object:
        ns = key_namespace(kind, namespace)
        with self.transaction():
            old = self._row(kind, ns, name)
            if old is None:
                raise not_found(kind, name)
            self._rv += 1
            rv = self._rv
            gone = replace(old, metadata=replace(old.metadata, resourceVersion=str(rv)))
            self._db.execute("DELETE FROM objects WHERE kind = ? AND namespace = ? AND name = ?", (kind, ns, name))
            self._event(DELETED, gone, kind, rv, _encode(gone))
            return gone

    def _event(self, typ: str, obj: Object, kind: str, rv: int, data: bytes) -> None:
        self._db.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (rv, typ, kind, data))
        self._pending.append(WatchEvent(typ, obj, rv))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside commit together or not at all; watchers see them after the commit."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            self._pending = []
            try:
                start = self._rv = self._counter("rv")
                yield
                if self._rv != start:
                    self._db.execute("UPDATE counters SET value = ? WHERE name = 'rv'", (self._rv,))
                    self._prune()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._pending = []
                raise
            finally:
                self._depth = 0
            events, self._pending = self._pending, []
            self._hub.publish(events)

    def _prune(self) -> None:
        cut = self._rv - self._history
        if cut > self._counter("trimmed"):
            self._db.execute("DELETE FROM events WHERE rv <= ?", (cut,))
            self._db.execute("UPDATE counters SET value = ? WHERE name = 'trimmed'", (cut,))

    # --- watch ---------------------------------------------------------------------------------

    def watch(self, kinds: set[str] | None, since: int) -> Watch:
        with self._lock, self._read():
            trimmed = self._counter("trimmed")
            if since < trimmed:
                raise Gone(f"too old resource version: {since} ({trimmed + 1})")
            rows = self._db.execute("SELECT rv, type, kind, data FROM events WHERE rv > ? ORDER BY rv", (since,))
            backlog = [
                WatchEvent(typ, self._decode(kind, data), rv)
                for rv, typ, kind, data in rows
                # (events of a custom kind whose definition is gone are past serving)
                if (kinds is None or kind in kinds) and kind in registry.STORED
            ]
            return self._hub.open(kinds, backlog)
