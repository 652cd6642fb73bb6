"""Packet flows of kube-proxy's own iptables tests the tracer follows offline: SCTP Services,
and a node sending to a LoadBalancer address it holds itself."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kins._errors import KinsError
from kins.cli import app
from kins.offline import OfflineCluster, open_offline
from kins.sim.format import trace_to_json
from kins.sim.trace import run_trace

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests/golden/trace"
FILES = [str(ROOT / "examples/article"), str(GOLDEN / "manifests"), str(GOLDEN / "upstream")]
LB_IP = "192.168.0.200"  # the pool's first address (the default cluster file's loadBalancer)


@cache
def cluster() -> OfflineCluster:
    return open_offline(FILES)


def go(from_: str, to: str, proto: str = "tcp", node: str | None = None) -> dict[str, Any]:
    oc = cluster()
    return trace_to_json(run_trace(oc.cfg, oc.store, from_, to, port=None, proto=proto, node=node))


def _where(step: dict[str, Any]) -> str:
    return f"[{step['table']}/{step['chain']} #{step['rule']}] " if step.get("chain") else ""


def details(data: dict[str, Any], key: str = "hops") -> list[str]:
    """Each step as ``action [table/chain #rule] detail``."""
    hops = data["hops"] if key == "hops" else data["reply"]["hops"]
    return [f"{s['action']} {_where(s)}{s['detail']}" for h in hops for s in h["steps"]]


def test_sctp_clusterip_from_a_pod() -> None:
    data = go("business-manager", "10.254.10.20:7777", proto="sctp")
    assert data["packet"] == "sctp 172.30.9.2:40000 -> 10.254.10.20:7777"
    assert data["disposition"] == "delivered"
    assert data["service"] == "default/web-sctp:assoc"
    assert sorted(e["address"] for e in data["endpoints"]) == ["172.30.76.6:7777", "172.30.9.5:7777"]
    steps = details(data)
    assert any(s.startswith("nat DNAT 10.254.10.20:7777 -> ") for s in steps)
    # conntrack carries the association: the reply comes from the address the pod connected to
    assert data["reply"]["disposition"] == "delivered"
    assert any("reply source restored to 10.254.10.20:7777" in s for s in details(data, "reply"))


def test_sctp_nodeport_from_outside() -> None:
    data = go("client", "192.168.0.21:30777", proto="sctp")
    assert data["disposition"] == "delivered"
    assert data["service"] == "default/web-sctp:assoc"
    assert data["masquerade"] is True
    assert any("KUBE-NODEPORTS" in s for s in details(data))
    assert data["reply"]["hops"][-1]["node"] == "client"
    assert "the reply reaches the sender from 192.168.0.21:30777" in " ".join(data["notes"])


def test_sctp_rules_do_not_take_tcp() -> None:
    # the Service's rules say "-p sctp -m sctp --dport 7777": a TCP packet to the port passes them by
    data = go("business-manager", "10.254.10.20:7777", proto="tcp")
    assert data["service"] is None
    assert "no kube-proxy rule handles tcp port 7777 of default/web-sctp" in " ".join(data["notes"])


def test_cli_traces_sctp_offline_and_refuses_to_verify_it() -> None:
    res = CliRunner().invoke(app, ["trace", "business-manager", "web-sctp:7777", "--proto", "sctp", *_f()])
    assert res.exit_code == 0, res.output
    assert "PACKET sctp 172.30.9.2:40000 -> 10.254.10.20:7777" in res.output
    bad = CliRunner().invoke(app, ["trace", "business-manager", "web-sctp:7777", "--proto", "sctp", "--verify"])
    assert isinstance(bad.exception, KinsError)
    assert "--verify cannot send SCTP" in str(bad.exception)
    bad = CliRunner().invoke(app, ["trace", "business-manager", "web-sctp:7777", "--proto", "gre", *_f()])
    assert isinstance(bad.exception, KinsError)
    assert "is not one of tcp, udp, sctp, icmp" in str(bad.exception)


def _f() -> list[str]:
    return [a for f in FILES for a in ("-f", f)]


def test_lb_address_is_held_by_its_announcing_node() -> None:
    oc = cluster()
    from kins.sim.trace import view_of

    view = view_of(oc.cfg, oc.store)
    holders = [st.name for st in view.nodes.values() if any(a.dev == "eth0" and a.plen == 32 for a in st.addrs)]
    assert holders == ["node2"]


@pytest.mark.parametrize("node", ["node2", None])
def test_same_node_to_lb_snatted_to_lb(node: str | None) -> None:
    # kube-proxy's "same node to LB, SNATted to LB": the node holding the LB IP sends from it
    data = go(LB_IP, f"{LB_IP}:80", node=node)
    assert data["from"] == f"node node2 ({LB_IP})"
    assert data["service"] == "default/web-lb:http"
    assert data["masquerade"] is True
    assert f"{LB_IP} of service default/web-lb is an address of node2" in " ".join(data["notes"])
    steps = details(data)
    # the node's own packet: the OUTPUT hook, never PREROUTING
    assert any("[nat/OUTPUT #1] jump to KUBE-SERVICES" in s for s in steps)
    assert not any("PREROUTING" in s for s in steps)
    assert any("KUBE-EXT-" in s and "loadbalancer IP" in s for s in steps)
    assert any(s.startswith(f"nat MASQUERADE source {LB_IP} -> ") for s in steps)
    assert sorted(e["address"] for e in data["endpoints"]) == ["172.30.76.6:8080", "172.30.9.5:8080"]
    if node is None:
        assert data["disposition"] == "delivered"
        assert data["reply"]["disposition"] == "accepted"
        assert f"the reply reaches the sender from {LB_IP}:80, the address it connected to" in data["notes"]
    else:
        assert data["disposition"] in ("delivered", "forwarded")


def test_node_ip_to_own_clusterip_reply_undoes_the_dnat() -> None:
    data = go("192.168.0.22", "10.254.10.10:80")
    assert data["from"].startswith("node node2")
    assert any("reply source restored to 10.254.10.10:80" in s for s in details(data, "reply"))
    assert "the reply reaches the sender from 10.254.10.10:80, the address it connected to" in data["notes"]


def test_lb_address_of_another_node_sends_nothing() -> None:
    with pytest.raises(KinsError, match="a Service sends no packets"):
        go(LB_IP, f"{LB_IP}:80", node="node1")
    with pytest.raises(KinsError, match="a Service sends no packets"):
        go("10.254.10.21", f"{LB_IP}:80")
