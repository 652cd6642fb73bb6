"""`kubectl top` on a live cluster: the kubelets' samples of real pod processes, through the API."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

import pytest
from e2e_helpers import Cluster, poll, running_cluster
from kubectl_bin import NEWEST, kubectl_for

pytestmark = pytest.mark.root

ARTICLE_PODS = ("business-manager-", "data-product-")
SPINNER = """
apiVersion: v1
kind: Pod
metadata: {name: spinner, labels: {app: spinner}}
spec:
  containers:
  - name: spin
    image: busybox
    command: ["sh", "-c", "while :; do :; done"]
"""


def _mib(text: str) -> int:
    assert text.endswith("Mi"), text
    return int(text[:-2])


def _article_pods_listed(cluster: Cluster) -> None:
    k = kubectl_for(NEWEST, cluster.state / "kubeconfig")
    started = time.monotonic()

    def article_rows() -> dict[str, list[str]] | None:
        rows = [line.split() for line in k("top", "pods", "-A", "--no-headers").splitlines()]
        out = {r[1]: r for r in rows if r[0] == "default" and r[1].startswith(ARTICLE_PODS)}
        # The memory column counts whole MiB: each pod's interpreter keeps more than one of its own.
        return out if len(out) == 6 and all(_mib(r[3]) > 0 for r in out.values()) else None

    rows = poll(article_rows, 20, "kubectl top pods -A listing the article's 6 pods with their memory", 1.0)
    assert time.monotonic() - started <= 20
    for r in rows.values():
        assert r[2].endswith("m"), r  # CPU in millicores
    # Each container of each pod, by name.
    containers = [line.split() for line in k("top", "pods", "--containers", "--no-headers").splitlines()]
    assert {c[0] for c in containers if len(c) == 4 and c[2].endswith("m")} >= set(rows)
    nodes = poll(
        lambda: [line.split() for line in k("top", "nodes", "--no-headers").splitlines()] or None,
        20,
        "kubectl top nodes",
        1.0,
    )
    assert {n[0] for n in nodes} == {n.name for n in cluster.client.list("Node")}
    for name, cpu, cpu_share, memory, memory_share in nodes:
        assert cpu.endswith("m") and cpu_share.endswith("%") and memory_share.endswith("%"), (name, cpu)
        assert _mib(memory) > 0


def test_top_pods_lists_the_article_pods_with_their_memory(cluster: Cluster) -> None:
    _article_pods_listed(cluster)


def test_each_node_agent_process_reports_its_own_node(tmp_path: Path) -> None:
    # agents.mode: process: one `kins agent` per node, each posting its node's report alone.
    text = resources.files("kins").joinpath("data/default-cluster.yaml").read_text()
    path = tmp_path / "cluster.yaml"
    path.write_text(text + "agents: {mode: process}\n")
    with running_cluster(cluster_file=str(path)) as c:
        _article_pods_listed(c)


def test_a_busy_pod_shows_its_cpu(cluster: Cluster) -> None:
    cluster.apply_text(SPINNER)
    k = kubectl_for(NEWEST, cluster.state / "kubeconfig")
    try:
        cluster.wait_ready("spinner", 1)

        def busy() -> int | None:
            out = k.run("top", "pod", "spinner", "--no-headers", check=False).stdout.split()
            # Alone on an idle core it takes ~1000m; on a shared machine it still takes a good part.
            return int(out[1][:-1]) if out and int(out[1][:-1]) >= 100 else None

        poll(busy, 30, "the spinning pod's CPU in kubectl top", 1.0)
        selected = [line.split() for line in k("top", "pods", "-l", "app=spinner", "--no-headers").splitlines()]
        assert [r[0] for r in selected] == ["spinner"]
    finally:
        cluster.kins("delete", "pod", "spinner", check=False)
