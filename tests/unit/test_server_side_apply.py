"""kubectl 1.27 and 1.33 against the API: ``apply --server-side`` (pruning, conflicts,
``--force-conflicts``, ``--field-manager``), ``get --show-managed-fields``, ``diff`` through
server-side dry runs, and the move from client-side to server-side apply."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubectl_bin import NEWEST, OLDEST, Kubectl, TlsApi, tls_api

from kins.store.memory import MemoryStore

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
        image: nginx
        ports: [{containerPort: 80}]
        env: %(env)s
"""


def write(path: Path, replicas: int = 2, env: str = '[{name: A, value: "1"}, {name: B, value: "2"}]') -> str:
    path.write_text(MANIFEST % {"replicas": replicas, "env": env})
    return str(path)


@pytest.fixture(params=[OLDEST, NEWEST])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[TlsApi, Kubectl]]:
    with tls_api(MemoryStore(history=1000), tmp_path / "api") as served:
        yield served, served.kubectl(request.param)


def managed(k: Kubectl) -> list[dict]:
    doc = yaml.safe_load(k("get", "deployment", "web", "-o", "yaml", "--show-managed-fields"))
    return doc["metadata"]["managedFields"]


def test_server_side_apply_shows_owners_and_prunes_dropped_fields(api: tuple[TlsApi, Kubectl], tmp_path: Path) -> None:
    _, k = api
    f = write(tmp_path / "web.yaml")
    assert "serverside-applied" in k("apply", "--server-side", "-f", f)
    (entry,) = managed(k)
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == ("kubectl", "Apply", "FieldsV1")
    env = entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']["f:env"]
    assert set(env) == {'k:{"name":"A"}', 'k:{"name":"B"}'}
    plain = yaml.safe_load(k("get", "deployment", "web", "-o", "yaml"))
    assert "managedFields" not in plain["metadata"]  # kubectl hides them unless asked
    f = write(tmp_path / "web.yaml", env='[{name: A, value: "1"}]')
    k("apply", "--server-side", "-f", f)
    assert k("get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].env}") == (
        '[{"name":"A","value":"1"}]'
    )
    f = write(tmp_path / "other.yaml", replicas=2)
    k("apply", "--server-side", "--field-manager=ci", "-f", f)
    assert {e["manager"] for e in managed(k)} == {"kubectl", "ci"}


def test_scale_then_apply_conflicts_and_force_conflicts_wins(api: tuple[TlsApi, Kubectl], tmp_path: Path) -> None:
    _, k = api
    f = write(tmp_path / "web.yaml")
    k("apply", "--server-side", "-f", f)
    k("scale", "deployment", "web", "--replicas=4")
    # kubectl names itself after its binary in the User-Agent (kubectl.1.NN here).
    scaler = k.binary.name
    p = k.run("apply", "--server-side", "-f", f, check=False)
    assert p.returncode != 0
    assert (
        f'error: Apply failed with 1 conflict: conflict with "{scaler}" with subresource "scale" using apps/v1: '
        ".spec.replicas" in p.stderr
    )
    assert k("get", "deployment", "web", "-o", "jsonpath={.spec.replicas}") == "4"
    k("apply", "--server-side", "--force-conflicts", "-f", f)
    assert k("get", "deployment", "web", "-o", "jsonpath={.spec.replicas}") == "2"
    assert [e["manager"] for e in managed(k)] == ["kubectl"]


