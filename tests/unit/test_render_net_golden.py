"""Golden text for the reference article's cluster: every tool's view of node1, node2 and their pods.

Regenerate with ``KINS_UPDATE_GOLDEN=1 pytest tests/unit/test_render_net_golden.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kins.api.config import default_cluster
from kins.api.core import Pod, PodSpec, PodStatus
from kins.api.meta import ObjectMeta
from kins.model.netstate import NodePlan
from kins.render import text
from kins.render.podnet import render_node_network

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "net"

# The article's `kubectl get po -o wide` (both listings), one pod per address.
ARTICLE_PODS = {
    "node1": [
        ("data-product-6664c6dcb9-7sxnz", "172.30.76.2"),
        ("data-product-6664c6dcb9-j2f48", "172.30.76.3"),
        ("business-manager-666f454f7f-bg2bt", "172.30.76.4"),
        ("business-manager-666f454f7f-kvn5z", "172.30.76.5"),
        ("business-manager-666f454f7f-h5tvw", "172.30.76.6"),
        ("business-manager-666f454f7f-7l86b", "172.30.76.7"),
    ],
    "node2": [
        ("data-product-6664c6dcb9-tkmms", "172.30.9.2"),
        ("data-product-6664c6dcb9-p5xkw", "172.30.9.3"),
        ("business-manager-666f454f7f-ncjp7", "172.30.9.4"),
    ],
}


def article_plan(node: str) -> NodePlan:
    pods = [
        Pod(metadata=ObjectMeta(name=n, namespace="default"), spec=PodSpec(nodeName=node), status=PodStatus(podIP=ip))
        for n, ip in ARTICLE_PODS[node]
    ]
    return render_node_network(default_cluster(), node, pods)


def node_texts(plan: NodePlan) -> dict[str, str]:
    return {
        "ip-route": text.format_ip_route(plan.routes, plan.links),
        "route": text.format_route(plan.routes),
        "route-n": text.format_route_n(plan.routes),
        "ip-neigh": text.format_ip_neigh(plan.neighs),
        "ip-neigh-dev-flannel.1": text.format_ip_neigh(plan.neighs, dev="flannel.1"),
        "bridge-fdb": text.format_bridge_fdb(plan.fdb),
        "bridge-fdb-dev-flannel.1": text.format_bridge_fdb(plan.fdb, dev="flannel.1"),
        "ip-d-link": text.format_node_links(plan),
        "ip-d-addr": text.format_node_links(plan, with_addrs=True),
        "sysctl": text.format_sysctls(plan.sysctls),
    }


def all_texts() -> dict[str, str]:
    out: dict[str, str] = {}
    for node in ARTICLE_PODS:
        plan = article_plan(node)
        for name, body in node_texts(plan).items():
            out[f"{node}/{name}"] = body
        for pod in plan.pods:
            d = f"{node}/pods/{pod.key.split('/')[1]}"
            out[f"{d}/ip-route"] = text.format_ip_route(pod.routes, pod.links)
            out[f"{d}/ip-d-addr"] = text.format_pod_links(pod, plan, with_addrs=True)
            out[f"{d}/resolv.conf"] = pod.resolv_conf
            out[f"{d}/hosts"] = pod.hosts_file
    return out


TEXTS = all_texts()


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_golden(name: str) -> None:
    path = GOLDEN / name
    if os.environ.get("KINS_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TEXTS[name])
    assert path.read_text() == TEXTS[name]


def test_no_stale_golden_files() -> None:
    on_disk = {str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*") if p.is_file()}
    assert on_disk == set(TEXTS)


def test_article_routes_and_overlay_entries() -> None:
    """The article's own lines, with kins' deterministic MACs in place of flannel's random ones."""
    node1, node2 = article_plan("node1"), article_plan("node2")
    mac2 = node2.links[3].mac
    assert node2.links[3].name == "flannel.1"
    assert text.format_bridge_fdb(node1.fdb) == f"{mac2} dev flannel.1 dst 192.168.0.22 self permanent\n"
    assert text.format_ip_neigh(node1.neighs) == f"172.30.9.0 dev flannel.1 lladdr {mac2} PERMANENT \n"
    assert text.format_ip_route(node1.routes, node1.links).splitlines() == [
        "default via 192.168.0.1 dev eth0 metric 100 ",
        "172.30.9.0/24 via 172.30.9.0 dev flannel.1 onlink ",
        "172.30.76.0/24 dev docker0 proto kernel scope link src 172.30.76.1 ",
        "192.168.0.0/24 dev eth0 proto kernel scope link src 192.168.0.21 ",
    ]
    assert TEXTS["node1/pods/data-product-6664c6dcb9-7sxnz/resolv.conf"] == (
        "nameserver 10.254.0.2\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
    )
