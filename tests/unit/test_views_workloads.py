"""kubectl get / describe for StatefulSets and DaemonSets, against golden files.

The sets are converged offline, then their timestamps pinned so ages are stable. Set
KINS_UPDATE_GOLDEN=1 to rewrite the expected files after an intended change.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from msgspec.structs import replace

from kins.api.apps import DaemonSet, StatefulSet
from kins.api.config import default_cluster
from kins.api.core import Pod
from kins.api.load import load_text
from kins.api.meta import Object
from kins.control.offline import build_offline_state
from kins.views.describe_workloads import describe_daemonset, describe_statefulset
from kins.views.events import EventRow
from kins.views.table import format_table

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "views" / "workloads"
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
CREATED = "2024-05-01T11:55:00Z"

MANIFESTS = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  serviceName: nginx
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: netexec
        image: registry.k8s.io/e2e-test-images/agnhost:2.39
        args: [netexec, --http-port=8080]
        ports: [{containerPort: 8080, name: http}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {kubernetes.io/os: linux}
      containers: [{name: agent, image: busybox:1.36}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: logs, namespace: default}
spec:
  selector: {matchLabels: {app: logs}}
  template:
    metadata: {labels: {app: logs}}
    spec:
      containers: [{name: logs, image: busybox:1.36}, {name: ship, image: alpine:3.19}]
"""


def _objects() -> tuple[list[StatefulSet], list[DaemonSet], list[Pod]]:
    cfg = default_cluster()
    # Nodes carry kubernetes.io/os=linux in a real cluster; give them the label here.
    nodes = [replace(n, labels={**(n.labels or {}), "kubernetes.io/os": "linux"}) for n in cfg.nodes]
    store = build_offline_state(replace(cfg, nodes=nodes), load_text(MANIFESTS))

    def pin(o: Object) -> Object:
        return replace(o, metadata=replace(o.metadata, creationTimestamp=CREATED))

    sets = [pin(o) for o in store.list("StatefulSet")[0]]
    daemons = [pin(o) for o in store.list("DaemonSet")[0]]
    pods = [o for o in store.list("Pod")[0] if isinstance(o, Pod)]
    assert all(isinstance(o, StatefulSet) for o in sets) and all(isinstance(o, DaemonSet) for o in daemons)
    return sets, daemons, pods  # type: ignore[return-value]


SETS, DAEMONS, PODS = _objects()
EVENTS = [
    EventRow(
        "Normal",
        "SuccessfulCreate",
        "create Pod web-0 in StatefulSet web successful",
        "statefulset-controller",
        "2024-05-01T11:55:00Z",
        "2024-05-01T11:55:00Z",
    )
]


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("KINS_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("wide", [False, True])
def test_get_statefulsets(wide: bool) -> None:
    out = format_table("StatefulSet", SETS, wide=wide, all_namespaces=False, now=NOW)
    _check(f"get-sts{'-wide' if wide else ''}.txt", out)
    assert out.splitlines()[1].split()[:2] == ["web", "3/3"]


@pytest.mark.parametrize("wide", [False, True])
def test_get_daemonsets(wide: bool) -> None:
    out = format_table("DaemonSet", DAEMONS, wide=wide, all_namespaces=False, now=NOW)
    _check(f"get-ds{'-wide' if wide else ''}.txt", out)
    n = str(len(default_cluster().nodes))
    header = out.splitlines()[0]
    assert header.split("   ")[0:1] == ["NAME"] and "NODE SELECTOR" in header
    assert out.splitlines()[1].split()[:6] == ["agent", n, n, n, n, n]


def test_describe_statefulset() -> None:
    out = describe_statefulset(SETS[0], PODS, EVENTS, now=NOW)
    _check("describe-sts.txt", out)
    assert "Pods Status:        3 Running / 0 Waiting / 0 Succeeded / 0 Failed" in out
    assert "Replicas:           3 desired | 3 total" in out


def test_describe_daemonset() -> None:
    ds = next(d for d in DAEMONS if d.name == "agent")
    out = describe_daemonset(ds, PODS, [], now=NOW)
    _check("describe-ds.txt", out)
    assert f"Desired Number of Nodes Scheduled: {len(default_cluster().nodes)}" in out
    assert "Node-Selector:  kubernetes.io/os=linux" in out
