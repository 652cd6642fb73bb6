"""Services on a live cluster: hairpin, no endpoints, NodePort from outside, endpoints that go
away, scaling, and manifests the API refuses.

One cluster serves the module; each test leaves the article's apps as it found them (3 ready
replicas each).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from e2e_helpers import DATA_PRODUCT_URL, Cluster, poll, running_cluster

pytestmark = pytest.mark.root

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"
NODE_PORT = 30080
EXTRA = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: echo, namespace: default}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: echo}}}}
  template:
    metadata: {{labels: {{app: echo}}}}
    spec:
      containers:
      - name: agnhost
        image: {AGNHOST}
        args: [netexec, --http-port=8080, --udp-port=8081]
        readinessProbe:
          httpGet: {{path: /hostname, port: 8080}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: echo, namespace: default}}
spec:
  type: NodePort
  selector: {{app: echo}}
  ports: [{{port: 80, targetPort: 8080, nodePort: {NODE_PORT}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: nobody, namespace: default}}
spec:
  selector: {{app: nobody-has-this-label}}
  ports: [{{port: 80, targetPort: 8080}}]
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as c:
        c.apply_text(EXTRA)
        c.wait_ready("echo", 1)
        poll(lambda: c.endpoint_ips("echo"), 10, "echo's endpoint")
        c.wait_rules_synced()
        yield c


def test_hairpin_pod_reaches_itself_through_its_service_masqueraded(cluster: Cluster) -> None:
    pod = cluster.ready_pods("echo")[0]
    assert pod.status is not None
    ip = cluster.service("echo").spec.clusterIP
    assert cluster.curl(pod.name, f"http://{ip}/hostname") == pod.name
    # The reply could not come back through the bridge unless the source was rewritten: the
    # pod sees its node's bridge address, not its own.
    client_ip = cluster.curl(pod.name, f"http://{ip}/clientip").rsplit(":", 1)[0]
    bridge_ip = pod.status.podIP.rsplit(".", 1)[0] + ".1" if pod.status.podIP else ""
    assert client_ip == bridge_ip != pod.status.podIP


def test_service_without_endpoints_is_refused_at_once(cluster: Cluster) -> None:
    pod = cluster.pods("business-manager")[0].name
    ip = cluster.service("nobody").spec.clusterIP
    res = cluster.exec(
        pod, "curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{time_total}", f"http://{ip}/", check=False
    )
    assert res.returncode == 7, res.stderr  # CURLE_COULDNT_CONNECT, not 28 (timeout)
    assert "Couldn't connect" in res.stderr or "Connection refused" in res.stderr
    # kube-proxy's REJECT answers the first SYN; anything else (a retransmitted SYN, an ARP
    # that never resolves) takes a second or more
    assert float(res.stdout) < 1.0


@pytest.mark.parametrize("node_ip", ["192.168.0.21", "192.168.0.22"])
def test_node_port_answers_the_outside_host_on_each_node(cluster: Cluster, node_ip: str) -> None:
    pod = cluster.ready_pods("echo")[0].name
    res = cluster.host_exec("client", "curl", "-sS", "-m", "3", f"http://{node_ip}:{NODE_PORT}/hostname")
    assert res.stdout == pod


def test_scale_up_and_down_takes_effect(cluster: Cluster) -> None:
    src = cluster.pods("business-manager")[0].name
    try:
        assert "scaled" in cluster.kins("scale", "deployment", "data-product", "--replicas", "5").stdout
        pods = {p.name for p in cluster.wait_ready("data-product", 5)}
        poll(lambda: cluster.endpoint_pods("data-product") == pods, 10, "5 endpoints")
        cluster.wait_rules_synced()
        served = {json.loads(a)["pod"] for a in cluster.curl_many(src, DATA_PRODUCT_URL, 100) if a}
        assert served == pods  # 100 requests over 5 backends: each is hit (miss chance ~1e-9)
    finally:
        cluster.kins("scale", "deployment/data-product", "--replicas", "3")
    left = {p.name for p in cluster.wait_ready("data-product", 3, timeout=60)}
    poll(lambda: cluster.endpoint_pods("data-product") == left, 10, "3 endpoints")
    cluster.wait_rules_synced()
    served = {json.loads(a)["pod"] for a in cluster.curl_many(src, DATA_PRODUCT_URL, 60) if a}
    assert served == left


def test_no_request_reaches_a_deleted_pod_once_its_endpoint_is_gone(cluster: Cluster) -> None:
    src = cluster.pods("business-manager")[0].name
    victim = cluster.ready_pods("data-product")[0].name
    cluster.kins("delete", "pod", victim, "--no-wait")
    poll(lambda: victim not in cluster.endpoint_pods("data-product"), 10, f"{victim} out of the endpoints")
    cluster.wait_rules_synced()
    answers = cluster.curl_many(src, DATA_PRODUCT_URL, 60)
    served = [json.loads(a)["pod"] for a in answers if a]
    assert len(served) == 60
    assert victim not in served
    # The Deployment replaced it.
    cluster.wait_ready("data-product", 3, timeout=60)


def test_invalid_manifest_changes_nothing_and_names_the_field(cluster: Cluster) -> None:
    before = {(s.name, s.metadata.resourceVersion) for s in cluster.client.list("Service", "default")}
    manifest = """
apiVersion: v1
kind: Service
metadata: {name: fine, namespace: default}
spec:
  selector: {app: fine}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: broken, namespace: default}
spec:
  selector: {app: broken}
  ports: [{port: 70000, targetPort: 8080}]
"""
    res = cluster.apply_text(manifest, check=False)
    assert res.returncode != 0
    assert "spec.ports[0].port" in res.stderr
    assert "broken" in res.stderr
    after = {(s.name, s.metadata.resourceVersion) for s in cluster.client.list("Service", "default")}
    assert after == before  # not even the valid one was created
