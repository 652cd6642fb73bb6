"""The Store contract, run against both implementations."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from kins._errors import Conflict, Gone, NotFound
from kins.api.core import Namespace, Node, Pod, Service, ServicePort, ServiceSpec
from kins.api.meta import ObjectMeta, parse_label_selector
from kins.store.base import NAME_ALPHABET, Store
from kins.store.memory import MemoryStore
from kins.store.sqlite import SqliteStore
from kins.store.watch import relist_events


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore(history=50)
    else:
        s = SqliteStore(tmp_path / "state.db", history=50)
        yield s
        s.close()


def svc(name: str, ns: str | None = "default", **labels: str) -> Service:
    return Service(
        metadata=ObjectMeta(name=name, namespace=ns, labels=labels or None),
        spec=ServiceSpec(selector={"app": name}, ports=[ServicePort(port=80)]),
    )


def test_create_sets_metadata_and_rv(store: Store) -> None:
    a = store.create(svc("a"))
    b = store.create(svc("b"))
    assert a.metadata.uid and b.metadata.uid and a.metadata.uid != b.metadata.uid
    assert int(b.metadata.resourceVersion or 0) == int(a.metadata.resourceVersion or 0) + 1
    assert store.resource_version == int(b.metadata.resourceVersion or 0)
    assert a.metadata.generation == 1
    assert a.metadata.creationTimestamp and a.metadata.creationTimestamp.endswith("Z")
    got = store.get("Service", "default", "a")
    assert isinstance(got, Service)
    assert got == a


def test_default_namespace_and_cluster_scope(store: Store) -> None:
    store.create(svc("x", ns=None))
    assert store.get("Service", "default", "x").metadata.namespace == "default"
    n = store.create(Node(metadata=ObjectMeta(name="node1")))
    assert n.metadata.namespace is None
    assert store.get("Node", None, "node1").name == "node1"
    store.create(Namespace(metadata=ObjectMeta(name="kube-system")))
    assert [o.name for o in store.list("Namespace")[0]] == ["kube-system"]


def test_create_conflict_and_generate_name(store: Store) -> None:
    store.create(svc("a"))
    with pytest.raises(Conflict, match='services "a" already exists'):
        store.create(svc("a"))
    p = store.create(Pod(metadata=ObjectMeta(generateName="web-", namespace="default")))
    assert p.name.startswith("web-") and len(p.name) == 9
    assert all(c in NAME_ALPHABET for c in p.name[4:])


def test_get_missing(store: Store) -> None:
    with pytest.raises(NotFound, match='pods "nope" not found'):
        store.get("Pod", "default", "nope")
    with pytest.raises(NotFound):
        store.delete("Pod", "default", "nope")


def test_update_checks_rv_and_bumps_generation(store: Store) -> None:
    a = store.create(svc("a"))
    changed = msgspec.structs.replace(a, spec=msgspec.structs.replace(a.spec, clusterIP="10.254.0.9"))
    b = store.update(changed)
    assert b.metadata.generation == 2 and b.metadata.uid == a.metadata.uid
    assert b.metadata.creationTimestamp == a.metadata.creationTimestamp
    with pytest.raises(Conflict, match="the object has been modified"):
        store.update(changed)  # carries a's resourceVersion
    c = store.update(msgspec.structs.replace(changed, metadata=a.metadata), check_rv=False)
    assert c.metadata.generation == 2  # same spec as b
    labelled = msgspec.structs.replace(c, metadata=msgspec.structs.replace(c.metadata, labels={"x": "y"}))
    assert store.update(labelled).metadata.generation == 2  # metadata changes keep the generation
    with pytest.raises(NotFound):
        store.update(svc("missing"))


def test_list_namespace_selector_and_order(store: Store) -> None:
    store.create(svc("b", tier="web"))
    store.create(svc("a", tier="db"))
    store.create(svc("c", ns="other", tier="web"))
    items, rv = store.list("Service")
    assert [o.key for o in items] == ["default/a", "default/b", "other/c"]
    assert rv == store.resource_version
    assert [o.key for o in store.list("Service", "default")[0]] == ["default/a", "default/b"]
    web = store.list("Service", None, parse_label_selector("tier=web"))[0]
    assert [o.key for o in web] == ["default/b", "other/c"]
    assert store.list("Pod")[0] == []


def test_delete_returns_object_and_emits_event(store: Store) -> None:
    a = store.create(svc("a"))
    w = store.watch({"Service"}, store.resource_version)
    gone = store.delete("Service", "default", "a")
    assert gone.metadata.uid == a.metadata.uid
    ev = w.next(1)
    assert ev is not None and ev.type == "DELETED" and ev.object.name == "a"
    assert ev.rv == store.resource_version == int(gone.metadata.resourceVersion or 0)
    with pytest.raises(NotFound):
        store.get("Service", "default", "a")
    w.close()


def test_watch_replays_history_and_filters_kinds(store: Store) -> None:
    store.create(svc("a"))
    start = store.resource_version
    store.create(Pod(metadata=ObjectMeta(name="p")))
    store.create(svc("b"))
    w = store.watch({"Service"}, start)
    ev = w.next(1)
    assert ev is not None and (ev.type, ev.object.name) == ("ADDED", "b")
    assert w.next(0.01) is None
    store.create(svc("c"))
    store.create(Pod(metadata=ObjectMeta(name="q")))
    ev = w.next(1)
    assert ev is not None and ev.object.name == "c"
    assert w.drain() == []
    w.close()
    assert w.next(0) is None


def test_watch_gone_when_history_pruned(store: Store) -> None:
    for i in range(60):
        store.create(svc(f"s{i}"))
    with pytest.raises(Gone):
        store.watch(None, 1)
    w = store.watch(None, store.resource_version - 10)
    assert len(w.drain()) == 10
    w.close()


def test_transaction_commits_together(store: Store) -> None:
    w = store.watch(None, store.resource_version)
    with store.transaction():
        store.create(svc("a"))
        store.create(svc("b"))
        assert w.drain() == []  # not visible to watchers before the commit
    assert [e.object.name for e in w.drain()] == ["a", "b"]
    w.close()


def test_transaction_rolls_back(store: Store) -> None:
    store.create(svc("keep"))
    rv = store.resource_version
    w = store.watch(None, rv)
    with pytest.raises(Conflict), store.transaction():
        store.create(svc("new"))
        store.delete("Service", "default", "keep")
        store.create(svc("new"))  # fails: everything above is undone
    assert [o.name for o in store.list("Service")[0]] == ["keep"]
    assert store.resource_version == rv
    assert w.drain() == []
    assert store.create(svc("after")).metadata.resourceVersion == str(rv + 1)
    w.close()


def test_bulk_create(store: Store) -> None:
    out = store.bulk_create([svc(f"s{i}") for i in range(20)])
    assert len(out) == 20 and len(store.list("Service")[0]) == 20
    with pytest.raises(Conflict):
        store.bulk_create([svc("t1"), svc("s3")])
    assert len(store.list("Service")[0]) == 20


def test_watch_blocking_next_across_threads(store: Store) -> None:
    w = store.watch({"Service"}, store.resource_version)
    threading.Timer(0.05, lambda: store.create(svc("late"))).start()
    ev = w.next(5)
    assert ev is not None and ev.object.name == "late"
    w.close()


def test_watch_async_iteration(store: Store) -> None:
    async def main() -> list[str]:
        w = store.watch({"Service"}, store.resource_version)
        loop = asyncio.get_running_loop()
        names: list[str] = []

        def writer() -> None:
            for n in ("x", "y"):
                time.sleep(0.02)
                store.create(svc(n))
            time.sleep(0.02)
            w.close()

        fut = loop.run_in_executor(None, writer)
        async for ev in w:
            names.append(ev.object.name)
        await fut
        return names

    assert asyncio.run(main()) == ["x", "y"]


def test_relist_events() -> None:
    s = MemoryStore()
    a, b = s.create(svc("a")), s.create(svc("b"))
    known = {f"Service/{a.key}": a, f"Service/{b.key}": b}
    b2 = s.update(msgspec.structs.replace(b, spec=msgspec.structs.replace(b.spec, clusterIP="None")))
    c = s.create(svc("c"))
    s.delete("Service", "default", "a")
    evs = relist_events(known, s.list("Service")[0], s.resource_version)
    assert [(e.type, e.object.name) for e in evs] == [("MODIFIED", "b"), ("ADDED", "c"), ("DELETED", "a")]
    assert evs[0].object == b2 and evs[1].object == c


def test_memory_bulk_create_20k() -> None:
    objs = [svc(f"s{i}") for i in range(20_000)]
    s = MemoryStore()
    s.bulk_create(objs)
    assert s.resource_version == 20_000
    assert len(s.list("Service")[0]) == 20_000


def test_sqlite_reopen_and_second_connection(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s1 = SqliteStore(path)
    s1.create(svc("a"))
    s2 = SqliteStore(path)  # a reader on its own connection sees committed objects
    assert s2.get("Service", "default", "a").name == "a"
    with s1.transaction():
        s1.create(svc("b"))
        with pytest.raises(NotFound):
            s2.get("Service", "default", "b")  # not committed yet
    assert s2.get("Service", "default", "b").name == "b"
    s2.create(svc("c"))  # the counter lives in the file, so writers agree on it
    assert s1.resource_version == 3
    s1.close()
    s2.close()
    s3 = SqliteStore(path)
    assert [o.name for o in s3.list("Service")[0]] == ["a", "b", "c"]
    w = s3.watch(None, 0)
    assert [e.object.name for e in w.drain()] == ["a", "b", "c"]
    w.close()
    s3.close()


_CRASH_WRITER = textwrap.dedent(
    """
    import sys
    from kins.api.core import Service, ServiceSpec, ServicePort
    from kins.api.meta import ObjectMeta
    from kins.store.sqlite import SqliteStore

    s = SqliteStore(sys.argv[1], history=200)
    i = 0
    while True:
        with s.transaction():
            for j in range(5):
                s.create(Service(metadata=ObjectMeta(name=f"s{i}-{j}"), spec=ServiceSpec(ports=[ServicePort(port=80)])))
        print(i, flush=True)
        i += 1
    """
)


def test_sqlite_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASH_WRITER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert child.stdout is not None and child.stderr is not None
    committed = -1
    for line in child.stdout:
        committed = int(line)
        if committed >= 40:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    # A writer that died on its own leaves nothing to check: say why it ended.
    assert committed >= 40, f"the writer exited {child.returncode} after batch {committed}:\n{child.stderr.read()}"
    s = SqliteStore(path)
    assert s._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    names = {o.name for o in s.list("Service")[0]}
    for i in range(committed + 1):
        assert {f"s{i}-{j}" for j in range(5)} <= names
    # transactions are whole: every batch present has all five objects
    batches = {n.split("-")[0] for n in names}
    assert all({f"{b}-{j}" for j in range(5)} <= names for b in batches)
    assert s.resource_version == len(names)
    s.create(svc("after"))
    s.close()
