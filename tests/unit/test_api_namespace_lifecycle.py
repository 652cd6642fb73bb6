"""Namespace termination through the real API: kubectl deletes a namespace, it turns Terminating,
nothing new may be created in it, the namespace controller empties it (reporting the upstream
deletion conditions) and only then does it go."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubectl_bin import NEWEST, OLDEST, TlsApi, tls_api

from kins._errors import NotFound
from kins.api.config import default_cluster
from kins.api.core import Container, Namespace, Pod, PodSpec, PodStatus
from kins.api.meta import ObjectMeta
from kins.apiserver.auth import generate_token
from kins.apiserver.namespaces import REQUIRE_NAMESPACES
from kins.apiserver.server import make_app, start
from kins.control.base import Controller, ControllerSet, run_until_stable
from kins.control.defaults import default_controllers
from kins.control.garbage import GarbageCollector
from kins.control.namespace import NamespaceController
from kins.control.offline import SYSTEM_NAMESPACES, namespace_object
from kins.daemon.graceful import GracefulStore
from kins.store.base import Store
from kins.store.memory import MemoryStore

CONTENT = """
apiVersion: v1
kind: Namespace
metadata: {name: zz}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: zz}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: zz}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: zz}
data: {a: b}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: zz}
spec:
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"""

NAMESPACED_KINDS = ("pods", "deployments", "replicasets", "services", "configmaps", "ingresses", "endpoints")


def _store() -> MemoryStore:
    store = MemoryStore(history=10_000)
    for ns in SYSTEM_NAMESPACES:
        store.create(namespace_object(ns))
    return store


class Running:
    """Controllers on a store's watch in a thread, as the daemon runs them."""

    def __init__(self, store: Store, controllers: Sequence[Controller]) -> None:
        self.store = store
        self.cs = ControllerSet(controllers)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.store.watch(self.cs.kinds, self.store.resource_version) as w:
            self.cs.start(self.store)
            while not self.stop.is_set():
                while self.cs.pending:
                    self.cs.run_round(w.drain, self.store)
                ev = w.next(timeout=0.05)
                if ev is not None:
                    self.cs.feed([ev, *w.drain()])

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(10)


def _everything(store: Store) -> list[Controller]:
    import random

    return default_controllers(store, default_cluster(), random.Random(1))


def _wait(what: str, cond: Any, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _content(store: Store, ns: str) -> dict[str, int]:
    counts = {}
    for kind in ("Pod", "Deployment", "ReplicaSet", "Service", "ConfigMap", "Ingress", "Endpoints", "EndpointSlice"):
        n = len(store.list(kind, ns)[0])
        if n:
            counts[kind] = n
    return counts


def _names(store: Store) -> set[str]:
    return {o.name for o in store.list("Namespace")[0]}


def _create(k: Any, kind: str, name: str, namespace: str | None = None) -> None:
    """``kubectl create -f -`` (JSON on the wire; kubectl's imperative creates send protobuf)."""
    meta = f"{{name: {name}, namespace: {namespace}}}" if namespace else f"{{name: {name}}}"
    k("create", "-f", "-", input=f"apiVersion: v1\nkind: {kind}\nmetadata: {meta}\n")


def _get_ns(k: Any, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(k("get", "namespace", name, "-o", "json"))
    return doc


def _raw(api: TlsApi, method: str, path: str, **kw: Any) -> httpx.Response:
    with httpx.Client(verify=False, headers={"Authorization": f"Bearer {api.token}"}, timeout=10) as c:
        return c.request(method, api.url + path, **kw)


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_delete_namespace_terminates_refuses_content_then_empties_it(tmp_path: Path, version: str) -> None:
    store = _store()
    with tls_api(store, tmp_path) as api:
        k = api.kubectl(version)
        k("create", "-f", "-", input=CONTENT)
        run_until_stable(store, _everything(store))
        assert _content(store, "zz")["Pod"] == 2

        out = k("delete", "namespace", "zz", "--wait=false")
        assert out.strip() == 'namespace "zz" deleted'
        ns = _get_ns(k, "zz")
        assert ns["status"]["phase"] == "Terminating"
        assert ns["metadata"]["deletionTimestamp"]
        assert ns["spec"]["finalizers"] == ["kubernetes"]
        assert "Terminating" in k("get", "namespace", "zz")

        # Nothing new in it, whatever the kind, with the API's Status.
        late = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late, namespace: zz}\ndata: {a: b}\n"
        p = k.run("create", "-f", "-", input=late, check=False)
        assert p.returncode != 0
        assert (
            'Error from server (Forbidden): error when creating "STDIN": configmaps "late" is forbidden: '
            "unable to create new content in namespace zz because it is being terminated"
        ) in p.stderr
        r = _raw(
            api,
            "POST",
            "/apis/apps/v1/namespaces/zz/deployments",
            json={"metadata": {"name": "late"}, "spec": {"selector": {}, "template": {}}},
        )
        assert r.status_code == 403
        assert r.json() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'deployments.apps "late" is forbidden: '
            "unable to create new content in namespace zz because it is being terminated",
            "reason": "Forbidden",
            "details": {
                "name": "late",
                "group": "apps",
                "kind": "deployments",
                "causes": [
                    {
                        "reason": "NamespaceTerminating",
                        "message": "namespace zz is being terminated",
                        "field": "metadata.namespace",
                    }
                ],
            },
            "code": 403,
        }
        r = _raw(api, "POST", "/api/v1/namespaces/zz/pods", json={"metadata": {"generateName": "p-"}, "spec": {}})
        assert r.status_code == 403 and r.json()["message"].startswith('pods "p-" is forbidden: unable to create')
        # Deleting it again changes nothing; its content is still there until the controller runs.
        k("delete", "namespace", "zz", "--wait=false")
        assert _content(store, "zz")["Pod"] == 2

        with Running(store, _everything(store)):
            k("wait", "--for=delete", "namespace/zz", "--timeout=60s")
            _wait("namespace zz gone", lambda: not store.list("Namespace", None)[0] or "zz" not in _names(store))
        assert _content(store, "zz") == {}
        with pytest.raises(NotFound):
            store.get("Namespace", None, "zz")
        p = k.run("get", "namespace", "zz", check=False)
        assert p.returncode != 0 and 'namespaces "zz" not found' in p.stderr


