"""kubectl 1.32 and 1.33 speak protobuf to the API: their generators' bodies, typed reads (describe,
rollout history), Status errors; protobuf watch streams; JSON clients unchanged."""

from __future__ import annotations

import json
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml_rs
from kubectl_bin import NEWEST, Kubectl, TlsApi, tls_api

import kins.apiserver.server as api_server
from kins.api.resources import BY_PATH
from kins.apiserver import protobuf as pb
from kins.apiserver.auth import ensure_tls
from kins.store.memory import MemoryStore

PROTO = pb.MEDIA_TYPE
JSON = "application/json"


class Recorder:
    """Every request the resource handler saw, with its body and the answer's status and type."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def posts(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.seen if r["method"] == "POST" and r["path"] == path]

    def matching(self, method: str, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.seen if r["method"] == method and r["path"] == path]


# kubectl 1.32 is the first whose typed client sends and asks for protobuf.
PROTOBUF_KUBECTLS = ["1.32", NEWEST]


@pytest.fixture(scope="module", params=PROTOBUF_KUBECTLS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def recorder(version: str) -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, recorder: Recorder, version: str) -> Iterator[TlsApi]:
    """One API per kubectl version, every request recorded."""
    original = api_server.handle_resource

    async def recording(request: Any) -> Any:
        entry = {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "content_type": request.headers.get("Content-Type", ""),
            "accept": request.headers.get("Accept", ""),
            "body": await request.read(),  # aiohttp keeps it for the handler
            "status": None,  # refused: the error middleware answers
            "response_type": None,
        }
        with recorder.lock:
            recorder.seen.append(entry)
        resp = await original(request)
        entry["status"], entry["response_type"] = resp.status, resp.headers.get("Content-Type", "")
        return resp

    mp = pytest.MonkeyPatch()
    mp.setattr(api_server, "handle_resource", recording)  # make_app routes through the module global
    try:
        with tls_api(MemoryStore(), tmp_path_factory.mktemp("pbapi")) as running:
            yield running
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def k(api: TlsApi, version: str) -> Kubectl:
    return api.kubectl(version)


def _drop_nulls(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {key: _drop_nulls(v) for key, v in doc.items() if v is not None}
    if isinstance(doc, list):
        return [_drop_nulls(v) for v in doc]
    return doc


def _missing(want: Any, got: Any, path: str = "") -> list[str]:
    """Where ``got`` lacks or differs from what ``want`` holds (``got`` may hold more)."""
    if isinstance(want, dict) and isinstance(got, dict):
        out = []
        for key, v in want.items():
            if key not in got:
                out.append(f"{path}.{key}: missing")
            else:
                out.extend(_missing(v, got[key], f"{path}.{key}"))
        return out
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [m for i, (a, b) in enumerate(zip(want, got, strict=True)) for m in _missing(a, b, f"{path}[{i}]")]
    return [] if want == got else [f"{path}: {want!r} != {got!r}"]


# (kubectl create arguments, the collection path it posts to)
GENERATORS: list[tuple[list[str], str]] = [
    (["namespace", "t1"], "/api/v1/namespaces"),
    (
        ["deployment", "d1", "--image=nginx", "--replicas=0", "--port=80"],
        "/apis/apps/v1/namespaces/default/deployments",
    ),
    (
        ["secret", "generic", "s1", "--from-literal=a=b", "--from-literal=bin=\x01\x02"],
        "/api/v1/namespaces/default/secrets",
    ),
    (["configmap", "c1", "--from-literal=a=b"], "/api/v1/namespaces/default/configmaps"),
    (["service", "clusterip", "svc1", "--tcp=80:8080", "--tcp=53:dns"], "/api/v1/namespaces/default/services"),
    (["job", "j1", "--image=busybox", "--", "echo", "hi"], "/apis/batch/v1/namespaces/default/jobs"),
    (["cronjob", "cj1", "--image=busybox", "--schedule=*/5 * * * *"], "/apis/batch/v1/namespaces/default/cronjobs"),
    (
        ["ingress", "ing1", "--rule=foo.com/bar*=svc1:80,tls=sec", "--class=nginx"],
        "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
    ),
    (["serviceaccount", "sa1"], "/api/v1/namespaces/default/serviceaccounts"),
    (
        ["role", "r1", "--verb=get,list", "--resource=pods"],
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
    ),
    (["clusterrole", "cr1", "--verb=get", "--resource=pods"], "/apis/rbac.authorization.k8s.io/v1/clusterroles"),
    (
        ["rolebinding", "rb1", "--role=r1", "--user=u", "--serviceaccount=default:sa1"],
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
    ),
    (
        ["poddisruptionbudget", "pdb1", "--selector=app=x", "--min-available=50%"],
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
    ),
    (["priorityclass", "pc1", "--value=100", "--description=high"], "/apis/scheduling.k8s.io/v1/priorityclasses"),
    (["quota", "q1", "--hard=pods=10,requests.cpu=2"], "/api/v1/namespaces/default/resourcequotas"),
]


def _served(collection: str) -> tuple[str, str] | None:
    """(group/version, plural) of a collection path when the API serves it."""
    parts = collection.strip("/").split("/")
    gv = parts[1] if parts[0] == "api" else f"{parts[1]}/{parts[2]}"
    plural = parts[-1]
    return (gv, plural) if (gv, plural) in BY_PATH else None


@pytest.mark.parametrize(("args", "collection"), GENERATORS, ids=[a[0] for a, _ in GENERATORS])
def test_generator_body_decodes_to_what_kubectl_would_send_as_json(
    k: Kubectl, recorder: Recorder, args: list[str], collection: str
) -> None:
    """The protobuf body kubectl sends decodes to exactly the JSON kubectl prints for the
    same object (``--dry-run=client -o json``, Go's JSON of it); a served kind is created and
    reads back with all of it."""
    cut = args.index("--") if "--" in args else len(args)
    dry = [*args[:cut], "--dry-run=client", "-o", "json", *args[cut:]]
    as_json = _drop_nulls(json.loads(k("create", *dry)))
    p = k.run("create", *args, check=False)
    (post,) = recorder.posts(collection)
    assert post["content_type"] == PROTO
    assert post["accept"].startswith(PROTO)
    assert post["body"].startswith(pb.MAGIC)
    decoded = pb.decode_object(post["body"])
    assert decoded == as_json
    served = _served(collection)
    if served is None:
        # Not (yet) a kind the API stores: refused by path, after the body was read above.
        assert p.returncode != 0 and "could not find the requested resource" in p.stderr
        return
    assert p.returncode == 0, p.stderr
    resource = BY_PATH[served]
    name = as_json["metadata"]["name"]
    # The answer to the create was protobuf too (kubectl prints "<kind>/<name> created" from it).
    assert post["status"] == 201 and post["response_type"] == PROTO
    assert p.stdout.strip().endswith(f"/{name} created")
    got = yaml_rs.loads(k("get", f"{resource.plural}.{resource.group}".rstrip("."), name, "-o", "yaml"))
    assert isinstance(got, dict)
    assert _missing(as_json, got) == []


def test_create_output_names_the_object(k: Kubectl) -> None:
    out = k("create", "configmap", "named", "--from-literal=x=y")
    assert out.strip() == "configmap/named created"


def test_typed_reads_decode_protobuf_answers(k: Kubectl, recorder: Recorder) -> None:
    """describe and rollout history read through kubectl's typed client: protobuf GETs and lists."""
    k("create", "deployment", "web", "--image=nginx", "--replicas=2")
    k("run", "p1", "--image=nginx", "--labels=app=p1")
    out = k("describe", "pod", "p1")
    assert "Name:" in out and "p1" in out and "nginx" in out
    gets = recorder.matching("GET", "/api/v1/namespaces/default/pods/p1")
    assert any(r["accept"].startswith(PROTO) and r["response_type"] == PROTO for r in gets)
    out = k("describe", "deployment", "web")
    assert "Replicas:" in out and "2 desired" in out
    lists = recorder.matching("GET", "/api/v1/namespaces/default/events")
    assert lists and all(r["response_type"] == PROTO for r in lists)
    out = k("rollout", "history", "deployment/web")
    assert "deployment.apps/web" in out


def test_status_errors_in_protobuf(api: TlsApi, k: Kubectl, recorder: Recorder) -> None:
    k("create", "namespace", "dup")
    p = k.run("create", "namespace", "dup", check=False)
    assert p.returncode != 0
    # kubectl read the reason and message out of the protobuf Status
    assert 'Error from server (AlreadyExists): namespaces "dup" already exists' in p.stderr
    sent = recorder.posts("/api/v1/namespaces")[-1]
    with _client(api) as c:
        again = c.post(
            "/api/v1/namespaces", content=sent["body"], headers={"Content-Type": PROTO, "Accept": sent["accept"]}
        )
    assert again.status_code == 409 and again.headers["content-type"] == PROTO
    status = pb.decode_object(again.content)
    assert (status["kind"], status["reason"], status["details"]["name"]) == ("Status", "AlreadyExists", "dup")
    # invalid: the same field causes as for JSON
    p = k.run("create", "deployment", "Bad_Name", "--image=nginx", check=False)
    assert p.returncode != 0 and "Invalid" in p.stderr and "metadata.name" in p.stderr


def _client(api: TlsApi) -> httpx.Client:
    cert, _ = ensure_tls(api.kubeconfig.parent)
    tls = ssl.create_default_context(cafile=str(cert))
    return httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.token}"}, verify=tls, timeout=20)


