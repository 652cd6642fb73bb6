"""Real kubectl (1.27 and 1.33) against the OpenAPI documents: ``explain`` of every served kind,
``apply``/``create``/``diff`` of the article's manifests (1.27 downloads the v2 protobuf first),
patches computed from the published merge keys, and manifests with unknown fields refused, by
the server or, against a server without ``fieldValidation``, by 1.27's own schema validation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import msgspec.inspect as mi
import pytest
from kubectl_bin import NEWEST, OLDEST, TlsApi, tls_api
from test_api_openapi import Widget

from kins.api import resources as api_resources
from kins.api.resources import ALL, Resource
from kins.apiserver import openapi
from kins.store.memory import MemoryStore

ARTICLE = Path(__file__).parents[2] / "src" / "kins" / "data" / "article"
VERSIONS = [OLDEST, NEWEST]

TYPO = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: typo, namespace: default}
spec:
  replicas: 1
  replicaz: 2
  selector: {matchLabels: {app: typo}}
  template:
    metadata: {labels: {app: typo}}
    spec:
      containers:
      - {name: c, image: busybox, portz: []}
"""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TlsApi]:
    with tls_api(MemoryStore(history=1000), tmp_path) as served:
        yield served


def top_fields(cls: type) -> list[str]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return [f.encode_name for f in info.fields]


@pytest.mark.parametrize("version", VERSIONS)
def test_explain_every_served_kind(api: TlsApi, version: str) -> None:
    k = api.kubectl(version)
    for res in ALL:
        out = k("explain", res.plural, f"--api-version={res.group_version}")
        assert re.search(rf"^KIND:\s+{res.kind}$", out, re.M), out
        assert re.search(rf"^VERSION:\s+{res.version}$", out, re.M), out
        if res.group:
            assert re.search(rf"^GROUP:\s+{re.escape(res.group)}$", out, re.M), out
        listed = re.findall(r"^  (\w+)\t<", out, re.M)
        assert listed == sorted(top_fields(res.cls)), (res.group_version, res.kind, out)


@pytest.mark.parametrize("version", VERSIONS)
def test_explain_fields_and_recursive(api: TlsApi, version: str) -> None:
    k = api.kubectl(version)
    out = k("explain", "deployment.spec.replicas")
    assert re.search(r"^FIELD:\s+replicas <integer>$", out, re.M), out
    assert "The number of desired pods." in out
    out = k("explain", "svc.spec.ports.targetPort")
    assert "IntOrString" in out or "<string>" in out, out
    out = k("explain", "pod.spec.containers", "--recursive")
    assert re.search(r"^FIELD:\s+containers <\[\]Container>$", out, re.M), out
    for field in ("containerPort", "readinessProbe", "mountPath", "valueFrom", "securityContext"):
        assert re.search(rf"^\s+{field}\t<", out, re.M), (field, out)
    assert re.search(r"^  name\t<string> -required-$", out, re.M), out
    out = k("explain", "secret.data")
    assert "base64" in out
    bad = k.run("explain", "deployment.spec.replicaz", check=False)
    assert bad.returncode != 0 and "replicaz" in bad.stderr
    if version == NEWEST:
        # the v2 document on demand (protobuf, as 1.27 reads it)
        out = k("explain", "deployment.spec.replicas", "--output=plaintext-openapiv2")
        assert re.search(r"^FIELD:\s+replicas <integer>$", out, re.M), out


def test_kubectl_127_creates_applies_and_diffs_the_article(api: TlsApi) -> None:
    k = api.kubectl(OLDEST)
    assert "created" in k("create", "-f", str(ARTICLE / "data-product.yaml"))
    for name in ("kube-dns.yaml", "business-manager.yaml", "ingress-nginx.yaml", "mysql.yaml", "kube-dns-service.yaml"):
        p = k.run("apply", "-f", str(ARTICLE / name))
        assert p.returncode == 0 and "created" in p.stdout and "warning" not in p.stderr.lower(), p.stderr
    manifest = (ARTICLE / "business-manager.yaml").read_text()
    assert k.run("diff", "-f", "-", input=manifest).returncode == 0  # nothing differs
    changed = manifest.replace("replicas: 3", "replicas: 4")
    p = k.run("diff", "-f", "-", input=changed, check=False)
    # diff exits 1 when the server's dry run of the change differs from the live object
    assert p.returncode == 1, p.stderr
    assert re.search(r"^-  replicas: 3$", p.stdout, re.M) and re.search(r"^\+  replicas: 4$", p.stdout, re.M)
    assert api.store.get("Deployment", "default", "business-manager").spec.replicas == 3