def test_diff_through_server_side_dry_run(api: tuple[TlsApi, Kubectl], tmp_path: Path) -> None:
    _, k = api
    f = write(tmp_path / "web.yaml")
    k("apply", "--server-side", "-f", f)
    p = k.run("diff", "--server-side", "-f", f, check=False)
    assert (p.returncode, p.stdout) == (0, ""), p.stderr
    f = write(tmp_path / "web.yaml", replicas=3)
    p = k.run("diff", "--server-side", "-f", f, check=False)
    assert p.returncode == 1, p.stderr
    changed = [line for line in p.stdout.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-  generation: 1", "+  generation: 2", "-  replicas: 2", "+  replicas: 3"]
    assert k("get", "deployment", "web", "-o", "jsonpath={.spec.replicas}") == "2"  # nothing written


def test_diff_of_a_client_side_applied_manifest(api: tuple[TlsApi, Kubectl], tmp_path: Path) -> None:
    _, k = api
    f = write(tmp_path / "web.yaml")
    k("apply", "-f", f)
    p = k.run("diff", "-f", f, check=False)
    assert (p.returncode, p.stdout) == (0, ""), p.stderr
    f = write(tmp_path / "web.yaml", replicas=5)
    p = k.run("diff", "-f", f, check=False)
    assert p.returncode == 1, p.stderr
    assert "+  replicas: 5" in p.stdout and "-  replicas: 2" in p.stdout


def test_client_side_apply_moves_to_server_side(api: tuple[TlsApi, Kubectl], tmp_path: Path) -> None:
    _, k = api
    f = write(tmp_path / "web.yaml")
    k("apply", "-f", f)
    assert [(e["manager"], e["operation"]) for e in managed(k)] == [("kubectl-client-side-apply", "Update")]
    # Another manager changing what client-side apply set is a conflict with it.
    other = write(tmp_path / "other.yaml", replicas=7)
    p = k.run("apply", "--server-side", "--field-manager=other", "-f", other, check=False)
    assert p.returncode != 0
    assert 'conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas' in p.stderr
    # kubectl itself takes its own fields over: no conflict, and its client-side entry is gone.
    f = write(tmp_path / "web.yaml", replicas=3, env='[{name: A, value: "1"}]')
    k("apply", "--server-side", "-f", f)
    entries = {(e["manager"], e["operation"]) for e in managed(k)}
    assert ("kubectl", "Apply") in entries
    assert ("kubectl-client-side-apply", "Update") not in entries
    doc = yaml.safe_load(k("get", "deployment", "web", "-o", "yaml"))
    assert doc["spec"]["replicas"] == 3
    assert [e["name"] for e in doc["spec"]["template"]["spec"]["containers"][0]["env"]] == ["A"]
    last = yaml.safe_load(doc["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 3  # kept up to date for a later client-side apply


def test_server_dry_run_on_every_verb_writes_nothing(api: tuple[TlsApi, Kubectl], tmp_path: Path) -> None:
    served, k = api
    f = write(tmp_path / "web.yaml")
    assert "(server dry run)" in k("create", "--dry-run=server", "-f", f)
    assert k.run("get", "deployment", "web", check=False).returncode != 0
    k("apply", "--server-side", "-f", f)
    rv = served.store.resource_version
    out = k("apply", "--server-side", "--dry-run=server", "-f", write(tmp_path / "b.yaml", replicas=6))
    assert "(server dry run)" in out
    k("scale", "deployment", "web", "--replicas=5", "--dry-run=server")
    k("patch", "deployment", "web", "--dry-run=server", "-p", '{"spec":{"replicas":7}}')
    k("replace", "--dry-run=server", "-f", write(tmp_path / "c.yaml", replicas=8))
    k("delete", "deployment", "web", "--dry-run=server")
    assert served.store.resource_version == rv
    assert k("get", "deployment", "web", "-o", "jsonpath={.spec.replicas}") == "2"


def test_client_side_diff_after_a_server_side_apply(api: tuple[TlsApi, Kubectl], tmp_path: Path) -> None:
    _, k = api
    f = write(tmp_path / "web.yaml")
    k("apply", "--server-side", "-f", f)
    # kubectl's patch carries "annotations": {} for an object without them: no change.
    p = k.run("diff", "-f", f, check=False)
    assert (p.returncode, p.stdout) == (0, ""), p.stdout + p.stderr