def _proto_pod(name: str) -> bytes:
    doc = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "labels": {"w": "1"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    return pb.encode_object(doc)


def test_protobuf_and_json_bodies_are_checked_alike(api: TlsApi) -> None:
    bad = {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "bad"}, "spec": {"ports": [{"port": 70000}]}}
    with _client(api) as c:
        path = "/api/v1/namespaces/default/services"
        as_json = c.post(path, json=bad)
        as_proto = c.post(
            path, content=pb.encode_object(bad), headers={"Content-Type": PROTO, "Accept": "application/json"}
        )
    assert as_json.status_code == as_proto.status_code == 422
    assert as_json.json() == as_proto.json()


def test_undecodable_body_is_a_clear_400(api: TlsApi) -> None:
    with _client(api) as c:
        r = c.post(
            "/api/v1/namespaces/default/configmaps", content=b"k8s\x00\x0a\x40junk", headers={"Content-Type": PROTO}
        )
    assert r.status_code == 400
    status = r.json()
    assert status["reason"] == "BadRequest"
    assert status["message"].startswith("the request body is not a valid protobuf object")


def test_not_found_status_in_protobuf(api: TlsApi) -> None:
    with _client(api) as c:
        r = c.get("/api/v1/namespaces/default/pods/nope", headers={"Accept": f"{PROTO}, application/json"})
    assert r.status_code == 404 and r.headers["content-type"] == PROTO
    status = pb.decode_object(r.content)
    assert status["kind"] == "Status" and status["reason"] == "NotFound" and status["code"] == 404


