"""Server-side apply creates and updates through the same steps as every other write: a
CustomResourceDefinition applied server-side serves its kind, an applied Pod starts Pending,
and a Terminating namespace refuses applied objects as it refuses created ones."""

from __future__ import annotations

from pathlib import Path

from kubectl_bin import NEWEST, tls_api
from test_api_crd import CRD_YAML

from kins.api.core import Namespace, NamespaceStatus
from kins.api.defaulting import namespace_labels
from kins.api.meta import ObjectMeta
from kins.store.memory import MemoryStore


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


WIDGET = """\
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: default}
spec: {size: small}
"""


def test_a_definition_applied_server_side_serves_its_kind(tmp_path: Path) -> None:
    with tls_api(MemoryStore(history=1000), tmp_path / "state") as api:
        k = api.kubectl(NEWEST)
        k("apply", "--server-side", "-f", _file(tmp_path, "crd.yaml", CRD_YAML))
        k("apply", "--server-side", "-f", _file(tmp_path, "w.yaml", WIDGET))
        assert k("get", "wg", "-o", "name").split() == ["widget.example.com/w1"]


POD = """\
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default}
spec:
  containers: [{name: c, image: busybox}]
"""


def test_an_applied_pod_starts_pending(tmp_path: Path) -> None:
    with tls_api(MemoryStore(history=1000), tmp_path / "state") as api:
        k = api.kubectl(NEWEST)
        k("apply", "--server-side", "-f", _file(tmp_path, "pod.yaml", POD))
        assert k("get", "pod", "p", "-o", "jsonpath={.status.phase}") == "Pending"


def test_a_terminating_namespace_refuses_applied_objects(tmp_path: Path) -> None:
    store = MemoryStore(history=1000)
    meta = ObjectMeta(name="zz", labels=namespace_labels("zz", None), deletionTimestamp="2026-01-01T00:00:00Z")
    store.create(Namespace(metadata=meta, status=NamespaceStatus(phase="Terminating")))
    with tls_api(store, tmp_path / "state") as api:
        k = api.kubectl(NEWEST)
        p = k.run(
            "apply",
            "--server-side",
            "-n",
            "zz",
            "-f",
            _file(tmp_path, "pod.yaml", POD.replace("default", "zz")),
            check=False,
        )
        assert p.returncode != 0
        assert "unable to create new content in namespace zz because it is being terminated" in p.stderr
