"""The namespace controller: a Terminating namespace is emptied, then it goes.

Deleting a Namespace only marks it (``kins.store.deletion``). This controller then deletes
everything in it — every namespaced kind the registry holds at that moment, each object with
Background propagation, pods through the store's graceful path so their kubelets stop them —
and reports progress in the namespace's conditions, worded as Kubernetes' namespace controller
words them. Once nothing is left it removes its ``kubernetes`` token from ``spec.finalizers``
(what ``PUT .../finalize`` does) and the namespace goes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable

from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.core import Namespace, NamespaceSpec, NamespaceStatus
from ..api.meta import Condition
from ..api.registry import STORED
from ..store import deletion
from ..store.base import DELETED, Clock, Store, WatchEvent
from ..store.deletion import KUBERNETES, DeleteRequest
from .base import WakeUps

# The conditions the namespace controller keeps, with what each says when all is well.
CONDITIONS: dict[str, tuple[str, str]] = {
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
    "NamespaceDeletionContentFailure": (
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("ContentRemoved", "All content successfully removed"),
}
# How often a namespace still waiting on content is looked at again when no event wakes it.
RECHECK_SECONDS = 5.0


class NamespaceController:
    name = "namespace-controller"
    # Every kind, those the registry gains at runtime included: content leaving a Terminating
    # namespace wakes it.
    every_kind = True

    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self._stamp = Clock()
        self.kinds: frozenset[str] = frozenset()
        self._terminating: set[str] = set()
        self._wake = WakeUps()

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        if isinstance(o, Namespace):
            if ev.type == DELETED or not o.metadata.deletionTimestamp:
                self._terminating.discard(o.name)
                self._wake.cancel(o.name)
                return ()
            self._terminating.add(o.name)
            return (o.name,)
        if o.NAMESPACED and ev.type == DELETED and o.namespace in self._terminating:
            return (o.namespace,)
        return ()

    def start_keys(self) -> Iterable[str]:
        return ()

    def due(self) -> list[str]:
        return self._wake.due(self.clock())

    def reconcile(self, key: str) -> bool:
        try:
            ns = self.store.get("Namespace", None, key)
        except NotFound:
            return False
        if not isinstance(ns, Namespace) or not ns.metadata.deletionTimestamp:
            return False
        if KUBERNETES not in ((ns.spec.finalizers if ns.spec else None) or []):
            # Finalized already (by us, or by hand through /finalize): it goes once nothing holds it.
            return deletion.finish(self.store, ns) is not ns
        remaining, by_finalizer = self._delete_content(key)
        changed = self._report(ns, remaining, by_finalizer)
        if remaining:
            self._wake.at(key, self.clock() + RECHECK_SECONDS)
            return changed
        self._finalize(key)
        return True

    # --- content -------------------------------------------------------------------------------

    def _delete_content(self, namespace: str) -> tuple[dict[str, int], dict[str, int]]:
        """Delete what is in the namespace (every namespaced kind of the registry now); what
        is left afterwards, by ``resource.group`` and by finalizer."""
        remaining: dict[str, int] = {}
        by_finalizer: dict[str, int] = {}
        for kind, cls in list(STORED.items()):
            if not cls.NAMESPACED:
                continue
            for o in self.store.list(kind, namespace)[0]:
                if not o.metadata.deletionTimestamp:
                    with contextlib.suppress(NotFound):
                        deletion.delete(
                            self.store,
                            kind,
                            namespace,
                            o.name,
                            DeleteRequest(propagation="Background", uid=o.metadata.uid),
                        )
            left = self.store.list(kind, namespace)[0]
            if left:
                group = cls.API_VERSION.rpartition("/")[0]
                remaining[f"{cls.PLURAL or kind.lower() + 's'}.{group}"] = len(left)
                for o in left:
                    for f in o.metadata.finalizers or []:
                        by_finalizer[f] = by_finalizer.get(f, 0) + 1
        return remaining, by_finalizer

    def _report(self, ns: Namespace, remaining: dict[str, int], by_finalizer: dict[str, int]) -> bool:
        """The namespace's deletion conditions as they stand; True if they changed."""
        failing: dict[str, tuple[str, str]] = {}
        if remaining:
            counts = ", ".join(sorted(f"{r} has {n} resource instances" for r, n in remaining.items()))
            failing["NamespaceContentRemaining"] = ("SomeResourcesRemain", f"Some resources are remaining: {counts}")
        if by_finalizer:
            counts = ", ".join(sorted(f"{f} in {n} resource instances" for f, n in by_finalizer.items()))
            failing["NamespaceFinalizersRemaining"] = (
                "SomeFinalizerRemain",
                f"Some finalizers are remaining: {counts}",
            )
        status = ns.status or NamespaceStatus()
        old = {c.type: c for c in status.conditions or []}
        now = self._stamp.now()
        conditions = [c for c in status.conditions or [] if c.type not in CONDITIONS]
        for ctype, ok in CONDITIONS.items():
            state, (reason, message) = ("True", failing[ctype]) if ctype in failing else ("False", ok)
            prev = old.get(ctype)
            since = prev.lastTransitionTime if prev is not None and prev.status == state else now
            conditions.append(
                Condition(type=ctype, status=state, reason=reason, message=message, lastTransitionTime=since)
            )
        if conditions == status.conditions and status.phase == "Terminating":
            return False
        new = replace(ns, status=replace(status, phase="Terminating", conditions=conditions))
        with contextlib.suppress(Conflict, NotFound):
            self.store.update(new)
            return True
        return False

    def _finalize(self, name: str) -> None:
        """Take ``kubernetes`` out of ``spec.finalizers`` (retrying on conflicts), and let the
        namespace go if nothing else holds it."""
        for _ in range(5):
            try:
                ns = self.store.get("Namespace", None, name)
            except NotFound:
                return
            assert isinstance(ns, Namespace)
            spec = ns.spec or NamespaceSpec()
            left = [f for f in spec.finalizers or [] if f != KUBERNETES]
            try:
                updated = self.store.update(replace(ns, spec=replace(spec, finalizers=left or None)))
            except Conflict:
                continue
            except NotFound:
                return
            deletion.finish(self.store, updated)
            return