def test_conditions_report_content_and_finalizers_left(tmp_path: Path) -> None:
    store = _store()
    with tls_api(store, tmp_path) as api:
        k = api.kubectl(NEWEST)
        _create(k, "Namespace", "held")
        _create(k, "ConfigMap", "keep", "held")
        _create(k, "ConfigMap", "free", "held")
        k(
            "patch",
            "configmap",
            "keep",
            "-n",
            "held",
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":["example.com/hold"]}}',
        )
        k("delete", "namespace", "held", "--wait=false")
        ctrls: list[Controller] = [NamespaceController(store), GarbageCollector(store)]
        run_until_stable(store, ctrls)

        ns = _get_ns(k, "held")
        assert ns["status"]["phase"] == "Terminating"
        conds = {c["type"]: c for c in ns["status"]["conditions"]}
        assert list(conds) == [
            "NamespaceDeletionDiscoveryFailure",
            "NamespaceDeletionGroupVersionParsingFailure",
            "NamespaceDeletionContentFailure",
            "NamespaceContentRemaining",
            "NamespaceFinalizersRemaining",
        ]
        for c in conds.values():
            assert c["lastTransitionTime"]
        short = {t: (c["status"], c["reason"], c["message"]) for t, c in conds.items()}
        assert short == {
            "NamespaceDeletionDiscoveryFailure": (
                "False",
                "ResourcesDiscovered",
                "All resources successfully discovered",
            ),
            "NamespaceDeletionGroupVersionParsingFailure": (
                "False",
                "ParsedGroupVersions",
                "All legacy kube types successfully parsed",
            ),
            "NamespaceDeletionContentFailure": (
                "False",
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization",
            ),
            "NamespaceContentRemaining": (
                "True",
                "SomeResourcesRemain",
                "Some resources are remaining: configmaps. has 1 resource instances",
            ),
            "NamespaceFinalizersRemaining": (
                "True",
                "SomeFinalizerRemain",
                "Some finalizers are remaining: example.com/hold in 1 resource instances",
            ),
        }
        # The held object is only marked; the free one is gone.
        keep = json.loads(k("get", "configmap", "keep", "-n", "held", "-o", "json"))
        assert keep["metadata"]["deletionTimestamp"] and keep["metadata"]["deletionGracePeriodSeconds"] == 0
        assert k.run("get", "configmap", "free", "-n", "held", check=False).returncode != 0

        # Its finalizer taken off by an update, the object goes, and so does the namespace.
        k("patch", "configmap", "keep", "-n", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
        run_until_stable(store, ctrls)
        with pytest.raises(NotFound):
            store.get("Namespace", None, "held")


def test_system_namespaces_may_not_be_deleted(tmp_path: Path) -> None:
    store = _store()
    with tls_api(store, tmp_path) as api:
        for name in ("default", "kube-system", "kube-public"):
            p = api.kubectl(NEWEST).run("delete", "namespace", name, check=False)
            assert p.returncode != 0
            assert f'namespaces "{name}" is forbidden: this namespace may not be deleted' in p.stderr
            r = _raw(api, "DELETE", f"/api/v1/namespaces/{name}")
            assert r.status_code == 403 and r.json()["reason"] == "Forbidden"
            ns = store.get("Namespace", None, name)
            assert not ns.metadata.deletionTimestamp


def test_finalize_subresource_and_spec_finalizers(tmp_path: Path) -> None:
    store = _store()
    with tls_api(store, tmp_path) as api:
        k = api.kubectl(NEWEST)
        _create(k, "Namespace", "fin")
        _create(k, "ConfigMap", "left", "fin")
        # A plain update does not change spec.finalizers (only /finalize does).
        k(
            "patch",
            "namespace",
            "fin",
            "--type=merge",
            "-p",
            '{"spec":{"finalizers":[]},"metadata":{"labels":{"x":"y"}}}',
        )
        ns = _get_ns(k, "fin")
        assert ns["spec"]["finalizers"] == ["kubernetes"] and ns["metadata"]["labels"]["x"] == "y"
        k("delete", "namespace", "fin", "--wait=false")
        ns = _get_ns(k, "fin")
        ns["spec"]["finalizers"] = []
        # Finalizing by hand (what people do with stuck namespaces): it goes without being emptied.
        out = json.loads(k("replace", "--raw", "/api/v1/namespaces/fin/finalize", "-f", "-", input=json.dumps(ns)))
        assert out["metadata"]["name"] == "fin"
        with pytest.raises(NotFound):
            store.get("Namespace", None, "fin")
        assert len(store.list("ConfigMap", "fin")[0]) == 1


def test_a_new_namespace_carries_the_kubernetes_finalizer(tmp_path: Path) -> None:
    store = _store()
    with tls_api(store, tmp_path) as api:
        k = api.kubectl(OLDEST)
        _create(k, "Namespace", "fresh")
        ns = _get_ns(k, "fresh")
        assert ns["spec"] == {"finalizers": ["kubernetes"]} and ns["status"] == {"phase": "Active"}
        # A dry-run delete changes nothing and answers with the namespace as it would be.
        assert (
            k("delete", "namespace", "fresh", "--dry-run=server").strip()
            == 'namespace "fresh" deleted (server dry run)'
        )
        out = _raw(api, "DELETE", "/api/v1/namespaces/fresh", params={"dryRun": "All"}).json()
        assert out["status"]["phase"] == "Terminating" and out["metadata"]["deletionTimestamp"]
        assert _get_ns(k, "fresh")["status"] == {"phase": "Active"}
        ns_obj = store.get("Namespace", None, "fresh")
        assert isinstance(ns_obj, Namespace) and not ns_obj.metadata.deletionTimestamp


@contextmanager
def _strict_api(store: Store) -> Iterator[tuple[str, str]]:
    """The API as the daemon serves it: objects only in namespaces that exist."""
    token = generate_token()
    loop = asyncio.new_event_loop()
    bound: list[int] = []
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        app = make_app(store, default_cluster(), token=token)
        app[REQUIRE_NAMESPACES] = True
        runner, port = loop.run_until_complete(start(app))
        bound.append(port)
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(10)
    try:
        yield f"http://127.0.0.1:{bound[0]}", token
    finally:
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)


