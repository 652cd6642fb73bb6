"""The official Kubernetes Python client, configured only by the kubeconfig kins writes,
against a live cluster: list, create, strategic merge patch, scale, watch and delete."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import Cluster, poll, running_cluster
from kubernetes import client, config, watch

pytestmark = pytest.mark.root

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"
SMP = "application/strategic-merge-patch+json"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(apps=False) as c:
        yield c


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> client.ApiClient:
    path = cluster.kins("kubeconfig", "--path").stdout.strip()
    assert path == str(cluster.state / "kubeconfig")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert cluster.kins("kubeconfig").stdout == Path(path).read_text()
    contexts, current = config.list_kube_config_contexts(config_file=path)
    assert current["name"] == f"kins-{cluster.name}" and [c["name"] for c in contexts] == [current["name"]]
    return config.new_client_from_config(config_file=path)


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": AGNHOST,
                            "args": ["netexec", "--http-port=8080"],
                            "ports": [{"containerPort": 8080}],
                            "env": [{"name": "A", "value": "1"}],
                        }
                    ]
                },
            },
        },
    }


def test_lists_through_the_kubeconfig(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    assert sorted(n.metadata.name for n in core.list_node().items) == ["node1", "node2"]
    assert {ns.metadata.name for ns in core.list_namespace().items} >= {"default", "kube-system"}
    (svc,) = [s for s in core.list_namespaced_service("default").items if s.metadata.name == "kubernetes"]
    assert svc.spec.type == "ClusterIP" and svc.spec.ports[0].protocol == "TCP"


def test_deployment_patch_scale_watch_delete(cluster: Cluster, api: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", deployment("pyweb", 2))

    def running() -> list[client.V1Pod] | None:
        pods = core.list_namespaced_pod("default", label_selector="app=pyweb").items
        ok = [
            p
            for p in pods
            if p.status and p.status.phase == "Running" and p.status.pod_ip and not p.metadata.deletion_timestamp
        ]
        return ok if len(ok) == len(pods) == 2 else None

    poll(running, 60, "2 running pyweb pods")
    # A strategic merge patch of one container: env merged by name, ports and args kept.
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}]}]}}}}
    apps.patch_namespaced_deployment("pyweb", "default", patch, _content_type=SMP)
    (web,) = apps.read_namespaced_deployment("pyweb", "default").spec.template.spec.containers
    assert [(e.name, e.value) for e in web.env] == [("A", "1"), ("B", "2")]
    assert web.args == ["netexec", "--http-port=8080"] and web.ports[0].container_port == 8080
    # Scale through the subresource, then watch pods until three run the new template.
    apps.patch_namespaced_deployment_scale("pyweb", "default", {"spec": {"replicas": 3}})
    seen: set[str] = set()
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_pod, "default", label_selector="app=pyweb", timeout_seconds=60):
        pod = ev["object"]
        envs = {e.name for e in pod.spec.containers[0].env or []}
        if ev["type"] != "DELETED" and pod.status and pod.status.phase == "Running" and "B" in envs:
            seen.add(pod.metadata.name)
        if len(seen) == 3:
            w.stop()
    assert len(seen) == 3
    apps.delete_namespaced_deployment("pyweb", "default")
    poll(lambda: not core.list_namespaced_pod("default", label_selector="app=pyweb").items, 60, "pyweb pods gone")


def test_pod_and_service_create_patch_delete(cluster: Cluster, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="pyone", labels={"app": "pyone"}),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="web", image=AGNHOST, args=["netexec", "--http-port=8080"])]
        ),
    )
    core.create_namespaced_pod("default", pod)
    svc = {
        "metadata": {"name": "pyone"},
        "spec": {
            "type": "NodePort",
            "selector": {"app": "pyone"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        },
    }
    created = core.create_namespaced_service("default", svc)
    node_port = created.spec.ports[0].node_port
    assert created.spec.cluster_ip and node_port
    # A second port by strategic merge: the first keeps its allocated node port.
    patch = {"spec": {"ports": [{"name": "metrics", "port": 9090, "targetPort": 8080}]}}
    patched = core.patch_namespaced_service("pyone", "default", patch, _content_type=SMP)
    assert {p.port: p.node_port for p in patched.spec.ports}[80] == node_port
    assert sorted(p.port for p in patched.spec.ports) == [80, 9090]
    core.patch_namespaced_pod("pyone", "default", {"metadata": {"labels": {"tier": "front"}}}, _content_type=SMP)
    assert core.read_namespaced_pod("pyone", "default").metadata.labels == {"app": "pyone", "tier": "front"}

    def endpoints() -> list[str]:
        subsets = core.read_namespaced_endpoints("pyone", "default").subsets or []
        return [a.ip for s in subsets for a in s.addresses or []]

    pod_ip = poll(lambda: core.read_namespaced_pod("pyone", "default").status.pod_ip, 60, "pyone's address")
    assert poll(endpoints, 60, "pyone's ready endpoint") == [pod_ip]
    core.delete_namespaced_service("pyone", "default")
    core.delete_namespaced_pod("pyone", "default")
    poll(
        lambda: not [p for p in core.list_namespaced_pod("default").items if p.metadata.name == "pyone"],
        60,
        "pyone gone",
    )
