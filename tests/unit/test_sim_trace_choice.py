"""Traces from an address no Pod object holds (a dump of Services and EndpointSlices only), the
branch to a chosen endpoint (``--endpoint``), and every endpoint's node in the JSON.

Regenerate the golden files with ``KINS_UPDATE_GOLDEN=1 pytest tests/unit/test_sim_trace_choice.py``.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kins._errors import KinsError
from kins.api.core import Node
from kins.cli import app
from kins.offline import OfflineCluster, open_offline
from kins.sim.format import format_trace_text, trace_to_json
from kins.sim.trace import run_trace

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests/golden/trace"
DUMP = GOLDEN / "dumps/svc-endpointslices.yaml"
ARTICLE = [str(ROOT / "examples/article"), str(GOLDEN / "manifests")]
UPDATE = os.environ.get("KINS_UPDATE_GOLDEN") == "1"
SOURCE_NOTE = "source 172.30.76.9 is in node1's pod CIDR 172.30.76.0/24: traced from node1"


@cache
def dump() -> OfflineCluster:
    return open_offline([str(DUMP)])


@cache
def article() -> OfflineCluster:
    return open_offline(ARTICLE)


def go(oc: OfflineCluster, from_: str, to: str, *, node: str | None = None, endpoint: str | None = None) -> Any:
    return trace_to_json(run_trace(oc.cfg, oc.store, from_, to, port=None, proto="tcp", node=node, endpoint=endpoint))


def hop_nodes(data: dict[str, Any], key: str = "hops") -> list[str]:
    hops = data["hops"] if key == "hops" else data["reply"]["hops"]
    return [h["node"] for h in hops]


def test_a_source_in_a_pod_cidr_is_traced_from_its_node() -> None:
    oc = dump()
    t = run_trace(
        oc.cfg, oc.store, "172.30.76.9", "shop/api:80", port=None, proto="tcp", node=None, endpoint="172.30.9.8"
    )
    text, data = format_trace_text(t), trace_to_json(t)
    js = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if UPDATE:
        (GOLDEN / "dump-pod-cidr-source.txt").write_text(text)
        (GOLDEN / "dump-pod-cidr-source.json").write_text(js)
    assert text == (GOLDEN / "dump-pod-cidr-source.txt").read_text()
    assert js == (GOLDEN / "dump-pod-cidr-source.json").read_text()
    assert SOURCE_NOTE in data["notes"]
    assert data["branch"] == "172.30.9.8:8080"
    # the packet leaves node1's bridge like a pod's, crosses the overlay and reaches node2's bridge
    assert hop_nodes(data) == ["node1", "node2"]
    first = data["hops"][0]["steps"]
    assert first[0]["action"] == "note" and "enters from docker0" in first[0]["detail"]
    assert "encapsulated" in [s["action"] for s in first]
    # the dump has no pods: nothing answers for the endpoint on node2's bridge
    assert data["hops"][-1]["steps"][-1]["action"] == "dropped"
    # nodeName of the slice, or (for the entry without one) the pod subnet holding the address
    assert {e["address"]: e["node"] for e in data["endpoints"]} == {
        "172.30.76.10:8080": "node1",
        "172.30.9.7:8080": "node2",
        "172.30.9.8:8080": "node2",
    }


def test_the_cluster_files_leases_decide_without_node_cidrs(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(
        "kind: Cluster\napiVersion: kins/v1alpha1\nname: leased\n"
        "nodes:\n- {name: a, ip: 192.168.0.21}\n- {name: b, ip: 192.168.0.22}\n"
    )
    oc = open_offline([str(DUMP)], str(cluster))
    cidrs = {n.name: str(n.podCIDR) for n in oc.cfg.nodes}
    leased = {n.name: n.spec.podCIDR for n in oc.store.list("Node")[0] if isinstance(n, Node)}
    assert leased == cidrs and cidrs["a"] != cidrs["b"]  # the Node objects carry the leases
    src = cidrs["b"].rsplit(".", 1)[0] + ".9"  # an address of b's leased subnet
    data = go(oc, src, "shop/api:80")
    assert f"source {src} is in b's pod CIDR {cidrs['b']}: traced from b" in data["notes"]
    assert hop_nodes(data)[0] == "b"


def test_an_address_outside_every_pod_cidr_still_needs_node() -> None:
    with pytest.raises(KinsError, match="trace it entering one node with --node"):
        go(dump(), "10.99.0.1", "shop/api:80")


def test_json_names_every_endpoints_node_with_node() -> None:
    data = go(dump(), "172.30.76.9", "shop/api:80", node="node1")
    assert hop_nodes(data) == ["node1"]
    assert [e["node"] for e in data["endpoints"]] == ["node1", "node2", "node2"]
    # pods of another node keep their node and name in a one-node trace too
    data = go(article(), "client", "192.168.0.21:30080", node="node1")
    assert all(e["node"] for e in data["endpoints"])


def test_endpoint_picks_the_branch_shown() -> None:
    oc = article()
    default = go(oc, "business-manager", "data-product")
    assert len(default["endpoints"]) > 1
    for e in default["endpoints"]:
        addr = e["address"]
        data = go(oc, "business-manager", "data-product", endpoint=addr)
        assert data["branch"] == addr
        # the path ends at that endpoint's pod, and the reply starts there
        assert data["hops"][-1]["node"] == data["reply"]["hops"][0]["node"]
        pod_ip = addr.rsplit(":", 1)[0]
        assert go(oc, "business-manager", "data-product", endpoint=pod_ip)["branch"] == addr
        assert data["endpoints"] == default["endpoints"]


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("172.30.9.99", r"--endpoint: 172.30.9.99 is not an endpoint of service shop/api:http \(endpoints: "),
        ("172.30.9.8:80", r"172.30.9.8:80 is not an endpoint .*172.30.76.10:8080, 172.30.9.7:8080, 172.30.9.8:8080\)"),
        ("api", "is not ADDR or ADDR:PORT"),
    ],
)
def test_endpoint_not_of_the_service_is_refused(endpoint: str, message: str) -> None:
    with pytest.raises(KinsError, match=message):
        go(dump(), "172.30.76.9", "shop/api:80", endpoint=endpoint)


def test_endpoint_without_load_balancing_is_refused() -> None:
    with pytest.raises(KinsError, match="not load-balanced"):
        go(article(), "client", "node1:22", endpoint="192.168.0.21")


def test_cli_endpoint_option() -> None:
    args = ["trace", "-f", str(DUMP), "172.30.76.9", "shop/api:80", "-o", "json"]
    res = CliRunner().invoke(app, [*args, "--endpoint", "172.30.9.7:8080"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["branch"] == "172.30.9.7:8080" and SOURCE_NOTE in data["notes"]
    res = CliRunner().invoke(app, [*args, "--endpoint", "172.30.9.99"])
    assert res.exit_code != 0 and isinstance(res.exception, KinsError)
    assert "endpoints: 172.30.76.10:8080, 172.30.9.7:8080, 172.30.9.8:8080" in str(res.exception)


def test_the_reply_reaches_an_inferred_sender() -> None:
    # 172.30.76.99 is in node1's subnet but no pod's: the reply comes back to it as to a pod
    data = go(article(), "172.30.76.99", "data-product:50051", endpoint="172.30.9.3")
    assert data["disposition"] == "delivered" and data["reply"]["disposition"] == "delivered"
    assert hop_nodes(data)[:2] == ["node1", "node2"] and hop_nodes(data, "reply")[-1] == "node1"
    last = data["reply"]["hops"][-1]["steps"][-1]
    assert last["detail"] == "out docker0 to 172.30.76.99, the traced sender (no Pod object holds it)"
    assert "the reply reaches the sender from 10.254.116.224:50051, the address it connected to" in data["notes"]


def test_a_nodes_own_address_in_its_pod_cidr_sends_from_the_node() -> None:
    # node1's bridge address is in its pod CIDR, but it is the node's: locally generated
    data = go(article(), "172.30.76.1", "data-product:50051", endpoint="172.30.9.3")
    assert "notes" not in data or not any(n.startswith("source ") for n in data["notes"])
    assert data["hops"][0]["node"] == "node1"
    assert data["hops"][0]["steps"][0]["action"] != "note"