def test_creating_in_a_missing_namespace_is_not_found() -> None:
    store = _store()
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
    with _strict_api(store) as (url, token):
        auth = {"Authorization": f"Bearer {token}"}
        r = httpx.post(f"{url}/api/v1/namespaces/nope/configmaps", json=cm, headers=auth)
        assert r.status_code == 404
        assert r.json() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'namespaces "nope" not found',
            "reason": "NotFound",
            "details": {"name": "nope", "kind": "namespaces"},
            "code": 404,
        }
        assert store.list("ConfigMap", "nope")[0] == []
        # In a namespace that exists (a system one, or one just created) all is well.
        assert httpx.post(f"{url}/api/v1/namespaces/default/configmaps", json=cm, headers=auth).status_code == 201
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nope"}}
        assert httpx.post(f"{url}/api/v1/namespaces", json=ns, headers=auth).status_code == 201
        assert httpx.post(f"{url}/api/v1/namespaces/nope/configmaps", json=cm, headers=auth).status_code == 201


def test_pods_of_a_terminating_namespace_stop_through_their_kubelet(tmp_path: Path) -> None:
    """On the daemon's store a running pod is only marked: the namespace waits for its kubelet
    to stop it and delete it without grace."""
    raw = _store()
    store = GracefulStore(raw)
    raw.create(namespace_object("zz"))
    spec = PodSpec(nodeName="node1", containers=[Container(name="c", image="busybox")], terminationGracePeriodSeconds=7)
    raw.create(Pod(metadata=ObjectMeta(name="p", namespace="zz"), spec=spec, status=PodStatus(phase="Running")))
    with tls_api(store, tmp_path) as api:
        k = api.kubectl(NEWEST)
        k("delete", "namespace", "zz", "--wait=false")
        ctrls: list[Controller] = [NamespaceController(store), GarbageCollector(store)]
        run_until_stable(raw, ctrls)
        pod = raw.get("Pod", "zz", "p")
        assert pod.metadata.deletionTimestamp and pod.metadata.deletionGracePeriodSeconds == 7
        conds = {c["type"]: c for c in _get_ns(k, "zz")["status"]["conditions"]}
        assert (
            conds["NamespaceContentRemaining"]["message"]
            == "Some resources are remaining: pods. has 1 resource instances"
        )
        assert conds["NamespaceFinalizersRemaining"]["status"] == "False"
        # What the kubelet sends once the pod has stopped.
        assert (
            _raw(api, "DELETE", "/api/v1/namespaces/zz/pods/p", params={"gracePeriodSeconds": "0"}).status_code == 200
        )
        run_until_stable(raw, ctrls)
        assert "zz" not in _names(raw)