def test_lists_in_protobuf(api: TlsApi) -> None:
    with _client(api) as c:
        c.post("/api/v1/namespaces/default/pods", content=_proto_pod("listed"), headers={"Content-Type": PROTO})
        r = c.get("/api/v1/namespaces/default/pods", headers={"Accept": PROTO})
        as_json = c.get("/api/v1/namespaces/default/pods").json()
    assert r.headers["content-type"] == PROTO
    lst = pb.decode_object(r.content)
    assert lst["kind"] == "PodList" and lst["metadata"]["resourceVersion"] == as_json["metadata"]["resourceVersion"]
    assert [p["metadata"]["name"] for p in lst["items"]] == [p["metadata"]["name"] for p in as_json["items"]]
    assert "listed" in [p["metadata"]["name"] for p in lst["items"]]


def test_kinds_without_a_message_answer_json_or_406(api: TlsApi) -> None:
    path = "/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies"
    with _client(api) as c:
        only = c.get(path, headers={"Accept": PROTO})
        either = c.get(path, headers={"Accept": f"{PROTO},application/json"})
    assert only.status_code == 406
    assert pb.decode_object(only.content)["reason"] == "NotAcceptable"
    assert either.status_code == 200 and either.headers["content-type"].startswith("application/json")
    assert either.json()["kind"] == "ClusterNetworkPolicyList"


def test_tables_stay_json(k: Kubectl) -> None:
    out = k("get", "pods")
    assert out.startswith("NAME")


def _read_frames(resp: httpx.Response, want: int, deadline: float) -> list[dict[str, Any]]:
    buf = b""
    events: list[dict[str, Any]] = []
    for chunk in resp.iter_raw():
        buf += chunk
        while len(buf) >= 4:
            (size,) = struct.unpack(">I", buf[:4])
            if len(buf) < 4 + size:
                break
            events.append(pb.decode_message(pb.WATCH_EVENT, buf[4 : 4 + size]))
            buf = buf[4 + size :]
        if len(events) >= want or time.monotonic() > deadline:
            break
    return events


def test_watch_streams_protobuf_frames(api: TlsApi) -> None:
    with _client(api) as c, _client(api) as writer:
        first = writer.post(
            "/api/v1/namespaces/default/pods", content=_proto_pod("w0"), headers={"Content-Type": PROTO}
        )
        assert first.status_code == 201
        rv = first.json()["metadata"]["resourceVersion"]
        url = f"/api/v1/namespaces/default/pods?watch=true&labelSelector=w%3D1&resourceVersion={rv}&timeoutSeconds=10"
        with c.stream("GET", url, headers={"Accept": f"{PROTO};stream=watch, {PROTO}, application/json"}) as resp:
            assert resp.headers["content-type"] == pb.WATCH_MEDIA_TYPE
            for name in ("w1", "w2"):
                r = writer.post(
                    "/api/v1/namespaces/default/pods", content=_proto_pod(name), headers={"Content-Type": PROTO}
                )
                assert r.status_code == 201
            writer.delete("/api/v1/namespaces/default/pods/w1", params={"gracePeriodSeconds": "0"})
            events = _read_frames(resp, 3, time.monotonic() + 10)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w1"),
        ("ADDED", "w2"),
        ("DELETED", "w1"),
    ]
    assert all(e["object"]["kind"] == "Pod" and e["object"]["apiVersion"] == "v1" for e in events)


