"""The event recorder (aggregation, batching, expiry, field shapes) and the controllers' events."""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import pytest

from kins.api.apps import Deployment
from kins.api.config import default_cluster
from kins.api.core import Event, Node, ObjectReference, Pod
from kins.api.load import load_text
from kins.control.base import run_until_stable
from kins.control.defaults import default_controllers
from kins.control.events import COMBINED_PREFIX, NO_EVENTS, NORMAL, SIMILAR_LIMIT, WARNING, EventRecorder
from kins.control.offline import node_object
from kins.store.base import Store
from kins.store.memory import MemoryStore
from kins.store.sqlite import SqliteStore

T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z


class FakeClock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    return SqliteStore(tmp_path / "store.db")


def pod(name: str = "web-1", uid: str = "u-1") -> Pod:
    p = load_text(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: prod, uid: {uid}}}\n")[0]
    assert isinstance(p, Pod)
    return p


def events(store: Store) -> list[Event]:
    out = [e for e in store.list("Event")[0] if isinstance(e, Event)]
    return sorted(out, key=lambda e: int(e.metadata.resourceVersion or 0))


def test_event_fields_are_kubernetes_shaped(store: Store) -> None:
    clock = FakeClock()
    rec = EventRecorder(store, clock=clock)
    rec.event(pod(), NORMAL, "Pulled", 'Container image "agnhost" already present on machine',
              component="kubelet", host="node1", field_path="spec.containers{web}")  # fmt: skip
    assert rec.flush() == 1
    [ev] = events(store)
    doc = msgspec.to_builtins(ev)
    assert doc["apiVersion"] == "v1" and doc["kind"] == "Event"
    assert doc["metadata"]["namespace"] == "prod"
    assert doc["metadata"]["name"].startswith("web-1.")
    int(doc["metadata"]["name"].removeprefix("web-1."), 16)  # <object>.<hex nanoseconds>
    assert doc["involvedObject"] == {
        "kind": "Pod",
        "namespace": "prod",
        "name": "web-1",
        "uid": "u-1",
        "apiVersion": "v1",
        "fieldPath": "spec.containers{web}",
    }
    assert doc["source"] == {"component": "kubelet", "host": "node1"}
    assert doc["reason"] == "Pulled" and doc["type"] == "Normal" and doc["count"] == 1
    assert doc["firstTimestamp"] == doc["lastTimestamp"] == "2024-05-01T12:00:00Z"
    assert doc["reportingComponent"] == "kubelet" and doc["reportingInstance"] == "node1"


def test_cluster_scoped_objects_get_events_in_default(store: Store) -> None:
    rec = EventRecorder(store, clock=FakeClock())
    node = store.create(node_object(default_cluster().nodes[0]))
    rec.event(node, NORMAL, "RegisteredNode", "Node node1 event: Registered Node node1 in Controller",
              component="node-controller")  # fmt: skip
    rec.flush()
    [ev] = events(store)
    assert ev.namespace == "default"
    assert ev.involvedObject.kind == "Node" and ev.involvedObject.namespace is None
    assert ev.involvedObject.uid == node.metadata.uid
    assert ev.source is not None and ev.source.host is None


def test_repeats_are_aggregated_into_one_event(store: Store) -> None:
    clock = FakeClock()
    rec = EventRecorder(store, clock=clock)
    for _ in range(3):  # in one batch: one write
        rec.event(pod(), WARNING, "BackOff", "Back-off restarting failed container", component="kubelet", host="n1")
    rv = store.resource_version
    assert rec.flush() == 1
    assert store.resource_version == rv + 1
    clock.t += 75
    rec.event(pod(), WARNING, "BackOff", "Back-off restarting failed container", component="kubelet", host="n1")
    rec.flush()
    [ev] = events(store)
    assert ev.count == 4
    assert ev.firstTimestamp == "2024-05-01T12:00:00Z"
    assert ev.lastTimestamp == "2024-05-01T12:01:15Z"
    # A different message, reason, object or source is another event.
    rec.event(pod(), WARNING, "BackOff", "something else", component="kubelet", host="n1")
    rec.event(pod("web-2", "u-2"), WARNING, "BackOff", "Back-off restarting failed container", component="kubelet")
    rec.event(pod(), WARNING, "BackOff", "Back-off restarting failed container", component="kubelet", host="n2")
    rec.flush()
    assert [e.count for e in events(store)] == [4, 1, 1, 1]


def test_a_deleted_event_is_recorded_afresh(store: Store) -> None:
    rec = EventRecorder(store, clock=FakeClock())
    rec.event(pod(), NORMAL, "Started", "Started container web", component="kubelet")
    rec.flush()
    [ev] = events(store)
    store.delete("Event", ev.namespace, ev.name)
    rec.event(pod(), NORMAL, "Started", "Started container web", component="kubelet")
    rec.flush()
    [again] = events(store)
    assert again.count == 1 and again.name != ev.name


def test_many_different_messages_are_combined(store: Store) -> None:
    rec = EventRecorder(store, clock=FakeClock())
    for i in range(SIMILAR_LIMIT + 5):
        rec.event(pod(), WARNING, "Unhealthy", f"Readiness probe failed: attempt {i}", component="kubelet")
    rec.flush()
    evs = events(store)
    assert len(evs) == SIMILAR_LIMIT + 1
    combined = evs[-1]
    assert combined.message == COMBINED_PREFIX + f"Readiness probe failed: attempt {SIMILAR_LIMIT + 4}"
    assert combined.count == 5


