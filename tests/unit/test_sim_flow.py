"""The article's whole request flow, traced offline from its manifests, as golden text and JSON:

1. the outside client -> node1:30799, the ingress-nginx NodePort;
2. the ingress controller's pod -> business-manager's ClusterIP;
3. a business-manager pod -> data-product's ClusterIP, to an endpoint on the other node (VXLAN).

Regenerate with ``KINS_UPDATE_GOLDEN=1 pytest tests/unit/test_sim_flow.py``.
"""

from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from kins.api.core import Pod
from kins.offline import OfflineCluster, open_offline
from kins.sim.endpoint import resolve_endpoint
from kins.sim.format import format_trace_text, trace_to_json
from kins.sim.packet import Trace
from kins.sim.trace import trace, view_of
from kins.sim.view import ClusterView

GOLDEN = Path(__file__).resolve().parents[1] / "golden/trace"
ARTICLE = resources.files("kins").joinpath("data/article")
MANIFESTS = [str(ARTICLE.joinpath(f)) for f in ("business-manager.yaml", "data-product.yaml", "ingress-nginx.yaml")]
UPDATE = os.environ.get("KINS_UPDATE_GOLDEN") == "1"


@cache
def cluster() -> tuple[OfflineCluster, ClusterView]:
    oc = open_offline(MANIFESTS)
    return oc, view_of(oc.cfg, oc.store)


def pods(prefix: str) -> list[Pod]:
    oc, _ = cluster()
    found = [p for p in oc.store.list("Pod")[0] if isinstance(p, Pod) and p.name.startswith(prefix)]
    return sorted(found, key=lambda p: p.name)


def go(src: str, dst: str, port: int | None, branch: str | None = None) -> Trace:
    oc, view = cluster()
    s = resolve_endpoint(src, oc.cfg, oc.store, role="from")
    d = resolve_endpoint(dst, oc.cfg, oc.store, role="to")
    return trace(view, s, d, port, "tcp", branch=branch)


def golden(name: str, t: Trace) -> dict[str, Any]:
    text = format_trace_text(t)
    data = trace_to_json(t)
    js = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if UPDATE:
        (GOLDEN / f"{name}.txt").write_text(text)
        (GOLDEN / f"{name}.json").write_text(js)
    assert text == (GOLDEN / f"{name}.txt").read_text()
    assert js == (GOLDEN / f"{name}.json").read_text()
    return data


def steps(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(h["node"], s["action"], s["detail"]) for h in data["hops"] for s in h["steps"]]


def test_1_client_to_ingress_nodeport() -> None:
    data = golden("article-flow-1-client-to-ingress", go("client", "192.168.0.21", 30799))
    assert data["disposition"] == "delivered"
    assert data["service"] == "ingress-nginx/ingress-nginx:http"
    ingress = pods("nginx-ingress-controller")
    assert len(ingress) == 1 and ingress[0].status is not None
    assert [e["address"] for e in data["endpoints"]] == [f"{ingress[0].status.podIP}:80"]
    assert data["hops"][0]["node"] == "client" and data["hops"][1]["node"] == "node1"
    assert any(a == "nat" and d.startswith("DNAT 192.168.0.21:30799") for _, a, d in steps(data))
    # kube-proxy marks NodePort traffic for masquerade: the reply must come back through node1
    assert data["masquerade"] is True
    assert data["reply"]["disposition"] == "delivered"


def test_2_ingress_to_business_manager() -> None:
    ingress = pods("nginx-ingress-controller")[0]
    data = golden("article-flow-2-ingress-to-business-manager", go(ingress.key, "business-manager", 80))
    assert data["disposition"] == "delivered"
    assert data["to"].startswith("service default/business-manager (10.254.80.22:80)")
    bm = {f"{p.status.podIP}:8080" for p in pods("business-manager") if p.status}
    assert {e["address"] for e in data["endpoints"]} == bm
    assert abs(sum(e["probability"] for e in data["endpoints"]) - 1) < 1e-5  # rounded to 6 digits in JSON


def test_3_business_manager_to_data_product_cross_node() -> None:
    bm = pods("business-manager")[0]
    far = [p for p in pods("data-product") if p.spec.nodeName != bm.spec.nodeName and p.status]
    assert far, "an endpoint on the other node"
    assert far[0].status is not None
    target = f"{far[0].status.podIP}:50051"
    data = golden("article-flow-3-business-manager-to-data-product", go(bm.key, "data-product", 50051, target))
    assert data["disposition"] == "delivered" and data["branch"] == target
    acts = [a for _, a, _ in steps(data)]
    assert "encapsulated" in acts and "decapsulated" in acts
    nodes = [h["node"] for h in data["hops"]]
    assert nodes[1] == bm.spec.nodeName and far[0].spec.nodeName in nodes and nodes[-1] == far[0].key
    assert data["reply"]["disposition"] == "delivered"
    assert any("10.254.116.224:50051" in n for n in data["notes"])
