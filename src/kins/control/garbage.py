"""The garbage collector: dependents go with their owners, as Kubernetes' does it.

It indexes ``metadata.ownerReferences`` of every kind and, for each object it is woken for:

- an object whose owners are all gone (absent, or another object under the name now) is
  deleted, with the policy its own finalizers ask for (Background otherwise);
- an object with a live owner drops only its references to owners that are gone (or that are
  deleting their dependents in the foreground);
- an owner being deleted with ``foregroundDeletion`` has its dependents that block it
  (``blockOwnerDeletion``) deleted in the foreground first; once none is left the finalizer
  comes off and the owner goes (``kins.store.deletion.finish``);
- an owner being deleted with ``orphan`` has its dependents' references to it removed, then the
  finalizer comes off.

Every write goes through ``kins.store.deletion``, so a pod it deletes on the daemon's store is
stopped by its kubelet before it disappears.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.meta import Object, OwnerReference
from ..api.registry import STORED
from ..store import deletion
from ..store.base import DELETED, Store, WatchEvent
from ..store.deletion import FOREGROUND, ORPHAN, DeleteRequest

RETRIES = 5


def _key(kind: str, ns: str, name: str) -> str:
    return f"{kind}/{ns}/{name}"


def _split(key: str) -> tuple[str, str, str]:
    kind, ns, name = key.split("/", 2)
    return kind, ns, name


class GarbageCollector:
    name = "garbage-collector"
    # ownerReferences may sit on any kind, those the registry gains at runtime included.
    every_kind = True

    def __init__(self, store: Store) -> None:
        self.store = store
        self.kinds: frozenset[str] = frozenset()
        self._keys: dict[str, str] = {}  # uid -> key, for every object seen alive
        self._owners: dict[str, tuple[str, ...]] = {}  # dependent uid -> owner uids
        self._dependents: dict[str, set[str]] = {}  # owner uid -> dependent uids
        self._foreground: set[str] = set()  # uids deleting their dependents first

    # --- index --------------------------------------------------------------------------------

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        m = o.metadata
        uid = m.uid or ""
        refs = m.ownerReferences
        deleting = bool(m.deletionTimestamp)
        if ev.type != DELETED and not refs and not deleting and uid not in self._owners:
            # The common case (offline convergence sees tens of thousands): nothing to track
            # but that it lives. A uid's key never changes.
            if uid not in self._keys:
                self._keys[uid] = _key(o.KIND, o.namespace if o.NAMESPACED else "", o.name)
            return ()
        key = self._keys.get(uid) or _key(o.KIND, o.namespace if o.NAMESPACED else "", o.name)
        owners = tuple(r.uid for r in refs or ()) if ev.type != DELETED else ()
        old_owners = self._owners.get(uid, ())
        if owners != old_owners:
            self._index(uid, old_owners, owners)
        if ev.type == DELETED:
            self._keys.pop(uid, None)
            self._foreground.discard(uid)
            # Its dependents may have lost their last owner; owners waiting on it may be done.
            woken = [self._keys[d] for d in self._dependents.get(uid, ()) if d in self._keys]
            woken += [self._keys[o] for o in old_owners if o in self._foreground and o in self._keys]
            return woken
        self._keys[uid] = key
        finalizers = m.finalizers or ()
        if deleting and FOREGROUND in finalizers:
            self._foreground.add(uid)
        else:
            self._foreground.discard(uid)
        out: list[str] = []
        if deleting and (FOREGROUND in finalizers or ORPHAN in finalizers):
            out.append(key)
        if any(o not in self._keys or o in self._foreground for o in owners):
            out.append(key)
        # An owner that lost this dependent (its reference removed) may be free to go.
        out += [self._keys[o] for o in old_owners if o not in owners and o in self._foreground and o in self._keys]
        return out

    def _index(self, uid: str, old: tuple[str, ...], new: tuple[str, ...]) -> None:
        for owner in old:
            deps = self._dependents.get(owner)
            if deps is not None:
                deps.discard(uid)
                if not deps:
                    del self._dependents[owner]
        if new:
            self._owners[uid] = new
            for owner in new:
                self._dependents.setdefault(owner, set()).add(uid)
        else:
            self._owners.pop(uid, None)

    def start_keys(self) -> Iterable[str]:
        return ()

    # --- reconciling --------------------------------------------------------------------------

    def reconcile(self, key: str) -> bool:
        kind, ns, name = _split(key)
        try:
            obj = self.store.get(kind, ns or None, name)
        except (NotFound, KeyError):
            return False
        m = obj.metadata
        if m.deletionTimestamp and ORPHAN in (m.finalizers or ()):
            return self._orphan(obj)
        if m.deletionTimestamp and FOREGROUND in (m.finalizers or ()):
            return self._delete_dependents(obj)
        if m.ownerReferences and not m.deletionTimestamp:
            owners = [r.uid for r in m.ownerReferences]
            if all(o in self._keys and o not in self._foreground for o in owners):
                return False  # every owner seen alive, none deleting its dependents
            return self._collect(obj)
        return False

    def _owner_state(self, obj: Object, ref: OwnerReference) -> str:
        """``dangling`` (the owner is gone, or another object holds its name), ``waiting`` (it
        deletes its dependents in the foreground) or ``solid``; a kind the registry does not
        know tells nothing, so its reference holds."""
        cls = STORED.get(ref.kind)
        if cls is None:
            return "solid"
        try:
            owner = self.store.get(ref.kind, obj.namespace if cls.NAMESPACED else None, ref.name)
        except NotFound:
            return "dangling"
        if owner.metadata.uid != ref.uid:
            return "dangling"
        return "waiting" if _foreground(owner) else "solid"

    def _collect(self, obj: Object) -> bool:
        states: dict[str, set[str]] = {"solid": set(), "dangling": set(), "waiting": set()}
        for ref in obj.metadata.ownerReferences or []:
            states[self._owner_state(obj, ref)].add(ref.uid)
        dangling, waiting = states["dangling"], states["waiting"]
        if states["solid"]:
            if not dangling and not waiting:
                return False
            return self._drop_refs(obj, dangling | waiting)
        uid = obj.metadata.uid or ""
        finalizers = obj.metadata.finalizers or ()
        if waiting and self._dependents.get(uid):
            policy = "Foreground"
        elif ORPHAN in finalizers:
            policy = "Orphan"
        elif FOREGROUND in finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        return self._delete(obj, policy)

    def _delete(self, obj: Object, policy: str) -> bool:
        with contextlib.suppress(NotFound):
            deletion.delete(
                self.store,
                obj.KIND,
                obj.metadata.namespace,
                obj.name,
                DeleteRequest(propagation=policy, uid=obj.metadata.uid),
            )
            return True
        return False

    def _live_dependents(self, owner: Object) -> list[tuple[Object, OwnerReference]]:
        uid = owner.metadata.uid or ""
        out = []
        for dep_uid in sorted(self._dependents.get(uid, ())):
            key = self._keys.get(dep_uid)
            if key is None:
                continue
            kind, ns, name = _split(key)
            try:
                dep = self.store.get(kind, ns or None, name)
            except NotFound:
                continue
            ref = next((r for r in dep.metadata.ownerReferences or [] if r.uid == uid), None)
            if ref is not None:
                out.append((dep, ref))
        return out

    def _delete_dependents(self, owner: Object) -> bool:
        """Foreground: the dependents that block the owner go first (in the foreground too);
        then the owner's finalizer comes off and it goes."""
        blocking = [d for d, ref in self._live_dependents(owner) if ref.blockOwnerDeletion]
        if blocking:
            changed = False
            for dep in blocking:
                if not dep.metadata.deletionTimestamp:
                    changed = self._delete(dep, "Foreground") or changed
            return changed
        return self._remove_finalizer(owner, FOREGROUND)

    def _orphan(self, owner: Object) -> bool:
        """Orphan: every dependent loses its reference to the owner; then the finalizer goes."""
        uid = owner.metadata.uid or ""
        for dep, _ in self._live_dependents(owner):
            self._drop_refs(dep, {uid})
        return self._remove_finalizer(owner, ORPHAN)

    def _drop_refs(self, obj: Object, uids: set[str]) -> bool:
        def write(o: Object) -> bool:
            refs = [r for r in o.metadata.ownerReferences or [] if r.uid not in uids]
            if len(refs) == len(o.metadata.ownerReferences or []):
                return False
            self.store.update(replace(o, metadata=replace(o.metadata, ownerReferences=refs or None)))
            return True

        return self._retried(obj, write)

    def _remove_finalizer(self, obj: Object, finalizer: str) -> bool:
        def write(o: Object) -> bool:
            finalizers = [f for f in o.metadata.finalizers or [] if f != finalizer]
            if len(finalizers) == len(o.metadata.finalizers or []):
                return False
            deletion.set_finalizers(self.store, o, finalizers)
            return True

        return self._retried(obj, write)

    def _retried(self, obj: Object, write: Callable[[Object], bool]) -> bool:
        """``write(obj)`` (False: nothing to change), on the object read again after a conflict;
        False once it is gone."""
        for _ in range(RETRIES):
            try:
                return write(obj)
            except Conflict:
                try:
                    obj = self.store.get(obj.KIND, obj.metadata.namespace, obj.name)
                except NotFound:
                    return False
            except NotFound:
                return False
        return False


def _foreground(obj: Object) -> bool:
    return bool(obj.metadata.deletionTimestamp) and FOREGROUND in (obj.metadata.finalizers or ())
