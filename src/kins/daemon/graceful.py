"""Graceful pod deletion, as the API server does it.

Deleting a running pod only marks it (``deletionTimestamp``, ``deletionGracePeriodSeconds``): the
pod turns Terminating, the endpoints controller flags it, and the kubelet stops its containers
and then removes the object for good. Everything else passes straight through to the store.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from ..api.core import Pod
from ..api.meta import LabelSelector, Object
from ..apiserver.saadmission import admit_pod
from ..store import deletion
from ..store.base import Store
from ..store.deletion import DeleteRequest
from ..store.watch import Watch


class GracefulStore:
    """A Store whose ``delete`` of a scheduled, unfinished pod only marks it Terminating (and
    which keeps objects with finalizers, as ``kins.store.deletion`` does for the API), and whose
    new pods pass the ServiceAccount admission."""

    # kins.store.deletion reads this: pods on this store stop gracefully.
    graceful = True

    def __init__(self, store: Store) -> None:
        self.raw = store

    def get(self, kind: str, namespace: str | None, name: str) -> Object:
        return self.raw.get(kind, namespace, name)

    def list(
        self, kind: str, namespace: str | None = None, selector: LabelSelector | None = None
    ) -> tuple[builtins.list[Object], int]:
        return self.raw.list(kind, namespace, selector)

    def create(self, obj: Object) -> Object:
        return self.raw.create(self._admit(obj))

    def bulk_create(self, objs: builtins.list[Object]) -> builtins.list[Object]:
        return self.raw.bulk_create([self._admit(o) for o in objs])

    def _admit(self, obj: Object) -> Object:
        # Pods the controllers make pass the ServiceAccount admission, as through the API.
        return admit_pod(self.raw, obj) if isinstance(obj, Pod) else obj

    def update(self, obj: Object, *, check_rv: bool = True) -> Object:
        return self.raw.update(obj, check_rv=check_rv)

    def delete(self, kind: str, namespace: str | None, name: str) -> Object:
        # As the API deletes: finalizers hold an object, a running pod is only marked.
        return deletion.delete(self, kind, namespace, name, DeleteRequest()).obj

    def watch(self, kinds: set[str] | None, since: int) -> Watch:
        return self.raw.watch(kinds, since)

    def transaction(self) -> AbstractContextManager[None]:
        return self.raw.transaction()

    @property
    def resource_version(self) -> int:
        return self.raw.resource_version

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def iter_pods(store: Store, node: str | None = None) -> Iterator[Pod]:
    for p in store.list("Pod")[0]:
        if isinstance(p, Pod) and (node is None or p.spec.nodeName == node):
            yield p
