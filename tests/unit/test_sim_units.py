"""The simulator's parts: route lookup, iptables matching, load-balancing branches, conntrack
reply un-NAT, VXLAN encapsulation, ``ip -j`` parsing."""

from __future__ import annotations

import json

import pytest

from kins._errors import KinsError
from kins.model.ipv4 import int_ip, ip_int
from kins.model.netstate import Addr, Link, Route
from kins.render.proxy.restore import parse_restore
from kins.sim.conntrack import conn_of, is_reply, reply_post_routing, reply_pre_routing
from kins.sim.ipjson import state_from_ip_json
from kins.sim.iptables import INDEX_MIN_RULES, Ruleset
from kins.sim.packet import CT_ESTABLISHED, CT_NEW, Packet
from kins.sim.state import NodeState
from kins.sim.vxlan import encapsulate, flow_port, vxlan_listener


def ip(s: str) -> int:
    return ip_int(s)


def route(dst: str, dev: str, via: str | None = None, **kw: object) -> Route:
    return Route(dst, dev, via=via, **kw)  # type: ignore[arg-type]


def node(routes: list[Route], addrs: list[Addr] | None = None, **kw: object) -> NodeState:
    ifaces = {n: Link(n, "veth") for n in ("eth0", "eth1", "docker0", "lo")}
    return NodeState("n", "node", "node-n", ifaces=ifaces, addrs=addrs or [], routes=routes, **kw)  # type: ignore[arg-type]


# --- routing ----------------------------------------------------------------------------------


def test_longest_prefix_wins() -> None:
    st = node([route("0.0.0.0/0", "eth0", "192.168.0.1"), route("10.0.0.0/8", "eth1"), route("10.1.0.0/16", "docker0")])
    assert st.routing.lookup(ip("10.1.2.3")).route.dev == "docker0"  # type: ignore[union-attr]
    assert st.routing.lookup(ip("10.2.0.1")).route.dev == "eth1"  # type: ignore[union-attr]
    hit = st.routing.lookup(ip("8.8.8.8"))
    assert hit is not None and hit.route.dev == "eth0" and hit.nexthop == ip("192.168.0.1")


def test_lowest_metric_among_equal_prefixes_and_down_devices() -> None:
    st = node([route("10.0.0.0/8", "eth0", metric=200), route("10.0.0.0/8", "eth1", metric=100)])
    assert st.routing.lookup(ip("10.0.0.1")).route.dev == "eth1"  # type: ignore[union-attr]
    st.ifaces["eth1"] = Link("eth1", "veth", up=False)
    st._rt = None
    assert st.routing.lookup(ip("10.0.0.1")).route.dev == "eth0"  # type: ignore[union-attr]


def test_no_route() -> None:
    st = node([route("10.0.0.0/8", "eth0")])
    assert st.routing.lookup(ip("11.0.0.1")) is None


def test_local_table_from_addresses() -> None:
    st = node(
        [route("192.168.0.0/24", "eth0", scope="link")],
        [Addr("lo", "127.0.0.1/8", "host"), Addr("eth0", "192.168.0.21/24")],
    )
    local = st.routing.lookup(ip("192.168.0.21"))
    assert local is not None and local.route.type == "local" and local.route.table == "local"
    bcast = st.routing.lookup(ip("192.168.0.255"))
    assert bcast is not None and bcast.route.type == "broadcast"
    assert st.routing.lookup(ip("127.5.5.5")).route.type == "local"  # type: ignore[union-attr]
    assert st.routing.addr_type(ip("192.168.0.21")) == "LOCAL"
    assert st.routing.addr_type(ip("127.0.0.1")) == "LOCAL"
    assert st.routing.addr_type(ip("192.168.0.255")) == "BROADCAST"
    assert st.routing.addr_type(ip("192.168.0.22")) == "UNICAST"
    assert st.routing.addr_type(ip("239.1.1.1")) == "MULTICAST"
    # a connected destination is its own next hop; the source is the device's address
    hit = st.routing.lookup(ip("192.168.0.50"))
    assert hit is not None and hit.nexthop == ip("192.168.0.50") and hit.src == ip("192.168.0.21")


def test_onlink_gateway_and_prefsrc() -> None:
    st = node([route("172.30.9.0/24", "eth1", "172.30.9.0", onlink=True, src=ip("172.30.76.0"))])
    hit = st.routing.lookup(ip("172.30.9.4"))
    assert hit is not None and hit.route.onlink and hit.nexthop == ip("172.30.9.0") and hit.src == ip("172.30.76.0")


