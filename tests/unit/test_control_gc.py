"""Deletion through the real API and the garbage collector: propagation policies (kubectl's
--cascade, the DeleteOptions body, the old orphanDependents), finalizers, dry runs and
preconditions."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubectl_bin import NEWEST, OLDEST, TlsApi, tls_api

from kins._errors import NotFound
from kins.api.config import default_cluster
from kins.api.core import ConfigMap, Container, Pod, PodSpec, PodStatus
from kins.api.meta import Object, ObjectMeta, OwnerReference
from kins.control.base import Controller, run_until_stable
from kins.control.defaults import default_controllers
from kins.control.garbage import GarbageCollector
from kins.control.namespace import NamespaceController
from kins.control.offline import SYSTEM_NAMESPACES, namespace_object
from kins.daemon.graceful import GracefulStore
from kins.store.base import Store
from kins.store.memory import MemoryStore

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
"""


def _store() -> MemoryStore:
    store = MemoryStore(history=10_000)
    for ns in SYSTEM_NAMESPACES:
        store.create(namespace_object(ns))
    return store


def _gc(store: Store) -> None:
    ctrls: list[Controller] = [NamespaceController(store), GarbageCollector(store)]
    run_until_stable(store, ctrls)


def _cm(store: Store, name: str, *owners: Object, block: bool = True, finalizers: list[str] | None = None) -> Object:
    refs = [
        OwnerReference(
            apiVersion=o.apiVersion, kind=o.KIND, name=o.name, uid=o.metadata.uid or "", blockOwnerDeletion=block
        )
        for o in owners
    ]
    meta = ObjectMeta(name=name, namespace="default", ownerReferences=refs or None, finalizers=finalizers)
    return store.create(ConfigMap(metadata=meta, data={"a": "b"}))


def _exists(store: Store, name: str) -> Object | None:
    try:
        return store.get("ConfigMap", "default", name)
    except NotFound:
        return None


def _raw(api: TlsApi, method: str, path: str, **kw: Any) -> httpx.Response:
    with httpx.Client(verify=False, headers={"Authorization": f"Bearer {api.token}"}, timeout=10) as c:
        return c.request(method, api.url + path, **kw)


CM = "/api/v1/namespaces/default/configmaps"


def _tree(store: Store) -> tuple[Object, Object, Object]:
    """owner <- child (blocking) <- grandchild (blocking)."""
    owner = _cm(store, "owner")
    child = _cm(store, "child", owner)
    grandchild = _cm(store, "grandchild", child)
    return owner, child, grandchild


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_background_is_kubectls_default(tmp_path: Path, version: str) -> None:
    store = _store()
    _tree(store)
    with tls_api(store, tmp_path) as api:
        k = api.kubectl(version)
        assert k("delete", "configmap", "owner", "--wait=false").strip() == 'configmap "owner" deleted'
        # The owner goes at once; its dependents after, by the collector.
        assert _exists(store, "owner") is None and _exists(store, "child") is not None
        _gc(store)
        assert _exists(store, "child") is None and _exists(store, "grandchild") is None


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_foreground_deletes_blocking_dependents_first(tmp_path: Path, version: str) -> None:
    store = _store()
    owner, _, _ = _tree(store)
    loose = _cm(store, "loose", owner, block=False)
    with tls_api(store, tmp_path) as api:
        k = api.kubectl(version)
        k("delete", "configmap", "owner", "--cascade=foreground", "--wait=false")
        marked = _exists(store, "owner")
        assert marked is not None and marked.metadata.deletionTimestamp
        assert marked.metadata.finalizers == ["foregroundDeletion"] and marked.metadata.deletionGracePeriodSeconds == 0
        assert _exists(store, "child") is not None  # nothing else moved yet
        # One collector pass: the blocking child is deleted in the foreground in turn (its own
        # dependent first), then the owner; the non-blocking one goes after the owner.
        gc = GarbageCollector(store)
        run_until_stable(store, [gc])
        for name in ("owner", "child", "grandchild"):
            assert _exists(store, name) is None, name
        assert _exists(store, loose.name) is None


