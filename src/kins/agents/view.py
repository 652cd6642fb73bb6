"""The cluster as an agent sees it: reads from the informer's copy, writes through the API.

It has the store's shape (``get``/``list``/``create``/``update``/``delete``/``watch``), so code
written against a store (the event recorder, the kubelet's volume sources) runs unchanged on an
agent, but every byte it reads came from a watch and every write is an API request.
"""

from __future__ import annotations

import builtins
from contextlib import AbstractContextManager, nullcontext

from msgspec.structs import replace

from .._errors import NotFound
from ..api.meta import LabelSelector, Object
from ..client import Client
from ..store.watch import Watch
from .informer import Informer


class ClusterView:
    """The Store protocol over an ``Informer`` (reads) and a ``Client`` (writes)."""

    def __init__(self, informer: Informer, client: Client) -> None:
        self.informer = informer
        self.client = client

    def get(self, kind: str, namespace: str | None, name: str) -> Object:
        if kind in self.informer.kinds:
            return self.informer.get(kind, namespace, name)
        return self.client.get(kind, namespace, name)

    def list(
        self, kind: str, namespace: str | None = None, selector: LabelSelector | None = None
    ) -> tuple[builtins.list[Object], int]:
        if kind in self.informer.kinds:
            return self.informer.list(kind, namespace, selector)
        return self.client.list_with_rv(kind, namespace, selector, all_namespaces=namespace is None)

    def create(self, obj: Object) -> Object:
        return self.client.create(obj)

    def bulk_create(self, objs: builtins.list[Object]) -> builtins.list[Object]:
        return [self.client.create(o) for o in objs]

    def update(self, obj: Object, *, check_rv: bool = True) -> Object:
        """PUT; ``check_rv=False`` drops the version, so the write is unconditional."""
        if not check_rv:
            obj = replace(obj, metadata=replace(obj.metadata, resourceVersion=None))
        return self.client.update(obj)

    def update_status(self, obj: Object, *, check_rv: bool = True) -> Object:
        if not check_rv:
            obj = replace(obj, metadata=replace(obj.metadata, resourceVersion=None))
        return self.client.update_status(obj)

    def delete(self, kind: str, namespace: str | None, name: str) -> Object:
        """Remove for good: agents delete what they have finished with (a stopped pod, an
        expired Event), as the kubelet's ``gracePeriodSeconds=0`` delete does."""
        return self.client.delete(kind, namespace, name, grace_period=0)

    def watch(self, kinds: set[str] | None, since: int = 0) -> Watch:
        """Changes from now on (the informer's copy is current, so nothing before matters)."""
        return self.informer.subscribe(kinds)

    def transaction(self) -> AbstractContextManager[None]:
        return nullcontext()

    @property
    def resource_version(self) -> int:
        return self.informer.resource_version


__all__ = ["ClusterView", "NotFound"]