def test_old_events_expire_after_the_ttl(store: Store) -> None:
    clock = FakeClock()
    rec = EventRecorder(store, clock=clock, ttl=3600)
    rec.event(pod(), NORMAL, "Scheduled", "Successfully assigned prod/web-1 to node1", component="default-scheduler")
    rec.event(pod("web-2", "u-2"), NORMAL, "Started", "Started container web", component="kubelet")
    rec.flush()
    clock.t += 1800
    rec.event(pod("web-2", "u-2"), NORMAL, "Started", "Started container web", component="kubelet")  # refreshed
    rec.flush()
    clock.t += 1801
    assert rec.expire() == 1
    [left] = events(store)
    assert left.involvedObject.name == "web-2" and left.count == 2
    clock.t += 3600
    assert rec.expire() == 1
    assert events(store) == []
    # After expiry the same event starts over as a new one.
    rec.event(pod("web-2", "u-2"), NORMAL, "Started", "Started container web", component="kubelet")
    rec.flush()
    assert [e.count for e in events(store)] == [1]


def test_the_background_writer_flushes_without_being_asked(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    rec = EventRecorder(store, flush_delay=0.01)
    rec.start()
    try:
        with store.watch({"Event"}, store.resource_version) as w:
            rec.event(pod(), NORMAL, "Created", "Created container web", component="kubelet")
            ev = w.next(timeout=5)
            assert ev is not None and isinstance(ev.object, Event) and ev.object.reason == "Created"
    finally:
        rec.close()
        store.close()


def test_recording_an_event_never_touches_the_store() -> None:
    store = MemoryStore()
    rec = EventRecorder(store)
    rv = store.resource_version
    rec.event(ObjectReference(kind="Pod", namespace="default", name="x"), NORMAL, "Started", "m", component="kubelet")
    assert store.resource_version == rv  # queued only, until the writer flushes


DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: agnhost}]}
"""


def converge(store: MemoryStore, rec: EventRecorder | None) -> None:
    cfg = default_cluster()
    for n in cfg.nodes:
        store.create(node_object(n))
    for o in load_text(DEPLOY):
        store.create(o)
    ctrls = default_controllers(store, cfg, random.Random(0), events=rec if rec is not None else NO_EVENTS)
    run_until_stable(store, ctrls)
    if rec is not None:
        rec.flush()


def test_controllers_record_what_kubernetes_controllers_record() -> None:
    store = MemoryStore()
    rec = EventRecorder(store, clock=FakeClock())
    converge(store, rec)
    pods = sorted(p.name for p in store.list("Pod")[0] if isinstance(p, Pod))
    [d] = store.list("Deployment")[0]
    assert isinstance(d, Deployment)
    rs = next(iter(store.list("ReplicaSet")[0]))
    got = {(e.involvedObject.kind, e.involvedObject.name, e.reason, e.message) for e in events(store)}
    placed = {p.name: p.spec.nodeName for p in store.list("Pod")[0] if isinstance(p, Pod)}
    assert got == {
        ("Node", "node1", "RegisteredNode", "Node node1 event: Registered Node node1 in Controller"),
        ("Node", "node2", "RegisteredNode", "Node node2 event: Registered Node node2 in Controller"),
        ("Deployment", "web", "ScalingReplicaSet", f"Scaled up replica set {rs.name} from 0 to 2"),
        *{("ReplicaSet", rs.name, "SuccessfulCreate", f"Created pod: {p}") for p in pods},
        *{("Pod", p, "Scheduled", f"Successfully assigned default/{p} to {placed[p]}") for p in pods},
    }
    sources = {e.reason: e.source.component if e.source else None for e in events(store)}
    assert sources == {
        "RegisteredNode": "node-controller",
        "ScalingReplicaSet": "deployment-controller",
        "SuccessfulCreate": "replicaset-controller",
        "Scheduled": "default-scheduler",
    }


def test_scaling_down_records_the_scale_and_the_deleted_pods() -> None:
    store = MemoryStore()
    rec = EventRecorder(store, clock=FakeClock())
    converge(store, rec)
    [d] = store.list("Deployment")[0]
    assert isinstance(d, Deployment)
    store.update(msgspec.structs.replace(d, spec=msgspec.structs.replace(d.spec, replicas=1)))
    cfg = default_cluster()
    run_until_stable(store, default_controllers(store, cfg, random.Random(1), events=rec))
    rec.flush()
    reasons = [(e.reason, e.message) for e in events(store) if e.reason in ("ScalingReplicaSet", "SuccessfulDelete")]
    rs = next(iter(store.list("ReplicaSet")[0]))
    assert reasons[-2][0] == "ScalingReplicaSet" and reasons[-2][1] == f"Scaled down replica set {rs.name} from 2 to 1"
    assert reasons[-1][0] == "SuccessfulDelete" and (reasons[-1][1] or "").startswith("Deleted pod: web-")


def test_offline_convergence_records_no_events() -> None:
    store = MemoryStore()
    converge(store, None)
    assert store.list("Event")[0] == []


def test_unschedulable_pods_get_a_failed_scheduling_warning() -> None:
    store = MemoryStore()
    rec = EventRecorder(store, clock=FakeClock())
    cfg = default_cluster()
    for n in cfg.nodes:
        store.create(node_object(n))
    manifest = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeSelector: {disk: ssd}, containers: [{name: c}]}"
    )
    store.create(load_text(manifest)[0])
    run_until_stable(store, default_controllers(store, cfg, random.Random(0), events=rec))
    rec.flush()
    [warn] = [e for e in events(store) if e.type == WARNING]
    assert warn.reason == "FailedScheduling"
    assert warn.message == "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
    assert isinstance(store.get("Node", None, "node1"), Node)
