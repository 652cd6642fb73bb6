"""Keeping a ``MemoryDnsIndex`` current: from a store in-process, or from the API over HTTP.

Both are informers: list, then watch from the list's resourceVersion, and list again when the
watch is lost or its version is too old (410 Gone). Changes arrive by watch, never by polling.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from .._errors import Gone
from ..client import Client
from ..store.base import Store
from .index import MemoryDnsIndex

log = logging.getLogger("kins.dns")

BASE_KINDS = ("Namespace", "Service", "EndpointSlice")


def kinds_for(pods: str) -> tuple[str, ...]:
    """Pods are only watched when ``pods verified`` needs them (as CoreDNS does)."""
    return (*BASE_KINDS, "Pod") if pods == "verified" else BASE_KINDS


class IndexSource(Protocol):
    index: MemoryDnsIndex

    async def run(self) -> None:
        """Keep ``index`` current until cancelled."""


class StaticSource:
    """A fixed index (tests, offline answers)."""

    def __init__(self, index: MemoryDnsIndex) -> None:
        self.index = index
        index.mark_synced()

    async def run(self) -> None:
        await asyncio.Event().wait()


class StoreSource:
    def __init__(self, store: Store, kinds: tuple[str, ...] = BASE_KINDS) -> None:
        self.store = store
        self.kinds = kinds
        self.index = MemoryDnsIndex()

    async def run(self) -> None:
        while True:
            since = self.store.resource_version
            for kind in self.kinds:
                objs, rv = self.store.list(kind)
                since = min(since, rv)
                self.index.replace_kind(kind, objs)
            self.index.mark_synced()
            try:
                watch = self.store.watch(set(self.kinds), since)
            except Gone:
                continue
            with watch:
                async for ev in watch:
                    self.index.apply_all([ev, *watch.drain()])
            await asyncio.sleep(0.1)  # the store closed the watch: list again


def watch_store(store: Store, *, pods: str = "disabled") -> StoreSource:
    return StoreSource(store, kinds_for(pods))


class ApiSource:
    """One informer thread per kind over the (synchronous) HTTP client."""

    def __init__(
        self, client_factory: Callable[[], Client], kinds: tuple[str, ...] = BASE_KINDS, watch_timeout: float = 300
    ) -> None:
        self.client_factory = client_factory
        self.kinds = kinds
        self.watch_timeout = watch_timeout
        self.index = MemoryDnsIndex()
        self._stop = threading.Event()
        self._synced: set[str] = set()
        self._lock = threading.Lock()

    async def run(self) -> None:
        threads = [
            threading.Thread(target=self._informer, args=(k,), name=f"dns-watch-{k}", daemon=True) for k in self.kinds
        ]
        for t in threads:
            t.start()
        try:
            await asyncio.Event().wait()
        finally:
            self._stop.set()

    def _informer(self, kind: str) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with self.client_factory() as client:
                    items, rv = client.list_with_rv(kind, all_namespaces=True)
                    self.index.replace_kind(kind, items)
                    self._mark(kind)
                    backoff = 0.2
                    while not self._stop.is_set():
                        for ev in client.watch(kind, rv=rv, all_namespaces=True, timeout=self.watch_timeout):
                            self.index.apply(ev)
                            rv = max(rv, ev.rv)
            except Gone:
                continue  # too old: list again at once
            except Exception as e:  # the API restarted or the connection broke: list again
                log.warning("watch of %s lost (%s); listing again", kind, e)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _mark(self, kind: str) -> None:
        with self._lock:
            self._synced.add(kind)
            if self._synced >= set(self.kinds):
                self.index.mark_synced()


def watch_api(client_factory: Callable[[], Client], *, pods: str = "disabled") -> ApiSource:
    return ApiSource(client_factory, kinds_for(pods))
