"""Server-side apply, managed fields and dry runs through the HTTP API (httpx on loopback)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from test_api import Served, deployment, serving

from kins.api.config import default_cluster
from kins.api.load import parse_text
from kins.daemon.main import admission
from kins.store.base import Store
from kins.store.memory import MemoryStore
from kins.store.sqlite import SqliteStore

APPLY = {"Content-Type": "application/apply-patch+yaml"}
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: {app: web}
spec:
  replicas: %(replicas)d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: %(image)s
        ports: [{containerPort: 80}]
"""


def manifest(replicas: int = 2, image: str = "nginx") -> str:
    return MANIFEST % {"replicas": replicas, "image": image}


@pytest.fixture(params=["memory", "sqlite"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    store: Store = MemoryStore(history=1000) if request.param == "memory" else SqliteStore(tmp_path / "s.db")
    with serving(store, admission=admission(store, default_cluster())) as s:
        yield s
    if isinstance(store, SqliteStore):
        store.close()


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {served.token}", "User-Agent": "tester/1.0 (linux)"}
    with httpx.Client(base_url=served.url, headers=headers, timeout=10) as c:
        yield c


def apply(http: httpx.Client, body: str, manager: str = "kubectl", **params: str) -> httpx.Response:
    return http.patch(f"{DEPLOY}/web", params={"fieldManager": manager, **params}, content=body, headers=APPLY)


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields") or []}


def test_apply_creates_then_merges_and_prunes(http: httpx.Client) -> None:
    r = apply(http, manifest())
    assert r.status_code == 201, r.text
    entry = managers(r.json())[("kubectl", "Apply")]
    assert entry["fieldsType"] == "FieldsV1" and entry["apiVersion"] == "apps/v1"
    assert TIME.match(entry["time"])
    assert entry["fieldsV1"]["f:spec"]["f:replicas"] == {}
    # The same configuration again: nothing written.
    rv = r.json()["metadata"]["resourceVersion"]
    r = apply(http, manifest())
    assert r.status_code == 200 and r.json()["metadata"]["resourceVersion"] == rv
    # Dropping the labels of the object: gone, since nobody else set them.
    body = manifest().replace("  labels: {app: web}\n", "", 1)
    r = apply(http, body)
    assert r.status_code == 200, r.text
    assert "labels" not in r.json()["metadata"]
    assert "f:labels" not in managers(r.json())[("kubectl", "Apply")]["fieldsV1"].get("f:metadata", {})


def test_apply_takes_json_too(http: httpx.Client) -> None:
    body = msgspec.json.encode(parse_text(manifest(), "test")[0])
    r = http.patch(f"{DEPLOY}/web", params={"fieldManager": "ci"}, content=body, headers=APPLY)
    assert r.status_code == 201, r.text
    assert ("ci", "Apply") in managers(r.json())


def test_a_scaled_replica_count_conflicts_until_forced(http: httpx.Client) -> None:
    assert apply(http, manifest()).status_code == 201
    r = http.patch(
        f"{DEPLOY}/web/scale",
        json={"spec": {"replicas": 5}},
        headers={"Content-Type": "application/merge-patch+json", "User-Agent": "kubectl/v1.33.0 (linux/amd64)"},
    )
    assert r.status_code == 200, r.text
    scaled = http.get(f"{DEPLOY}/web").json()
    entry = managers(scaled)[("kubectl", "Update")]
    assert entry["subresource"] == "scale"
    assert entry["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    r = apply(http, manifest())
    assert r.status_code == 409
    status = r.json()
    assert status["reason"] == "Conflict" and status["code"] == 409
    assert status["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas'
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl" with subresource "scale" using apps/v1',
            "field": ".spec.replicas",
        }
    ]
    assert http.get(f"{DEPLOY}/web").json()["spec"]["replicas"] == 5  # nothing half-applied
    r = apply(http, manifest(), force="true")
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["replicas"] == 2
    assert ("kubectl", "Update") not in managers(r.json())


def test_apply_needs_a_field_manager_and_force_only_applies(http: httpx.Client) -> None:
    r = http.patch(f"{DEPLOY}/web", content=manifest(), headers=APPLY)
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "fieldManager"
    assert apply(http, manifest()).status_code == 201
    r = http.patch(
        f"{DEPLOY}/web",
        params={"force": "true"},
        json={"spec": {}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 422
    r = apply(http, manifest().replace("kind: Deployment", "kind: Service"))
    assert r.status_code == 400
    r = apply(http, manifest().replace("  labels:", "  managedFields: [{}]\n  labels:"))
    assert r.status_code == 400 and "managedFields must be nil" in r.json()["message"]


def test_a_list_element_without_its_key_is_refused(http: httpx.Client) -> None:
    body = manifest().replace("      - name: web\n", "      - name: web\n        env: [{value: x}]\n")
    r = apply(http, body)
    assert r.status_code == 422
    assert "missing key field(s) name" in r.json()["message"]
    assert http.get(f"{DEPLOY}/web").status_code == 404


def test_every_write_keeps_managed_fields(served: Served, http: httpx.Client) -> None:
    r = http.post(DEPLOY, params={"fieldManager": "creator"}, json=msgspec.to_builtins(deployment("web")))
    assert r.status_code == 201, r.text
    created = managers(r.json())[("creator", "Update")]
    assert TIME.match(created["time"]) and "subresource" not in created
    doc = r.json()
    doc["spec"]["replicas"] = 4
    r = http.put(f"{DEPLOY}/web", json=doc)  # no fieldManager: the User-Agent names the writer
    assert r.status_code == 200, r.text
    owners = managers(r.json())
    assert owners[("tester", "Update")]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in owners[("creator", "Update")]["fieldsV1"]["f:spec"]
    doc = r.json()
    doc["status"] = {"replicas": 4, "readyReplicas": 4}
    r = http.put(f"{DEPLOY}/web/status", params={"fieldManager": "controller"}, json=doc)
    assert r.status_code == 200, r.text
    status_entry = managers(r.json())[("controller", "Update")]
    assert status_entry["subresource"] == "status"
    assert set(status_entry["fieldsV1"]) == {"f:status"}
    # A server-side apply after those: the applier and the updaters side by side.
    r = apply(http, manifest(replicas=4))
    assert r.status_code == 200, r.text
    ops = [(e["manager"], e["operation"]) for e in r.json()["metadata"]["managedFields"]]
    assert ops[0] == ("kubectl", "Apply")  # appliers first, as the API orders them
    # A client may strip them, even while it changes something.
    doc = r.json()
    doc["metadata"]["managedFields"] = [{}]
    doc["spec"]["replicas"] = 6
    r = http.put(f"{DEPLOY}/web", params={"fieldManager": "resetter"}, json=doc)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"].get("managedFields") is None


def test_dry_run_changes_nothing_on_any_verb(served: Served, http: httpx.Client) -> None:
    dry = {"dryRun": "All"}
    r = apply(http, manifest(), **dry)
    assert r.status_code == 201 and r.json()["metadata"]["uid"]
    assert http.get(f"{DEPLOY}/web").status_code == 404
    assert apply(http, manifest()).status_code == 201
    live = http.get(f"{DEPLOY}/web").json()
    rv, gen = live["metadata"]["resourceVersion"], live["metadata"]["generation"]
    r = apply(http, manifest(replicas=3), **dry)
    assert r.status_code == 200
    would = r.json()
    assert would["spec"]["replicas"] == 3
    assert would["metadata"]["generation"] == gen + 1  # as the write would have stored it
    assert would["metadata"]["resourceVersion"] == rv
    r = http.patch(
        f"{DEPLOY}/web",
        params=dry,
        json={"spec": {"replicas": 9}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 9
    doc = dict(live, spec=dict(live["spec"], replicas=8))
    assert http.put(f"{DEPLOY}/web", params=dry, json=doc).json()["spec"]["replicas"] == 8
    assert http.delete(f"{DEPLOY}/web", params=dry).status_code == 200
    after = http.get(f"{DEPLOY}/web").json()
    assert after == live
    assert served.store.resource_version == int(rv)


def test_dry_run_shows_an_allocated_cluster_ip_without_holding_it(http: httpx.Client) -> None:
    svc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    url = "/api/v1/namespaces/default/services"
    r = http.post(url, params={"dryRun": "All"}, json=svc)
    assert r.status_code == 201, r.text
    shown = r.json()["spec"]["clusterIP"]
    assert shown
    assert http.get(f"{url}/web").status_code == 404
    r = http.patch(f"{url}/web", params={"fieldManager": "k", "dryRun": "All"}, json=svc, headers=APPLY)
    assert r.status_code == 201 and r.json()["spec"]["clusterIP"] == shown
    # Asking for the address the dry run showed succeeds: the dry run held nothing.
    svc["spec"]["clusterIP"] = shown
    r = http.post(url, json=svc)
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["clusterIP"] == shown


def test_apply_to_status_owns_only_status(http: httpx.Client) -> None:
    assert apply(http, manifest()).status_code == 201
    body = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nstatus: {replicas: 2, readyReplicas: 1}\n"
    r = http.patch(f"{DEPLOY}/web/status", params={"fieldManager": "ctl"}, content=body, headers=APPLY)
    assert r.status_code == 200, r.text
    assert r.json()["status"]["readyReplicas"] == 1
    entry = managers(r.json())[("ctl", "Apply")]
    assert entry["subresource"] == "status"
    assert set(entry["fieldsV1"]) == {"f:status"}


def test_an_object_written_without_managed_fields_conflicts_before_first_apply(
    served: Served, http: httpx.Client
) -> None:
    served.store.create(deployment("web", replicas=3))  # as an in-process controller writes
    r = apply(http, manifest(replicas=1))
    assert r.status_code == 409
    assert r.json()["message"] == (
        'Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas'
    )
    r = apply(http, manifest(replicas=3))
    assert r.status_code == 200, r.text
    assert {e["manager"] for e in r.json()["metadata"]["managedFields"]} == {"kubectl", "before-first-apply"}


def test_an_object_a_controller_wrote_stays_untracked_on_updates(served: Served, http: httpx.Client) -> None:
    served.store.create(deployment("web"))  # straight to the store, as the controllers write
    doc = http.get(f"{DEPLOY}/web").json()
    doc["status"] = {"replicas": 1}
    r = http.put(f"{DEPLOY}/web/status", json=doc)
    assert r.status_code == 200, r.text
    assert "managedFields" not in r.json()["metadata"]
    r = http.patch(
        f"{DEPLOY}/web", json={"spec": {"replicas": 2}}, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert r.status_code == 200 and "managedFields" not in r.json()["metadata"]


def test_dry_run_in_delete_options_deletes_nothing(http: httpx.Client) -> None:
    assert apply(http, manifest()).status_code == 201
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]}
    r = http.request("DELETE", f"{DEPLOY}/web", json=options)
    assert r.status_code == 200, r.text
    r = http.request("DELETE", DEPLOY, json=options)
    assert r.status_code == 200 and [o["metadata"]["name"] for o in r.json()["items"]] == ["web"]
    assert http.get(f"{DEPLOY}/web").status_code == 200
    assert http.request("DELETE", f"{DEPLOY}/web", json={"kind": "DeleteOptions"}).status_code == 200
    assert http.get(f"{DEPLOY}/web").status_code == 404


def test_dry_run_create_completes_a_generate_name(http: httpx.Client) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "cfg-"}, "data": {"a": "1"}}
    r = http.post("/api/v1/namespaces/default/configmaps", params={"dryRun": "All"}, json=cm)
    assert r.status_code == 201, r.text
    assert re.match(r"^cfg-[a-z0-9]{5}$", r.json()["metadata"]["name"])
    assert http.get("/api/v1/namespaces/default/configmaps").json()["items"] == []