@pytest.mark.parametrize("version", VERSIONS)
def test_apply_patches_lists_by_their_published_merge_keys(api: TlsApi, version: str) -> None:
    """kubectl computes the strategic merge patch from the schemas (1.27: v2, 1.33: v3): a
    container changed in the manifest is patched by name, keeping what the server added."""
    k = api.kubectl(version)
    manifest = (ARTICLE / "business-manager.yaml").read_text()
    k("apply", "-f", "-", input=manifest)
    # a field the manifest does not set, added to the live container by someone else
    k("set", "env", "deployment/business-manager", "ADDED=1")
    changed = manifest.replace("business-manager:1.0", "business-manager:2.0")
    p = k.run("apply", "-f", "-", "-v=8", input=changed)
    assert "error calculating patch" not in p.stderr
    sent = [line for line in p.stderr.splitlines() if "Request Body" in line and "setElementOrder" in line]
    assert sent, "kubectl sent a strategic merge patch ordering the containers by name"
    dep = api.store.get("Deployment", "default", "business-manager")
    (container,) = dep.spec.template.spec.containers
    assert container.image == "kins.local/business-manager:2.0"
    assert [e.name for e in container.env or []] == ["ADDED"]
    assert container.readinessProbe is not None and container.ports[0].containerPort == 8080


@pytest.mark.parametrize("verb", ["apply", "create"])
def test_kubectl_127_refuses_unknown_fields(api: TlsApi, verb: str) -> None:
    k = api.kubectl(OLDEST)
    p = k.run(verb, "-f", "-", input=TYPO, check=False)
    assert p.returncode != 0
    assert 'unknown field "spec.replicaz"' in p.stderr
    assert 'unknown field "spec.template.spec.containers[0].portz"' in p.stderr
    assert api.store.list("Deployment", "default")[0] == []
    assert "deployment.apps/typo created" in k(verb, "--validate=false", "-f", "-", input=TYPO)


def test_kubectl_127_validates_against_the_v2_schemas_itself(api: TlsApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a server whose documents do not offer ``fieldValidation`` (as before Kubernetes
    1.25), kubectl 1.27 validates manifests itself, with the v2 schemas: the article's
    manifests pass, a typo is refused with kubectl's own message."""
    monkeypatch.setattr(openapi, "WRITE_PARAMS", ("dryRun", "fieldManager"))
    monkeypatch.setattr(openapi, "PATCH_PARAMS", ("dryRun", "fieldManager", "force"))
    openapi.invalidate()
    try:
        k = api.kubectl(OLDEST)
        p = k.run("apply", "-f", "-", "-v=6", input=TYPO, check=False)
        assert p.returncode != 0
        assert "error validating data" in p.stderr and "--validate=false" in p.stderr, p.stderr
        assert re.search(r'unknown field "replicaz" in io\.k8s\.api\.apps\.v1\.DeploymentSpec', p.stderr), p.stderr
        assert re.search(r'unknown field "portz" in io\.k8s\.api\.core\.v1\.Container', p.stderr), p.stderr
        assert "fieldValidation=Strict" not in p.stderr  # the server was never asked
        for name in sorted(ARTICLE.glob("*.yaml")):
            p = k.run("apply", "-f", str(name))
            assert "created" in p.stdout, p.stderr
    finally:
        monkeypatch.undo()
        openapi.invalidate()


@pytest.mark.parametrize("version", VERSIONS)
def test_explain_a_kind_registered_at_runtime(api: TlsApi, version: str) -> None:
    """A custom kind's own schema (``OPENAPI_SCHEMA``) is what kubectl explains."""
    res = Resource("Widget", "example.com/v1", "widgets", True, Widget, Widget)
    api_resources.ALL.append(res)
    api_resources.GROUP_VERSIONS.append(res.group_version)
    openapi.invalidate()
    try:
        k = api.kubectl(version)
        out = k("explain", "widgets.spec")
        assert re.search(r"^  size\t<integer> -required-$", out, re.M), out
        assert "How big." in out
        assert re.search(r"^  extra\t<Object>$", out, re.M), out
        out = k("explain", "widgets")
        assert "A widget of the example shop." in out and re.search(r"^  metadata\t<ObjectMeta>$", out, re.M), out
    finally:
        api_resources.ALL.remove(res)
        api_resources.GROUP_VERSIONS.remove(res.group_version)
        openapi.invalidate()
