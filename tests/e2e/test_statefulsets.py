"""StatefulSets and DaemonSets on a live cluster: ordered pods with stable DNS names behind a
headless Service, a pod recreated under its name, one daemon pod per node as nodes come."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from collections.abc import Iterator
from importlib import resources

import msgspec
import pytest
from e2e_helpers import Cluster, poll, running_cluster

from kins.api.apps import DaemonSet, StatefulSet
from kins.api.core import Pod

pytestmark = pytest.mark.root

ARTICLE = resources.files("kins").joinpath("data/article")
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.39"
NODE3_IP = "192.168.0.23"

MANIFESTS = f"""
apiVersion: v1
kind: Service
metadata: {{name: nginx, namespace: default}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web, namespace: default}}
spec:
  serviceName: nginx
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: netexec
        image: {AGNHOST}
        args: [netexec, --http-port=8080]
        ports: [{{containerPort: 8080, name: http}}]
        readinessProbe: {{httpGet: {{path: /healthz, port: 8080}}, periodSeconds: 1}}
"""

DAEMONSET = f"""
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent, namespace: default}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      containers: [{{name: pause, image: {AGNHOST}, args: [pause]}}]
"""

FQDN = "web-1.nginx.default.svc.cluster.local"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(apps=False) as c:
        dns = [str(ARTICLE.joinpath(f)) for f in ("kube-dns.yaml", "kube-dns-service.yaml")]
        c.kins("apply", *(a for f in dns for a in ("-f", f)))
        c.wait_ready("kube-dns", 2, ns="kube-system", timeout=60)
        poll(lambda: len(c.endpoint_ips("kube-dns", "kube-system")) == 2, 15, "kube-dns's 2 endpoints")
        yield c


def _ready_at(p: Pod) -> str:
    for cond in (p.status.conditions if p.status else None) or []:
        if cond.type == "Ready" and cond.status == "True":
            return cond.lastTransitionTime or ""
    return ""


def _resolve(c: Cluster, pod: str, name: str) -> str:
    res = c.exec(pod, "getent", "hosts", name, check=False)
    return res.stdout.split()[0] if res.returncode == 0 and res.stdout.split() else ""


def test_statefulset_pods_in_order_with_stable_dns_names(cluster: Cluster) -> None:
    cluster.apply_text(MANIFESTS + "---" + DAEMONSET)
    pods = cluster.wait_ready("web-", 3, timeout=90)
    assert [p.name for p in pods] == ["web-0", "web-1", "web-2"]
    # OrderedReady: each pod was created no earlier than its predecessor became ready.
    for prev, nxt in itertools.pairwise(pods):
        assert _ready_at(prev) and _ready_at(prev) <= (nxt.metadata.creationTimestamp or ""), (prev.name, nxt.name)
    for p in pods:
        assert p.spec.hostname == p.name and p.spec.subdomain == "nginx"
        assert p.labels["statefulset.kubernetes.io/pod-name"] == p.name
    sts = poll(
        lambda: (
            (s := cluster.client.get("StatefulSet", "default", "web"))
            and isinstance(s, StatefulSet)
            and s.status
            and s.status.readyReplicas == 3
            and s
        ),
        20,
        "web's status to show 3 ready",
    )
    assert isinstance(sts, StatefulSet) and sts.status is not None
    assert (sts.status.replicas, sts.status.currentReplicas, sts.status.updatedReplicas) == (3, 3, 3)

    poll(lambda: len(cluster.endpoint_ips("nginx")) == 3, 15, "nginx's 3 endpoints")
    web1_ip = pods[1].status.podIP if pods[1].status else ""
    poll(lambda: _resolve(cluster, "web-0", FQDN) == web1_ip, 20, f"{FQDN} -> {web1_ip}")

    # kins get shows it as kubectl does.
    table = cluster.kins("get", "sts").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "AGE"] and table[1].split()[:2] == ["web", "3/3"]

    # A deleted pod comes back under the same name, and DNS follows it.
    old_uid = pods[1].metadata.uid
    cluster.client.delete("Pod", "default", "web-1")

    def back() -> Pod | None:
        fresh = [p for p in cluster.ready_pods("web-1") if p.metadata.uid != old_uid]
        return fresh[0] if fresh else None

    again = poll(back, 60, "web-1 to come back")
    assert again.spec.hostname == "web-1"
    new_ip = again.status.podIP if again.status else ""
    assert new_ip
    poll(lambda: _resolve(cluster, "web-0", FQDN) == new_ip, 20, f"{FQDN} -> {new_ip}")
    assert sorted(p.name for p in cluster.pods("web-")) == ["web-0", "web-1", "web-2"]


def test_scale_describe_and_wait(cluster: Cluster) -> None:
    res = cluster.kins("wait", "sts/web", "--for=jsonpath={.status.readyReplicas}=3", "--timeout=30s")
    assert "statefulset.apps/web condition met" in res.stdout
    assert "statefulset.apps/web scaled" in cluster.kins("scale", "statefulset", "web", "--replicas", "2").stdout
    poll(lambda: [p.name for p in cluster.pods("web-")] == ["web-0", "web-1"], 60, "web-2 to go")

    # Events are written in batches: wait for the delete's.
    def described() -> str | None:
        t = cluster.kins("describe", "sts", "web").stdout
        return t if "delete Pod web-2 in StatefulSet web successful" in t else None

    page = poll(described, 10, "the SuccessfulDelete event on the describe page")
    assert "Replicas:           2 desired | 2 total" in page
    assert "create Pod web-2 in StatefulSet web successful" in page
    cluster.kins("scale", "sts/web", "--replicas", "3")
    cluster.wait_ready("web-", 3, timeout=60)
    assert "Desired Number of Nodes Scheduled: 2" in cluster.kins("describe", "ds", "agent").stdout


def test_rolling_update_replaces_pods_from_the_highest_ordinal(cluster: Cluster) -> None:
    before = {p.name: p.metadata.uid for p in cluster.wait_ready("web-", 3, timeout=60)}
    labels = {"app": "web", "tier": "v2"}
    cluster.client.patch("StatefulSet", "default", "web", {"spec": {"template": {"metadata": {"labels": labels}}}})

    def rolled() -> list[Pod] | None:
        pods = cluster.ready_pods("web-")
        done = len(pods) == 3 and all(p.labels.get("tier") == "v2" for p in pods)
        return pods if done else None

    pods = poll(rolled, 90, "every web pod on the new template")
    assert all(p.metadata.uid != before[p.name] for p in pods)
    # web-2 was replaced first, web-0 last.
    created = [p.metadata.creationTimestamp or "" for p in pods]
    assert created[2] <= created[1] <= created[0], created
    sts = cluster.client.get("StatefulSet", "default", "web")
    assert isinstance(sts, StatefulSet) and sts.status is not None
    poll(
        lambda: (
            (s := cluster.client.get("StatefulSet", "default", "web"))
            and isinstance(s, StatefulSet)
            and s.status is not None
            and s.status.currentRevision == s.status.updateRevision
            and s.status.updatedReplicas == 3
        ),
        20,
        "the update revision to become the current one",
    )


def test_served_resources_include_the_sets(cluster: Cluster) -> None:
    if shutil.which("kubectl") is None:
        raise AssertionError("kubectl is needed for this test")
    res = subprocess.run(
        ["kubectl", "--kubeconfig", str(cluster.state / "kubeconfig"), "api-resources", "--api-group=apps"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    rows = {line.split()[0]: line.split() for line in res.stdout.splitlines()[1:] if line.strip()}
    assert rows["statefulsets"][1] == "sts" and rows["daemonsets"][1] == "ds"
    res = subprocess.run(
        ["kubectl", "--kubeconfig", str(cluster.state / "kubeconfig"), "get", "ds"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert res.stdout.split()[:8] == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "NODE",
        "SELECTOR",
    ]


def _per_node(c: Cluster) -> dict[str, str]:
    return {p.spec.nodeName or "": p.name for p in c.ready_pods("agent-")}


def _bound_to(c: Cluster, node: str) -> bool:
    return any(p.spec.nodeName == node and not p.terminating for p in c.pods("agent-"))


def test_daemonset_one_pod_per_node_and_one_more_for_a_new_node(cluster: Cluster) -> None:
    cluster.apply_text(DAEMONSET)  # unchanged when the first test applied it already
    nodes = sorted(n.name for n in cluster.client.list("Node"))

    def everywhere() -> dict[str, str] | None:
        m = _per_node(cluster)
        return m if sorted(m) == nodes else None

    placed = poll(everywhere, 60, f"an agent pod on each of {nodes}")
    assert len(cluster.pods("agent-")) == len(nodes) == len(placed)
    cluster.kins("node", "add", "node3", "--ip", NODE3_IP)
    # The new node gets its pod at once, bound to it and pinned by node affinity; it starts
    # even when it was bound before the node's namespace was made (the kubelet tries again).
    poll(lambda: _bound_to(cluster, "node3"), 30, "an agent pod bound to node3")
    poll(lambda: "node3" in _per_node(cluster), 60, "the agent pod on node3 ready")
    assert len(cluster.pods("agent-")) == len(nodes) + 1
    pod = next(p for p in cluster.pods("agent-") if p.spec.nodeName == "node3")
    affinity = msgspec.to_builtins(pod.spec.affinity)
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchFields"][0]["values"] == ["node3"]
    poll(
        lambda: (
            (d := cluster.client.get("DaemonSet", "default", "agent"))
            and isinstance(d, DaemonSet)
            and d.status
            and d.status.desiredNumberScheduled == d.status.currentNumberScheduled == len(nodes) + 1
        ),
        20,
        "agent's status to count node3",
    )
    cluster.kins("node", "remove", "node3")
    poll(
        lambda: not _bound_to(cluster, "node3") and len(cluster.pods("agent-")) == len(nodes),
        60,
        "node3's pod gone",
    )
    assert sorted(_per_node(cluster)) == nodes