# --- iptables ---------------------------------------------------------------------------------

RULES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:CHK - [0:0]
-A FORWARD -j CHK
-A FORWARD -i eth+ ! -o docker0 -j ACCEPT
-A CHK ! -s 10.0.0.0/8 -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset
-A CHK -p udp -m multiport --dports 53,1000:2000 -j ACCEPT
-A CHK -m mark --mark 0x10/0x10 -j ACCEPT
-A CHK -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A CHK -p tcp -m tcp ! --dport 22 -m addrtype --dst-type LOCAL -j DROP
-A CHK -m set --match-set blocked src -j DROP
COMMIT
"""


def rules() -> Ruleset:
    return Ruleset.from_text(RULES, lambda a: "LOCAL" if a == ip("192.168.0.21") else "UNICAST")


def verdict(rs: Ruleset, p: Packet, iif: str | None = "eth0", oif: str | None = "eth1") -> str:
    outs = rs.run("filter", "FORWARD", p, iif, oif)
    assert len(outs) == 1
    return outs[0].verdict


@pytest.mark.parametrize(
    ("pkt", "iif", "oif", "expected"),
    [
        (Packet(ip("1.2.3.4"), ip("10.0.0.1"), "tcp", 1000, 80), "eth0", "eth1", "REJECT"),  # ! -s
        (Packet(ip("10.1.1.1"), ip("10.0.0.1"), "tcp", 1000, 80), "eth0", "eth1", "ACCEPT"),  # -i eth+
        (Packet(ip("10.1.1.1"), ip("10.0.0.1"), "tcp", 1000, 80), "veth1", "eth1", "DROP"),  # policy
        (Packet(ip("10.1.1.1"), ip("10.0.0.1"), "tcp", 1000, 80), "eth0", "docker0", "DROP"),  # ! -o
        (Packet(ip("1.1.1.1"), ip("2.2.2.2"), "udp", 5, 1500), "x", "y", "ACCEPT"),  # multiport range
        (Packet(ip("1.1.1.1"), ip("2.2.2.2"), "udp", 5, 999), "x", "y", "DROP"),
        (Packet(ip("1.1.1.1"), ip("2.2.2.2"), "icmp", 0, 0, 0x30), "x", "y", "ACCEPT"),  # mark/mask
        (Packet(ip("1.1.1.1"), ip("2.2.2.2"), "icmp", 0, 0, 0x20), "x", "y", "DROP"),
        (Packet(ip("1.1.1.1"), ip("2.2.2.2"), "icmp", 0, 0, 0, CT_ESTABLISHED), "x", "y", "ACCEPT"),
        (Packet(ip("10.1.1.1"), ip("192.168.0.21"), "tcp", 5, 443), "x", "y", "DROP"),  # ! --dport, addrtype
        (Packet(ip("10.1.1.1"), ip("192.168.0.21"), "tcp", 5, 22), "x", "y", "DROP"),  # falls to policy
    ],
)
def test_matches_and_negation(pkt: Packet, iif: str, oif: str, expected: str) -> None:
    assert verdict(rules(), pkt, iif, oif) == expected


def test_rule_numbers_and_unknown_ipset_flagged() -> None:
    outs = rules().run("filter", "FORWARD", Packet(ip("1.2.3.4"), ip("10.0.0.1"), "tcp", 1, 80), "x", "y")
    step = outs[0].steps[-1]
    assert (step.table, step.chain, step.rule, step.action) == ("filter", "CHK", 1, "rule")
    outs = rules().run("filter", "FORWARD", Packet(ip("10.1.1.1"), ip("10.0.0.1"), "tcp", 1, 22), "x", "y")
    note = [s for s in outs[0].steps if s.action == "note"]
    assert note and note[0].rule == 6 and "blocked" in note[0].detail
    assert outs[0].steps[-1].action == "policy" and outs[0].verdict == "DROP"


def _lb(n: int) -> str:
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":SVC - [0:0]"]
    lines.append("-A PREROUTING -d 10.254.0.10/32 -p tcp -m tcp --dport 80 -j SVC")
    for i in range(n):
        lines.append(f":SEP{i} - [0:0]")
    for i in range(n):
        prob = f" -m statistic --mode random --probability {1 / (n - i):0.10f}" if i < n - 1 else ""
        lines.append(f"-A SVC{prob} -j SEP{i}")
    for i in range(n):
        lines.append(f"-A SEP{i} -p tcp -m tcp -j DNAT --to-destination 172.30.0.{i + 2}:8080")
    return "\n".join([*lines, "COMMIT", ""])


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_statistic_branches_multiply_to_equal_shares(n: int) -> None:
    rs = Ruleset.from_text(_lb(n), lambda a: "UNICAST")
    outs = rs.run("nat", "PREROUTING", Packet(ip("1.1.1.1"), ip("10.254.0.10"), "tcp", 1, 80), "eth0", None)
    assert [int_ip(o.nat.ip) for o in outs if o.nat and o.nat.ip] == [f"172.30.0.{i + 2}" for i in range(n)]
    assert sum(o.prob for o in outs) == pytest.approx(1.0)
    for o in outs:
        assert o.prob == pytest.approx(1 / n, abs=1e-8)


def test_goto_return_and_big_chain_index() -> None:
    n = INDEX_MIN_RULES * 4
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":SVCS - [0:0]", ":G - [0:0]", "-A PREROUTING -g SVCS"]
    lines += [
        f"-A SVCS -d 10.254.1.{i}/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.30.0.{i}:80"
        for i in range(1, n)
    ]
    lines += ["-A SVCS -d 10.254.1.5/32 -j DNAT --to-destination 172.30.9.9", "-A SVCS -p udp -j G", "-A G -j RETURN"]
    lines += ["-A SVCS -j DNAT --to-destination 172.30.7.7:1", "COMMIT", ""]
    text = "\n".join(lines)
    indexed = Ruleset.from_text(text, lambda a: "UNICAST")
    chain = indexed.tables["nat"]["SVCS"]
    assert chain.indexed
    for dst, proto, port in [
        ("10.254.1.5", "tcp", 80),
        ("10.254.1.5", "tcp", 81),
        ("10.254.1.9", "udp", 80),
        ("9.9.9.9", "tcp", 80),
    ]:
        p = Packet(ip("1.1.1.1"), ip(dst), proto, 1, port)
        got = indexed.run("nat", "PREROUTING", p, None, None)
        scan = [r for r in chain.rules if r.matches(p, None, None, 0)]
        first = scan[0] if scan[0].rule.target.__class__.__name__ != "Jump" else scan[1]  # G returns
        assert got[0].steps[-1].rule == first.num
    p = Packet(ip("1.1.1.1"), ip("10.254.1.5"), "tcp", 1, 80)
    assert len(chain.candidates(p)) < 5  # the index hands over a handful of rules, in rule order


# --- conntrack --------------------------------------------------------------------------------


def test_conntrack_reply_undoes_dnat_and_snat() -> None:
    orig = Packet(ip("192.168.0.100"), ip("192.168.0.21"), "tcp", 40000, 30080)
    sent = orig.copy()
    sent.dst, sent.dport = ip("172.30.9.5"), 8080  # DNAT to the endpoint
    sent.src = ip("172.30.76.0")  # MASQUERADE
    conn = conn_of(orig.tuple, sent)
    assert conn.dnat and conn.snat
    reply = Packet(sent.dst, sent.src, "tcp", sent.dport, sent.sport, 0, CT_ESTABLISHED)
    assert is_reply(conn, reply)
    assert reply_pre_routing(conn, reply)
    assert (int_ip(reply.dst), reply.dport) == ("192.168.0.100", 40000)
    assert reply_post_routing(conn, reply)
    assert (int_ip(reply.src), reply.sport) == ("192.168.0.21", 30080)
    assert not is_reply(conn, Packet(ip("1.1.1.1"), sent.src, "tcp", 8080, 40000))


def test_conntrack_without_nat_leaves_replies_alone() -> None:
    p = Packet(ip("172.30.76.2"), ip("172.30.9.3"), "tcp", 40000, 50051)
    conn = conn_of(p.tuple, p)
    reply = Packet(p.dst, p.src, "tcp", p.dport, p.sport, 0, CT_ESTABLISHED)
    assert not reply_pre_routing(conn, reply) and not reply_post_routing(conn, reply)
    assert reply.tuple == ("tcp", p.dst, p.dport, p.src, p.sport)


# --- VXLAN ------------------------------------------------------------------------------------


def _vtep() -> NodeState:
    dev = Link("flannel.1", "vxlan", mac="aa:aa:aa:aa:aa:01", vni=1, local="192.168.0.21", dev="eth0", port=8472)
    return NodeState(
        "node1",
        "node",
        "node-node1",
        ifaces={"flannel.1": dev},
        neighs={("flannel.1", ip("172.30.9.0")): "aa:aa:aa:aa:aa:02"},
        fdb={("flannel.1", "aa:aa:aa:aa:aa:02"): ip("192.168.0.22")},
    )


def test_vxlan_encapsulation() -> None:
    st = _vtep()
    inner = Packet(ip("172.30.76.2"), ip("172.30.9.3"), "tcp", 40000, 50051, 0x4000)
    enc = encapsulate(st, st.ifaces["flannel.1"], ip("172.30.9.0"), inner)
    assert not isinstance(enc, str)
    o = enc.outer
    assert (int_ip(o.src), int_ip(o.dst), o.proto, o.dport) == ("192.168.0.21", "192.168.0.22", "udp", 8472)
    assert o.sport == flow_port(inner) and 32768 <= o.sport <= 60999
    assert o.mark == 0 and o.ct == CT_NEW  # the outer datagram is a flow of its own
    assert enc.vni == 1 and enc.vtep_mac == "aa:aa:aa:aa:aa:02"
    assert vxlan_listener(st, 8472) is st.ifaces["flannel.1"]
    assert vxlan_listener(st, 4789) is None


def test_vxlan_needs_neighbour_and_fdb() -> None:
    st = _vtep()
    inner = Packet(ip("172.30.76.2"), ip("172.30.5.3"), "tcp", 1, 2)
    assert "no neighbour entry" in str(encapsulate(st, st.ifaces["flannel.1"], ip("172.30.5.0"), inner))
    st.fdb.clear()
    assert "no FDB entry" in str(encapsulate(st, st.ifaces["flannel.1"], ip("172.30.9.0"), inner))


# --- ip -j ------------------------------------------------------------------------------------


def test_ip_json_parsing() -> None:
    addr = [
        {
            "ifname": "lo",
            "link_type": "loopback",
            "flags": ["LOOPBACK", "UP"],
            "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host"}],
        },
        {
            "ifname": "eth0",
            "flags": ["UP"],
            "address": "02:00:00:00:00:01",
            "addr_info": [
                {"family": "inet", "local": "10.0.0.5", "prefixlen": 24},
                {"family": "inet6", "local": "fe80::1", "prefixlen": 64},
            ],
        },
        {
            "ifname": "cni0",
            "flags": ["UP"],
            "linkinfo": {"info_kind": "bridge"},
            "addr_info": [{"family": "inet", "local": "10.244.1.1", "prefixlen": 24}],
        },
        {
            "ifname": "veth1",
            "flags": ["UP"],
            "master": "cni0",
            "linkinfo": {"info_kind": "veth", "info_slave_kind": "bridge", "info_slave_data": {"hairpin": True}},
            "addr_info": [],
        },
        {
            "ifname": "flannel.1",
            "flags": ["UP"],
            "addr_info": [{"family": "inet", "local": "10.244.1.0", "prefixlen": 32}],
        },
    ]
    routes = [
        {"dst": "default", "gateway": "10.0.0.1", "dev": "eth0", "protocol": "dhcp", "metric": 100},
        {"dst": "10.244.2.0/24", "gateway": "10.244.2.0", "dev": "flannel.1", "flags": ["onlink"]},
        {"dst": "10.244.1.0/24", "dev": "cni0", "protocol": "kernel", "scope": "link", "prefsrc": "10.244.1.1"},
        {"dst": "fe80::/64", "dev": "eth0"},
    ]
    st = state_from_ip_json("w1", addr=json.dumps(addr), route=routes, neigh="[]", fdb=[], iptables_save="")
    assert st.ifaces["veth1"].master == "cni0" and st.ifaces["veth1"].hairpin
    assert st.ifaces["cni0"].kind == "bridge"
    vx = st.ifaces["flannel.1"]
    assert (vx.kind, vx.vni, vx.port) == ("vxlan", 1, 8472)  # inferred from flannel's name
    assert len(st.routes) == 3
    hit = st.routing.lookup(ip("8.8.8.8"))
    assert hit is not None and hit.nexthop == ip("10.0.0.1") and hit.route.metric == 100
    assert st.routing.lookup(ip("10.244.2.7")).route.onlink  # type: ignore[union-attr]
    assert st.ruleset is None
    with pytest.raises(KinsError, match="not JSON"):
        state_from_ip_json("w1", addr="10.0.0.5/24", route="[]")
    # the parsed rules of the node are kept once built
    st2 = state_from_ip_json("w1", addr=addr, route=routes, iptables_save=RULES)
    assert st2.ruleset is st2.ruleset
    assert parse_restore(RULES).tables["filter"].chains["FORWARD"].policy == "DROP"
