"""CustomResourceDefinitions served as the API server serves them: a definition's kind is served
as soon as it is stored (kubectl 1.27 and 1.33), its objects are pruned and checked against the
schema, ``/status`` and ``/scale`` work when declared, several versions are served and one
stored, deleting the definition deletes its objects, and a restarted API serves the kinds of
the definitions its store holds."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from kubectl_bin import NEWEST, OLDEST, Kubectl, tls_api

from kins.api import registry
from kins.api.custom import CustomObject
from kins.store.memory import MemoryStore
from kins.store.sqlite import SqliteStore

CRD_YAML = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg], categories: [all, gadgets]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: string, jsonPath: .spec.size}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: string, enum: [small, large]}
              replicas: {type: integer, minimum: 0, default: 1}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status:
            type: object
            properties:
              replicas: {type: integer}
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"""

WIDGET_YAML = """\
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
spec: {size: small, bogus: 1, extra: {anything: [1, 2]}}
"""


def _apply(k: Kubectl, path: Path, *flags: str) -> str:
    return k("apply", *flags, "-f", str(path))


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_definition_lifecycle(tmp_path: Path, version: str) -> None:
    crd = _write(tmp_path, "crd.yaml", CRD_YAML)
    widget = _write(tmp_path, "w.yaml", WIDGET_YAML)
    with tls_api(MemoryStore(history=1000), tmp_path / "state") as api:
        k = api.kubectl(version)
        assert _apply(k, crd) == "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created\n"
        got = json.loads(k("get", "crd", "widgets.example.com", "-o", "json"))
        conditions = {c["type"]: c["status"] for c in got["status"]["conditions"]}
        assert conditions == {"NamesAccepted": "True", "Established": "True"}
        assert got["status"]["acceptedNames"]["listKind"] == "WidgetList"
        assert got["status"]["storedVersions"] == ["v1"]
        assert k("get", "crd").splitlines()[0].split() == ["NAME", "CREATED", "AT"]

        # strict field validation refuses what the schema does not declare ...
        refused = k.run("apply", "-f", str(widget), check=False)
        assert 'strict decoding error: unknown field "spec.bogus"' in refused.stderr
        # ... which is pruned when validation is off
        assert _apply(k, widget, "--validate=false") == "widget.example.com/w1 created\n"
        obj = json.loads(k("get", "wg", "w1", "-o", "json"))
        # pruned (bogus), preserved (extra), defaulted (replicas)
        assert obj["spec"] == {"size": "small", "extra": {"anything": [1, 2]}, "replicas": 1}
        assert k("get", "widgets").splitlines()[0] == "NAME   SIZE    REPLICAS   AGE"
        row = k("get", "widget", "--no-headers").split()
        assert row[:3] == ["w1", "small", "1"]

        # the other served version: the same object, another apiVersion
        beta = json.loads(k("get", "widgets.v1beta1.example.com", "w1", "-o", "json"))
        assert beta["apiVersion"] == "example.com/v1beta1" and beta["spec"] == obj["spec"]

        # schema checks, in the API server's words
        bad = k.run("patch", "wg", "w1", "--type=merge", "-p", '{"spec":{"size":"huge","replicas":-1}}', check=False)
        assert bad.stderr.startswith('The Widget "w1" is invalid: ')  # kubectl words it from the details
        assert 'spec.size: Unsupported value: "huge": supported values: "small", "large"' in bad.stderr
        assert "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0" in (
            bad.stderr
        )
        bad = k.run("patch", "wg", "w1", "--type=merge", "-p", '{"spec":{"size":null}}', check=False)
        assert "spec.size: Required value" in bad.stderr

        # scale and status subresources
        assert k("scale", "wg", "w1", "--replicas=3") == "widget.example.com/w1 scaled\n"
        assert k("get", "wg", "w1", "-o", "jsonpath={.spec.replicas}") == "3"
        # the main resource ignores status ...
        k("patch", "wg", "w1", "--type=merge", "-p", '{"status":{"replicas":9}}')
        assert k("get", "wg", "w1", "-o", "jsonpath={.status}") == ""
        # ... which /status sets
        k("patch", "wg", "w1", "--subresource=status", "--type=merge", "-p", '{"status":{"replicas":2}}')
        assert k("get", "wg", "w1", "-o", "jsonpath={.status.replicas}") == "2"
        scale = json.loads(k("get", "--raw", "/apis/example.com/v1/namespaces/default/widgets/w1/scale"))
        assert (scale["spec"]["replicas"], scale["status"]["replicas"]) == (3, 2)

        # the OpenAPI documents carry the definition's schema
        explained = k("explain", "widgets.spec")
        assert "size\t<string> -required-" in explained and "replicas\t<integer>" in explained

        # categories: the definition puts widgets in "all" and "gadgets"
        assert "widget.example.com/w1" in k("get", "all")
        assert k("get", "gadgets", "--no-headers").split()[0] == "w1"
        assert k("api-resources", "--api-group=example.com", "--no-headers").split() == [
            "widgets", "wg", "example.com/v1", "true", "Widget",
        ]  # fmt: skip

        # deleting the definition deletes its objects and the kind
        k("delete", "crd", "widgets.example.com")
        assert "Widget" not in registry.STORED
        assert api.store.list("CustomResourceDefinition")[0] == []
        listed = k.run("get", "--raw", "/apis/example.com/v1/namespaces/default/widgets", check=False)
        assert listed.returncode != 0 and "NotFound" in listed.stderr


