"""What kubectl needs from the API, over HTTP: server-side Tables (the same cells as
``kins get``), OpenAPI v3 documents that let kubectl leave validation to the server, the
``fieldValidation`` parameter, defaulted fields, legacy Ingress in its own version."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from test_api import Served, deployment, pod, service, serving

from kins.api.core import Event, EventSource, ObjectReference, PodStatus
from kins.api.meta import ObjectMeta
from kins.store.memory import MemoryStore
from kins.views.common import tabwrite
from kins.views.table import COLUMNS, format_table

TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


@pytest.fixture
def api() -> Iterator[Served]:
    with serving(MemoryStore(history=1000)) as s:
        yield s


def http(api: Served) -> httpx.Client:
    return httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.token}"}, timeout=10)


def as_text(table: dict[str, Any], wide: bool) -> str:
    """The table printed the way kubectl prints one (priority-1 columns only with -o wide)."""
    keep = [i for i, c in enumerate(table["columnDefinitions"]) if wide or c["priority"] == 0]
    lines = ["\t".join(table["columnDefinitions"][i]["name"].upper() for i in keep)]
    lines += ["\t".join(str(row["cells"][i]) for i in keep) for row in table["rows"]]
    return tabwrite("\n".join(lines) + "\n", minwidth=6, padding=3)


def test_list_as_table_has_the_cells_of_kins_get(api: Served) -> None:
    c = api.client()
    p = pod("web-1", node="node1", app="web")
    p.status = PodStatus(phase="Running", podIP="172.30.76.2")
    c.create(p)
    c.create(pod("web-2", app="web"))
    svc = service("web")
    svc.spec.clusterIP = "10.254.0.10"
    c.create(svc)
    c.create(deployment("web", replicas=2))
    with http(api) as h:
        for kind, path in [
            ("Pod", "/api/v1/namespaces/default/pods"),
            ("Service", "/api/v1/namespaces/default/services"),
            ("Deployment", "/apis/apps/v1/namespaces/default/deployments"),
        ]:
            before = datetime.now(UTC)
            r = h.get(path, headers={"Accept": TABLE})
            after = datetime.now(UTC)
            assert r.status_code == 200, r.text
            table = r.json()
            assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
            names, n_wide, _ = COLUMNS[kind]
            assert [col["name"] for col in table["columnDefinitions"]] == list(names)
            assert [col["priority"] for col in table["columnDefinitions"]].count(1) == n_wide
            objs = c.list(kind, "default")
            for wide in (False, True):
                # the server's clock read between the two: an AGE may have ticked over in between
                expected = {format_table(kind, objs, wide=wide, all_namespaces=False, now=t) for t in (before, after)}
                assert as_text(table, wide) in expected
            # Each row carries the object's metadata: kubectl reads namespaces and names from it.
            assert [row["object"]["kind"] for row in table["rows"]] == ["PartialObjectMetadata"] * len(objs)
            assert [row["object"]["metadata"]["name"] for row in table["rows"]] == [o.name for o in objs]
        pods = h.get("/api/v1/namespaces/default/pods", headers={"Accept": TABLE}).json()
        assert pods["rows"][0]["cells"][:3] == ["web-1", "0/1", "Running"]
        assert pods["rows"][0]["cells"][5:7] == ["172.30.76.2", "node1"]


def test_events_table_matches_kins_get_events(api: Served) -> None:
    """Events' wide columns are not a suffix (MESSAGE sits among them): each column carries its
    own priority, and kubectl's two layouts print as ``kins get events [-o wide]``."""
    c = api.client()
    now = datetime.now(UTC)
    stamp = (now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")  # "10m", whenever the server reads it
    for i, reason in enumerate(("Scheduled", "Pulled")):
        c.create(
            Event(
                metadata=ObjectMeta(name=f"web-1.{i:x}", namespace="default"),
                involvedObject=ObjectReference(kind="Pod", namespace="default", name="web-1"),
                reason=reason,
                message=f"{reason} it",
                source=EventSource(component="kubelet", host="node1"),
                firstTimestamp=stamp,
                lastTimestamp=stamp,
                count=i + 1,
                type="Normal",
            )
        )
    with http(api) as h:
        r = h.get("/api/v1/namespaces/default/events", headers={"Accept": TABLE})
        assert r.status_code == 200, r.text
        table = r.json()
    cols = [(col["name"], col["priority"]) for col in table["columnDefinitions"]]
    assert [n for n, p in cols if p == 0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert [n for n, _ in cols][-1] == "NAME"
    objs = c.list("Event", "default")
    for wide in (False, True):
        assert as_text(table, wide) == format_table("Event", objs, wide=wide, all_namespaces=False, now=now)


def test_table_options_single_object_and_plain_json(api: Served) -> None:
    api.client().create(pod("one", app="x"))
    with http(api) as h:
        r = h.get("/api/v1/namespaces/default/pods/one", headers={"Accept": TABLE})
        assert r.json()["kind"] == "Table" and len(r.json()["rows"]) == 1
        full = h.get("/api/v1/namespaces/default/pods?includeObject=Object", headers={"Accept": TABLE}).json()
        assert full["rows"][0]["object"]["kind"] == "Pod"
        assert full["rows"][0]["object"]["spec"]["containers"][0]["name"] == "c"
        bare = h.get("/api/v1/namespaces/default/pods?includeObject=None", headers={"Accept": TABLE}).json()
        assert "object" not in bare["rows"][0]
        beta = h.get(
            "/api/v1/namespaces/default/pods", headers={"Accept": "application/json;as=Table;v=v1beta1;g=meta.k8s.io"}
        )
        assert beta.json()["apiVersion"] == "meta.k8s.io/v1beta1"
        # A Table of an unknown group, then plain JSON: the plain list.
        plain = h.get(
            "/api/v1/namespaces/default/pods", headers={"Accept": "application/json;as=Table;g=x,application/json"}
        )
        assert plain.json()["kind"] == "PodList"
        assert h.get("/api/v1/namespaces/default/pods").json()["kind"] == "PodList"
        bad = h.get("/api/v1/namespaces/default/pods?includeObject=All", headers={"Accept": TABLE})
        assert bad.status_code == 400


def test_watch_as_table_sends_one_row_tables(api: Served) -> None:
    c = api.client()
    c.create(pod("first", app="w"))
    with http(api) as h:
        rv = h.get("/api/v1/namespaces/default/pods").json()["metadata"]["resourceVersion"]
        c.create(pod("second", app="w"))
        c.delete("Pod", "default", "first")
        url = f"/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}&timeoutSeconds=1"
        with h.stream("GET", url, headers={"Accept": TABLE}) as r:
            events = [msgspec.json.decode(line) for line in r.iter_lines() if line]
    assert [(e["type"], e["object"]["rows"][0]["cells"][0]) for e in events] == [
        ("ADDED", "second"),
        ("DELETED", "first"),
    ]
    assert all(e["object"]["kind"] == "Table" for e in events)
    assert events[0]["object"]["rows"][0]["object"]["metadata"]["name"] == "second"


def test_openapi_v3_lets_kubectl_leave_validation_to_the_server(api: Served) -> None:
    with http(api) as h:
        index = h.get("/openapi/v3").json()["paths"]
        assert {"api/v1", "apis/apps/v1", "apis/networking.k8s.io/v1", "apis/extensions/v1beta1"} <= set(index)
        doc = h.get(index["apis/apps/v1"]["serverRelativeURL"]).json()
        patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
        assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
        assert {"name": "fieldValidation", "in": "query"}.items() <= patch["parameters"][2].items()
        core = h.get("/openapi/v3/api/v1").json()
        assert "/api/v1/nodes/{name}" in core["paths"]
        assert h.get("/openapi/v3/apis/nothing/v9").status_code == 404


def test_field_validation_strict_warn_ignore(api: Served) -> None:
    body = msgspec.to_builtins(service("typo"))
    body["spec"]["portz"] = []
    body["spec"]["ports"][0]["nodeprt"] = 1
    with http(api) as h:
        r = h.post("/api/v1/namespaces/default/services?fieldValidation=Strict", json=body)
        assert r.status_code == 400
        msg = r.json()["message"]
        assert 'unknown field "spec.portz"' in msg and 'unknown field "spec.ports[0].nodeprt"' in msg
        r = h.post("/api/v1/namespaces/default/services?fieldValidation=Warn", json=body)
        assert r.status_code == 201
        assert sorted(r.headers.get_list("Warning")) == [
            '299 - "unknown field \\"spec.ports[0].nodeprt\\""',
            '299 - "unknown field \\"spec.portz\\""',
        ]
        r = h.patch(
            "/api/v1/namespaces/default/services/typo?fieldValidation=Strict",
            json={"metadata": {"labelz": {"a": "b"}}},
            headers={"Content-Type": "application/strategic-merge-patch+json"},
        )
        assert r.status_code == 400 and 'unknown field "metadata.labelz"' in r.json()["message"]
        r = h.patch(
            "/api/v1/namespaces/default/services/typo?fieldValidation=Ignore",
            json={"metadata": {"labelz": {"a": "b"}}},
            headers={"Content-Type": "application/strategic-merge-patch+json"},
        )
        assert r.status_code == 200 and "Warning" not in r.headers
        assert h.post("/api/v1/namespaces/default/services?fieldValidation=Loose", json=body).status_code == 400


def test_answers_carry_defaults_and_legacy_ingress_reads_back_in_its_version(api: Served) -> None:
    api.client().create(service("web"))
    with http(api) as h:
        svc = h.get("/api/v1/namespaces/default/services/web").json()
        assert svc["spec"]["type"] == "ClusterIP"
        assert svc["spec"]["ports"][0]["protocol"] == "TCP"
        legacy = {
            "apiVersion": "extensions/v1beta1",
            "kind": "Ingress",
            "metadata": {"name": "old"},
            "spec": {"rules": [{"http": {"paths": [{"backend": {"serviceName": "web", "servicePort": 80}}]}}]},
        }
        assert h.post("/apis/extensions/v1beta1/namespaces/default/ingresses", json=legacy).status_code == 201
        # kubectl apply's patch of an unchanged v1beta1 manifest, as computed from what it reads.
        r = h.patch(
            "/apis/extensions/v1beta1/namespaces/default/ingresses/old?fieldValidation=Strict",
            json={"spec": {"rules": legacy["spec"]["rules"]}},
            headers={"Content-Type": "application/strategic-merge-patch+json"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["spec"]["rules"][0]["http"]["paths"][0]["backend"] == {"serviceName": "web", "servicePort": 80}
        v1 = h.get("/apis/networking.k8s.io/v1/namespaces/default/ingresses/old").json()
        assert v1["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {
            "name": "web",
            "port": {"number": 80},
        }
        # Legacy versions have no short names: kubectl would warn that "ing" is ambiguous.
        res = h.get("/apis/extensions/v1beta1").json()["resources"]
        assert all("shortNames" not in r for r in res)
        assert h.get("/version").json()["minor"] == "32"
