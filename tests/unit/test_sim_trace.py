"""Packet traces over the offline cluster of examples/article (plus the tracer's test services):
golden text and JSON, and the facts each scenario is about.

Regenerate the golden files with ``KINS_UPDATE_GOLDEN=1 pytest tests/unit/test_sim_trace.py``.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from kins._errors import KinsError
from kins.offline import OfflineCluster, open_offline
from kins.sim.endpoint import Endpoint, resolve_endpoint
from kins.sim.format import format_trace_text, trace_to_json
from kins.sim.ipjson import state_from_ip_json
from kins.sim.packet import Trace
from kins.sim.trace import run_trace, trace, view_of
from kins.sim.view import ClusterView

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests/golden/trace"
FILES = [str(ROOT / "examples/article"), str(GOLDEN / "manifests")]
UPDATE = os.environ.get("KINS_UPDATE_GOLDEN") == "1"


@cache
def cluster() -> OfflineCluster:
    return open_offline(FILES)


def go(from_: str, to: str, port: int | None = None, proto: str = "tcp", node: str | None = None) -> Trace:
    oc = cluster()
    return run_trace(oc.cfg, oc.store, from_, to, port=port, proto=proto, node=node)


def check_golden(name: str, t: Trace) -> dict[str, Any]:
    text = format_trace_text(t)
    data = trace_to_json(t)
    js = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if UPDATE:
        (GOLDEN / f"{name}.txt").write_text(text)
        (GOLDEN / f"{name}.json").write_text(js)
    assert text == (GOLDEN / f"{name}.txt").read_text()
    assert js == (GOLDEN / f"{name}.json").read_text()
    return data


def actions(data: dict[str, Any], key: str = "hops") -> list[str]:
    hops = data[key] if key == "hops" else data["reply"]["hops"]
    return [s["action"] for h in hops for s in h["steps"]]


def test_pod_to_clusterip_cross_node() -> None:
    # business-manager's first pod (node2) calls data-product's ClusterIP, as in the article
    data = check_golden("article-pod-to-clusterip", go("business-manager", "10.254.116.224:50051"))
    assert data["disposition"] == "delivered"
    assert data["service"] == "default/data-product:data-product"
    assert data["masquerade"] is False
    eps = {e["address"]: e for e in data["endpoints"]}
    assert set(eps) == {"172.30.76.4:50051", "172.30.9.3:50051", "172.30.9.4:50051"}
    assert {e["node"] for e in eps.values()} == {"node1", "node2"}
    for e in eps.values():
        assert e["probability"] == pytest.approx(1 / 3, abs=1e-6)
    # the representative branch crosses to node1 over VXLAN and comes back the same way
    assert data["branch"] == "172.30.76.4:50051"
    assert [h["node"] for h in data["hops"]][1:3] == ["node2", "node1"]
    acts = actions(data)
    assert "encapsulated" in acts and "decapsulated" in acts
    enc = next(s for h in data["hops"] for s in h["steps"] if s["action"] == "encapsulated")
    assert "192.168.0.22:" in enc["detail"] and "-> 192.168.0.21:8472" in enc["detail"]
    assert data["reply"]["disposition"] == "delivered"
    assert "the reply reaches the sender from 10.254.116.224:50051" in " ".join(data["notes"])


def test_dns_name_resolves_to_the_service() -> None:
    a = trace_to_json(go("business-manager", "data-product.default.svc.cluster.local"))
    b = trace_to_json(go("business-manager", "default/data-product"))
    assert a == {**b, "to": a["to"]}


def test_nodeport_from_external_host() -> None:
    data = check_golden("nodeport-from-client", go("client", "192.168.0.21:30080"))
    assert data["disposition"] == "delivered"
    assert data["service"] == "default/web:http"
    assert data["masquerade"] is True
    assert sorted(e["address"] for e in data["endpoints"]) == ["172.30.76.6:8080", "172.30.9.5:8080"]
    assert all(e["probability"] == pytest.approx(0.5) for e in data["endpoints"])
    assert data["reply"]["disposition"] == "delivered"
    assert [h["node"] for h in data["reply"]["hops"]][-1] == "client"


def test_hairpin_to_own_service() -> None:
    data = check_golden("hairpin", go("default/solo-f6f946797-cr4fv", "solo"))
    assert data["disposition"] == "delivered"
    assert data["masquerade"] is True
    assert "hairpin" in actions(data)
    last = data["hops"][-1]
    assert last["node"] == "default/solo-f6f946797-cr4fv"
    # masqueraded to the bridge address, so the reply goes back through node1's conntrack
    assert "172.30.76.1:40000 -> 172.30.76.5:8080" in last["steps"][0]["detail"]
    assert data["reply"]["disposition"] == "delivered"


def test_ping_clusterip_is_not_answered() -> None:
    data = check_golden("icmp-clusterip", go("business-manager-7b657b975c-qs2w9", "10.254.116.224", proto="icmp"))
    # No rule rewrites ICMP to a Service: the node routes it to its default gateway, where no one
    # answers (the isolated underlay), so the ping goes unanswered, as the article shows.
    assert data["disposition"] == "dropped"
    assert data["service"] is None
    assert data["endpoints"] == []
    assert not any(s["action"] == "nat" for h in data["hops"] for s in h["steps"])


def test_service_without_endpoints() -> None:
    data = check_golden("no-endpoints-nodeport", go("client", "192.168.0.21:30082"))
    assert data["disposition"] == "rejected"
    assert data["service"] == "default/empty:http"
    rej = [s for h in data["hops"] for s in h["steps"] if s["action"] == "rule"][-1]
    assert (rej["table"], rej["chain"]) == ("filter", "KUBE-EXTERNAL-SERVICES")
    assert "has no endpoints" in rej["detail"]
    # Through the ClusterIP: routed by the default route, then kube-proxy's REJECT in FORWARD.
    data = check_golden("no-endpoints-clusterip", go("business-manager-7b657b975c-qs2w9", "empty"))
    assert data["disposition"] == "rejected"
    assert data["service"] == "default/empty:http"
    step = [s for h in data["hops"] for s in h["steps"] if s["action"] == "rule"][-1]
    assert (step["table"], step["chain"]) == ("filter", "KUBE-SERVICES")


def test_no_endpoints_clusterip_rejected_with_a_default_route() -> None:
    # The same packet on a node that has an uplink reaches filter/FORWARD and is rejected.
    from kins.model.netstate import Route

    oc = cluster()
    view = view_of(oc.cfg, oc.store)
    node1 = view.nodes["node1"]
    node1.routes.append(Route("default", "eth0", via="192.168.0.1"))
    node1._rt = None
    src = resolve_endpoint("business-manager-7b657b975c-qs2w9", oc.cfg, oc.store, role="from")
    dst = resolve_endpoint("empty", oc.cfg, oc.store)
    data = trace_to_json(trace(view, src, dst, None, "tcp"))
    assert data["disposition"] == "rejected"
    step = [s for h in data["hops"] for s in h["steps"] if s["action"] == "rule"][-1]
    assert (step["table"], step["chain"], step["rule"]) == ("filter", "KUBE-SERVICES", 1)


def test_external_traffic_policy_local() -> None:
    data = check_golden("etp-local", go("client", "192.168.0.21:30081"))
    assert data["disposition"] == "delivered"
    assert data["masquerade"] is False  # the client's address is kept
    assert [e["address"] for e in data["endpoints"]] == ["172.30.76.6:8080"]
    assert "192.168.0.100:40000 -> 172.30.76.6:8080" in data["hops"][-1]["steps"][0]["detail"]
    # solo runs on node1 only: node2 drops its NodePort traffic
    data = check_golden("etp-local-no-local-endpoint", go("client", "192.168.0.22:30083"))
    assert data["disposition"] == "dropped"
    assert (
        "has no local endpoints" in [s for h in data["hops"] for s in h["steps"] if s["action"] == "rule"][-1]["detail"]
    )


def test_node_only() -> None:
    data = check_golden("node-only", go("client", "192.168.0.21:30080", node="node1"))
    assert {h["node"] for h in data["hops"]} <= {"node1", "default/web-c476c59b-lgg4q"}
    assert data["dispositions"] == {"172.30.76.6:8080": "delivered", "172.30.9.5:8080": "forwarded"}
    assert data["disposition"] == "delivered"
    first = data["hops"][0]["steps"]
    assert first[0]["action"] == "note" and "underlay on eth0" in first[0]["detail"]
    # a pod address of the node enters from the bridge; the node's own address is local output
    t = trace_to_json(go("172.30.76.2", "10.254.116.224:50051", node="node1"))
    assert t["hops"][0]["node"] == "default/business-manager-7b657b975c-qs2w9"
    t = trace_to_json(go("node1", "10.254.116.224:50051", node="node1"))
    assert t["hops"][0]["node"] == "node1"  # the node's own address: locally generated (OUTPUT)
    assert t["service"] == "default/data-product:data-product"


def _live_node1() -> Any:
    return state_from_ip_json(
        "node1",
        addr=(GOLDEN / "node1-addr.json").read_text(),
        route=(GOLDEN / "node1-route.json").read_text(),
        neigh=(GOLDEN / "node1-neigh.json").read_text(),
        fdb=(GOLDEN / "node1-fdb.json").read_text(),
        iptables_save=(GOLDEN / "node1.iptables-save").read_text(),
        pod_cidr="172.30.76.0/24",
    )


def test_live_node_dump_in_the_cluster() -> None:
    """node1 as read off a real node (ip -j, bridge -j, an iptables-save with Docker's and
    flannel's chains and an ipset rule) instead of its plan; the rest of the cluster rendered."""
    oc = cluster()
    view = view_of(oc.cfg, oc.store)
    view.replace_node(_live_node1(), oc.cfg.underlay.cidr)
    r = resolve_endpoint
    src = r("business-manager-7b657b975c-qs2w9", oc.cfg, oc.store, role="from")
    t = trace(view, src, r("10.254.116.224:50051", oc.cfg, oc.store), None, "tcp")
    data = check_golden("live-node1-pod-to-clusterip", t)
    assert data["disposition"] == "delivered"
    assert len(data["endpoints"]) == 3
    # the Docker-era FORWARD policy is DROP: the same-bridge branch passes by Docker's own rule
    fwd = [s for s in data["hops"][1]["steps"] if s["table"] == "filter"]
    assert fwd[-1]["chain"] == "FORWARD" and fwd[-1]["detail"] == "ACCEPT"
    t = trace(view, r("client", oc.cfg, oc.store, role="from"), r("node1", oc.cfg, oc.store), 22, "tcp")
    data = check_golden("live-node1-ssh", t)
    assert data["disposition"] == "accepted"
    notes = [s for h in data["hops"] for s in h["steps"] if s["action"] == "note"]
    assert notes and "ipset 'blocklist'" in notes[0]["detail"]


def test_live_node_alone() -> None:
    view = ClusterView.from_states([_live_node1()], "192.168.0.0/24")
    src = Endpoint("ip", "192.168.0.100", "192.168.0.100")
    dst = Endpoint("ip", "192.168.0.21", "192.168.0.21", 30080)
    data = trace_to_json(trace(view, src, dst, None, "tcp", node_only="node1"))
    assert data["disposition"] == "forwarded"
    assert data["service"] == "default/web:http"
    assert sorted(e["address"] for e in data["endpoints"]) == ["172.30.76.6:8080", "172.30.9.5:8080"]
    assert data["masquerade"] is True
    last = data["hops"][-1]["steps"][-1]
    assert last["action"] == "transmitted"


@pytest.mark.parametrize(
    ("from_", "to", "port", "proto", "message"),
    [
        ("nosuchpod", "data-product", None, "tcp", "unknown endpoint 'nosuchpod'"),
        ("client", "default/nothing", None, "tcp", "no pod or service 'default/nothing'"),
        ("data-product", "client", 80, "tcp", ""),
        ("client", "192.168.0.21", None, "tcp", "give a destination port"),
        ("client", "192.168.0.21:99999", None, "tcp", "out of range"),
        ("client", "data-product", None, "gre", "unknown protocol"),
        ("client", "nope.default.svc.cluster.local", None, "tcp", "NXDOMAIN"),
        ("default/data-product", "client", 80, "tcp", "a Service sends no packets"),
        ("client", "192.168.0.21:30080", None, "tcp", "--node: no node 'node9'"),
    ],
)
def test_errors(from_: str, to: str, port: int | None, proto: str, message: str) -> None:
    node = "node9" if "node9" in message else None
    if not message:  # a Deployment-like name sends from its first pod: no error
        assert go(from_, to, port, proto).disposition == "delivered"
        return
    with pytest.raises(KinsError, match=message.replace("'", ".")):
        go(from_, to, port, proto, node)