def _http(api: object) -> httpx.Client:
    return httpx.Client(
        base_url=api.url,  # type: ignore[attr-defined]
        headers={"Authorization": f"Bearer {api.token}"},  # type: ignore[attr-defined]
        verify=False,
        timeout=10,
    )


def _crd_doc(**changes: object) -> dict:
    import yaml_rs

    doc = yaml_rs.loads(CRD_YAML)
    doc.update(changes)
    return doc


CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.com/{v}/namespaces/default/widgets"


def test_a_restarted_api_serves_the_stored_definitions(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db", history=1000)
    with tls_api(store, tmp_path / "one") as api, _http(api) as http:
        assert http.post(CRDS, json=_crd_doc()).status_code == 201
        w = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "kept"}, "spec": {"size": "large"}}
        assert http.post(WIDGETS.format(v="v1"), json=w).status_code == 201
    store.close()
    registry.unregister("Widget")  # a new process knows only the built-in kinds
    assert "Widget" not in registry.STORED
    store = SqliteStore(tmp_path / "store.db", history=1000)
    with tls_api(store, tmp_path / "two") as api:
        k = api.kubectl(NEWEST)
        assert k("get", "wg", "-o", "name") == "widget.example.com/kept\n"
        assert k("get", "wg", "kept", "-o", "jsonpath={.spec.size}") == "large"
    store.close()


def test_versions_watch_and_scope(tmp_path: Path) -> None:
    with tls_api(MemoryStore(history=1000), tmp_path) as api, _http(api) as http:
        doc = _crd_doc()
        doc["spec"]["versions"][1]["deprecated"] = True
        assert http.post(CRDS, json=doc).status_code == 201
        # created through the non-storage version: stored as v1, only apiVersion differs
        w = {"apiVersion": "example.com/v1beta1", "kind": "Widget", "metadata": {"name": "b"}, "spec": {"size": "x"}}
        made = http.post(WIDGETS.format(v="v1beta1"), json=w)
        assert made.status_code == 201, made.text
        assert made.json()["apiVersion"] == "example.com/v1beta1"
        assert made.headers["Warning"] == '299 - "example.com/v1beta1 Widget is deprecated"'
        assert "Warning" not in http.get(WIDGETS.format(v="v1")).headers
        stored = api.store.get("Widget", "default", "b")
        assert stored.apiVersion == "example.com/v1"
        # the v1 schema does not bind v1beta1 objects, but reading them as v1 shows them
        assert http.get(WIDGETS.format(v="v1") + "/b").json()["spec"] == {"size": "x"}
        # a watch sees custom objects come and go
        with http.stream("GET", WIDGETS.format(v="v1"), params={"watch": "1", "timeoutSeconds": "2"}) as events:
            http.delete(WIDGETS.format(v="v1") + "/b")
            seen = [json.loads(line) for line in events.iter_lines() if line]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in seen] == [("ADDED", "b"), ("DELETED", "b")]
        assert seen[0]["object"]["apiVersion"] == "example.com/v1"

        # a cluster-scoped definition
        cluster = _crd_doc()
        cluster["metadata"] = {"name": "gizmos.example.com"}
        cluster["spec"]["scope"] = "Cluster"
        cluster["spec"]["names"] = {"plural": "gizmos", "kind": "Gizmo"}
        assert http.post(CRDS, json=cluster).status_code == 201
        g = {"apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": "g1"}, "spec": {"size": "small"}}
        assert http.post("/apis/example.com/v1/gizmos", json=g).status_code == 201
        assert api.store.get("Gizmo", None, "g1").metadata.namespace is None
        k = api.kubectl(NEWEST)
        assert k("get", "gizmos", "-A", "--no-headers").split()[0] == "g1"
        # no scale or status subresource declared in v1beta1 / gizmos have them from v1
        assert http.get("/apis/example.com/v1beta1/namespaces/default/widgets/b/scale").status_code == 404


