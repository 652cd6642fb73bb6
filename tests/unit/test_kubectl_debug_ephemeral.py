"""The ``pods/NAME/ephemeralcontainers`` subresource: ``kubectl debug`` (1.27 and 1.33) adding a
container to a pod, the subresource's verbs and its validation, against the in-process API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubectl_bin import NEWEST, OLDEST, TlsApi, tls_api

from kins.store.memory import MemoryStore

PATH = "/api/v1/namespaces/default/pods/web/ephemeralcontainers"


POD = """
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  containers:
  - {name: app, image: busybox, ports: [{containerPort: 80}]}
  - {name: side, image: busybox}
"""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TlsApi]:
    with tls_api(MemoryStore(history=100), tmp_path / "api") as a:
        a.kubectl()("create", "-f", "-", input=POD)  # through the API: defaulted as a client's pod is
        yield a


def http(api: TlsApi) -> httpx.Client:
    ca = str(api.kubeconfig.parent / "ca.crt") if (api.kubeconfig.parent / "ca.crt").exists() else False
    return httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.token}"}, verify=ca, timeout=10)


def ephemeral(api: TlsApi) -> list[dict[str, Any]]:
    pod = json.loads(api.kubectl()("get", "pod", "web", "-o", "json"))
    return list(pod["spec"].get("ephemeralContainers", []))


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_kubectl_debug_adds_an_ephemeral_container(api: TlsApi, version: str) -> None:
    k = api.kubectl(version)
    k("debug", "web", "--image=busybox", "--target=app", f"--container=dbg-{version.replace('.', '-')}")
    added = [c for c in ephemeral(api) if c["name"] == f"dbg-{version.replace('.', '-')}"]
    assert len(added) == 1
    assert added[0]["image"] == "busybox" and added[0]["targetContainerName"] == "app"
    # A second container of the same name: refused with the field that is wrong.
    p = k.run("debug", "web", "--image=busybox", f"--container=dbg-{version.replace('.', '-')}", check=False)
    assert p.returncode != 0
    # The name of a regular container is taken too.
    p = k.run("debug", "web", "--image=busybox", "--container=side", check=False)
    assert p.returncode != 0 and "Duplicate value" in p.stderr, p.stderr


def test_subresource_verbs_and_validation(api: TlsApi) -> None:
    with http(api) as h:
        got = h.get(PATH)
        assert got.status_code == 200 and got.json()["kind"] == "Pod"
        one = {"name": "one", "image": "busybox", "command": ["sh"], "stdin": True, "tty": True}
        # Strategic merge patch: the list is merged by name.
        r = h.patch(
            PATH,
            json={"spec": {"ephemeralContainers": [one]}},
            headers={"Content-Type": "application/strategic-merge-patch+json"},
        )
        assert r.status_code == 200, r.text
        assert [c["name"] for c in r.json()["spec"]["ephemeralContainers"]] == ["one"]
        two = {"name": "two", "image": "busybox"}
        r = h.patch(
            PATH,
            json=[{"op": "add", "path": "/spec/ephemeralContainers/-", "value": two}],
            headers={"Content-Type": "application/json-patch+json"},
        )
        assert r.status_code == 200, r.text
        pod = r.json()
        assert [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["one", "two"]
        # PUT of the whole pod: only the ephemeral containers are taken from it.
        pod["spec"]["ephemeralContainers"].append({"name": "three", "image": "busybox"})
        pod["metadata"]["labels"] = {"ignored": "yes"}
        r = h.put(PATH, json=pod)
        assert r.status_code == 200, r.text
        assert [c["name"] for c in r.json()["spec"]["ephemeralContainers"]] == ["one", "two", "three"]
        assert "ignored" not in (r.json()["metadata"].get("labels") or {})
        # Fields an ephemeral container may not have, a missing target: 422 with each field.
        bad = {
            "name": "bad",
            "image": "busybox",
            "ports": [{"containerPort": 80}],
            "readinessProbe": {"exec": {"command": ["true"]}},
            "resources": {"limits": {"cpu": "1"}},
            "targetContainerName": "nope",
        }
        r = h.patch(
            PATH,
            json={"spec": {"ephemeralContainers": [bad]}},
            headers={"Content-Type": "application/strategic-merge-patch+json"},
        )
        assert r.status_code == 422, r.text
        causes = {(c["field"], c["reason"]) for c in r.json()["details"]["causes"]}
        assert causes == {
            ("spec.ephemeralContainers[3].ports", "FieldValueForbidden"),
            ("spec.ephemeralContainers[3].readinessProbe", "FieldValueForbidden"),
            ("spec.ephemeralContainers[3].resources", "FieldValueForbidden"),
            ("spec.ephemeralContainers[3].targetContainerName", "FieldValueNotFound"),
        }
        # Once added, never removed nor changed.
        r = h.patch(
            PATH, json={"spec": {"ephemeralContainers": None}}, headers={"Content-Type": "application/merge-patch+json"}
        )
        assert r.status_code == 422 and 'existing ephemeral containers "one" may not be removed' in r.json()["message"]
        changed = [{**one, "image": "alpine"}, two, {"name": "three", "image": "busybox"}]
        r = h.patch(
            PATH,
            json={"spec": {"ephemeralContainers": changed}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert r.status_code == 422 and 'existing ephemeral containers "one" may not be changed' in r.json()["message"]
        # A new pod may not come with them.
        new = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "fresh"},
            "spec": {"containers": [{"name": "a", "image": "busybox"}], "ephemeralContainers": [two]},
        }
        r = h.post("/api/v1/namespaces/default/pods", json=new)
        assert r.status_code == 422, r.text
        assert r.json()["details"]["causes"] == [
            {
                "reason": "FieldValueForbidden",
                "message": "Forbidden: cannot be set on create",
                "field": "spec.ephemeralContainers",
            }
        ]
        # A write of the pod itself does not touch them.
        pod = h.get("/api/v1/namespaces/default/pods/web").json()
        pod["spec"]["ephemeralContainers"] = []
        pod["metadata"]["labels"] = {"kept": "yes"}
        r = h.put("/api/v1/namespaces/default/pods/web", json=pod)
        assert r.status_code == 200, r.text
        assert len(r.json()["spec"]["ephemeralContainers"]) == 3 and r.json()["metadata"]["labels"] == {"kept": "yes"}
