"""The trace cache: one walk with a symbolic source port answers for every port nothing reads,
and gives exactly what a walk from scratch gives; a rule on the source port splits it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kins.offline import open_offline
from kins.sim.endpoint import Endpoint, resolve_endpoint
from kins.sim.format import format_trace_text
from kins.sim.iptables import Ruleset
from kins.sim.packet import Packet
from kins.sim.sym import READS, SPORT
from kins.sim.trace import trace, view_of
from kins.sim.view import ClusterView, FlowCache

ROOT = Path(__file__).resolve().parents[2]
FILES = [str(ROOT / "examples/article"), str(ROOT / "tests/golden/trace/manifests")]
PORTS = (1024, 8080, 40000, 50051, 61234)  # 8080 and 50051 are also endpoint ports


def fresh_view() -> tuple[ClusterView, Endpoint, Endpoint, Endpoint]:
    oc = open_offline(FILES)
    view = view_of(oc.cfg, oc.store)
    pod = resolve_endpoint("business-manager", oc.cfg, oc.store, role="from")
    svc = resolve_endpoint("default/data-product", oc.cfg, oc.store)
    solo = resolve_endpoint("default/solo-f6f946797-cr4fv", oc.cfg, oc.store, role="from")
    return view, pod, svc, solo


def cold(view: ClusterView, src: Endpoint, dst: Endpoint, port: int | None, sport: int) -> str:
    view.clear_caches()
    return format_trace_text(trace(view, src, dst, port, "tcp", sport=sport))


def test_cached_traces_equal_walks_from_scratch_for_every_source_port() -> None:
    view, pod, svc, solo = fresh_view()
    for src, dst, port in ((pod, svc, None), (solo, Endpoint("ip", "x", "10.254.0.50", 8080), None)):
        warm = {sp: format_trace_text(trace(view, src, dst, port, "tcp", sport=sp)) for sp in PORTS}
        assert len(view.flow_cache) >= 1
        for sp in PORTS:
            assert warm[sp] == cold(view, src, dst, port, sp)
    # the cross-node trace carries the port in its VXLAN outer header, which differs per port
    texts = {sp: format_trace_text(trace(view, pod, svc, None, "tcp", sport=sp)) for sp in PORTS}
    assert len(set(texts.values())) == len(PORTS)
    for sp, t in texts.items():
        assert f":{sp} -> " in t and "\x00" not in t
    encap = {next(ln for ln in t.splitlines() if "ENCAPSULATED" in ln) for t in texts.values()}
    assert len(encap) == len(PORTS)  # the outer source port is a hash of the inner flow


def test_hairpin_with_the_source_port_equal_to_the_service_port() -> None:
    view, _, _, solo = fresh_view()
    oc = open_offline(FILES)
    own = resolve_endpoint("solo", oc.cfg, oc.store)
    for sp in (40000, 8080, 80):
        warm = format_trace_text(trace(view, solo, own, None, "tcp", sport=sp))
        assert warm == cold(view, solo, own, None, sp)


def test_a_rule_on_the_source_port_splits_the_cache() -> None:
    view, pod, svc, _ = fresh_view()
    node2 = view.nodes["node2"]
    rule = "-A FORWARD -p tcp -m tcp --sport 2000:3000 -j DROP\n"
    text = node2.iptables_text
    at = text.index("-A FORWARD")
    node2.iptables_text = text[:at] + rule + text[at:]
    node2._rules = None
    dropped = trace(view, pod, svc, None, "tcp", sport=2500)
    passed = trace(view, pod, svc, None, "tcp", sport=4000)
    again = trace(view, pod, svc, None, "tcp", sport=2999)
    assert dropped.disposition == "dropped" and again.disposition == "dropped"
    assert passed.disposition == "delivered"
    assert format_trace_text(passed) == cold(view, pod, svc, None, 4000)


def test_a_sport_match_reads_the_symbol_and_a_dport_one_does_not() -> None:
    rs = Ruleset.from_text(
        "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -p tcp -m tcp --dport 80 -j ACCEPT\n"
        "-A FORWARD -p tcp -m tcp --sport 1:1023 -j DROP\nCOMMIT\n",
        lambda a: "UNICAST",
    )
    READS.start()
    rs.run("filter", "FORWARD", Packet(1, 2, "tcp", SPORT, 80), "a", "b")
    assert READS.touched is False  # accepted by the --dport rule before the --sport one
    rs.run("filter", "FORWARD", Packet(1, 2, "tcp", SPORT, 81), "a", "b")
    assert READS.touched is True
    READS.start()
    rs.run("filter", "FORWARD", Packet(1, 2, "tcp", SPORT, 81), "a", "b")  # the same walk again: read again
    assert READS.touched is True
    READS.start()


def test_flow_cache_is_bounded_lru() -> None:
    c = FlowCache(maxsize=2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1  # now b is the least recently used
    c.put("c", 3)
    assert c.get("b") is None and c.get("a") == 1 and c.get("c") == 3
    assert len(c) == 2


@pytest.mark.parametrize("proto", ["udp", "icmp"])
def test_other_protocols_cached_and_exact(proto: str) -> None:
    view, pod, svc, _ = fresh_view()
    port = 53 if proto == "udp" else None
    dst = Endpoint("ip", "x", svc.ip, port)
    a = format_trace_text(trace(view, pod, dst, None, proto, sport=5000))
    view.clear_caches()
    assert a == format_trace_text(trace(view, pod, dst, None, proto, sport=5000))
