"""The HTTP API on a real loopback socket, driven through kins.client over real stores."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import pytest
from aiohttp import web
from kubectl_bin import app_in_thread

from kins._errors import AllocationError, Conflict, Gone, MultiValidationError, NotFound, Unauthorized
from kins.api.apps import Deployment, DeploymentSpec
from kins.api.config import default_cluster
from kins.api.core import Container, Namespace, Pod, PodSpec, PodTemplateSpec, Service, ServicePort, ServiceSpec
from kins.api.load import load_text
from kins.api.meta import LabelSelector, Object, ObjectMeta
from kins.api.networking import Ingress
from kins.apiserver.auth import ensure_tls, generate_token, server_ssl_context
from kins.apiserver.keys import Admission
from kins.apiserver.server import make_app, start
from kins.client import Client
from kins.store.base import Store
from kins.store.memory import MemoryStore
from kins.store.sqlite import SqliteStore


@dataclass
class Served:
    url: str
    token: str
    store: Store

    def client(self, token: str | None = None) -> Client:
        return Client(self.url, self.token if token is None else token, timeout=10)


@contextmanager
def serving(
    store: Store, admission: Admission | None = None, ssl_context: ssl.SSLContext | None = None
) -> Iterator[Served]:
    """The API on 127.0.0.1:<free port>, its loop in a background thread."""
    token = generate_token()

    def app() -> web.Application:
        return make_app(store, default_cluster(), token=token, admission=admission)

    with app_in_thread(app, ssl_context) as port:
        scheme = "https" if ssl_context is not None else "http"
        yield Served(f"{scheme}://127.0.0.1:{port}", token, store)


@pytest.fixture(params=["memory", "sqlite"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    store: Store
    if request.param == "memory":
        store = MemoryStore(history=1000)
    else:
        store = SqliteStore(tmp_path / "state.db", history=1000)
    with serving(store) as served:
        yield served
    if isinstance(store, SqliteStore):
        store.close()


@pytest.fixture
def client(api: Served) -> Iterator[Client]:
    with api.client() as c:
        yield c


def pod(name: str, ns: str = "default", node: str | None = None, **labels: str) -> Pod:
    return Pod(
        metadata=ObjectMeta(name=name, namespace=ns, labels=labels or None),
        spec=PodSpec(containers=[Container(name="c", image="nginx")], nodeName=node),
    )


def service(name: str, port: int = 80, ns: str = "default") -> Service:
    return Service(
        metadata=ObjectMeta(name=name, namespace=ns),
        spec=ServiceSpec(selector={"app": name}, ports=[ServicePort(port=port, targetPort=8080)]),
    )


def deployment(name: str, replicas: int = 1) -> Deployment:
    labels = {"app": name}
    return Deployment(
        metadata=ObjectMeta(name=name, namespace="default"),
        spec=DeploymentSpec(
            replicas=replicas,
            selector=LabelSelector(matchLabels=labels),
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels=labels), spec=PodSpec(containers=[Container(name="web", image="nginx")])
            ),
        ),
    )


def names(objs: list[Object]) -> list[str]:
    return [o.name for o in objs]


# --- CRUD -------------------------------------------------------------------------------------


def test_create_get_list_with_selectors(client: Client) -> None:
    created = client.create(pod("a", app="web", tier="front"))
    assert isinstance(created, Pod)
    assert created.metadata.uid and created.metadata.resourceVersion and created.metadata.creationTimestamp
    client.create(pod("b", app="web", node="node2"))
    client.create(pod("c", app="db", node="node2"))
    client.create(pod("d", ns="other", app="web"))

    got = client.get("Pod", "default", "a")
    assert got == created
    assert names(client.list("pods")) == ["a", "b", "c"]
    assert names(client.list("Pod", selector="app=web")) == ["a", "b"]
    assert names(client.list("po", selector={"app": "web", "tier": "front"})) == ["a"]
    assert names(client.list("Pod", selector="app in (web,db),!tier")) == ["b", "c"]
    assert names(client.list("Pod", selector="app=web", all_namespaces=True)) == ["a", "b", "d"]
    assert names(client.list("Pod", field_selector="spec.nodeName=node2")) == ["b", "c"]
    assert names(client.list("Pod", field_selector="metadata.name!=b,spec.nodeName=node2")) == ["c"]
    assert names(client.list("Pod", ns="other")) == ["d"]


def test_list_body_shape_and_limit(api: Served, client: Client) -> None:
    for n in "abcde":
        client.create(pod(n))
    headers = {"Authorization": f"Bearer {api.token}"}
    body = httpx.get(f"{api.url}/api/v1/namespaces/default/pods", headers=headers).json()
    assert body["kind"] == "PodList" and body["apiVersion"] == "v1"
    assert body["metadata"]["resourceVersion"] == str(api.store.resource_version)
    assert [i["metadata"]["name"] for i in body["items"]] == list("abcde")

    seen: list[str] = []
    params = {"limit": "2"}
    while True:
        page = httpx.get(f"{api.url}/api/v1/namespaces/default/pods", headers=headers, params=params).json()
        seen += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
        params = {"limit": "2", "continue": token}
    assert seen == list("abcde")


def test_cluster_scoped_kinds(client: Client) -> None:
    client.create(Namespace(metadata=ObjectMeta(name="team")))
    ns = client.get("Namespace", None, "team")
    assert ns.name == "team" and ns.metadata.namespace is None
    assert "team" in names(client.list("namespaces"))
    client.delete("ns", None, "team")
    # Terminating until the namespace controller has emptied it (test_api_namespace_lifecycle.py).
    gone = client.get("Namespace", None, "team")
    assert gone.metadata.deletionTimestamp and gone.status.phase == "Terminating"  # type: ignore[attr-defined]


def test_create_twice_is_already_exists(api: Served, client: Client) -> None:
    client.create(pod("a"))
    with pytest.raises(Conflict, match="already exists"):
        client.create(pod("a"))
    r = httpx.post(
        f"{api.url}/api/v1/namespaces/default/pods",
        headers={"Authorization": f"Bearer {api.token}"},
        content=msgspec.json.encode(pod("a")),
    )
    assert r.status_code == 409
    status = r.json()
    assert status["kind"] == "Status" and status["reason"] == "AlreadyExists" and status["code"] == 409
    assert status["details"] == {"name": "a", "kind": "pods"}


def test_generate_name(client: Client) -> None:
    p = pod("")
    p = msgspec.structs.replace(p, metadata=ObjectMeta(generateName="web-", namespace="default"))
    created = client.create(p)
    assert created.name.startswith("web-") and len(created.name) == len("web-") + 5
    assert client.get("Pod", "default", created.name).metadata.uid == created.metadata.uid


def test_update_and_stale_resource_version_conflict(client: Client) -> None:
    first = client.create(pod("a", app="web"))
    changed = msgspec.structs.replace(first, metadata=msgspec.structs.replace(first.metadata, labels={"app": "v2"}))
    updated = client.update(changed)
    assert updated.labels == {"app": "v2"}
    assert int(updated.metadata.resourceVersion or 0) > int(first.metadata.resourceVersion or 0)
    assert updated.metadata.uid == first.metadata.uid
    # The same edit again carries the old resourceVersion: 409.
    with pytest.raises(Conflict, match="the object has been modified"):
        client.update(changed)
    assert client.get("Pod", "default", "a").labels == {"app": "v2"}


def test_update_keeps_status_and_status_subresource_changes_only_status(client: Client) -> None:
    created = client.create(pod("a"))
    assert isinstance(created, Pod)
    from kins.api.core import PodStatus

    with_status = msgspec.structs.replace(created, status=PodStatus(phase="Running", podIP="172.30.76.2"))
    after_status = client.update_status(with_status)
    assert isinstance(after_status, Pod) and after_status.status is not None
    assert after_status.status.podIP == "172.30.76.2"

    # A PUT of the main resource cannot change the status (as in Kubernetes) ...
    relabel = msgspec.structs.replace(
        after_status,
        metadata=msgspec.structs.replace(after_status.metadata, labels={"x": "y"}),
        status=PodStatus(phase="Failed"),
    )
    after = client.update(relabel)
    assert isinstance(after, Pod) and after.status is not None
    assert after.labels == {"x": "y"} and after.status.phase == "Running"


def test_merge_and_strategic_patch(client: Client) -> None:
    client.create(deployment("web", replicas=1))
    patched = client.patch("Deployment", "default", "web", {"metadata": {"labels": {"team": "a"}}})
    assert patched.labels == {"team": "a"}
    # null removes a key (RFC 7386)
    patched = client.patch("deploy", "default", "web", {"metadata": {"labels": {"team": None, "x": "1"}}})
    assert patched.labels == {"x": "1"}
    # A strategic patch merges containers by name instead of replacing the list.
    patched = client.patch(
        "Deployment",
        "default",
        "web",
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}},
        strategic=True,
    )
    assert isinstance(patched, Deployment)
    c = patched.spec.template.spec.containers
    assert [(x.name, x.image) for x in c] == [("web", "nginx:2")]
    assert patched.metadata.generation == 2


def test_patch_with_stale_resource_version_conflicts(client: Client) -> None:
    created = client.create(pod("a"))
    client.patch("Pod", "default", "a", {"metadata": {"labels": {"v": "1"}}})
    with pytest.raises(Conflict):
        client.patch(
            "Pod", "default", "a", {"metadata": {"resourceVersion": created.metadata.resourceVersion, "labels": {}}}
        )


def test_json_patch_and_unknown_patch_type(api: Served, client: Client) -> None:
    client.create(pod("a", app="web"))
    url = f"{api.url}/api/v1/namespaces/default/pods/a"
    auth = {"Authorization": f"Bearer {api.token}"}
    ops = [
        {"op": "add", "path": "/metadata/labels/tier", "value": "front"},
        {"op": "remove", "path": "/metadata/labels/app"},
    ]
    r = httpx.patch(
        url, headers={**auth, "Content-Type": "application/json-patch+json"}, content=msgspec.json.encode(ops)
    )
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["labels"] == {"tier": "front"}
    r = httpx.patch(url, headers={**auth, "Content-Type": "text/plain"}, content=b"{}")
    assert r.status_code == 415 and r.json()["reason"] == "UnsupportedMediaType"


def test_delete_then_404(api: Served, client: Client) -> None:
    client.create(pod("a"))
    deleted = client.delete("Pod", "default", "a")
    assert deleted.name == "a"
    with pytest.raises(NotFound, match='pods "a" not found'):
        client.get("Pod", "default", "a")
    with pytest.raises(NotFound):
        client.delete("Pod", "default", "a")
    r = httpx.delete(f"{api.url}/api/v1/namespaces/default/pods/a", headers={"Authorization": f"Bearer {api.token}"})
    assert r.status_code == 404
    assert r.json()["reason"] == "NotFound" and r.json()["status"] == "Failure"


def test_apply_creates_then_updates_keeping_server_fields(client: Client) -> None:
    svc = service("web")
    first = client.apply(svc)
    assert isinstance(first, Service)
    # Fields the server set (here, a clusterIP written through a patch) survive a re-apply.
    client.patch("Service", "default", "web", {"spec": {"clusterIP": "10.254.0.10", "clusterIPs": ["10.254.0.10"]}})
    edited = msgspec.structs.replace(svc, metadata=msgspec.structs.replace(svc.metadata, labels={"app": "web"}))
    second = client.apply(edited)
    assert isinstance(second, Service)
    assert second.labels == {"app": "web"}
    assert second.spec.clusterIP == "10.254.0.10"
    assert second.metadata.uid == first.metadata.uid
    # A label dropped from the manifest is removed on the next apply.
    third = client.apply(svc)
    assert third.labels == {}
    assert third.spec.clusterIP == "10.254.0.10"


# --- watch ------------------------------------------------------------------------------------


def test_watch_from_resource_version_in_order(api: Served, client: Client) -> None:
    client.create(pod("earlier"))
    start_rv = api.store.resource_version  # "0" would mean "the current state" instead
    client.create(pod("a", app="web"))
    a = client.patch("Pod", "default", "a", {"metadata": {"labels": {"app": "web", "v": "2"}}})
    client.create(pod("x", ns="other"))  # another namespace: not part of this watch
    client.delete("Pod", "default", "a")
    events = []
    for ev in client.watch("Pod", "default", start_rv, timeout=5):
        events.append(ev)
        if len(events) == 3:
            break
    assert [(e.type, e.object.name) for e in events] == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert events[1].object.labels == {"app": "web", "v": "2"}
    assert events[1].rv == int(a.metadata.resourceVersion or 0)
    assert [e.rv for e in events] == sorted(e.rv for e in events)


def test_watch_streams_live_events_after_current_state(api: Served, client: Client) -> None:
    client.create(pod("before"))
    client.create(pod("current", app="live"))
    received: list[tuple[str, str]] = []
    listed, done = threading.Event(), threading.Event()

    def consume() -> None:
        with api.client() as c:
            for ev in c.watch("Pod", "default", timeout=10, selector="app=live"):
                received.append((ev.type, ev.object.name))
                listed.set()
                if ev.type == "DELETED":
                    break
        done.set()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    # The watch is open once the current state arrived: what follows is live, however slow the start.
    assert listed.wait(10)
    client.create(pod("later", app="live"))
    client.create(pod("ignored", app="other"))
    client.delete("Pod", "default", "later")
    assert done.wait(10)
    assert received == [("ADDED", "current"), ("ADDED", "later"), ("DELETED", "later")]


def test_watch_without_rv_starts_with_current_objects_and_times_out(client: Client) -> None:
    client.create(pod("a"))
    client.create(pod("b"))
    t0 = time.monotonic()
    events = list(client.watch("Pod", "default", timeout=1))
    assert [(e.type, e.object.name) for e in events] == [("ADDED", "a"), ("ADDED", "b")]
    assert time.monotonic() - t0 < 5


def test_watch_too_old_resource_version_is_gone() -> None:
    with serving(MemoryStore(history=3)) as served, served.client() as c:
        for i in range(6):
            c.create(pod(f"p{i}"))
        with pytest.raises(Gone, match="too old resource version"):
            list(c.watch("Pod", "default", 1, timeout=1))
        r = httpx.get(
            f"{served.url}/api/v1/namespaces/default/pods",
            params={"watch": "1", "resourceVersion": "1"},
            headers={"Authorization": f"Bearer {served.token}"},
        )
        assert r.status_code == 410
        assert r.json()["reason"] == "Gone" and r.json()["code"] == 410


# --- auth, validation, legacy, scale, discovery -----------------------------------------------


def test_token_required_except_healthz(api: Served) -> None:
    assert httpx.get(f"{api.url}/healthz").status_code == 200
    for path in ("/readyz", "/version", "/api/v1/namespaces/default/pods"):
        r = httpx.get(f"{api.url}{path}")
        assert r.status_code == 401, path
        assert r.json()["reason"] == "Unauthorized" and r.json()["kind"] == "Status"
    r = httpx.get(f"{api.url}/api/v1/pods", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    with api.client(token="nope") as bad, pytest.raises(Unauthorized):
        bad.list("Pod")


def test_invalid_service_is_422_with_field_causes(api: Served, client: Client) -> None:
    with pytest.raises(MultiValidationError) as info:
        client.create(service("web", port=70000))
    fields = [e.field for e in info.value.errors]
    assert "spec.ports[0].port" in fields
    assert "Service default/web" in str(info.value)

    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "typed"}, "spec": {"ports": [{"port": "x"}]}}
    r = httpx.post(
        f"{api.url}/api/v1/namespaces/default/services",
        headers={"Authorization": f"Bearer {api.token}"},
        json=bad,
    )
    assert r.status_code == 422
    status = r.json()
    assert status["reason"] == "Invalid" and status["details"]["kind"] == "Service"
    assert status["details"]["causes"][0]["field"] == "spec.ports[0].port"
    with pytest.raises(NotFound):
        client.get("Service", "default", "web")


def test_admission_hook_sets_fields_and_can_refuse() -> None:
    def admit(obj: Object, old: Object | None) -> Object:
        if isinstance(obj, Service):
            if obj.name == "full":
                raise AllocationError("range 10.254.0.0/16 is full")
            if not obj.spec.clusterIP:
                ip = old.spec.clusterIP if isinstance(old, Service) else "10.254.0.77"
                return msgspec.structs.replace(obj, spec=msgspec.structs.replace(obj.spec, clusterIP=ip))
        return obj

    with serving(MemoryStore(), admission=admit) as served, served.client() as c:
        created = c.create(service("web"))
        assert isinstance(created, Service) and created.spec.clusterIP == "10.254.0.77"
        with pytest.raises(MultiValidationError, match="is full"):
            c.create(service("full"))


def test_legacy_ingress_is_accepted_and_stored_as_v1(api: Served, client: Client) -> None:
    doc = {
        "apiVersion": "extensions/v1beta1",
        "kind": "Ingress",
        "metadata": {"name": "web"},
        "spec": {
            "rules": [
                {
                    "host": "web.example",
                    "http": {"paths": [{"path": "/", "backend": {"serviceName": "web", "servicePort": 80}}]},
                }
            ]
        },
    }
    r = httpx.post(
        f"{api.url}/apis/extensions/v1beta1/namespaces/default/ingresses",
        headers={"Authorization": f"Bearer {api.token}"},
        json=doc,
    )
    assert r.status_code == 201, r.text
    # Answered in the version of the path, as stored (v1) underneath.
    assert r.json()["apiVersion"] == "extensions/v1beta1"
    assert r.json()["spec"]["rules"][0]["http"]["paths"][0]["backend"] == {"serviceName": "web", "servicePort": 80}
    ing = client.get("Ingress", "default", "web")
    assert isinstance(ing, Ingress)
    rule = (ing.spec.rules or [])[0]
    assert rule.http is not None
    backend = rule.http.paths[0].backend.service
    assert backend is not None and backend.name == "web" and backend.port is not None and backend.port.number == 80
    r = httpx.patch(
        f"{api.url}/apis/extensions/v1beta1/namespaces/default/ingresses/web",
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/merge-patch+json"},
        json={"metadata": {"labels": {"via": "legacy"}}},
    )
    assert r.status_code == 200, r.text
    assert client.get("Ingress", "default", "web").labels == {"via": "legacy"}
    # The client sends what load_text returns for a legacy manifest (already converted).
    (converted,) = load_text(
        "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: two}\n"
        "spec: {backend: {serviceName: web, servicePort: http}}\n"
    )
    created = client.create(converted)
    assert isinstance(created, Ingress) and created.spec.defaultBackend is not None


def test_scale_subresource(api: Served, client: Client) -> None:
    client.create(deployment("web", replicas=2))
    scale = client.get_scale("default", "web")
    assert scale.kind == "Scale" and scale.apiVersion == "autoscaling/v1"
    assert scale.spec.replicas == 2 and scale.status.selector == "app=web"
    scaled = client.scale("default", "web", 5)
    assert scaled.spec.replicas == 5
    d = client.get("Deployment", "default", "web")
    assert isinstance(d, Deployment) and d.spec.replicas == 5

    # PUT a Scale with a stale resourceVersion: 409; with the current one: accepted.
    auth = {"Authorization": f"Bearer {api.token}"}
    url = f"{api.url}/apis/apps/v1/namespaces/default/deployments/web/scale"
    stale = {"metadata": {"name": "web", "resourceVersion": scale.metadata.resourceVersion}, "spec": {"replicas": 1}}
    assert httpx.put(url, headers=auth, json=stale).status_code == 409
    fresh = {"metadata": {"name": "web", "resourceVersion": d.metadata.resourceVersion}, "spec": {"replicas": 1}}
    r = httpx.put(url, headers=auth, json=fresh)
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 1
    assert r.json()["kind"] == "Scale" and r.json()["apiVersion"] == "autoscaling/v1"
    with pytest.raises(MultiValidationError, match=r"spec\.replicas"):
        client.scale("default", "web", -1)


def test_discovery(api: Served) -> None:
    auth = {"Authorization": f"Bearer {api.token}"}
    assert httpx.get(f"{api.url}/api", headers=auth).json()["versions"] == ["v1"]
    groups = {g["name"]: g for g in httpx.get(f"{api.url}/apis", headers=auth).json()["groups"]}
    assert {"apps", "discovery.k8s.io", "networking.k8s.io", "extensions"} <= set(groups)
    assert groups["networking.k8s.io"]["preferredVersion"]["groupVersion"] == "networking.k8s.io/v1"
    core = httpx.get(f"{api.url}/api/v1", headers=auth).json()
    pods = next(r for r in core["resources"] if r["name"] == "pods")
    assert pods["kind"] == "Pod" and pods["namespaced"] and "watch" in pods["verbs"] and "po" in pods["shortNames"]
    apps = httpx.get(f"{api.url}/apis/apps/v1", headers=auth).json()
    assert {"deployments", "deployments/scale", "replicasets"} <= {r["name"] for r in apps["resources"]}
    assert httpx.get(f"{api.url}/apis/nothing.example/v1", headers=auth).status_code == 404
    assert httpx.get(f"{api.url}/api/v1/namespaces/default/widgets", headers=auth).status_code == 404
    assert httpx.get(f"{api.url}/version", headers=auth).json()["major"] == "1"


def test_start_refuses_non_loopback_address() -> None:
    app = make_app(MemoryStore(), default_cluster(), token="t")
    with pytest.raises(ValueError, match="loopback"):
        asyncio.run(start(app, host="0.0.0.0"))


def test_https_with_the_generated_certificate(tmp_path: Path) -> None:
    cert, key = ensure_tls(tmp_path)
    with serving(MemoryStore(), ssl_context=server_ssl_context(cert, key)) as served:
        with Client(served.url, served.token, ca_file=cert) as c:
            c.create(pod("a"))
            assert names(c.list("Pod")) == ["a"]
        # Without the CA the certificate is not trusted.
        with Client(served.url, served.token) as c, pytest.raises(httpx.ConnectError):
            c.list("Pod")
