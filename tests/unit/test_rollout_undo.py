"""`kubectl rollout undo` brings back the earlier ReplicaSet, as the deployment controller does:
the template kubectl sends back (with its defaulted fields) hashes as the one it came from."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from kubectl_bin import NEWEST, OLDEST, tls_api
from msgspec.structs import replace

from kins.api.apps import Deployment, ReplicaSet
from kins.api.config import default_cluster
from kins.api.core import ContainerPort, ResourceRequirements
from kins.api.load import load_text
from kins.control.base import run_until_stable
from kins.control.defaults import default_controllers
from kins.control.deployment import REVISION, REVISION_HISTORY, pod_template_hash
from kins.control.offline import namespace_object
from kins.store.memory import MemoryStore

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: "nginx:1.25", ports: [{containerPort: 80, name: http}]}]
"""


def _template() -> Deployment:
    (d,) = load_text(DEPLOY)
    assert isinstance(d, Deployment)
    return d


def test_the_hash_reads_the_template_with_its_defaults() -> None:
    d = _template()
    t = d.spec.template
    h = pod_template_hash(t)
    c = t.spec.containers[0]
    echoed = replace(
        c,
        resources=ResourceRequirements(),
        ports=[ContainerPort(containerPort=80, name="http", protocol="".join(["T", "CP"]))],  # not the default's object
    )
    assert pod_template_hash(replace(t, spec=replace(t.spec, containers=[echoed]))) == h
    # What does differ still does.
    udp = replace(c, ports=[ContainerPort(containerPort=80, name="http", protocol="UDP")])
    assert pod_template_hash(replace(t, spec=replace(t.spec, containers=[udp]))) != h
    limited = replace(c, resources=ResourceRequirements(limits={"cpu": "1"}))
    assert pod_template_hash(replace(t, spec=replace(t.spec, containers=[limited]))) != h


def _replica_sets(store: MemoryStore) -> dict[str, ReplicaSet]:
    return {r.name: r for r in store.list("ReplicaSet", "default")[0] if isinstance(r, ReplicaSet)}


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_rollout_undo_scales_revision_1_back_up(tmp_path: Path, version: str) -> None:
    store = MemoryStore(history=10_000)
    store.create(namespace_object("default"))
    controllers = default_controllers(store, default_cluster(), random.Random(1))

    def settle() -> None:
        run_until_stable(store, controllers)

    with tls_api(store, tmp_path) as api:
        k = api.kubectl(version)
        # kubectl 1.27 validates against /openapi/v2 unless told not to.
        k("create", "-f", "-", input=DEPLOY)
        settle()
        (first,) = _replica_sets(store)
        d = store.get("Deployment", "default", "web")
        assert (d.metadata.annotations or {}).get(REVISION) == "1"
        k("set", "image", "deployment/web", "app=nginx:1.26")
        settle()
        second = (set(_replica_sets(store)) - {first}).pop()
        assert "rolled back" in k("rollout", "undo", "deployment/web")
        settle()
        sets = _replica_sets(store)
        # No third ReplicaSet: the first one is the newest revision again, at full scale.
        assert set(sets) == {first, second}
        assert sets[first].spec.replicas == 2 and sets[second].spec.replicas == 0
        ann = sets[first].metadata.annotations or {}
        assert ann[REVISION] == "3" and ann[REVISION_HISTORY] == "1"
        d = store.get("Deployment", "default", "web")
        assert (d.metadata.annotations or {}).get(REVISION) == "3"
        history = k("rollout", "history", "deployment/web")
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]
        # And forth again, by revision number: the second ReplicaSet comes back likewise.
        k("rollout", "undo", "deployment/web", "--to-revision=2")
        settle()
        sets = _replica_sets(store)
        assert set(sets) == {first, second}
        assert sets[second].spec.replicas == 2 and sets[first].spec.replicas == 0
        assert (sets[second].metadata.annotations or {})[REVISION] == "4"


def test_a_replicaset_hashed_the_older_way_is_still_the_templates() -> None:
    # A ReplicaSet whose name came from an older hash of the very same template (a store from an
    # earlier kins): the controller finds it by its template, as upstream does, and makes no other.
    store = MemoryStore(history=10_000)
    store.create(namespace_object("default"))
    controllers = default_controllers(store, default_cluster(), random.Random(1))
    store.create(_template())
    run_until_stable(store, controllers)
    (name,) = _replica_sets(store)
    rs = _replica_sets(store)[name]
    old = "5d8b7c9f4"
    labels = {"app": "web", "pod-template-hash": old}
    meta = replace(rs.metadata, name=f"web-{old}", uid=None, resourceVersion=None, labels=labels)
    template = replace(rs.spec.template, metadata=replace(rs.spec.template.metadata, labels=labels))
    renamed = replace(rs, metadata=meta, spec=replace(rs.spec, template=template))
    for p in store.list("Pod", "default")[0]:
        store.delete("Pod", "default", p.name)
    store.delete("ReplicaSet", "default", name)
    store.create(renamed)
    run_until_stable(store, controllers)
    assert set(_replica_sets(store)) == {f"web-{old}"}
    assert _replica_sets(store)[f"web-{old}"].spec.replicas == 2