def test_kubectl_get_watch_still_works(api: TlsApi, k: Kubectl) -> None:
    p = k.run("get", "pods", "-w", "--request-timeout=2s", check=False, timeout=20)
    assert "NAME" in p.stdout


def test_the_official_python_client_still_speaks_json(api: TlsApi, recorder: Recorder) -> None:
    from kubernetes import client, config

    c = config.new_client_from_config(config_file=str(api.kubeconfig))
    core = client.CoreV1Api(c)
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="from-python"), data={"k": "v"})
    core.create_namespaced_config_map("default", body)
    got = core.read_namespaced_config_map("from-python", "default")
    assert got.data == {"k": "v"}
    names = [cm.metadata.name for cm in core.list_namespaced_config_map("default").items]
    assert "from-python" in names
    seen = recorder.matching("GET", "/api/v1/namespaces/default/configmaps/from-python")
    assert seen and all(r["response_type"].startswith("application/json") for r in seen)


def test_accept_preference_by_q(api: TlsApi) -> None:
    with _client(api) as c:
        r = c.get("/api/v1/namespaces", headers={"Accept": f"{PROTO};q=0.5, application/json"})
        assert r.headers["content-type"].startswith("application/json")
        r = c.get("/api/v1/namespaces", headers={"Accept": f"application/json;q=0.5, {PROTO}"})
        assert r.headers["content-type"] == PROTO


def test_kubectl_follows_a_protobuf_watch(k: Kubectl, recorder: Recorder) -> None:
    """``kubectl logs deployment/x`` with no pod yet watches pods through its typed client (in
    protobuf) until one appears: the ADDED event must reach it, decoded."""
    k("create", "deployment", "later", "--image=nginx")

    def create_pod() -> None:
        time.sleep(2)
        k("run", "later-1", "--image=nginx", "--labels=app=later")

    writer = threading.Thread(target=create_pod)
    started = time.monotonic()
    writer.start()
    p = k.run("logs", "deployment/later", "--pod-running-timeout=30s", check=False, timeout=60)
    waited = time.monotonic() - started
    writer.join()
    # It stopped waiting when the pod appeared; reading logs then fails here (no kubelet behind
    # this API), which is past the watch.
    assert 1.5 < waited < 25, p.stderr
    assert "no kubelet" in p.stderr and "timed out" not in p.stderr
    watches = [
        r
        for r in recorder.matching("GET", "/api/v1/namespaces/default/pods")
        if r["accept"].startswith(PROTO) and r["query"].get("watch") == "true"
    ]
    assert watches, "kubectl did not watch in protobuf"


def test_reads_follow_writes_in_both_formats(api: TlsApi) -> None:
    """Encoded objects are reused by resourceVersion: a write must show in the next read."""
    path = "/api/v1/namespaces/default/configmaps"
    with _client(api) as c:
        c.post(path, json={"metadata": {"name": "changing"}, "data": {"v": "1"}})
        for accept in (PROTO, JSON):
            c.get(f"{path}/changing", headers={"Accept": accept})
            c.get(path, headers={"Accept": accept})
        patch = {"data": {"v": "2"}}
        c.patch(f"{path}/changing", json=patch, headers={"Content-Type": "application/merge-patch+json"})
        got = [
            pb.decode_object(c.get(f"{path}/changing", headers={"Accept": PROTO}).content)["data"],
            c.get(f"{path}/changing").json()["data"],
        ]
        listed = pb.decode_object(c.get(path, headers={"Accept": PROTO}).content)["items"]
        listed_json = c.get(path).json()["items"]
    assert got == [{"v": "2"}, {"v": "2"}]
    assert [i["data"] for i in listed if i["metadata"]["name"] == "changing"] == [{"v": "2"}]
    assert [i["data"] for i in listed_json if i["metadata"]["name"] == "changing"] == [{"v": "2"}]


def test_watch_bookmarks_in_protobuf(api: TlsApi) -> None:
    with _client(api) as c, _client(api) as writer:
        rv = c.get("/api/v1/namespaces/default/pods", params={"limit": "1"}).json()["metadata"]["resourceVersion"]
        query = f"watch=true&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=10"
        url = f"/api/v1/namespaces/default/pods?{query}"
        with c.stream("GET", url, headers={"Accept": PROTO}) as resp:
            # a write of another kind: the pods watch learns how far it is current
            r = writer.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "bookmarked"}})
            assert r.status_code == 201
            written = int(r.json()["metadata"]["resourceVersion"])
            (event,) = _read_frames(resp, 1, time.monotonic() + 10)
    assert event["type"] == "BOOKMARK"
    assert event["object"]["kind"] == "Pod" and int(event["object"]["metadata"]["resourceVersion"]) >= written
