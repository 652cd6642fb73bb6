"""Live: the components' Events (kins get events, describe) and kins wait / apply --wait."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator

import pytest
from e2e_helpers import KINS, Cluster, poll, running_cluster

from kins.api.core import Event

pytestmark = pytest.mark.root

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.39
        args: [netexec, --http-port=8080]
        readinessProbe: {httpGet: {port: 8080, path: /}, periodSeconds: 1}
"""

BAD = """
apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  containers: [{name: bad, image: docker.io/library/no-such-image:1}]
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(apps=False) as c:
        yield c


def events(c: Cluster) -> list[Event]:
    return [e for e in c.client.list("Event", all_namespaces=True) if isinstance(e, Event)]


def reasons_for(c: Cluster, kind: str, prefix: str) -> set[str]:
    return {
        e.reason or ""
        for e in events(c)
        if e.involvedObject.kind == kind and (e.involvedObject.name or "").startswith(prefix)
    }


def test_apply_wait_then_the_components_events(cluster: Cluster) -> None:
    res = cluster.kins("apply", "-f", "-", "--wait", "--timeout", "60s", stdin=WEB)
    assert "deployment/web created" in res.stdout
    assert "deployment.apps/web condition met" in res.stdout
    pods = cluster.ready_pods("web-")
    assert len(pods) == 2  # --wait returned only once every replica was ready
    want_pod = {"Scheduled", "Pulled", "Created", "Started"}
    poll(lambda: all(want_pod <= reasons_for(cluster, "Pod", p.name) for p in pods), 10, "the pods' events")
    poll(lambda: "ScalingReplicaSet" in reasons_for(cluster, "Deployment", "web"), 10, "ScalingReplicaSet")
    assert "SuccessfulCreate" in reasons_for(cluster, "ReplicaSet", "web-")
    assert {"RegisteredNode"} <= reasons_for(cluster, "Node", "node")

    table = cluster.kins("get", "events").stdout
    assert table.splitlines()[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    for p in pods:
        assert f"Successfully assigned default/{p.name} to {p.spec.nodeName}" in table
    assert "Scaled up replica set web-" in table and "from 0 to 2" in table
    assert "Started container web" in table
    assert cluster.kins("get", "ev", "-A").stdout.splitlines()[0].split()[0] == "NAMESPACE"

    page = cluster.kins("describe", "pod", pods[0].name).stdout
    events_part = page[page.index("Events:") :]
    assert "default-scheduler  Successfully assigned" in events_part
    assert "kubelet" in events_part and "Started container web" in events_part
    deploy = cluster.kins("describe", "deploy", "web").stdout
    assert "ScalingReplicaSet" in deploy and "NewReplicaSet:" in deploy


def test_an_image_kins_cannot_run_gets_a_warning(cluster: Cluster) -> None:
    cluster.apply_text(BAD)

    def warning() -> Event | None:
        return next(
            (e for e in events(cluster) if e.involvedObject.name == "bad" and e.type == "Warning"),
            None,
        )

    ev = poll(warning, 15, "a Warning event about pod bad")
    assert ev.reason == "Failed"
    assert (ev.message or "").startswith('Failed to pull image "docker.io/library/no-such-image:1"')
    assert ev.source is not None and ev.source.component == "kubelet" and ev.source.host
    assert ev.involvedObject.fieldPath == "spec.containers{bad}"
    table = cluster.kins("get", "events").stdout
    assert any(line.split()[1:4] == ["Warning", "Failed", "pod/bad"] for line in table.splitlines()[1:])
    page = cluster.kins("describe", "pod", "bad").stdout
    assert "Error: ErrImagePull" in page[page.index("Events:") :]
    # No container ever started: the pod stays Pending, its container waiting, as kubectl shows
    assert re.search(r"^Status:\s+Pending$", page, re.M), page
    line = next(ln for ln in cluster.kins("get", "po", "bad").stdout.splitlines() if ln.startswith("bad "))
    assert line.split()[1:3] == ["0/1", "ErrImagePull"], line


def test_wait_for_ready_pods_and_a_timeout(cluster: Cluster) -> None:
    cluster.kins("wait", "deploy/web", "--for=condition=Available", "--timeout", "60s")
    res = cluster.kins("wait", "pod", "-l", "app=web", "--for=condition=Ready", "--timeout", "30s")
    names = sorted(p.name for p in cluster.ready_pods("web-"))
    assert res.stdout.splitlines() == [f"pod/{n} condition met" for n in names]
    res = cluster.kins("wait", "pod", names[0], "--for=jsonpath={.status.phase}=Running", "--timeout", "5s")
    assert res.stdout.strip() == f"pod/{names[0]} condition met"

    t0 = time.monotonic()
    res = cluster.kins("wait", "pod", names[0], "--for=condition=Impossible", "--timeout", "2s", check=False)
    took = time.monotonic() - t0
    assert res.returncode == 1
    assert res.stderr.strip() == f"error: timed out waiting for the condition on pods/{names[0]}"
    assert 1.9 <= took < 15


def test_wait_for_delete_returns_after_the_delete(cluster: Cluster) -> None:
    cluster.apply_text(WEB.replace("name: web}", "name: gone}").replace("app: web", "app: gone"))
    pod = poll(lambda: next(iter(cluster.pods("gone-")), None), 15, "a pod of deployment gone")
    waiter = subprocess.Popen(
        [*KINS, "wait", "pod", pod.name, "--for=delete", "--timeout", "60s"],
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        assert waiter.poll() is None  # still waiting: the pod is there
        cluster.kins("delete", "deployment", "gone", "--no-wait")
        out, err = waiter.communicate(timeout=60)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 0, err
    assert out.strip() == f"pod/{pod.name} condition met"
    with pytest.raises(Exception, match="not found"):
        cluster.client.get("Pod", "default", pod.name)
