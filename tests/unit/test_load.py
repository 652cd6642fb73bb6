"""The manifest loader: documents, lists, legacy kinds, and type errors that name the field path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kins._errors import MultiValidationError, ValidationError
from kins.api.core import EmptyDirVolumeSource, KeyToPath, Pod, Service
from kins.api.load import load_paths, load_text, parse_text, to_dict, to_json
from kins.api.networking import Ingress, NetworkPolicy
from kins.apiserver.fields import unknown_fields


def load_errors(text: str, source: str = "<input>") -> list[ValidationError]:
    with pytest.raises(MultiValidationError) as info:
        load_text(text, source)
    return info.value.errors


SERVICE = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 80}]\n"


# --- documents -------------------------------------------------------------------------------


def test_multi_document_yaml_skips_empty_documents() -> None:
    text = "---\n" + SERVICE + "---\n---\n" + SERVICE.replace("web", "api")
    objs = load_text(text)
    assert [o.key for o in objs] == ["default/web", "default/api"]
    assert all(isinstance(o, Service) for o in objs)


def test_json_object_and_array() -> None:
    doc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    [one] = load_text(json.dumps(doc))
    assert isinstance(one, Service) and one.spec.ports and one.spec.ports[0].port == 80
    two = load_text(json.dumps([doc, {**doc, "metadata": {"name": "api", "namespace": "shop"}}]))
    assert [o.key for o in two] == ["default/web", "shop/api"]


def test_kubectl_list_is_flattened_and_keeps_server_fields() -> None:
    text = """\
apiVersion: v1
kind: List
metadata: {resourceVersion: ""}
items:
- apiVersion: v1
  kind: ServiceList
  items:
  - apiVersion: v1
    kind: Service
    metadata:
      name: web
      namespace: shop
      resourceVersion: "4242"
      uid: 0b0e8a57-1d4b-4a11-8a57-1d4b4a118a57
      managedFields: [{manager: kubectl, operation: Update}]
    spec: {type: ClusterIP, clusterIP: 10.254.3.4, ports: [{port: 80, targetPort: 8080}]}
    status: {loadBalancer: {}}
- apiVersion: v1
  kind: Namespace
  metadata: {name: shop}
"""
    objs = load_text(text)
    assert [(o.kind, o.key) for o in objs] == [("Service", "shop/web"), ("Namespace", "shop")]
    svc = objs[0]
    assert isinstance(svc, Service)
    assert svc.metadata.resourceVersion == "4242"
    assert svc.spec.clusterIP == "10.254.3.4"
    assert svc.metadata.managedFields == [{"manager": "kubectl", "operation": "Update"}]


def test_list_items_must_be_a_list() -> None:
    [err] = load_errors("apiVersion: v1\nkind: List\nitems: {a: b}\n")
    assert (err.where, err.field, err.message) == ("List", "items", "must be a list")


def test_defaults_fill_kind_version_and_namespace() -> None:
    [obj] = load_text(SERVICE)
    assert (obj.kind, obj.apiVersion, obj.namespace, obj.key) == ("Service", "v1", "default", "default/web")
    assert isinstance(obj, Service) and obj.spec.type == "ClusterIP" and obj.spec.ports
    assert obj.spec.ports[0].protocol == "TCP"


# --- legacy Ingress --------------------------------------------------------------------------

ARTICLE_INGRESS = """\
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: business-user
  namespace: ns-jo
  annotations:
    kubernetes.io/ingress.class: "nginx"
spec:
  rules:
  - host: business-user.ns-jo
    http:
      paths:
      - path: /
        backend:
          serviceName: business-user
          servicePort: 80