def test_foreground_waits_for_a_dependent_that_has_finalizers(tmp_path: Path) -> None:
    store = _store()
    owner = _cm(store, "owner")
    _cm(store, "held", owner, finalizers=["example.com/hold"])
    with tls_api(store, tmp_path) as api:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
        r = _raw(api, "DELETE", f"{CM}/owner", json=body)
        assert r.status_code == 200 and r.json()["metadata"]["finalizers"] == ["foregroundDeletion"]
        _gc(store)
        held = _exists(store, "held")
        assert held is not None and held.metadata.deletionTimestamp  # deleted, held by its finalizer
        assert _exists(store, "owner") is not None  # still waiting on it
        k = api.kubectl(NEWEST)
        k("patch", "configmap", "held", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
        assert _exists(store, "held") is None
        _gc(store)
        assert _exists(store, "owner") is None


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_orphan_keeps_dependents_without_the_reference(tmp_path: Path, version: str) -> None:
    store = _store()
    owner = _cm(store, "owner")
    other = _cm(store, "other")
    _cm(store, "child", owner, other)
    with tls_api(store, tmp_path) as api:
        k = api.kubectl(version)
        k("delete", "configmap", "owner", "--cascade=orphan", "--wait=false")
        marked = _exists(store, "owner")
        assert marked is not None and marked.metadata.finalizers == ["orphan"]
        _gc(store)
        assert _exists(store, "owner") is None
        child = _exists(store, "child")
        assert child is not None
        assert [r.name for r in child.metadata.ownerReferences or []] == ["other"]


def test_orphan_dependents_parameter(tmp_path: Path) -> None:
    store = _store()
    a = _cm(store, "a")
    _cm(store, "a-child", a)
    b = _cm(store, "b")
    _cm(store, "b-child", b)
    with tls_api(store, tmp_path) as api:
        # The old parameter, in the query: true orphans, false cascades.
        r = _raw(api, "DELETE", f"{CM}/a", params={"orphanDependents": "true"})
        assert r.status_code == 200 and r.json()["metadata"]["finalizers"] == ["orphan"]
        r = _raw(api, "DELETE", f"{CM}/b", json={"orphanDependents": False})
        assert r.status_code == 200 and _exists(store, "b") is None
        _gc(store)
        kept = _exists(store, "a-child")
        assert _exists(store, "a") is None and kept is not None and not kept.metadata.ownerReferences
        assert _exists(store, "b-child") is None
        # Both forms at once, or a policy that does not exist: refused, nothing deleted.
        c = _cm(store, "c")
        r = _raw(api, "DELETE", f"{CM}/c", json={"orphanDependents": True, "propagationPolicy": "Orphan"})
        assert r.status_code == 422
        assert r.json()["message"] == (
            'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
            'Invalid value: "Orphan": orphanDependents and deletionPropagation cannot be both set'
        )
        r = _raw(api, "DELETE", f"{CM}/c", params={"propagationPolicy": "Sideways"})
        assert r.status_code == 422
        assert r.json()["details"]["causes"] == [
            {
                "reason": "FieldValueNotSupported",
                "message": 'Unsupported value: "Sideways": '
                'supported values: "Foreground", "Background", "Orphan", "nil"',
                "field": "propagationPolicy",
            }
        ]
        assert _exists(store, c.name) is not None


def test_dangling_owner_references_are_collected(tmp_path: Path) -> None:
    store = _store()
    gone = ConfigMap(metadata=ObjectMeta(name="gone", namespace="default", uid="00000000-dead"))
    orphan = _cm(store, "orphan", gone)
    alive = _cm(store, "alive")
    both = _cm(store, "both", gone, alive)
    # An owner re-created under the same name is another object: the reference still dangles.
    old = _cm(store, "reborn")
    child = _cm(store, "reborn-child", old)
    store.delete("ConfigMap", "default", "reborn")
    _cm(store, "reborn")
    _gc(store)
    assert _exists(store, orphan.name) is None
    assert _exists(store, child.name) is None
    kept = _exists(store, both.name)
    assert kept is not None and [r.name for r in kept.metadata.ownerReferences or []] == ["alive"]


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_finalizers_hold_an_object_until_an_update_removes_them(tmp_path: Path, version: str) -> None:
    store = _store()
    _cm(store, "held", finalizers=["example.com/a", "example.com/b"])
    with tls_api(store, tmp_path) as api:
        k = api.kubectl(version)
        k("delete", "configmap", "held", "--wait=false")
        doc = json.loads(k("get", "configmap", "held", "-o", "json"))
        assert doc["metadata"]["deletionTimestamp"] and doc["metadata"]["deletionGracePeriodSeconds"] == 0
        assert doc["metadata"]["finalizers"] == ["example.com/a", "example.com/b"]
        # No new finalizer on an object being deleted; an update cannot undo the deletion.
        p = k.run(
            "patch",
            "configmap",
            "held",
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":["example.com/a","example.com/b","example.com/c"]}}',
            check=False,
        )
        assert p.returncode != 0 and "no new finalizers can be added if the object is being deleted" in p.stderr
        k("patch", "configmap", "held", "--type=merge", "-p", '{"metadata":{"deletionTimestamp":null}}')
        assert json.loads(k("get", "configmap", "held", "-o", "json"))["metadata"]["deletionTimestamp"]
        # One finalizer off: still there; the last off: gone.
        k(
            "patch",
            "configmap",
            "held",
            "--type=json",
            "-p",
            '[{"op":"replace","path":"/metadata/finalizers","value":["example.com/b"]}]',
        )
        assert _exists(store, "held") is not None
        k("patch", "configmap", "held", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
        assert _exists(store, "held") is None


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    store = _store()
    owner = _cm(store, "owner")
    _cm(store, "child", owner)
    _cm(store, "held", finalizers=["example.com/a"])
    rv = store.resource_version
    with tls_api(store, tmp_path) as api:
        k = api.kubectl(NEWEST)
        assert (
            k("delete", "configmap", "owner", "--dry-run=server").strip()
            == 'configmap "owner" deleted (server dry run)'
        )
        # In the query or in the body; the answer is the object as the delete would leave it.
        r = _raw(api, "DELETE", f"{CM}/held", params={"dryRun": "All"})
        assert r.status_code == 200 and r.json()["metadata"]["deletionTimestamp"]
        r = _raw(api, "DELETE", f"{CM}/owner", json={"dryRun": ["All"], "propagationPolicy": "Foreground"})
        assert r.status_code == 200 and r.json()["metadata"]["finalizers"] == ["foregroundDeletion"]
        r = _raw(api, "DELETE", CM, params={"dryRun": "All"})
        assert r.status_code == 200 and len(r.json()["items"]) == 3
        r = _raw(api, "DELETE", f"{CM}/owner", params={"dryRun": "Some"})
        assert r.status_code == 422
        assert store.resource_version == rv
        held = _exists(store, "held")
        assert held is not None and not held.metadata.deletionTimestamp
        _gc(store)
        assert _exists(store, "child") is not None


def test_preconditions(tmp_path: Path) -> None:
    store = _store()
    cm = _cm(store, "pre")
    with tls_api(store, tmp_path) as api:
        r = _raw(api, "DELETE", f"{CM}/pre", json={"preconditions": {"uid": "not-the-uid"}})
        assert r.status_code == 409
        assert r.json()["reason"] == "Conflict"
        assert r.json()["message"] == (
            'Operation cannot be fulfilled on configmaps "pre": StorageError: invalid object, Code: 4, '
            "Key: /registry/configmaps/default/pre, ResourceVersion: 0, AdditionalErrorMsg: "
            f"Precondition failed: UID in precondition: not-the-uid, UID in object meta: {cm.metadata.uid}"
        )
        r = _raw(api, "DELETE", f"{CM}/pre", json={"preconditions": {"resourceVersion": "1"}})
        assert r.status_code == 409
        assert r.json()["message"].endswith(
            f"Precondition failed: ResourceVersion in precondition: 1, "
            f"ResourceVersion in object meta: {cm.metadata.resourceVersion}"
        )
        assert _exists(store, "pre") is not None
        pre = {"uid": cm.metadata.uid, "resourceVersion": cm.metadata.resourceVersion}
        assert _raw(api, "DELETE", f"{CM}/pre", json={"preconditions": pre}).status_code == 200
        assert _exists(store, "pre") is None
        # A Namespace's registry words it more tersely.
        r = _raw(api, "DELETE", "/api/v1/namespaces/kube-node-lease", json={"preconditions": {"uid": "x"}})
        ns = store.get("Namespace", None, "kube-node-lease")
        assert r.status_code == 409
        assert r.json()["message"] == (
            'Operation cannot be fulfilled on namespaces "kube-node-lease": '
            f"Precondition failed: UID in precondition: x, UID in object meta: {ns.metadata.uid}"
        )
        # kubectl sends the uid it read when asked to (--now sends a grace period of 1).
        k = api.kubectl(NEWEST)
        _cm(store, "again")
        k("delete", "configmap", "again", "--now")
        assert _exists(store, "again") is None


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_deleting_a_deployment_removes_its_replicasets_and_pods(tmp_path: Path, version: str) -> None:
    store = _store()
    ctrls = default_controllers(store, default_cluster(), random.Random(1))
    with tls_api(store, tmp_path) as api:
        k = api.kubectl(version)
        k("create", "-f", "-", input=DEPLOYMENT)
        run_until_stable(store, ctrls)
        assert len(store.list("ReplicaSet", "default")[0]) == 1 and len(store.list("Pod", "default")[0]) == 2
        k("delete", "deployment", "web", "--wait=false")
        run_until_stable(store, default_controllers(store, default_cluster(), random.Random(1)))
        assert store.list("Deployment", "default")[0] == []
        assert store.list("ReplicaSet", "default")[0] == []
        assert store.list("Pod", "default")[0] == []

        # Foreground: the Deployment stays (not re-syncing its ReplicaSets) until they are gone.
        k("create", "-f", "-", input=DEPLOYMENT)
        run_until_stable(store, default_controllers(store, default_cluster(), random.Random(1)))
        k("delete", "deployment", "web", "--cascade=foreground", "--wait=false")
        assert store.get("Deployment", "default", "web").metadata.finalizers == ["foregroundDeletion"]
        run_until_stable(store, default_controllers(store, default_cluster(), random.Random(1)))
        for kind in ("Deployment", "ReplicaSet", "Pod"):
            assert store.list(kind, "default")[0] == [], kind

        # Orphan: the ReplicaSet and its pods stay, no longer owned.
        k("create", "-f", "-", input=DEPLOYMENT)
        run_until_stable(store, default_controllers(store, default_cluster(), random.Random(1)))
        k("delete", "deployment", "web", "--cascade=orphan", "--wait=false")
        run_until_stable(store, default_controllers(store, default_cluster(), random.Random(1)))
        assert store.list("Deployment", "default")[0] == []
        (rs,) = store.list("ReplicaSet", "default")[0]
        assert not rs.metadata.ownerReferences and len(store.list("Pod", "default")[0]) == 2


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_a_running_pods_grace_period(tmp_path: Path, version: str) -> None:
    """On the daemon's store a running pod is marked with the grace period the delete asks for
    (never a longer one than it already has), and goes at once with --force --grace-period=0."""
    raw = _store()
    spec = PodSpec(nodeName="node1", containers=[Container(name="c", image="busybox")])
    raw.create(Pod(metadata=ObjectMeta(name="p", namespace="default"), spec=spec, status=PodStatus(phase="Running")))
    with tls_api(GracefulStore(raw), tmp_path) as api:
        k = api.kubectl(version)
        k("delete", "pod", "p", "--grace-period=5", "--wait=false")
        assert raw.get("Pod", "default", "p").metadata.deletionGracePeriodSeconds == 5
        k("delete", "pod", "p", "--grace-period=60", "--wait=false")
        assert raw.get("Pod", "default", "p").metadata.deletionGracePeriodSeconds == 5
        k("delete", "pod", "p", "--force", "--grace-period=0")
        with pytest.raises(NotFound):
            raw.get("Pod", "default", "p")
