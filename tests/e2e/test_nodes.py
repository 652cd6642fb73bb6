"""Nodes joining and leaving a live cluster: flannel entries follow, pods move, traffic goes on."""

from __future__ import annotations

import json

import pytest
from e2e_helpers import DATA_PRODUCT_URL, Cluster, poll

pytestmark = pytest.mark.root

NODE3_IP = "192.168.0.23"


def _answers_from(c: Cluster, src: str, pod_ips: dict[str, str]) -> None:
    """Each pod in ``pod_ips`` (name -> IP) answers ``src`` directly on its pod IP."""
    for name, ip in pod_ips.items():
        assert json.loads(c.curl(src, f"http://{ip}:50051/"))["pod"] == name


def _placement(c: Cluster) -> dict[str, list[tuple[str, str]]]:
    """node -> [(pod, IP)] of the ready data-product pods."""
    out: dict[str, list[tuple[str, str]]] = {}
    for p in c.ready_pods("data-product"):
        out.setdefault(p.spec.nodeName or "", []).append((p.name, p.status.podIP if p.status else ""))
    return out


def test_node_add_refuses_an_address_in_use(cluster: Cluster) -> None:
    res = cluster.kins("node", "add", "node4", "--ip", "192.168.0.21", check=False)
    assert res.returncode != 0 and "192.168.0.21 is already used by node1" in res.stderr
    assert not [n for n in cluster.client.list("Node") if n.name == "node4"]


def test_node_add_and_remove_keep_cross_node_traffic(cluster: Cluster) -> None:
    res = cluster.kins("node", "add", "node3", "--ip", NODE3_IP)
    assert f"node/node3 added ({NODE3_IP}" in res.stdout
    node3 = cluster.client.get("Node", None, "node3")
    cidr = node3.spec.podCIDR  # type: ignore[attr-defined]
    assert cidr and cidr.startswith("172.30.")
    net = cidr.split("/")[0]

    # Every node learns the new peer: route, neighbour and FDB entry towards node3's VTEP.
    def learned(node: str) -> bool:
        routes = cluster.node_exec(node, "ip", "route", check=False).stdout
        fdb = cluster.node_exec(node, "bridge", "fdb", "show", "dev", "flannel.1", check=False).stdout
        return f"{cidr} via {net} dev flannel.1 onlink" in routes and f"dst {NODE3_IP} self permanent" in fdb

    for node in ("node1", "node2"):
        poll(lambda node=node: learned(node), 15, f"{node} to learn node3")
    assert "192.168.0.21" in cluster.node_exec("node3", "bridge", "fdb", "show", "dev", "flannel.1").stdout

    # New pods land on node3 and are reached across the overlay, directly and by ClusterIP.
    cluster.kins("scale", "deployment", "data-product", "--replicas", "6")
    cluster.wait_ready("data-product", 6, timeout=60)
    placed = _placement(cluster)
    assert placed.get("node3"), f"no data-product pod on node3: {placed}"
    src = next(p.name for p in cluster.ready_pods("business-manager") if p.spec.nodeName == "node1")
    _answers_from(cluster, src, dict(placed["node3"]))
    poll(lambda: len(cluster.endpoint_pods("data-product")) == 6, 10, "6 endpoints")
    cluster.wait_rules_synced()

    # Removing node3: its pods are rescheduled on node1/node2, the peers forget it.
    assert "node/node3 removed" in cluster.kins("node", "remove", "node3").stdout

    def moved() -> dict[str, list[tuple[str, str]]] | None:
        placed = _placement(cluster)
        on_others = sum(len(v) for k, v in placed.items() if k != "node3")
        return placed if "node3" not in placed and on_others == 6 and len(cluster.pods("data-product")) == 6 else None

    placed = poll(moved, 60, "data-product's 6 pods back on node1/node2")
    for node in ("node1", "node2"):
        poll(lambda node=node: not learned(node) and cidr not in cluster.node_exec(node, "ip", "route").stdout, 15,
             f"{node} to forget node3")  # fmt: skip
    assert not [ns for ns in cluster.client.list("Node") if ns.name == "node3"]

    # Cross-node traffic is as before: node1 -> every pod on node2 and back, and by ClusterIP.
    _answers_from(cluster, src, dict(placed["node2"]))
    src2 = next(p.name for p in cluster.ready_pods("business-manager") if p.spec.nodeName == "node2")
    _answers_from(cluster, src2, dict(placed["node1"]))
    poll(lambda: len(cluster.endpoint_pods("data-product")) == 6, 10, "6 endpoints")
    cluster.wait_rules_synced()
    served = {json.loads(a)["pod"] for a in cluster.curl_many(src, DATA_PRODUCT_URL, 120) if a}
    assert served == {name for pods in placed.values() for name, _ in pods}