"""


def test_legacy_ingress_becomes_v1() -> None:
    [ing] = load_text(ARTICLE_INGRESS)
    assert isinstance(ing, Ingress)
    assert ing.apiVersion == "networking.k8s.io/v1"
    assert ing.metadata.annotations == {"kubernetes.io/ingress.class": "nginx"}
    [rule] = ing.spec.rules or []
    assert rule.host == "business-user.ns-jo"
    assert rule.http is not None
    [path] = rule.http.paths
    assert (path.path, path.pathType) == ("/", "ImplementationSpecific")
    assert path.backend.service is not None and path.backend.service.port is not None
    assert path.backend.service.name == "business-user"
    assert (path.backend.service.port.number, path.backend.service.port.name) == (80, None)


def test_legacy_ingress_named_port_and_default_backend() -> None:
    text = ARTICLE_INGRESS.replace("extensions/v1beta1", "networking.k8s.io/v1beta1").replace(
        "servicePort: 80", "servicePort: http"
    )
    text += "  backend: {serviceName: fallback, servicePort: 8080}\n"
    [ing] = load_text(text)
    assert isinstance(ing, Ingress)
    port = ing.spec.rules[0].http.paths[0].backend.service.port  # type: ignore[index,union-attr]
    assert port is not None and (port.name, port.number) == ("http", None)
    default = ing.spec.defaultBackend
    assert default is not None and default.service is not None and default.service.port is not None
    assert (default.service.name, default.service.port.number) == ("fallback", 8080)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where", "field", "message"),
    [
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: eighty}]}\n",
            "<input>: Service web",
            "spec.ports[0].port",
            "Expected int, got str",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{name: http}]}\n",
            "<input>: Service web",
            "spec.ports[0]",
            "Object missing required field port",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80, targetPort: 1.5}]}\n",
            "<input>: Service web",
            "spec.ports[0].targetPort",
            "Expected int | str | null, got float",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {version: 2}}\n",
            "<input>: Pod shop/web",
            "metadata.labels[...]",
            "Expected str, got int",
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: three}\n",
            "<input>: Deployment web",
            "spec.replicas",
            "Expected int | null, got str",
        ),
        (
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s}\nendpoints: [{}]\n",
            "<input>: EndpointSlice s",
            "endpoints[0]",
            "Object missing required field addresses",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: [web]\n",
            "<input>: Service <unnamed>",
            "metadata",
            "Expected object, got array",
        ),
        ("kind: Service\nmetadata: {name: web}\n", "<input>: Service web", "apiVersion", "Required value"),
        ("apiVersion: v1\nmetadata: {name: web}\n", "<input>: object web", "kind", "Required value"),
        (
            "apiVersion: v2\nkind: Service\nmetadata: {name: web}\n",
            "<input>: Service web",
            "kind",
            'no matches for kind "Service" in version "v2"',
        ),
        ("- just\n- a list\n", "<input>", "", "a manifest must be a mapping, not list"),
    ],
    ids=[
        "int-got-str",
        "missing-port",
        "targetport-float",
        "label-int",
        "replicas-str",
        "slice-missing-addresses",
        "metadata-list",
        "no-apiversion",
        "no-kind",
        "unknown-version",
        "not-a-mapping",
    ],
)
def test_loader_errors(text: str, where: str, field: str, message: str) -> None:
    [err] = load_errors(text)
    assert (err.where, err.field, err.message) == (where, field, message)


def test_invalid_yaml_names_the_source() -> None:
    [err] = load_errors("metadata: {name: [web\n", "svc.yaml")
    assert err.where == "svc.yaml"
    assert err.message.startswith("invalid YAML:")


def test_errors_of_all_documents_are_collected() -> None:
    text = SERVICE + "---\n" + SERVICE.replace("port: 80", "port: x") + "---\napiVersion: v1\nkind: Gadget\n"
    errs = load_errors(text)
    assert [(e.field, e.message) for e in errs] == [
        ("spec.ports[0].port", "Expected int, got str"),
        ("kind", 'no matches for kind "Gadget" in version "v1"'),
    ]


# --- files -----------------------------------------------------------------------------------


def test_load_paths_reads_directories_in_order(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(SERVICE.replace("web", "b"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yml").write_text(SERVICE.replace("web", "c"))
    (tmp_path / "a.json").write_text(json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}))
    (tmp_path / "notes.txt").write_text("not a manifest")
    objs = load_paths([str(tmp_path)])
    assert [o.name for o in objs] == ["a", "b", "c"]


def test_load_paths_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SERVICE.replace("port: 80", "port: '80'"))
    with pytest.raises(MultiValidationError) as info:
        load_paths([str(bad)])
    assert [e.render() for e in info.value.errors] == [f"{bad}: Service web: spec.ports[0].port: Expected int, got str"]
    missing = tmp_path / "missing.yaml"
    with pytest.raises(MultiValidationError) as info:
        load_paths([str(missing)])
    assert [e.render() for e in info.value.errors] == [f"{missing}: no such file or directory"]


# --- output ----------------------------------------------------------------------------------


def test_to_dict_uses_json_names_and_omits_defaults() -> None:
    text = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec:
  podSelector: {}
  ingress:
  - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]
"""
    [np] = load_text(text)
    assert isinstance(np, NetworkPolicy)
    out = to_dict(np)
    assert out["spec"]["ingress"] == [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}]
    assert out["metadata"] == {"name": "np"}
    assert json.loads(to_json(np)) == out
    assert load_text(json.dumps(out)) == [np]