def test_bad_definitions_are_refused(tmp_path: Path) -> None:
    with tls_api(MemoryStore(history=1000), tmp_path) as api, _http(api) as http:
        two_storage = _crd_doc()
        for v in two_storage["spec"]["versions"]:
            v["storage"] = True
        r = http.post(CRDS, json=two_storage)
        assert r.status_code == 422
        assert (
            'spec.versions: Invalid value: ["v1","v1beta1"]: must have exactly one version marked as storage'
            in (r.json()["message"])
        )
        misnamed = _crd_doc(metadata={"name": "gadgets.example.com"})
        r = http.post(CRDS, json=misnamed)
        assert r.status_code == 422
        cause = r.json()["details"]["causes"][0]
        assert cause["field"] == "metadata.name" and 'must be spec.names.plural+"."+spec.group' in cause["message"]
        no_schema = _crd_doc()
        del no_schema["spec"]["versions"][0]["schema"]
        r = http.post(CRDS, json=no_schema)
        assert "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required" in r.json()["message"]
        # a kind kins serves in another group: refused (objects are keyed by kind)
        pods = _crd_doc(metadata={"name": "pods.example.com"})
        pods["spec"]["names"] = {"plural": "pods", "kind": "Pod"}
        r = http.post(CRDS, json=pods)
        assert r.status_code == 422 and "kind Pod is already served by the core group" in r.json()["message"]
        assert http.get(CRDS).json()["items"] == []
        assert "Widget" not in registry.STORED

        # the definition of a built-in kind (ClusterNetworkPolicy's, as network-policy-api ships it)
        # is stored, and the built-in type keeps serving the kind
        cnp = _crd_doc(metadata={"name": "clusternetworkpolicies.policy.networking.k8s.io"})
        cnp["spec"]["group"] = "policy.networking.k8s.io"
        cnp["spec"]["scope"] = "Cluster"
        cnp["spec"]["names"] = {"plural": "clusternetworkpolicies", "kind": "ClusterNetworkPolicy"}
        cnp["spec"]["versions"] = [dict(cnp["spec"]["versions"][0], name="v1alpha2")]
        assert http.post(CRDS, json=cnp).status_code == 201
        assert not issubclass(registry.STORED["ClusterNetworkPolicy"], CustomObject)
        assert http.delete(CRDS + "/clusternetworkpolicies.policy.networking.k8s.io").status_code == 200
        assert "ClusterNetworkPolicy" in registry.STORED


def test_manifests_carry_definitions_and_their_objects(tmp_path: Path) -> None:
    """Offline (``kins get -f``, ``kins apply``): a definition's objects load with it, whatever
    the order of files and documents, and are pruned and checked like the API does."""
    from kins._errors import MultiValidationError
    from kins.api.load import load_paths

    _write(tmp_path, "a-widget.yaml", WIDGET_YAML)
    _write(tmp_path, "b-crd.yaml", CRD_YAML)
    objs = load_paths([str(tmp_path)])
    widget = next(o for o in objs if o.KIND == "Widget")
    assert isinstance(widget, CustomObject)
    assert widget.spec == {"size": "small", "extra": {"anything": [1, 2]}, "replicas": 1}  # type: ignore[attr-defined]
    _write(tmp_path, "c-bad.yaml", WIDGET_YAML.replace("w1", "w2").replace("small", "tiny"))
    with pytest.raises(MultiValidationError) as e:
        load_paths([str(tmp_path)])
    assert 'c-bad.yaml: Widget w2: spec.size: Unsupported value: "tiny"' in str(e.value)


def test_a_definition_keeps_its_kind_and_scope(tmp_path: Path) -> None:
    with tls_api(MemoryStore(history=1000), tmp_path) as api, _http(api) as http:
        assert http.post(CRDS, json=_crd_doc()).status_code == 201
        current = http.get(CRDS + "/widgets.example.com").json()
        renamed = json.loads(json.dumps(current))
        renamed["spec"]["names"]["kind"] = "Gadget"
        r = http.put(CRDS + "/widgets.example.com", json=renamed)
        assert r.status_code == 422 and "the kind may not change from Widget" in r.json()["message"]
        rescoped = json.loads(json.dumps(current))
        rescoped["spec"]["scope"] = "Cluster"
        r = http.put(CRDS + "/widgets.example.com", json=rescoped)
        assert r.status_code == 422 and "the scope may not change" in r.json()["message"]
        # other changes are served at once: a new short name
        current["spec"]["names"]["shortNames"] = ["wg", "wdg"]
        assert http.put(CRDS + "/widgets.example.com", json=current).status_code == 200
        assert registry.resolve_resource("wdg") == "Widget"
        assert "Gadget" not in registry.STORED


