"""The one loop every node agent runs on.

A reconciler names the kinds it follows and brings the node to what the informer's copy says in
``sync``. The loop does what each agent used to write by hand: wait for changes, let a burst of
writes land (debounce), hand each reconciler the changes that concern it, sync it again every
``resync`` seconds (what was changed behind its back comes back), and retry a failed sync with
an exponential back-off instead of on the next unrelated change. Reconcilers with work of their
own on a clock (the kubelet's probes and restarts) say when they next want ``tick``.

As in client-go (one shared informer, a work queue and worker per controller), one dispatcher
thread routes the informer's changes and every reconciler syncs on a worker of its own: a slow
sync (a kernel commit waiting behind pods being made) never holds up another agent, while the
syncs of one reconciler stay strictly in order. ``after`` names reconcilers whose first sync
must have happened before this one's (a node's namespace before its pods).

A reconciler's ``applied_rv`` is the version of the cluster its last successful sync made true:
once nothing it follows is pending, it is as current as the changes routed so far (writes of
other kinds change nothing it does), which is what status' ``waitApplied`` waits for.
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
IDLE_WAIT = 1.0  # the longest a worker sleeps without a reason to wake


class NotYet(Exception):
    """A sync that cannot be done yet (a node's namespace is still being made): retried after
    the back-off like a failure, but logged in one line and not counted as a failure."""


class Reconciler:
    """Base of the agents: ``kinds`` followed, ``sync`` on their changes, ``tick`` on a clock."""

    name = "reconciler"
    kinds: frozenset[str] = frozenset()
    resync = 300.0  # seconds between syncs with no change (0: never)
    after: tuple[str, ...] = ()  # reconcilers whose first sync comes before this one's

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
    syncing: bool = False
    ok: bool = False
    retry_at: float | None = None
    backoff: float = BACKOFF_FIRST
    next_resync: float = 0.0
    applied_rv: int = 0
    syncs: int = 0
    failures: int = 0
    retries: int = 0
    last_seconds: float = 0.0
    thread: threading.Thread | None = None


class AgentLoop:
    """Runs ``reconcilers`` on ``informer``'s changes: one dispatcher, a worker each."""

    def __init__(self, informer: Informer, reconcilers: Iterable[Reconciler]) -> None:
        self.informer = informer
        self._states = [_State(r) for r in reconcilers]
        names = {s.rec.name for s in self._states}
        self._after = {s.rec.name: [n for n in s.rec.after if n in names] for s in self._states}
        self._watch = informer.subscribe(None)  # every informed kind: reconcilers may be added
        self._cond = threading.Condition()
        self._routed_rv = 0  # every change up to it has been handed to the reconcilers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def reconcilers(self) -> list[Reconciler]:
        return [s.rec for s in self._states]

    # --- running ------------------------------------------------------------------------------

    def start(self, name: str = "agents") -> AgentLoop:
        self._thread = threading.Thread(target=self._dispatch, name=name, daemon=True)
        self._thread.start()
        for s in self._states:
            s.thread = threading.Thread(target=self._work, args=(s,), name=f"agent-{s.rec.name}", daemon=True)
            s.thread.start()
        return self

    def add(self, rec: Reconciler) -> None:
        """One more reconciler, on a running loop too (one that is slow to build, such as the
        kubelet with its runtime, joins once built instead of holding the others up)."""
        s = _State(rec)
        with self._cond:
            self._states.append(s)
            names = {o.rec.name for o in self._states}
            self._after = {o.rec.name: [n for n in o.rec.after if n in names] for o in self._states}
            running = self._thread is not None
        if running:
            s.thread = threading.Thread(target=self._work, args=(s,), name=f"agent-{rec.name}", daemon=True)
            s.thread.start()

    def stop(self, timeout: float = 5.0, *, close: bool = True) -> None:
        """Stop the loop; ``close``: and close every reconciler (else the caller does)."""
        self._stop.set()
        self._watch.close()
        with self._cond:
            self._cond.notify_all()
        me = threading.current_thread()
        for t in [self._thread, *(s.thread for s in self._states)]:
            if t is not None and t is not me:
                t.join(timeout)
        for s in self._states if close else ():
            try:
                s.rec.close()
            except Exception:
                log.exception("closing %s failed", s.rec.name)

    def _dispatch(self) -> None:
        self.informer.wait_synced()
        with self._cond:
            # What the first lists brought is covered by every reconciler's first (full) sync,
            # which starts after this: nothing needs routing.
            self._routed_rv = self.informer.resource_version
            self._watch.drain()
            self._cond.notify_all()
        while not self._stop.is_set():
            ev = self._watch.next(timeout=IDLE_WAIT)
            if ev is not None:
                time.sleep(DEBOUNCE)  # let a burst of writes land, then sync once for all of them
            # The version first, then the queue: every change up to it is in the queue by then
            # (the informer queues a change before it counts it), so none is taken as applied
            # unseen.
            rv = self.informer.resource_version
            self._route(([ev] if ev is not None else []) + self._watch.drain(), rv)

    def _route(self, events: list[WatchEvent], rv: int) -> None:
        with self._cond:
            for s in self._states:
                mine = [e for e in events if e.object.kind in s.rec.kinds]
                if mine:
                    s.pending.extend(mine)
                    s.dirty = True
                    s.retry_at = None  # a change is worth a try at once, back-off or not
                elif not s.dirty and not s.syncing and s.ok and s.applied_rv < rv:
                    s.applied_rv = rv  # nothing it follows changed: as current as the copy
            self._routed_rv = max(self._routed_rv, rv)
            self._cond.notify_all()

    def _work(self, s: _State) -> None:
        self.informer.wait_synced()
        while not self._stop.is_set():
            with self._cond:
                while not self._stop.is_set():
                    wait = self._due_in(s)
                    if wait <= 0:
                        break
                    self._cond.wait(min(wait, IDLE_WAIT))
                if self._stop.is_set():
                    return
                now = time.monotonic()
                do_sync = self._sync_due(s, now)
                if do_sync:
                    changes, s.pending = s.pending, []
                    s.dirty = False
                    s.syncing = True
                    rv = self._routed_rv
            if do_sync:
                self._sync(s, changes, rv)
            nt = s.rec.next_tick()
            if nt is not None and nt <= 0:
                try:
                    s.rec.tick()
                except Exception:
                    log.exception("%s: tick failed", s.rec.name)

    def _ready(self, s: _State) -> bool:
        return all(o.syncs for o in self._states if o.rec.name in self._after[s.rec.name])

    def _sync_due(self, s: _State, now: float) -> bool:
        if not self._ready(s) or self._routed_rv == 0:
            return False
        if not s.dirty and s.ok and s.next_resync and now >= s.next_resync:
            s.dirty = True
        return s.dirty and (s.retry_at is None or now >= s.retry_at)

    def _due_in(self, s: _State) -> float:
        """Seconds until the worker has something to do (<= 0: now). Called under the lock."""
        now = time.monotonic()
        due = [IDLE_WAIT]
        if self._ready(s) and self._routed_rv:
            if s.dirty:
                due.append((s.retry_at or now) - now)
            elif s.next_resync:
                due.append(s.next_resync - now)
        nt = s.rec.next_tick()
        if nt is not None:
            due.append(nt)
        return min(due)

    def _sync(self, s: _State, changes: list[WatchEvent], rv: int) -> None:
        t0 = time.perf_counter()
        try:
            s.rec.sync(changes)
        except Exception as e:
            with self._cond:
                s.syncing = False
                s.ok = False
                s.dirty = True  # the retry is a full sync (no changes): nothing is lost
                s.retry_at = time.monotonic() + s.backoff
                if isinstance(e, NotYet):
                    s.retries += 1
                    log.info("%s: %s; trying again in %.1fs", s.rec.name, e, s.backoff)
                else:
                    s.failures += 1
                    log.exception("%s: sync failed; retrying in %.1fs", s.rec.name, s.backoff)
                s.backoff = min(s.backoff * 2, BACKOFF_MAX)
            return
        with self._cond:
            s.syncing = False
            s.last_seconds = time.perf_counter() - t0
            s.ok = True
            s.retry_at = None
            s.backoff = BACKOFF_FIRST
            s.syncs += 1
            s.next_resync = time.monotonic() + s.rec.resync if s.rec.resync else 0.0
            # No change it follows was routed while it synced: it is current up to every
            # change routed so far, not only those routed before it started.
            s.applied_rv = max(s.applied_rv, rv if s.dirty else self._routed_rv)
            self._cond.notify_all()

    # --- what it applied ----------------------------------------------------------------------

    def applied_rv(self, names: Collection[str] | None = None) -> int:
        with self._cond:
            vals = [s.applied_rv for s in self._states if names is None or s.rec.name in names]
        return min(vals, default=0)

    def wait_applied(self, rv: int, timeout: float, names: Collection[str] | None = None) -> bool:
        def done() -> bool:
            vals = [s.applied_rv for s in self._states if names is None or s.rec.name in names]
            return min(vals, default=0) >= rv

        with self._cond:
            return self._cond.wait_for(done, timeout)

    def stats(self) -> dict[str, dict[str, float | int]]:
        with self._cond:
            return {
                s.rec.name: {
                    "syncs": s.syncs,
                    "failures": s.failures,
                    "retries": s.retries,
                    "appliedResourceVersion": s.applied_rv,
                    "lastSyncSeconds": round(s.last_seconds, 6),
                }
                for s in self._states
            }
