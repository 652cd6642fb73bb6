"""Live: `kubectl delete namespace` stops the namespace's pods (their network namespaces and
processes go) and removes its Services' rules from every node."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import Cluster, poll, running_cluster
from kubectl_bin import NEWEST, kubectl_for

from kins.kernel.netns import pod_ns
from kins.render.names import pod_netns

pytestmark = pytest.mark.root

CONTENT = """
apiVersion: v1
kind: Namespace
metadata: {name: zz}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: zz}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 3
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.39
        args: [netexec, --http-port=8080]
        readinessProbe: {httpGet: {port: 8080, path: /}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: zz}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(apps=False) as c:
        yield c


def _pids_in(netns: str) -> set[int]:
    """Processes whose network namespace is ``/run/netns/<netns>``."""
    try:
        inode = os.stat(f"/run/netns/{netns}").st_ino
    except OSError:
        return set()
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino == inode:
                    out.add(int(entry))
            except OSError:
                continue
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _nat(c: Cluster, node: str) -> str:
    return c.node_exec(node, "iptables-save", "-t", "nat").stdout


def test_kubectl_delete_namespace_stops_pods_and_removes_service_rules(cluster: Cluster) -> None:
    cluster.apply_text(CONTENT)
    pods = cluster.wait_ready("web-", 2, timeout=60, ns="zz")
    poll(lambda: len(cluster.endpoint_ips("web", ns="zz")) == 2, 15, "zz/web's endpoints")
    cluster.wait_rules_synced()
    nodes = sorted({p.spec.nodeName for p in pods if p.spec.nodeName})
    for node in nodes:
        assert '"zz/web:http' in _nat(cluster, node), node
    netns = {p.name: pod_ns(cluster.name, pod_netns(p.key)) for p in pods}
    procs = {name: _pids_in(ns) for name, ns in netns.items()}
    for name, ns in netns.items():
        assert Path(f"/run/netns/{ns}").exists(), ns
        assert procs[name], f"no process runs in {ns}"

    k = kubectl_for(NEWEST, cluster.state / "kubeconfig")
    # kubectl waits until the namespace is gone: emptied by the namespace controller, its pods
    # stopped by their kubelets first.
    out = k.run("delete", "namespace", "zz", "--timeout=120s", timeout=150)
    assert out.returncode == 0 and out.stdout.strip() == 'namespace "zz" deleted', out.stderr
    gone = k.run("get", "namespace", "zz", check=False)
    assert gone.returncode != 0 and 'namespaces "zz" not found' in gone.stderr
    for kind in ("pods", "services", "deployments", "replicasets", "endpoints", "endpointslices"):
        assert k("get", kind, "-n", "zz", "-o", "name").strip() == "", kind

    for name, ns in netns.items():
        poll(lambda ns=ns: not Path(f"/run/netns/{ns}").exists(), 30, f"{name}'s network namespace to go")  # type: ignore[misc]
        poll(lambda name=name: not any(_alive(p) for p in procs[name]), 30, f"{name}'s processes to stop")  # type: ignore[misc]
    cluster.wait_rules_synced()
    for node in nodes:
        poll(lambda node=node: '"zz/web' not in _nat(cluster, node), 15, f"zz/web's rules gone from {node}")  # type: ignore[misc]

    # The name is free again: a new zz starts empty and takes content.
    cluster.apply_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: zz}\n")
    # (What every namespace gets at once, as in Kubernetes: the root CA ConfigMap.)
    fresh = k("get", "pods,services,deployments,configmaps,events", "-n", "zz", "-o", "name").split()
    assert set(fresh) <= {"configmap/kube-root-ca.crt"}, fresh


def test_foreground_delete_of_a_deployment_waits_for_its_pods_to_stop(cluster: Cluster) -> None:
    web = CONTENT.split("---")[1].replace("namespace: zz", "namespace: default")
    assert "kind: Deployment" in web
    cluster.apply_text(web)
    pods = cluster.wait_ready("web-", 2, timeout=60)
    netns = [pod_ns(cluster.name, pod_netns(p.key)) for p in pods]
    k = kubectl_for(NEWEST, cluster.state / "kubeconfig")
    # kubectl waits for the Deployment itself: with Foreground it goes last, after its
    # ReplicaSet, which goes after its pods, which the kubelet stops first.
    out = k.run("delete", "deployment", "web", "--cascade=foreground", "--timeout=90s", timeout=120)
    assert out.returncode == 0, out.stderr
    assert k("get", "deployments,replicasets,pods", "-n", "default", "-o", "name").strip() == ""
    for ns in netns:
        assert not Path(f"/run/netns/{ns}").exists(), ns
