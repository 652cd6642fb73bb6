"""Which pods each workload object owns, kept up to date from the Pod watch.

A workload controller (ReplicaSet, StatefulSet, DaemonSet, Job) reads the pods it controls by
its object's uid instead of listing every pod of the namespace each round, as the real
controllers read theirs from an informer's index.
"""

from __future__ import annotations

from .._errors import NotFound
from ..api.core import Pod
from ..api.meta import Object
from ..store.base import DELETED, Store, WatchEvent
from .base import controller_of, split_key


class OwnedPods:
    """Pod keys by the uid of their controller of kind ``owner_kind``."""

    def __init__(self, store: Store, owner_kind: str) -> None:
        self.store = store
        self.owner_kind = owner_kind
        self._pods: dict[str, dict[str, None]] = {}  # owner uid -> pod keys, in creation order
        self._owner_of: dict[str, str] = {}  # pod key -> owner uid

    def observe(self, ev: WatchEvent) -> str | None:
        """Index a watched object; the ``ns/name`` key of its owner when it is one of our pods."""
        o: Object = ev.object
        key = o.key
        old = self._owner_of.pop(key, None)
        if old is not None:
            self._pods.get(old, {}).pop(key, None)
        ref = controller_of(o)
        if ref is None or ref.kind != self.owner_kind:
            return None
        if ev.type != DELETED:
            self.add(key, ref.uid)
        return f"{o.namespace}/{ref.name}"

    def add(self, pod_key: str, uid: str) -> None:
        """Count a pod just created, before its watch event arrives."""
        self._owner_of[pod_key] = uid
        self._pods.setdefault(uid, {})[pod_key] = None

    def forget(self, uid: str) -> None:
        """Drop an owner that is gone (its pods' own events clear the rest)."""
        self._pods.pop(uid, None)

    def pods(self, uid: str | None) -> list[Pod]:
        """The pods still in the store whose controller is the owner ``uid``."""
        out = []
        for key in list(self._pods.get(uid or "", {})):
            ns, name = split_key(key)
            try:
                p = self.store.get("Pod", ns, name)
            except NotFound:
                continue
            ref = controller_of(p)
            if isinstance(p, Pod) and ref is not None and ref.uid == uid:
                out.append(p)
        return out
