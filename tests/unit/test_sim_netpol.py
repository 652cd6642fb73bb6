"""NetworkPolicy rules as kube-router writes them, walked by the simulator: ``-m set`` against
the node's ipsets, ``-m physdev`` for frames the bridge switches, the 0x10000 mark, NFLOG then
REJECT for what no policy allows; over the article's two-node cluster and rule by rule."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

import pytest

from kins.model.ipset import HASH_NET, IPSet, parse_save, save_text
from kins.model.ipv4 import ip_int
from kins.model.netstate import NetState
from kins.offline import OfflineCluster, open_offline
from kins.render.proxy.restore import Mark, parse_rule, split_args
from kins.sim.endpoint import Endpoint
from kins.sim.iptables import Ruleset
from kins.sim.live import parse_ipsets
from kins.sim.packet import Packet, Trace
from kins.sim.state import from_net_state, ipset_index
from kins.sim.trace import trace, view_of
from kins.sim.view import ClusterView

ROOT = Path(__file__).resolve().parents[2]

# the article's pods (examples/article): node1 172.30.76.0/24, node2 172.30.9.0/24
BM1 = "172.30.76.2"  # business-manager on node1
INGRESS1 = "172.30.76.5"  # ingress controller on node1
DP1 = "172.30.76.4"  # data-product on node1, the pod the policy selects
BM2 = "172.30.9.2"  # business-manager on node2
DNS2 = "172.30.9.5"  # kube-dns on node2
PORT = 50051

ALLOW = "rule to ACCEPT traffic from source pods to dest pods selected by policy name allow-bm namespace default"
LOG = "rule to log dropped traffic POD name:data-product namespace: default"
REJECT = "rule to REJECT traffic destined for POD name:data-product namespace: default"


def policy_rules(pod: str, *, routed: bool = True, src_set: str = "KUBE-SRC-BM", port: int = PORT) -> str:
    """kube-router's filter rules for one selected pod and one ingress policy (restore form,
    to go inside ``*filter``)."""
    jump = "rule to jump traffic destined to POD name:data-product namespace: default to chain KUBE-POD-FW-DP"
    lines = [
        ":KUBE-ROUTER-FORWARD - [0:0]",
        ":KUBE-POD-FW-DP - [0:0]",
        ":KUBE-NWPLCY-COMMON - [0:0]",
        ":KUBE-NWPLCY-ALLOWBM - [0:0]",
        '-I FORWARD 1 -m comment --comment "kube-router netpol - TEMCG2JMHZYE7H7T" -j KUBE-ROUTER-FORWARD',
    ]
    if routed:
        lines.append(f'-A KUBE-ROUTER-FORWARD -d {pod}/32 -m comment --comment "{jump}" -j KUBE-POD-FW-DP')
    lines += [
        f'-A KUBE-ROUTER-FORWARD -d {pod}/32 -m physdev --physdev-is-bridged -m comment --comment "{jump}"'
        " -j KUBE-POD-FW-DP",
        "-A KUBE-ROUTER-FORWARD -m comment --comment "
        '"rule to explicitly ACCEPT traffic that comply to network policies" -m mark --mark 0x20000/0x20000 -j ACCEPT',
        '-A KUBE-POD-FW-DP -m comment --comment "rule for stateful firewall for pod"'
        " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        '-A KUBE-POD-FW-DP -m comment --comment "rule to drop invalid state for pod" -m conntrack --ctstate INVALID'
        " -j DROP",
        "-A KUBE-POD-FW-DP -j KUBE-NWPLCY-COMMON",
        f'-A KUBE-POD-FW-DP -d {pod}/32 -m comment --comment "run through nw policy allow-bm" -j KUBE-NWPLCY-ALLOWBM',
        f'-A KUBE-POD-FW-DP -m comment --comment "{LOG}" -m mark ! --mark 0x10000/0x10000'
        " -m limit --limit 10/min --limit-burst 10 -j NFLOG --nflog-group 100",
        f'-A KUBE-POD-FW-DP -m comment --comment "{REJECT}" -m mark ! --mark 0x10000/0x10000'
        " -j REJECT --reject-with icmp-port-unreachable",
        "-A KUBE-POD-FW-DP -j MARK --set-xmark 0x0/0x10000",
        '-A KUBE-POD-FW-DP -m comment --comment "set mark to ACCEPT path for pod" -j MARK --set-xmark 0x20000/0x20000',
        '-A KUBE-NWPLCY-COMMON -m comment --comment "rule to drop invalid state for pod" -m conntrack --ctstate INVALID'
        " -j DROP",
        '-A KUBE-NWPLCY-COMMON -m comment --comment "rule for stateful firewall for pod"'
        " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f'-A KUBE-NWPLCY-ALLOWBM -p tcp -m comment --comment "{ALLOW}" -m set --match-set {src_set} src'
        f" -m set --match-set KUBE-DST-DP dst -m tcp --dport {port} -j MARK --set-xmark 0x10000/0x10000",
        f'-A KUBE-NWPLCY-ALLOWBM -p tcp -m comment --comment "{ALLOW}" -m set --match-set {src_set} src'
        f" -m set --match-set KUBE-DST-DP dst -m tcp --dport {port} -m mark --mark 0x10000/0x10000 -j RETURN",
    ]
    return "\n".join(lines) + "\n"


def policy_sets(pod: str = DP1) -> list[IPSet]:
    return [
        IPSet("KUBE-SRC-BM", members=(BM1, BM2), options="family inet hashsize 1024 maxelem 65536 timeout 0"),
        IPSet("KUBE-DST-DP", members=(pod,)),
        # an ipBlock: the pod network less node2's subnet (its ``except``)
        IPSet("KUBE-SRC-BLOCK", HASH_NET, members=("172.30.0.0/16",), nomatch=("172.30.9.0/24",)),
    ]


def add_filter_rules(text: str, rules: str) -> str:
    """``rules`` appended to the filter table of an ``iptables-save``."""
    start = text.index("*filter")
    end = text.index("COMMIT", start)
    return text[:end] + rules + text[end:]


@cache
def _article() -> OfflineCluster:
    return open_offline([str(ROOT / "examples/article")])


def view_with(node: str, rules: str, sets: Iterable[IPSet]) -> ClusterView:
    oc = _article()
    view = view_of(oc.cfg, oc.store)
    st = view.nodes[node]
    st.iptables_text = add_filter_rules(st.iptables_text, rules)
    st.ipsets = ipset_index(sets)
    st._rules = None
    view.clear_caches()
    return view


def go(view: ClusterView, src: str, dst: str, port: int = PORT) -> Trace:
    return trace(view, Endpoint("ip", src, src), Endpoint("ip", dst, dst, port), None, "tcp")


def steps(t: Trace, node: str = "node1") -> list[tuple[str, str | None, int | None, str]]:
    return [(s.action, s.chain, s.rule, s.detail) for h in t.hops if h.node == node for s in h.steps]


# --- over the article's cluster ---------------------------------------------------------------


def test_same_node_bridged_pod_to_pod_allowed() -> None:
    view = view_with("node1", policy_rules(DP1), policy_sets())
    t = go(view, BM1, DP1)
    assert t.disposition == "delivered"
    got = steps(t)
    marks = [s for s in got if s[1] == "KUBE-NWPLCY-ALLOWBM"]
    assert marks and marks[0][0] == "rule" and "MARK or 0x10000" in marks[0][3] and ALLOW in marks[0][3]
    assert not any(a in ("nflog", "rejected") for a, *_ in got)
    # the physdev jump (#2) sends the switched frame through the pod's chain a second time, which
    # changes nothing more and is left out of the trace (see the physdev tests below)
    assert [r for a, c, r, _ in got if c == "KUBE-ROUTER-FORWARD" and a == "rule"] == [1, 3]
    assert t.reply_disposition == "delivered"


def test_same_node_bridged_pod_to_pod_rejected_and_logged() -> None:
    view = view_with("node1", policy_rules(DP1), policy_sets())
    t = go(view, INGRESS1, DP1)
    assert t.disposition == "rejected"
    got = steps(t)
    nflog = [s for s in got if s[0] == "nflog"]
    assert nflog == [("nflog", "KUBE-POD-FW-DP", 5, f'NFLOG to group 100 "{LOG}"')]
    i = got.index(nflog[0])
    assert got[i + 1][:3] == ("rule", "KUBE-POD-FW-DP", 6) and "REJECT with icmp-port-unreachable" in got[i + 1][3]
    assert got[-1][0] == "rejected" and "filter/FORWARD" in got[-1][3]
    # the right source on the wrong port is rejected too
    assert go(view, BM1, DP1, 8080).disposition == "rejected"


def test_cross_node_routed_through_flannel_allowed_and_rejected() -> None:
    view = view_with("node1", policy_rules(DP1), policy_sets())
    ok = go(view, BM2, DP1)
    assert ok.disposition == "delivered"
    assert [h.node for h in ok.hops][1:3] == ["node2", "node1"]
    got = steps(ok)
    # routed in from flannel.1: only the plain jump (#1) applies, the physdev one does not
    assert [r for a, c, r, _ in got if c == "KUBE-ROUTER-FORWARD" and a == "rule"] == [1, 3]
    no = go(view, DNS2, DP1)
    assert no.disposition == "rejected"
    assert any(a == "nflog" for a, *_ in steps(no))


def test_physdev_jump_alone_guards_only_switched_frames() -> None:
    view = view_with("node1", policy_rules(DP1, routed=False), policy_sets())
    assert go(view, INGRESS1, DP1).disposition == "rejected"  # bridged: physdev-is-bridged holds
    assert go(view, DNS2, DP1).disposition == "delivered"  # routed from flannel.1: it does not


def test_ipblock_with_except_as_nomatch() -> None:
    view = view_with("node1", policy_rules(DP1, src_set="KUBE-SRC-BLOCK"), policy_sets())
    assert go(view, INGRESS1, DP1).disposition == "delivered"  # in 172.30.0.0/16
    assert go(view, BM2, DP1).disposition == "rejected"  # in the except, 172.30.9.0/24: nomatch
    assert go(view, DNS2, DP1).disposition == "rejected"


def test_a_set_the_node_does_not_hold_is_noted_and_matches_nothing() -> None:
    sets = [s for s in policy_sets() if s.name != "KUBE-SRC-BM"]
    t = go(view_with("node1", policy_rules(DP1), sets), BM1, DP1)
    assert t.disposition == "rejected"
    notes = [d for a, _, _, d in steps(t) if a == "note"]
    assert any("ipset 'KUBE-SRC-BM' is not known to the simulator" in n for n in notes)


def test_rules_without_sets_or_physdev_walk_as_before() -> None:
    oc = _article()
    plain = view_of(oc.cfg, oc.store)
    rs = plain.nodes["node1"].ruleset
    assert rs is not None and rs.physdev is False
    assert go(plain, INGRESS1, DP1).disposition == "delivered"


# --- rule by rule -----------------------------------------------------------------------------


def ruleset(rules: str, sets: Iterable[IPSet] = ()) -> Ruleset:
    text = (
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:SUB - [0:0]\n" + rules + "COMMIT\n"
    )
    return Ruleset.from_text(text, lambda _a: "UNICAST", ipset_index(sets))


def pkt(src: str = "10.0.0.1", dst: str = "10.0.0.2", mark: int = 0) -> Packet:
    return Packet(ip_int(src), ip_int(dst), "tcp", 40000, 80, mark)


def fwd(rs: Ruleset, p: Packet, phys: tuple[str, str | None] | None = None) -> str:
    outs = rs.run("filter", "FORWARD", p, "docker0", "docker0", phys)
    assert len(outs) == 1
    return outs[0].verdict


@pytest.mark.parametrize(
    ("rule", "phys", "verdict"),
    [
        ("--physdev-is-bridged", None, "ACCEPT"),  # no bridge record: a routed packet
        ("--physdev-is-bridged", ("vethA", None), "ACCEPT"),  # came in by a port, routed out
        ("--physdev-is-bridged", ("vethA", "vethB"), "DROP"),  # switched
        ("! --physdev-is-bridged", None, "DROP"),  # every option negated: matches without a record
        ("! --physdev-is-bridged", ("vethA", None), "DROP"),
        ("! --physdev-is-bridged", ("vethA", "vethB"), "ACCEPT"),
        ("--physdev-in veth+", None, "ACCEPT"),
        ("--physdev-in veth+", ("vethA", None), "DROP"),
        ("--physdev-in veth+", ("eth1", None), "ACCEPT"),
        ("! --physdev-in vethA", ("vethA", "vethB"), "ACCEPT"),
        ("! --physdev-in vethA", ("vethC", "vethB"), "DROP"),
        ("--physdev-is-in", None, "ACCEPT"),
        ("--physdev-is-in", ("vethA", None), "DROP"),
        ("--physdev-is-bridged --physdev-out vethB", ("vethA", "vethB"), "DROP"),
        ("--physdev-is-bridged --physdev-out vethB", ("vethA", "vethC"), "ACCEPT"),
        ("--physdev-is-bridged ! --physdev-out vethB", ("vethA", "vethC"), "DROP"),
        ("--physdev-is-bridged ! --physdev-out vethB", ("vethA", "vethB"), "ACCEPT"),
        ("--physdev-out vethB", ("vethA", None), "ACCEPT"),  # no port out yet: no match
        ("--physdev-is-out", ("vethA", "vethB"), "DROP"),
        ("! --physdev-is-out", ("vethA", "vethB"), "ACCEPT"),
    ],
)
def test_physdev_as_xt_physdev_decides(rule: str, phys: tuple[str, str | None] | None, verdict: str) -> None:
    rs = ruleset(f"-A FORWARD -m physdev {rule} -j DROP\n")
    assert rs.physdev
    assert fwd(rs, pkt(), phys) == verdict


def test_physdev_record_does_not_leak_into_a_later_walk() -> None:
    rs = ruleset("-A FORWARD -m physdev --physdev-is-bridged -j DROP\n")
    assert fwd(rs, pkt(), ("vethA", "vethB")) == "DROP"
    assert fwd(rs, pkt()) == "ACCEPT"
    assert rs.hook("filter", "FORWARD", pkt(), "docker0", "docker0") == 0  # passes untouched


SETS = [
    IPSet("PODS", members=("10.0.0.1", "10.0.0.3")),
    IPSet("NETS", HASH_NET, members=("10.0.0.0/8", "10.1.2.0/24"), nomatch=("10.1.0.0/16",)),
    IPSet("PORTS", "hash:ip,port", members=("10.0.0.1,tcp:80",)),
]


@pytest.mark.parametrize(
    ("match", "src", "dst", "verdict"),
    [
        ("--match-set PODS src", "10.0.0.1", "10.9.9.9", "DROP"),
        ("--match-set PODS src", "10.0.0.2", "10.9.9.9", "ACCEPT"),
        ("--match-set PODS dst", "10.9.9.9", "10.0.0.3", "DROP"),
        ("--match-set PODS dst", "10.0.0.3", "10.9.9.9", "ACCEPT"),
        ("! --match-set PODS src", "10.0.0.2", "10.9.9.9", "DROP"),
        ("! --match-set PODS src", "10.0.0.1", "10.9.9.9", "ACCEPT"),
        ("--match-set PODS src,dst", "10.0.0.1", "10.9.9.9", "DROP"),  # one dimension: the first flag
        ("--match-set NETS src", "10.200.0.1", "1.1.1.1", "DROP"),
        ("--match-set NETS src", "10.1.3.3", "1.1.1.1", "ACCEPT"),  # the nomatch /16 is more specific
        ("--match-set NETS src", "10.1.2.3", "1.1.1.1", "DROP"),  # ...and the /24 more still
        ("! --match-set NETS src", "10.1.3.3", "1.1.1.1", "DROP"),
        ("--match-set NETS src ! --update-counters", "10.200.0.1", "1.1.1.1", "DROP"),
    ],
)
def test_set_matches(match: str, src: str, dst: str, verdict: str) -> None:
    rs = ruleset(f"-A FORWARD -m set {match} -j DROP\n", SETS)
    assert fwd(rs, pkt(src, dst)) == verdict


@pytest.mark.parametrize(
    ("match", "why"),
    [
        ("--match-set GONE src", "ipset 'GONE' is not known to the simulator"),
        ("--match-set PORTS src,dst", "ipset 'PORTS' is a hash:ip,port set"),
        ("--match-set PODS src --return-nomatch", "option --return-nomatch is not modelled"),
    ],
)
def test_sets_the_simulator_cannot_answer_are_noted(match: str, why: str) -> None:
    rs = ruleset(f"-A FORWARD -m set {match} -j DROP\n", SETS)
    outs = rs.run("filter", "FORWARD", pkt("10.0.0.1"), "a", "b")
    assert [o.verdict for o in outs] == ["ACCEPT"]
    assert [s.action for s in outs[0].steps] == ["note"] and why in outs[0].steps[0].detail


def test_marks_as_kube_router_writes_them() -> None:
    def target(text: str) -> Mark:
        t = parse_rule("C", split_args(text)).target
        assert isinstance(t, Mark)
        return t

    assert target("-j MARK --set-xmark 0x10000/0x10000").apply(0x20000) == 0x30000
    assert target("-j MARK --set-xmark 0x0/0x10000").apply(0x34000) == 0x24000
    assert target("-j MARK --set-mark 0/0x10000").apply(0x34000) == 0x24000  # (mark & ~m) | v
    assert target("-j MARK --set-mark 0x20000/0x20000").apply(0x14000) == 0x34000
    assert target("-j MARK --set-mark 0x1/0xff").apply(0xF0F) == 0xF01
    assert target("-j MARK --set-xmark 0x1/0xff").apply(0xF0F) == 0xF01  # (mark & ~m) ^ v
    assert target("-j MARK --set-xmark 0x1/0x0").apply(0xF0F) == 0xF0E
    rs = ruleset("-A FORWARD -m mark ! --mark 0x10000/0x10000 -j DROP\n")
    assert fwd(rs, pkt(mark=0x14000)) == "ACCEPT"
    assert fwd(rs, pkt(mark=0x24000)) == "DROP"


def test_nflog_logs_and_lets_the_packet_go_on() -> None:
    rs = ruleset(
        "-A FORWARD -j SUB\n"
        '-A FORWARD -m comment --comment "then this" -j ACCEPT\n'
        '-A SUB -m comment --comment "denied" -j NFLOG --nflog-prefix "kube router" --nflog-group 100\n'
    )
    (o,) = rs.run("filter", "FORWARD", pkt(), "a", "b")
    assert o.verdict == "ACCEPT"
    # the log step stays although the chain it is in changed nothing else
    assert [(s.action, s.chain, s.rule) for s in o.steps] == [
        ("rule", "FORWARD", 1),
        ("nflog", "SUB", 1),
        ("rule", "FORWARD", 2),
    ]
    assert o.steps[1].detail == 'NFLOG to group 100 prefix "kube router" "denied"'


def test_ipsets_reach_the_state_from_records_or_save_text() -> None:
    sets = policy_sets()
    text = save_text(sets)
    assert parse_ipsets(text) == {s.name: s for s in sets}
    assert parse_ipsets("add NOPE 10.0.0.1\n") == {}  # unreadable: no sets, rules on them noted
    st = from_net_state(
        "n", NetState(), iptables_save=add_filter_rules("*filter\nCOMMIT\n", ""), ipsets=parse_save(text)
    )
    assert set(st.ipsets) == {"KUBE-SRC-BM", "KUBE-DST-DP", "KUBE-SRC-BLOCK"}
    assert ipset_index(sets) == st.ipsets