POD = """apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: c
    resources: {limits: {cpu: 0.5, memory: 1Gi}, requests: {memory: 1073741824}}
    volumeMounts: [{mountPath: /etc/cfg, name: cfg, readOnly: true}]
    securityContext: {capabilities: {drop: [ALL]}, runAsUser: 1000}
    lifecycle: {preStop: {sleep: {seconds: 5}}}
  volumes: [{name: cfg, configMap: {name: cfg, items: [{key: a, path: b}]}}, {name: tmp, emptyDir: {}}]
  tolerations: [{operator: Exists}]
  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: []}}}
status:
  containerStatuses: [{name: c, state: {terminated: {reason: Error, exitCode: 0}}}]
"""


def test_pod_fields_are_typed_and_written_in_the_kubernetes_order() -> None:
    [pod] = load_text(POD)
    assert isinstance(pod, Pod)
    c = pod.spec.containers[0]
    assert c.resources is not None and c.resources.limits == {"cpu": 0.5, "memory": "1Gi"}
    assert c.volumeMounts is not None and c.volumeMounts[0].mountPath == "/etc/cfg"
    assert c.securityContext is not None and c.securityContext.capabilities is not None
    assert c.lifecycle is not None and c.lifecycle.preStop is not None and c.lifecycle.preStop.sleep is not None
    vols = pod.spec.volumes or []
    assert vols[0].configMap is not None and vols[0].configMap.items == [KeyToPath(key="a", path="b")]
    assert vols[1].emptyDir == EmptyDirVolumeSource()
    st = pod.status.containerStatuses[0] if pod.status and pod.status.containerStatuses else None
    assert st is not None and st.state is not None and st.state.terminated is not None
    assert st.state.terminated.exitCode == 0  # kept: 0 is a value here, not "unset"
    doc = to_dict(pod)
    # Field order follows the Kubernetes types, as the API server writes them.
    assert list(doc["spec"]["containers"][0]["volumeMounts"][0]) == ["name", "readOnly", "mountPath"]
    assert list(doc["status"]["containerStatuses"][0]["state"]["terminated"]) == ["exitCode", "reason"]
    assert doc["spec"]["volumes"][1] == {"name": "tmp", "emptyDir": {}}


def test_unknown_fields_are_found_inside_typed_pod_fields() -> None:
    doc = parse_text(POD.replace("readOnly: true", "readOnly: true, mountPth: /x"), "<input>")[0]
    doc["spec"]["volumes"][0]["configMap"]["itemz"] = []
    assert unknown_fields(doc, Pod) == [
        "spec.containers[0].volumeMounts[0].mountPth",
        "spec.volumes[0].configMap.itemz",
    ]
