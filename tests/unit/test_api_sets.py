"""StatefulSets and DaemonSets over the API: discovery with short names, Tables, validation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import msgspec
import pytest
from test_api import Served, serving
from test_api_kubectl import TABLE, as_text

from kins.api.load import load_text
from kins.store.memory import MemoryStore
from kins.views.table import format_table

SETS = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: default}
spec:
  serviceName: nginx
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: nginx}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: busybox}]}
"""


@pytest.fixture
def api() -> Iterator[Served]:
    with serving(MemoryStore(history=1000)) as s:
        yield s


def http(api: Served) -> httpx.Client:
    return httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.token}"}, timeout=10)


def test_discovery_lists_the_sets_with_short_names(api: Served) -> None:
    with http(api) as h:
        res = {r["name"]: r for r in h.get("/apis/apps/v1").json()["resources"]}
    assert res["statefulsets"]["kind"] == "StatefulSet" and res["statefulsets"]["shortNames"] == ["sts"]
    assert res["daemonsets"]["kind"] == "DaemonSet" and res["daemonsets"]["shortNames"] == ["ds"]
    assert res["statefulsets"]["namespaced"] and "watch" in res["daemonsets"]["verbs"]
    assert "statefulsets/status" in res and "daemonsets/status" in res


def test_tables_have_the_cells_of_kins_get(api: Served) -> None:
    c = api.client()
    for o in load_text(SETS):
        c.create(o)
    with http(api) as h:
        for kind, plural in [("StatefulSet", "statefulsets"), ("DaemonSet", "daemonsets")]:
            before = datetime.now(UTC)
            table = h.get(f"/apis/apps/v1/namespaces/default/{plural}", headers={"Accept": TABLE}).json()
            after = datetime.now(UTC)
            objs = c.list(kind, "default")
            for wide in (False, True):
                expected = {format_table(kind, objs, wide=wide, all_namespaces=False, now=t) for t in (before, after)}
                assert as_text(table, wide) in expected
    assert as_text(table, False).split()[:9] == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "NODE",
        "SELECTOR",
        "AGE",
    ]


def test_invalid_set_is_refused_with_its_field(api: Served) -> None:
    bad = load_text(SETS.split("---")[0].replace("matchLabels: {app: web}", "matchLabels: {app: db}"))[0]
    with http(api) as h:
        r = h.post(
            "/apis/apps/v1/namespaces/default/statefulsets",
            content=msgspec.json.encode(bad),
            headers={"Content-Type": "application/json"},
        )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["reason"] == "Invalid"
    assert any(c["field"] == "spec.template.metadata.labels" for c in body["details"]["causes"])


def test_statefulset_scale_subresource(api: Served) -> None:
    """``kubectl scale sts`` goes through ``/scale``, as for Deployments."""
    c = api.client()
    for obj in load_text(SETS):
        c.create(obj)
    path = "/apis/apps/v1/namespaces/default/statefulsets/web/scale"
    merge = {"Content-Type": "application/merge-patch+json"}
    with http(api) as h:
        res = {r["name"] for r in h.get("/apis/apps/v1").json()["resources"]}
        assert "statefulsets/scale" in res and "daemonsets/scale" not in res
        got = h.get(path).json()
        assert got["kind"] == "Scale" and got["spec"]["replicas"] == 2 and got["status"]["selector"] == "app=web"
        r = h.patch(path, content=b'{"spec":{"replicas":5}}', headers=merge)
        assert r.status_code == 200, r.text
        bad = h.patch(path, content=b'{"spec":{"replicas":-1}}', headers=merge)
        assert bad.status_code == 422
    sts = c.get("StatefulSet", "default", "web")
    assert sts is not None and sts.spec.replicas == 5  # type: ignore[attr-defined]
