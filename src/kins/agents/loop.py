"""The one loop every node agent runs on.

A reconciler names the kinds it follows and brings the node to what the informer's copy says in
``sync``. The loop does what each agent used to write by hand: wait for changes, let a burst of
writes land (debounce), call the reconcilers the changes concern, sync each of them again every
``resync`` seconds (what was changed behind its back comes back), and retry a failed sync with
an exponential back-off instead of on the next unrelated change. Reconcilers with work of their
own on a clock (the kubelet's probes and restarts) say when they next want ``tick``.

A reconciler's ``applied_rv`` is the version of the cluster its last successful sync made true:
once nothing it follows is pending, it is as current as the informer (writes of other kinds
change nothing it does), which is what ``kins`` status' ``waitApplied`` waits for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from ..store.base import WatchEvent
from .informer import Informer

log = logging.getLogger("kins.agents")

DEBOUNCE = 0.005
BACKOFF_FIRST = 0.2
BACKOFF_MAX = 10.0


class Reconciler:
    """Base of the agents: ``kinds`` followed, ``sync`` on their changes, ``tick`` on a clock."""

    name = "reconciler"
    kinds: frozenset[str] = frozenset()
    resync = 300.0  # seconds between syncs with no change (0: never)

    def sync(self, changes: Sequence[WatchEvent]) -> None:
        """Make the node match the informer's copy. ``changes``: what moved since the last
        sync (empty on the first sync, on a periodic one and on a retry)."""

    def next_tick(self) -> float | None:
        """Seconds until ``tick`` wants to run (None: no clock work)."""
        return None

    def tick(self) -> None:
        """Work on a clock (probes, restarts); exceptions are logged, the loop goes on."""

    def close(self) -> None:
        """Release what the reconciler holds (sockets, pools); the node keeps its state."""


@dataclass
class _State:
    rec: Reconciler
    pending: list[WatchEvent] = field(default_factory=list)
    dirty: bool = True  # the first sync is due at once
    ok: bool = False
    retry_at: float | None = None
    backoff: float = BACKOFF_FIRST
    next_resync: float = 0.0
    applied_rv: int = 0
    syncs: int = 0
    failures: int = 0
    last_seconds: float = 0.0


class AgentLoop:
    """Runs ``reconcilers`` on ``informer``'s changes in one thread."""

    def __init__(self, informer: Informer, reconcilers: Iterable[Reconciler]) -> None:
        self.informer = informer
        self._states = [_State(r) for r in reconcilers]
        kinds: set[str] = set()
        for r in self._states:
            kinds |= r.rec.kinds
        self._watch = informer.subscribe(kinds)
        self._applied = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def reconcilers(self) -> list[Reconciler]:
        return [s.rec for s in self._states]

    # --- running ------------------------------------------------------------------------------

    def start(self, name: str = "agents") -> AgentLoop:
        self._thread = threading.Thread(target=self.run, args=(self._stop,), name=name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0, *, close: bool = True) -> None:
        """Stop the loop; ``close``: and close every reconciler (else the caller does)."""
        self._stop.set()
        self._watch.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        for s in self._states if close else ():
            try:
                s.rec.close()
            except Exception:
                log.exception("closing %s failed", s.rec.name)

    def run(self, stop: threading.Event) -> None:
        self.informer.wait_synced()
        while not stop.is_set():
            self.run_once(self._wait_time())
        self._watch.close()

    def run_once(self, wait: float) -> None:
        """Take the changes that arrive within ``wait`` seconds, then sync and tick what is due."""
        ev = self._watch.next(timeout=wait)
        if ev is not None:
            time.sleep(DEBOUNCE)  # let a burst of writes land, then sync once for all of them
        # The version first, then the queue: every change up to it is in the queue by then (the
        # informer queues a change before it counts it), so none is taken as applied unseen.
        rv = self.informer.resource_version
        self._route(([ev] if ev is not None else []) + self._watch.drain())
        now = time.monotonic()
        for s in self._states:
            if not s.dirty and s.ok and s.next_resync and now >= s.next_resync:
                s.dirty = True
            if s.dirty and (s.retry_at is None or now >= s.retry_at):
                self._sync(s, rv)
            elif not s.dirty and s.ok and s.applied_rv < rv:
                with self._applied:  # nothing it follows changed: it is as current as the copy
                    s.applied_rv = rv
                    self._applied.notify_all()
            nt = s.rec.next_tick()
            if nt is not None and nt <= 0:
                try:
                    s.rec.tick()
                except Exception:
                    log.exception("%s: tick failed", s.rec.name)

    def _route(self, events: list[WatchEvent]) -> None:
        if not events:
            return
        for s in self._states:
            mine = [e for e in events if e.object.kind in s.rec.kinds]
            if mine:
                s.pending.extend(mine)
                s.dirty = True
                s.retry_at = None  # a change is worth a try at once, back-off or not

    def _sync(self, s: _State, rv: int) -> None:
        changes, s.pending = s.pending, []
        t0 = time.perf_counter()
        try:
            s.rec.sync(changes)
        except Exception:
            s.failures += 1
            s.ok = False
            s.retry_at = time.monotonic() + s.backoff
            log.exception("%s: sync failed; retrying in %.1fs", s.rec.name, s.backoff)
            s.backoff = min(s.backoff * 2, BACKOFF_MAX)
            return
        s.last_seconds = time.perf_counter() - t0
        s.dirty = False
        s.ok = True
        s.retry_at = None
        s.backoff = BACKOFF_FIRST
        s.syncs += 1
        s.next_resync = time.monotonic() + s.rec.resync if s.rec.resync else 0.0
        with self._applied:
            s.applied_rv = max(s.applied_rv, rv)
            self._applied.notify_all()

    def _wait_time(self) -> float:
        now = time.monotonic()
        due = [0.5]
        for s in self._states:
            if s.dirty:
                due.append(max(0.0, (s.retry_at or now) - now))
            elif s.next_resync:
                due.append(max(0.0, s.next_resync - now))
            nt = s.rec.next_tick()
            if nt is not None:
                due.append(max(0.0, nt))
        return min(due)

    # --- what it applied ----------------------------------------------------------------------

    def applied_rv(self, names: Collection[str] | None = None) -> int:
        with self._applied:
            vals = [s.applied_rv for s in self._states if names is None or s.rec.name in names]
        return min(vals, default=0)

    def wait_applied(self, rv: int, timeout: float, names: Collection[str] | None = None) -> bool:
        deadline = time.monotonic() + timeout
        with self._applied:
            while True:
                vals = [s.applied_rv for s in self._states if names is None or s.rec.name in names]
                if min(vals, default=0) >= rv:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._applied.wait(left)

    def stats(self) -> dict[str, dict[str, float | int]]:
        return {
            s.rec.name: {
                "syncs": s.syncs,
                "failures": s.failures,
                "appliedResourceVersion": s.applied_rv,
                "lastSyncSeconds": round(s.last_seconds, 6),
            }
            for s in self._states
        }
