"""A Pod is Pending from the moment the API creates it, as the pod strategy makes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubectl_bin import NEWEST, OLDEST, tls_api

from kins.api.core import Pod
from kins.api.defaulting import apply_create_defaults
from kins.api.load import load_text
from kins.control.offline import namespace_object
from kins.store.memory import MemoryStore

POD = """
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  containers: [{name: app, image: nginx}]
"""


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_kubectl_sees_a_new_pod_pending(tmp_path: Path, version: str) -> None:
    store = MemoryStore(history=100)
    store.create(namespace_object("default"))
    with tls_api(store, tmp_path) as api:
        k = api.kubectl(version)
        k("run", "one", "--image=busybox", "--restart=Never")
        k("create", "-f", "-", input=POD)
        for name in ("one", "web"):
            assert k("get", "pod", name, "-o", "jsonpath={.status.phase}") == "Pending"
            stored = store.get("Pod", "default", name)
            assert isinstance(stored, Pod) and stored.status is not None and stored.status.phase == "Pending"
        rows = [line.split() for line in k("get", "pods", "--no-headers").splitlines()]
        assert {r[0]: r[2] for r in rows} == {"one": "Pending", "web": "Pending"}
        # A dry run answers with the object as it would be created.
        out = json.loads(k("run", "two", "--image=busybox", "--dry-run=server", "-o", "json"))
        assert out["status"]["phase"] == "Pending"


def test_only_pods_without_a_phase_are_defaulted() -> None:
    (pod,) = load_text(POD)
    assert isinstance(pod, Pod) and pod.status is None
    created = apply_create_defaults(pod)
    assert isinstance(created, Pod) and created.status is not None and created.status.phase == "Pending"
    assert apply_create_defaults(created) is created
    (ns,) = load_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    assert apply_create_defaults(ns) is ns
