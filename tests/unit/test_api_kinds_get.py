"""``kins get``: ``all``, ``-o jsonpath=`` and ``-o custom-columns=`` printed as kubectl prints
them (compared with kubectl 1.33 on the same objects), and custom resources learnt from a
source's definitions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kubectl_bin import NEWEST, tls_api

from kins.api import registry
from kins.api.load import load_text
from kins.api.meta import LabelSelector, Object
from kins.apiserver.encode import encode as to_dict
from kins.cli.common import Source
from kins.cli.show import _resolve_kinds
from kins.store.memory import MemoryStore
from kins.views.jsonpath import JSONPathError, parse
from kins.views.template_output import custom_columns, parse_custom_columns

ARTICLE = str(Path(__file__).resolve().parent.parent.parent / "examples" / "article")
KINS = [sys.executable, "-c", "from kins.cli import main; main()"]

OBJECTS = """\
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web, tier: front}}
spec:
  nodeName: node1
  containers:
  - {name: nginx, image: nginx, ports: [{containerPort: 80}, {containerPort: 443}]}
  - {name: side, image: busybox}
---
apiVersion: v1
kind: Pod
metadata: {name: db-1, labels: {app: db}}
spec:
  containers: [{name: mysql, image: mysql, ports: [{containerPort: 3306}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""

TEMPLATES = [
    "{.items[*].metadata.name}",
    '{range .items[*]}{.metadata.name}{"\\t"}{.spec.containers[*].image}{"\\n"}{end}',
    '{.items[?(@.metadata.labels.app=="web")].spec.containers[0].ports[*].containerPort}',
    "{.items[0].metadata.labels}",
    "{.items[-1].metadata.name}",
    "{.items[0:1].spec.containers[*].name}",
    "{.items[*].spec.nodeName}",
    "{.kind} {.items[1].spec.containers[0]['name','image']}",
    "{range .items[*]}{.metadata.name}:{range .spec.containers[*]}[{.name}]{end};{end}",
]

COLUMNS = [
    "NAME:.metadata.name,NODE:.spec.nodeName",
    "NAME:.metadata.name,IMAGES:.spec.containers[*].image,PORTS:.spec.containers[*].ports[*].containerPort",
    "N:metadata.name,LABELS:.metadata.labels,FIRST:.spec.containers[0]",
]


def kins(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KINS, *args], capture_output=True, text=True, timeout=120)


def test_templates_print_what_kubectl_prints(tmp_path: Path) -> None:
    store = MemoryStore(history=100)
    objs = load_text(OBJECTS)
    for o in objs:
        store.create(o)
    with tls_api(store, tmp_path) as api:
        k = api.kubectl(NEWEST)
        pods = [to_dict(p) for p in store.list("Pod", "default")[0]]
        listing = {"apiVersion": "v1", "items": pods, "kind": "List", "metadata": {}}
        for t in TEMPLATES:
            assert parse(t).render(listing) == k("get", "pods", "-o", f"jsonpath={t}"), t
        for spec in COLUMNS:
            assert custom_columns(parse_custom_columns(spec), pods) == k("get", "pods", "-o", f"custom-columns={spec}")
        web = to_dict(store.get("Pod", "default", "web-1"))
        one = "{.metadata.name} {.spec.containers[1].image}"
        assert parse(one).render(web) == k("get", "pod", "web-1", "-o", f"jsonpath={one}") == "web-1 busybox"


def test_template_errors() -> None:
    for bad in ("{.items[*", "{range .items[*]}{.a}", "{end}", "{.items[x]}"):
        with pytest.raises(JSONPathError):
            parse(bad)
    with pytest.raises(JSONPathError):
        parse_custom_columns("NAME")


def test_kins_get_all_and_templates() -> None:
    everything = kins("get", "all", "-f", ARTICLE)
    assert everything.returncode == 0, everything.stderr
    tables = everything.stdout.split("\n\n")
    assert [t.splitlines()[1].split("/")[0] for t in tables] == [
        "pod", "service", "deployment.apps", "replicaset.apps",
    ]  # fmt: skip
    names = kins("get", "deploy", "-f", ARTICLE, "-o", "jsonpath={.items[*].metadata.name}")
    assert names.stdout == "business-manager data-product"
    one = kins("get", "svc", "mysql", "-f", ARTICLE, "-o", "jsonpath={.spec.ports[0].port}")
    assert one.stdout == "3306"
    cols = kins("get", "svc", "-f", ARTICLE, "-o", "custom-columns=NAME:.metadata.name,PORT:.spec.ports[*].port")
    assert cols.stdout.splitlines()[0].split() == ["NAME", "PORT"]
    assert "mysql              3306" in cols.stdout
    bad = kins("get", "svc", "-f", ARTICLE, "-o", "jsonpath={.items[")
    assert bad.returncode != 0 and "error parsing jsonpath" in bad.stderr


class StoreSource(Source):
    """A source over a store (what the live source reads through the API)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def list(self, kind: str, ns: str | None, sel: LabelSelector | None) -> list[Object]:
        return self.store.list(kind, ns, sel)[0]


def test_custom_kinds_are_learnt_from_the_definitions() -> None:
    store = MemoryStore(history=100)
    (crd,) = load_text(
        """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, kind: Widget, shortNames: [wg], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, properties: {spec: {type: object}}}}
"""
    )
    store.create(crd)
    registry.unregister("Widget")  # loading the definition served it; a client has not seen it
    src = StoreSource(store)
    assert _resolve_kinds(src, "wg") == ["Widget"]
    assert _resolve_kinds(src, "all")[-1] == "Widget"
    assert _resolve_kinds(src, "po,widgets.example.com") == ["Pod", "Widget"]


def test_tables_of_bound_claims_and_default_classes() -> None:
    from datetime import UTC, datetime

    from kins.views.table import format_table

    now = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    objs = load_text(
        """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, creationTimestamp: "2026-01-01T00:00:00Z"}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}, volumeName: pv-1}
status: {phase: Bound, accessModes: [ReadWriteMany, ReadWriteOnce], capacity: {storage: 2Gi}}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: fast
  creationTimestamp: "2026-01-01T00:00:00Z"
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
allowVolumeExpansion: true
"""
    )
    pvc, sc = objs
    assert format_table("PersistentVolumeClaim", [pvc], wide=True, all_namespaces=False, now=now).splitlines() == [
        "NAME   STATUS   VOLUME   CAPACITY   ACCESS MODES   STORAGECLASS   VOLUMEATTRIBUTESCLASS   AGE   VOLUMEMODE",
        "data   Bound    pv-1     2Gi        RWO,RWX                       <unset>                 10m   Filesystem",
    ]
    assert format_table("StorageClass", [sc], wide=False, all_namespaces=False, now=now).splitlines()[1].split() == [
        "fast", "(default)", "rancher.io/local-path", "Delete", "Immediate", "true", "10m",
    ]  # fmt: skip