def test_a_new_storage_version(tmp_path: Path) -> None:
    """Objects stored before the storage version changed still read, in every served version."""
    store = SqliteStore(tmp_path / "store.db", history=1000)
    with tls_api(store, tmp_path / "state") as api, _http(api) as http:
        assert http.post(CRDS, json=_crd_doc()).status_code == 201
        w = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "old"}, "spec": {"size": "large"}}
        assert http.post(WIDGETS.format(v="v1"), json=w).status_code == 201
        crd = http.get(CRDS + "/widgets.example.com").json()
        v2 = json.loads(json.dumps(crd["spec"]["versions"][0]))
        v2["name"] = "v2"
        crd["spec"]["versions"][0]["storage"] = False
        crd["spec"]["versions"].append(v2)
        r = http.put(CRDS + "/widgets.example.com", json=crd)
        assert r.status_code == 200, r.text
        assert r.json()["status"]["storedVersions"] == ["v1", "v2"]
        for v in ("v1", "v1beta1", "v2"):
            got = http.get(WIDGETS.format(v=v) + "/old").json()
            assert got["apiVersion"] == f"example.com/{v}" and got["spec"] == {"size": "large", "replicas": 1}
        # written again, it is stored in v2
        patched = http.patch(
            WIDGETS.format(v="v1") + "/old",
            json={"spec": {"size": "small"}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert patched.status_code == 200, patched.text
        assert store.get("Widget", "default", "old").apiVersion == "example.com/v2"
    store.close()


def test_namespace_deletion_and_garbage_collection_reach_custom_objects(tmp_path: Path) -> None:
    """The namespace controller and the garbage collector act on the kinds registered at run
    time as on the built-in ones."""
    from test_api_namespace_lifecycle import Running, _store, _wait

    from kins.control.garbage import GarbageCollector
    from kins.control.namespace import NamespaceController

    store = _store()
    with tls_api(store, tmp_path) as api, _http(api) as http:
        assert http.post(CRDS, json=_crd_doc()).status_code == 201
        assert http.post("/api/v1/namespaces", json={"metadata": {"name": "zz"}}).status_code == 201
        owner = http.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "owner"}}).json()
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
        for ns, name, meta in (("zz", "in-zz", {}), ("default", "owned", {"ownerReferences": [ref]})):
            w = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name, **meta}}
            w["spec"] = {"size": "small"}
            r = http.post(f"/apis/example.com/v1/namespaces/{ns}/widgets", json=w)
            assert r.status_code == 201, r.text
        with Running(store, [NamespaceController(store), GarbageCollector(store)]):
            assert http.delete("/api/v1/namespaces/zz").status_code == 200
            _wait("namespace zz gone", lambda: not any(n.name == "zz" for n in store.list("Namespace")[0]))
            assert store.list("Widget", "zz")[0] == []
            assert http.delete("/api/v1/namespaces/default/configmaps/owner").status_code == 200
            _wait("the owned widget collected", lambda: store.list("Widget", "default")[0] == [])


def test_a_definition_held_by_a_finalizer(tmp_path: Path) -> None:
    with tls_api(MemoryStore(history=1000), tmp_path) as api, _http(api) as http:
        doc = _crd_doc()
        doc["metadata"] = {"name": "widgets.example.com", "finalizers": ["example.com/hold"]}
        assert http.post(CRDS, json=doc).status_code == 201
        w = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": "small"}}
        assert http.post(WIDGETS.format(v="v1"), json=w).status_code == 201
        marked = http.delete(CRDS + "/widgets.example.com")
        assert marked.status_code == 200 and marked.json()["metadata"]["deletionTimestamp"]
        # still served while the finalizer holds it
        assert http.get(WIDGETS.format(v="v1") + "/w").status_code == 200
        released = http.patch(
            CRDS + "/widgets.example.com",
            json={"metadata": {"finalizers": None}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert released.status_code == 200, released.text
        assert "Widget" not in registry.STORED and api.store.list("CustomResourceDefinition")[0] == []
        assert http.get(WIDGETS.format(v="v1") + "/w").status_code == 404
