"""The agents' informer and shared loop, against a real API server (list + watch over HTTP)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pytest
from api_helpers import api_server

from kins._errors import NotFound
from kins.agents.informer import Informer
from kins.agents.loop import AgentLoop, Reconciler
from kins.agents.view import ClusterView
from kins.api.core import ConfigMap, Service, ServicePort, ServiceSpec
from kins.api.meta import ObjectMeta
from kins.client import Client
from kins.store.base import WatchEvent
from kins.store.memory import MemoryStore


def svc(name: str, port: int = 80) -> Service:
    return Service(
        metadata=ObjectMeta(name=name, namespace="default"), spec=ServiceSpec(ports=[ServicePort(port=port)])
    )


def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


class Recorder(Reconciler):
    """Records its syncs; fails the first ``fail`` of them."""

    name = "recorder"
    kinds = frozenset({"Service"})
    resync = 0.0

    def __init__(self, view: ClusterView, fail: int = 0) -> None:
        self.view = view
        self.fail = fail
        self.calls: list[list[str]] = []
        self.seen: list[list[str]] = []
        self.lock = threading.Lock()

    def sync(self, changes: Sequence[WatchEvent]) -> None:
        with self.lock:
            self.calls.append([f"{e.type} {e.object.name}" for e in changes])
            if self.fail > 0:
                self.fail -= 1
                raise RuntimeError("not yet")
            self.seen.append(sorted(o.name for o in self.view.list("Service")[0]))


@dataclass
class Running:
    store: MemoryStore
    informer: Informer
    view: ClusterView
    loop: AgentLoop
    rec: Recorder


@pytest.fixture
def running(request: pytest.FixtureRequest) -> Iterator[Running]:
    fail = getattr(request, "param", 0)
    store = MemoryStore()
    store.create(svc("first"))
    with api_server(store) as (url, token):
        informer = Informer(lambda: Client(url, token, timeout=10), {"Service", "Node"})
        client = Client(url, token, timeout=10)
        view = ClusterView(informer, client)
        rec = Recorder(view, fail)
        loop = AgentLoop(informer, [rec])
        informer.start()
        loop.start()
        try:
            yield Running(store, informer, view, loop, rec)
        finally:
            loop.stop()
            informer.stop()
            client.close()


def test_the_copy_is_listed_then_follows_the_watch(running: Running) -> None:
    assert running.informer.wait_synced(5)
    assert running.view.get("Service", "default", "first").name == "first"
    running.store.create(svc("second"))
    eventually(lambda: [o.name for o in running.view.list("Service")[0]] == ["first", "second"])
    running.store.delete("Service", "default", "first")
    eventually(lambda: [o.name for o in running.view.list("Service")[0]] == ["second"])
    with pytest.raises(NotFound):
        running.view.get("Service", "default", "first")


def test_a_change_syncs_the_reconciler_with_that_change(running: Running) -> None:
    assert running.loop.wait_applied(running.store.resource_version, 5)
    running.store.create(svc("web"))
    rv = running.store.resource_version
    assert running.loop.wait_applied(rv, 5)
    with running.rec.lock:
        assert ["ADDED web"] in running.rec.calls
        assert running.rec.seen[-1] == ["first", "web"]


def test_writes_of_other_kinds_count_as_applied_through_bookmarks(running: Running) -> None:
    """The newest version is often a Pod status or an Event: waiting for it must not hang until
    some Service changes, and must not cost a sync."""
    assert running.loop.wait_applied(running.store.resource_version, 5)
    syncs = len(running.rec.calls)
    running.store.create(ConfigMap(metadata=ObjectMeta(name="cm", namespace="default"), data={"k": "v"}))
    rv = running.store.resource_version
    t0 = time.monotonic()
    assert running.loop.wait_applied(rv, 5)
    assert time.monotonic() - t0 < 1.0
    assert len(running.rec.calls) == syncs


@pytest.mark.parametrize("running", [2], indirect=True)
def test_a_failed_sync_is_retried_with_back_off_without_a_new_change(running: Running) -> None:
    eventually(lambda: running.loop.stats()["recorder"]["syncs"] == 1, within=5)
    stats = running.loop.stats()["recorder"]
    assert stats["failures"] == 2
    assert len(running.rec.calls) == 3  # two failures, then the retry that worked
    assert running.rec.seen == [["first"]]


def test_a_lost_api_is_listed_again_and_nothing_is_missed() -> None:
    store = MemoryStore()
    store.create(svc("a"))
    where: dict[str, str] = {}
    informer = Informer(lambda: Client(where["url"], where["token"], timeout=2), {"Service"})
    with api_server(store) as (url, token):
        where.update(url=url, token=token)
        informer.start()
        assert informer.wait_synced(5)
    try:
        # While no API answers, objects change: one is added, one deleted.
        store.create(svc("b"))
        store.delete("Service", "default", "a")
        with api_server(store, token) as (url, _):
            where["url"] = url
            eventually(lambda: [o.name for o in informer.list("Service")[0]] == ["b"], within=15)
            assert informer.relists >= 1
    finally:
        informer.stop()
