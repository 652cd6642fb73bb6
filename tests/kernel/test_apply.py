"""Applying the article's cluster for real: traffic, idempotency, peer removal, stale pods."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from kins.kernel import netns
from kins.kernel.apply import apply_cluster, apply_node, apply_pod, pod_host_link, remove_pod
from kins.kernel.dump import dump_cluster, dump_netns, dump_node
from kins.kernel.ledger import Ledger
from kins.model.netstate import NodePlan, Sysctl

pytestmark = pytest.mark.root

Ping = Callable[..., bool]


def _up(kc, article) -> None:
    apply_cluster(kc.name, article.nodes, kc.state_dir, article.hosts)


def test_traffic_same_node_cross_node_and_from_nodes(kc, article, ping: Ping) -> None:
    _up(kc, article)
    n1, n2 = article.node("node1"), article.node("node2")
    a0, a1 = (kc.ns(p.netns) for p in n1.pods[:2])
    b0 = kc.ns(n2.pods[0].netns)
    assert ping(a0, n1.pods[1].ip), "pod -> pod on the same node (docker0)"
    assert ping(a0, n2.pods[0].ip), "pod -> pod on the other node (flannel.1 VXLAN)"
    assert ping(b0, n1.pods[2].ip), "and back"
    assert ping(kc.ns("node-node1"), n2.pods[1].ip), "node -> remote pod"
    assert ping(kc.ns("node-node2"), n2.pods[1].ip), "node -> own pod"
    assert ping(kc.ns("host-client"), "192.168.0.21"), "outside host -> node over the underlay"
    assert ping(a1, "192.168.0.22"), "pod -> other node's IP"
    # The cross-node path really is VXLAN: flannel.1 on node1 counted the packets.
    d = dump_node(kc.name, "node1")
    vx = next(lk for lk in d["links"] if lk["ifname"] == "flannel.1")
    assert vx["vxlan"] == {"vni": 1, "local": "192.168.0.21", "dev": "eth0", "port": 8472, "learning": False}
    assert vx["mtu"] == 1450


def test_live_state_matches_the_plan(kc, article) -> None:
    _up(kc, article)
    n1 = article.node("node1")
    d = dump_node(kc.name, "node1")
    addrs = {(a["ifname"], f"{a['local']}/{a['prefixlen']}") for a in d["addrs"]}
    assert {(a.dev, a.cidr) for a in n1.addrs} <= addrs
    routes = {
        (r["dst"], r["dev"], r.get("gateway"), "onlink" in r["flags"]) for r in d["routes"] if r["table"] == "main"
    }
    for r in n1.routes:
        assert (r.dst, r.dev, r.via, r.onlink) in routes, r
    neigh = {(n["dst"], n["dev"], n["lladdr"]) for n in d["neigh"] if "PERMANENT" in n["state"]}
    assert neigh == {(n.dst, n.dev, n.lladdr) for n in n1.neighs}
    fdb = {(f["mac"], f["ifname"], f.get("dst")) for f in d["fdb"] if f["ifname"] == "flannel.1"}
    assert fdb == {(f.mac, f.dev, f.dst) for f in n1.fdb}
    links = {lk["ifname"]: lk for lk in d["links"]}
    for pod in n1.pods:
        port = links[pod_host_link(n1, pod).name]
        assert port["master"] == "docker0" and port["hairpin"] is True and port["up"]
    assert links["docker0"]["address"] == next(lk.mac for lk in n1.links if lk.name == "docker0")
    # Pod side: eth0 with its address and default route via the bridge.
    p = dump_netns(kc.ns(n1.pods[0].netns))
    assert {(a["ifname"], a["local"]) for a in p["addrs"]} >= {("eth0", n1.pods[0].ip), ("lo", "127.0.0.1")}
    assert any(r["dst"] == "default" and r["gateway"] == "172.30.76.1" for r in p["routes"])
    # Underlay: both nodes and the host plug into br0.
    u = dump_netns(kc.ns("underlay"))
    ports = {next(lk.peer for lk in n.links if lk.name == "eth0") for n in article.nodes}
    assert {lk["ifname"] for lk in u["links"] if lk.get("master") == "br0"} == {*ports, "h-client"}


def _read(key: str) -> str:
    with open("/proc/sys/" + key.replace(".", "/")) as f:
        return f.read().strip()


def test_sysctls_are_set_inside_namespaces_only(kc, article) -> None:
    keys = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.ipv4.conf.all.route_localnet")
    host = [_read(k) for k in keys]
    _up(kc, article)
    assert netns.run_in(kc.ns("node-node1"), lambda: [_read(k) for k in keys]) == ["1", "1", "1"]
    assert [_read(k) for k in keys] == host


def test_apply_twice_is_a_noop(kc, article, ping: Ping) -> None:
    _up(kc, article)
    before = dump_cluster(kc.name)
    r = apply_cluster(kc.name, article.nodes, kc.state_dir, article.hosts)
    assert r.noop, str(r)
    after = dump_cluster(kc.name)
    assert after == before  # same links (ifindexes too), addrs, routes, neigh, fdb
    assert ping(kc.ns(article.node("node1").pods[0].netns), article.node("node2").pods[0].ip)
    assert apply_node(kc.name, article.node("node2"), kc.state_dir).noop


def test_removing_a_peer_stops_cross_node_traffic(kc, article, ping: Ping) -> None:
    _up(kc, article)
    n1, n2 = article.node("node1"), article.node("node2")
    src = kc.ns(n1.pods[0].netns)
    assert ping(src, n2.pods[0].ip)
    # node1 as it would be rendered once node2's lease is gone: no overlay entries for it.
    alone = replace(n1, neighs=(), fdb=(), routes=tuple(r for r in n1.routes if r.dev != "flannel.1"))
    r = apply_node(kc.name, alone, kc.state_dir)
    assert [c.split(": ", 1)[1].split()[:2] for c in r.changes] == [["route", "del"], ["fdb", "del"], ["neigh", "del"]]
    d = dump_node(kc.name, "node1")
    assert not [x for x in d["neigh"] if x["dev"] == "flannel.1"]
    assert not [x for x in d["fdb"] if x["ifname"] == "flannel.1" and "dst" in x]
    assert not [x for x in d["routes"] if x["dev"] == "flannel.1" and x["table"] == "main"]
    assert not ping(src, n2.pods[0].ip, tries=1)
    assert ping(src, n1.pods[1].ip), "same-node traffic is untouched"
    # The lease comes back: neigh, fdb, route again, in that order, and traffic flows.
    r = apply_node(kc.name, n1, kc.state_dir)
    assert [c.split(": ", 1)[1].split()[0] for c in r.changes] == ["neigh", "fdb", "route"]
    assert ping(src, n2.pods[0].ip)


def test_stale_pod_and_pod_lifecycle(kc, article, ping: Ping) -> None:
    _up(kc, article)
    n1 = article.node("node1")
    gone = n1.pods[2]
    gone_port = pod_host_link(n1, gone).name
    fewer = replace(
        n1,
        pods=n1.pods[:2],
        links=tuple(lk for lk in n1.links if lk.peer_netns != gone.netns),
    )
    r = apply_node(kc.name, fewer, kc.state_dir)
    assert not netns.exists(kc.ns(gone.netns))
    assert f"{kc.ns(gone.netns)}: netns del" in r.changes
    assert gone_port not in {lk["ifname"] for lk in dump_node(kc.name, "node1")["links"]}
    assert kc.ns(gone.netns) not in Ledger.load(kc.name, kc.state_dir).netns
    # Add it back on its own, then remove it on its own.
    apply_pod(kc.name, n1, gone, kc.state_dir)
    assert ping(kc.ns(gone.netns), article.node("node2").pods[0].ip)
    assert apply_pod(kc.name, n1, gone, kc.state_dir).noop
    remove_pod(kc.name, "node1", gone.netns, kc.state_dir)
    assert not netns.exists(kc.ns(gone.netns))
    assert gone_port not in {lk["ifname"] for lk in dump_node(kc.name, "node1")["links"]}
    assert remove_pod(kc.name, "node1", gone.netns, kc.state_dir).noop


def test_incompatible_link_is_recreated_and_mtu_set_in_place(kc, article) -> None:
    _up(kc, article)
    n1 = article.node("node1")

    def links() -> dict[str, int]:
        return {lk["ifname"]: lk["ifindex"] for lk in dump_node(kc.name, "node1")["links"]}

    before = links()
    vx = next(lk for lk in n1.links if lk.kind == "vxlan")
    other_vni = replace(n1, links=tuple(replace(lk, vni=2) if lk is vx else lk for lk in n1.links))
    r = apply_node(kc.name, other_vni, kc.state_dir)
    assert any("link del flannel.1 (vni: 1 vs 2)" in c for c in r.changes), r.changes
    after = links()
    assert after["flannel.1"] != before["flannel.1"]
    assert {k: v for k, v in after.items() if k != "flannel.1"} == {k: v for k, v in before.items() if k != "flannel.1"}
    # The overlay entries on the new device are back (route last).
    d = dump_node(kc.name, "node1")
    assert [x for x in d["routes"] if x["dev"] == "flannel.1"]
    # An MTU change is a set, not a recreate.
    smaller = replace(n1, links=tuple(replace(lk, mtu=1400) if lk.kind == "bridge" else lk for lk in n1.links))
    r = apply_node(kc.name, smaller, kc.state_dir)
    assert any("link set docker0 mtu 1400" in c for c in r.changes), r.changes
    assert links()["docker0"] == before["docker0"]


def test_unknown_sysctl_is_an_error(kc, article) -> None:
    from kins._errors import KernelError

    _up(kc, article)
    bad: NodePlan = replace(article.node("node1"), sysctls=(Sysctl("net.ipv4.no_such_key", "1"),))
    with pytest.raises(KernelError, match="no_such_key"):
        apply_node(kc.name, bad, kc.state_dir)


def test_apply_of_the_article_cluster_then_again(kc, article) -> None:
    t0 = time.perf_counter()
    r = apply_cluster(kc.name, article.nodes, kc.state_dir, article.hosts)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    r2 = apply_cluster(kc.name, article.nodes, kc.state_dir, article.hosts)
    again = time.perf_counter() - t0
    pods = sum(len(n.pods) for n in article.nodes)
    print(f"\napply: 2 nodes, {pods} pods, 1 host: {first * 1000:.0f} ms ({len(r.changes)} changes)")
    print(f"re-apply (no changes): {again * 1000:.0f} ms")
    assert pods == 6
    assert r.changes
    # Speed is for benchmarks (bench/up.py); the second apply must change nothing.
    assert r2.noop, r2.changes


def test_changed_vtep_mac_is_set_in_place(kc, article, ping: Ping) -> None:
    _up(kc, article)
    n1 = article.node("node1")

    def flannel() -> dict:
        return next(lk for lk in dump_node(kc.name, "node1")["links"] if lk["ifname"] == "flannel.1")

    before = flannel()
    new_mac = "0a:0b:0c:0d:0e:0f"
    new = replace(n1, links=tuple(replace(lk, mac=new_mac) if lk.kind == "vxlan" else lk for lk in n1.links))
    apply_node(kc.name, new, kc.state_dir)
    after = flannel()
    assert after["address"] == new_mac and after["ifindex"] == before["ifindex"] and after["up"]
    # node2 learns the new VTEP MAC (as from node1's updated lease): neigh and fdb replaced.
    n2 = article.node("node2")
    old = before["address"]
    r = apply_node(
        kc.name,
        replace(
            n2,
            neighs=tuple(replace(n, lladdr=new_mac) if n.lladdr == old else n for n in n2.neighs),
            fdb=tuple(replace(f, mac=new_mac) if f.mac == old else f for f in n2.fdb),
        ),
        kc.state_dir,
    )
    assert [c.split(": ", 1)[1].split()[:2] for c in r.changes] == [
        ["neigh", "replace"],
        ["fdb", "replace"],
        ["fdb", "del"],
    ]
    assert ping(kc.ns(n1.pods[0].netns), n2.pods[0].ip)


def test_cluster_apply_removes_nodes_and_hosts_no_longer_planned(kc, article) -> None:
    _up(kc, article)
    n2 = article.node("node2")
    r = apply_cluster(kc.name, article.nodes[:1], kc.state_dir)
    gone = {kc.ns("node-node2"), kc.ns("host-client"), *(kc.ns(p.netns) for p in n2.pods)}
    assert not any(netns.exists(n) for n in gone)
    assert {c.split(":")[0] for c in r.changes if c.endswith("netns del")} == gone
    assert not gone & set(Ledger.load(kc.name, kc.state_dir).netns)
    # The underlay lost exactly their ports.
    u = dump_netns(kc.ns("underlay"))
    assert {lk["ifname"] for lk in u["links"] if lk.get("master") == "br0"} == {
        next(lk.peer for lk in article.node("node1").links if lk.name == "eth0")
    }
