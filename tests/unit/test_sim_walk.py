"""How the rules are walked and a trace is written: jumps and gotos in one loop, jumps that
cannot change a packet left out, steps written only when read (and equal to written ones)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kins.model.ipv4 import ip_int
from kins.offline import open_offline
from kins.sim.endpoint import resolve_endpoint
from kins.sim.format import format_trace_text, trace_to_json
from kins.sim.iptables import MAX_DEPTH, Ruleset
from kins.sim.packet import Packet, Step, Trace
from kins.sim.trace import trace, view_of

ROOT = Path(__file__).resolve().parents[2]


def rules(*lines: str) -> Ruleset:
    return Ruleset.from_text("\n".join(("*nat", *lines, "COMMIT", "")), lambda a: "UNICAST")


def pkt(dport: int = 80, mark: int = 0) -> Packet:
    return Packet(ip_int("10.0.0.9"), ip_int("10.0.0.1"), "tcp", 1234, dport, mark)


def test_jumps_into_chains_that_change_nothing_leave_no_step_and_do_not_fork() -> None:
    rs = rules(
        ":PREROUTING ACCEPT [0:0]",
        ":EMPTY - [0:0]",
        ":ONLY-EMPTY - [0:0]",
        "-A PREROUTING -j EMPTY",
        "-A PREROUTING -j ONLY-EMPTY",
        "-A ONLY-EMPTY -p tcp -j EMPTY",
    )
    assert ("nat", "PREROUTING") not in rs.active  # the hook cannot change a packet at all
    (o,) = rs.run("nat", "PREROUTING", pkt(), None, None)
    assert (o.verdict, o.steps, o.prob) == ("ACCEPT", (), 1.0)


def test_a_random_jump_into_an_empty_chain_still_forks() -> None:
    rs = rules(
        ":PREROUTING ACCEPT [0:0]",
        ":EMPTY - [0:0]",
        "-A PREROUTING -m statistic --mode random --probability 0.25 -j EMPTY",
        "-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 1.2.3.4:8080",
    )
    outs = rs.run("nat", "PREROUTING", pkt(), None, None)
    assert [o.prob for o in outs] == pytest.approx([0.25, 0.75])
    assert all(o.nat is not None and o.nat.port == 8080 for o in outs)


def test_goto_returns_from_the_chain_that_went_there_and_return_from_a_jump() -> None:
    rs = rules(
        ":PREROUTING ACCEPT [0:0]",
        ":A - [0:0]",
        ":B - [0:0]",
        "-A PREROUTING -j A",
        "-A PREROUTING -m mark --mark 0x1/0x1 -j DNAT --to-destination 1.1.1.1:1",
        "-A PREROUTING -j DNAT --to-destination 2.2.2.2:2",
        "-A A -j MARK --set-xmark 0x1/0x1",
        "-A A -g B",
        "-A A -j DNAT --to-destination 3.3.3.3:3",  # never reached: B's return leaves A too
        "-A B -j RETURN",
        "-A B -j DNAT --to-destination 4.4.4.4:4",
    )
    (o,) = rs.run("nat", "PREROUTING", pkt(), None, None)
    assert o.nat is not None and o.nat.port == 1 and o.mark == 1
    assert [(s.chain, s.rule) for s in o.steps] == [("PREROUTING", 1), ("A", 1), ("PREROUTING", 2)]


def test_a_jump_loop_is_refused() -> None:
    rs = rules(":PREROUTING ACCEPT [0:0]", ":A - [0:0]", "-A PREROUTING -j A", "-A A -p tcp -j A")
    with pytest.raises(RecursionError, match=f"deeper than {MAX_DEPTH}"):
        rs.run("nat", "PREROUTING", pkt(), None, None)


def test_a_step_written_later_equals_one_written_at_once() -> None:
    later = Step.later("route", "{} to {}".format, ("a", 1))
    assert later == Step("route", "a to 1") and hash(later) == hash(Step("route", "a to 1"))
    assert later.detail == "a to 1" and later.table is None and later.rule is None


def test_a_trace_read_later_equals_one_made_with_its_hops() -> None:
    oc = open_offline([str(ROOT / "examples/article")])
    view = view_of(oc.cfg, oc.store)
    pod = resolve_endpoint("business-manager", oc.cfg, oc.store, role="from")
    svc = resolve_endpoint("default/data-product", oc.cfg, oc.store)
    t = trace(view, pod, svc, None, "tcp", sport=41000)
    made = Trace(
        t.src,
        t.dst,
        t.packet,
        t.disposition,
        t.hops,
        t.service,
        t.endpoints,
        t.masquerade,
        t.branch,
        t.reply,
        t.reply_disposition,
        t.notes,
    )
    assert made == t and hash(made) == hash(t)
    assert format_trace_text(made) == format_trace_text(t) and trace_to_json(made) == trace_to_json(t)
    text = format_trace_text(t)
    assert ":41000 -> " in text and "\x00" not in text
    # the same port again, from the cache, writes the same text
    assert format_trace_text(trace(view, pod, svc, None, "tcp", sport=41000)) == text
