"""Reconcilers and the loop that drives them.

A controller names the kinds it watches, turns each watch event into the keys it must
reconcile (keeping whatever indexes it needs up to date on the way), and reconciles one key at
a time against the store. ``ControllerSet`` feeds events to controllers and works their queues;
``run_until_stable`` uses it synchronously until no key is left (offline rendering and tests);
the daemon feeds the same set from a live watch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from typing import Protocol

from msgspec.structs import replace

from .._errors import KinsError
from ..api.meta import Condition, Object, OwnerReference
from ..api.registry import STORED
from ..store.base import ADDED, Store, WatchEvent


class Controller(Protocol):
    name: str
    kinds: frozenset[str]

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        """Update caches from one event; the keys it makes dirty."""
        ...

    def start_keys(self) -> Iterable[str]:
        """Keys to reconcile once at start, whatever the events say."""
        ...

    def reconcile(self, key: str) -> bool:
        """Bring one key to its desired state; True if anything was written."""
        ...


class ControllerSet:
    def __init__(self, controllers: Sequence[Controller]) -> None:
        self.controllers = list(controllers)
        self.queues: list[dict[str, None]] = [{} for _ in self.controllers]
        self._by_kind: dict[str, list[int]] = {}
        # Controllers that see every kind, those registered later included (``every_kind``, with
        # no ``kinds`` of their own: the garbage collector, the namespace controller).
        self._every = [i for i, c in enumerate(self.controllers) if getattr(c, "every_kind", False)]
        for i, c in enumerate(self.controllers):
            for k in c.kinds:
                self._by_kind.setdefault(k, []).append(i)

    @property
    def kinds(self) -> set[str] | None:
        """The kinds to watch; None for all of them."""
        return None if self._every else set(self._by_kind)

    def feed(self, events: Iterable[WatchEvent]) -> None:
        by_kind, ctrls, queues, every = self._by_kind, self.controllers, self.queues, self._every
        for ev in events:
            kind = ev.object.kind
            for i in by_kind.get(kind, ()):
                keys = ctrls[i].observe(ev)
                if keys:
                    queues[i].update(dict.fromkeys(keys))
            for i in every:
                keys = ctrls[i].observe(ev)
                if keys:
                    queues[i].update(dict.fromkeys(keys))

    def start(self, store: Store) -> None:
        """Prime caches from a full list (as ADDED events) and queue the start keys."""
        kinds = self.kinds
        for kind in sorted(set(STORED) if kinds is None else kinds):
            items, rv = store.list(kind)
            self.feed(WatchEvent(ADDED, o, rv) for o in items)
        for c, q in zip(self.controllers, self.queues, strict=True):
            q.update(dict.fromkeys(c.start_keys()))

    @property
    def pending(self) -> int:
        # A controller with timed work (a Job's back-off or deadline) may offer the keys now due.
        for c, q in zip(self.controllers, self.queues, strict=True):
            due = getattr(c, "due", None)
            if due is not None:
                q.update(dict.fromkeys(due()))
        return sum(len(q) for q in self.queues)

    def run_round(self, drain: Callable[[], list[WatchEvent]], store: Store | None = None) -> bool:
        """Each controller works the keys queued for it; events are fed between controllers so
        that later ones in the same round see what earlier ones wrote. With ``store``, each
        controller's batch is one transaction (one commit and one watch publication instead of
        one per write). True if anything ran."""
        ran = False
        for i, c in enumerate(self.controllers):
            q = self.queues[i]
            if not q:
                continue
            keys = list(q)
            q.clear()
            ran = True
            with store.transaction() if store is not None else nullcontext():
                for k in keys:
                    c.reconcile(k)
            self.feed(drain())
        return ran


class WakeUps:
    """When to look at each key again, for controllers that wait on the clock (their ``due``)."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}

    def at(self, key: str, t: float) -> None:
        self._at[key] = t

    def at_latest(self, key: str, t: float) -> None:
        """At ``t``, or sooner if the key is already due sooner."""
        self._at[key] = min(t, self._at.get(key, t))

    def cancel(self, key: str) -> None:
        self._at.pop(key, None)

    def due(self, now: float) -> list[str]:
        """The keys due by ``now``; they leave the list."""
        keys = [k for k, t in self._at.items() if t <= now]
        for k in keys:
            del self._at[k]
        return keys


def run_until_stable(store: Store, controllers: Sequence[Controller], max_rounds: int = 100) -> int:
    """Reconcile until every queue is empty; the number of rounds it took.

    Raises KinsError when the controllers keep writing after ``max_rounds`` rounds.
    """
    cs = ControllerSet(controllers)
    with store.watch(cs.kinds, store.resource_version) as w:
        cs.start(store)
        rounds = 0
        while cs.pending:
            if rounds >= max_rounds:
                busy = [c.name for c, q in zip(cs.controllers, cs.queues, strict=True) if q]
                raise KinsError(f"controllers did not settle after {max_rounds} rounds (still busy: {', '.join(busy)})")
            cs.run_round(w.drain, store)
            rounds += 1
    return rounds


# --- helpers shared by controllers -------------------------------------------------------------


def owner_ref(owner: Object) -> OwnerReference:
    return OwnerReference(
        apiVersion=owner.apiVersion,
        kind=owner.KIND,
        name=owner.name,
        uid=owner.metadata.uid or "",
        controller=True,
        blockOwnerDeletion=True,
    )


def controller_of(obj: Object) -> OwnerReference | None:
    for r in obj.metadata.ownerReferences or []:
        if r.controller:
            return r
    return None


def merge_conditions(old: list[Condition] | None, new: list[Condition], now: str) -> list[Condition]:
    """``new`` with transition times kept from ``old`` for conditions whose status did not change."""
    prev = {c.type: c for c in old or []}
    out = []
    for c in new:
        p = prev.get(c.type)
        if p is not None and p.status == c.status and p.reason == c.reason:
            out.append(
                replace(c, lastTransitionTime=p.lastTransitionTime, lastUpdateTime=p.lastUpdateTime)
                if c.lastUpdateTime is not None or p.lastUpdateTime is not None
                else replace(c, lastTransitionTime=p.lastTransitionTime)
            )
        else:
            out.append(
                replace(c, lastTransitionTime=now, lastUpdateTime=now)
                if c.lastUpdateTime is not None
                else replace(c, lastTransitionTime=now)
            )
    return out


def split_key(key: str) -> tuple[str, str]:
    ns, _, name = key.partition("/")
    return ns, name
