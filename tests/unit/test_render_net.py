"""Node and pod network plans: devices, MTUs, overlay entries, pods wired or skipped, names."""

from __future__ import annotations

import ipaddress
from typing import Any

from kins.api.config import ClusterConfig, default_cluster, parse_cluster
from kins.api.core import Pod, PodSpec, PodStatus
from kins.api.meta import ObjectMeta
from kins.model.netstate import Link, NodePlan
from kins.render import names, text
from kins.render.overlay.registry import OVERLAYS, overlay_for
from kins.render.podnet import render_node_network


def cluster(**over: Any) -> ClusterConfig:
    data: dict[str, Any] = {
        "kind": "Cluster",
        "apiVersion": "kins/v1alpha1",
        "name": "t",
        "nodes": [
            {"name": "node1", "ip": "192.168.0.21", "podCIDR": "172.30.76.0/24"},
            {"name": "node2", "ip": "192.168.0.22", "podCIDR": "172.30.9.0/24"},
        ],
    }
    data.update(over)
    return parse_cluster(data)


def pod(name: str, ip: str | None, node: str = "node1", ns: str = "default", **spec: Any) -> Pod:
    return Pod(
        metadata=ObjectMeta(name=name, namespace=ns),
        spec=PodSpec(nodeName=node, **spec),
        status=PodStatus(podIP=ip) if ip else PodStatus(phase="Pending"),
    )


def link(plan: NodePlan, name: str) -> Link:
    return next(lk for lk in plan.links if lk.name == name)


def test_node_devices_and_addresses() -> None:
    plan = render_node_network(default_cluster(), "node1", [pod("a", "172.30.76.2")])
    kinds = [(lk.name, lk.kind) for lk in plan.links]
    assert kinds[:4] == [("lo", "loopback"), ("eth0", "veth"), ("docker0", "bridge"), ("flannel.1", "vxlan")]
    assert [(a.dev, a.cidr) for a in plan.addrs] == [
        ("eth0", "192.168.0.21/24"),
        ("docker0", "172.30.76.1/24"),
        ("flannel.1", "172.30.76.0/32"),
    ]
    vx = link(plan, "flannel.1")
    assert (vx.vni, vx.local, vx.dev, vx.port, vx.learning) == (1, "192.168.0.21", "eth0", 8472, False)
    assert vx.mac == names.vtep_mac("demo", "node1")
    assert link(plan, "eth0").peer_netns == names.UNDERLAY_NETNS
    # No default route: the cluster has no uplink.
    # The article's default route to the LAN gateway (nothing answers there: no uplink).
    assert [(r.via, r.dev, r.metric) for r in plan.routes if r.dst == "default"] == [("192.168.0.1", "eth0", 100)]
    # The /32 on flannel.1 gets no connected route; the others do, as the kernel adds them.
    kernel = [(r.dst, r.dev, r.src) for r in plan.routes if r.proto == "kernel"]
    assert kernel == [("192.168.0.0/24", "eth0", "192.168.0.21"), ("172.30.76.0/24", "docker0", "172.30.76.1")]


def test_mtu_derived_from_underlay() -> None:
    cfg = cluster(underlay={"cidr": "192.168.0.0/24", "mtu": 9000})
    plan = render_node_network(cfg, "node1", [pod("a", "172.30.76.2")])
    assert link(plan, "eth0").mtu == 9000
    assert link(plan, "docker0").mtu == link(plan, "flannel.1").mtu == 8950
    assert all(lk.mtu == 8950 for lk in plan.links if lk.master == "docker0")
    assert next(lk for lk in plan.pods[0].links if lk.name == "eth0").mtu == 8950
    # An explicit podNetwork.mtu wins over the derived one.
    cfg2 = cluster(podNetwork={"mtu": 1400})
    assert link(render_node_network(cfg2, "node1", []), "flannel.1").mtu == 1400


def test_node_without_pods() -> None:
    plan = render_node_network(default_cluster(), "node2", [])
    assert plan.pods == ()
    assert not [lk for lk in plan.links if lk.master]
    route_text = text.format_ip_route(plan.routes, plan.links)
    assert "172.30.9.0/24 dev docker0 proto kernel scope link src 172.30.9.1 linkdown \n" in route_text
    assert "NO-CARRIER" in text.format_node_links(plan)


def test_third_node_adds_one_neigh_fdb_route_each_in_peer_order() -> None:
    cfg = cluster(
        nodes=[
            {"name": "node1", "ip": "192.168.0.21", "podCIDR": "172.30.76.0/24"},
            {"name": "node2", "ip": "192.168.0.22", "podCIDR": "172.30.9.0/24"},
            {"name": "node3", "ip": "192.168.0.23"},
        ]
    )
    node3 = cfg.node("node3")
    assert node3.podCIDR == "172.30.1.0/24"  # leased: the first /24 is never handed out
    for me in ("node1", "node2", "node3"):
        plan = render_node_network(cfg, me, [])
        peers = [n for n in cfg.nodes if n.name != me]
        assert len(plan.neighs) == len(plan.fdb) == 2
        onlink = [r for r in plan.routes if r.onlink]
        for peer, nb, fdb, route in zip(peers, plan.neighs, plan.fdb, onlink, strict=True):
            subnet = ipaddress.IPv4Network(str(peer.podCIDR))
            mac = names.vtep_mac("t", peer.name)
            assert (nb.dst, nb.lladdr, nb.dev, nb.state) == (str(subnet.network_address), mac, "flannel.1", "PERMANENT")
            assert (fdb.mac, fdb.dst, fdb.self_, fdb.permanent) == (mac, peer.ip, True, True)
            assert (route.dst, route.via, route.dev) == (str(subnet), nb.dst, "flannel.1")


def test_pods_without_ip_hostnetwork_or_foreign_ip_are_skipped() -> None:
    pods = [
        pod("c", "172.30.76.4"),
        pod("pending", None),
        pod("host", "192.168.0.21", hostNetwork=True),
        pod("elsewhere", "172.30.9.7"),
        pod("a", "172.30.76.2"),
    ]
    plan = render_node_network(default_cluster(), "node1", pods)
    assert [p.key for p in plan.pods] == ["default/a", "default/c"]  # by IP
    veths = [lk for lk in plan.links if lk.master == "docker0"]
    assert [v.name for v in veths] == [names.host_veth_name("default/a"), names.host_veth_name("default/c")]
    assert all(v.hairpin and v.peer == "eth0" for v in veths)
    assert [v.peer_netns for v in veths] == [p.netns for p in plan.pods]


def test_pod_plan() -> None:
    plan = render_node_network(default_cluster(), "node1", [pod("web", "172.30.76.5", hostname="www")])
    p = plan.pods[0]
    assert (p.key, p.ip, p.hostname, p.netns) == ("default/web", "172.30.76.5", "www", "pod-default-web")
    assert [lk.name for lk in p.links] == ["lo", "eth0"]
    eth0 = p.links[1]
    assert (eth0.kind, eth0.peer, eth0.peer_netns, eth0.mac) == (
        "veth",
        names.host_veth_name("default/web"),
        "node-node1",
        "02:42:ac:1e:4c:05",
    )
    assert [a.cidr for a in p.addrs] == ["172.30.76.5/24"]
    assert text.format_ip_route(p.routes) == (
        "default via 172.30.76.1 dev eth0 \n172.30.76.0/24 dev eth0 proto kernel scope link src 172.30.76.5 \n"
    )
    assert "nameserver 10.254.0.2\n" in p.resolv_conf
    assert "172.30.76.5\twww\n" in p.hosts_file


def test_set_hostname_as_fqdn() -> None:
    p = pod("db-0", "172.30.76.9", subdomain="db", setHostnameAsFQDN=True)
    plan = render_node_network(default_cluster(), "node1", [p])
    assert plan.pods[0].hostname == "db-0.db.default.svc.cluster.local"


def test_sysctls() -> None:
    keys = {s.key: s.value for s in render_node_network(default_cluster(), "node1", []).sysctls}
    assert keys == {
        "net.ipv4.ip_forward": "1",
        "net.bridge.bridge-nf-call-iptables": "1",
        "net.ipv4.conf.all.route_localnet": "1",
    }
    cfg = cluster(kubeProxy={"iptables": {"localhostNodePorts": False}})
    assert "net.ipv4.conf.all.route_localnet" not in {s.key for s in render_node_network(cfg, "node1", []).sysctls}


def test_custom_bridge_and_vni() -> None:
    cfg = cluster(podNetwork={"bridge": "cni0", "vni": 7, "port": 4789})
    plan = render_node_network(cfg, "node1", [pod("a", "172.30.76.2")])
    assert link(plan, "cni0").kind == "bridge"
    vx = link(plan, "flannel.7")
    assert (vx.vni, vx.port) == (7, 4789)
    assert {n.dev for n in plan.neighs} == {"flannel.7"}
    assert "vxlan id 7 local 192.168.0.21 dev eth0 srcport 0 0 dstport 4789 nolearning" in text.format_links(plan.links)


def test_overlay_registry() -> None:
    assert set(OVERLAYS) == {"vxlan"}
    assert overlay_for(default_cluster()) is OVERLAYS["vxlan"]


def test_deterministic() -> None:
    pods = [pod("a", "172.30.76.2"), pod("b", "172.30.76.3")]
    assert render_node_network(default_cluster(), "node1", pods) == render_node_network(
        default_cluster(), "node1", list(reversed(pods))
    )


# --- names -------------------------------------------------------------------------------------


def test_vtep_mac_is_stable_unicast_and_locally_administered() -> None:
    mac = names.vtep_mac("demo", "node1")
    assert mac == names.vtep_mac("demo", "node1")
    first = int(mac.split(":")[0], 16)
    assert first & 0x01 == 0 and first & 0x02 == 0x02
    assert len({names.vtep_mac(c, n) for c in ("demo", "other") for n in ("node1", "node2")}) == 4


def test_host_veth_name() -> None:
    name = names.host_veth_name("default/web-abc12")
    assert name.startswith("veth") and len(name) == 12 and int(name[4:], 16) >= 0
    assert name != names.host_veth_name("default/web-abc13")


def test_pod_netns_unique_and_short() -> None:
    assert names.pod_netns("default/web-abc12") == "pod-default-web-abc12"
    # "a-b"/"c" and "a"/"b-c" would both read pod-a-b-c: the dashed namespace gets a hash.
    assert names.pod_netns("a-b/c") != names.pod_netns("a/b-c")
    long_key = "kube-system/" + "x" * 200
    n = names.pod_netns(long_key)
    assert len(n) <= 48 and n.startswith("pod-kube-system-")
    assert n != names.pod_netns("kube-system/" + "x" * 199)


def test_pod_mac_follows_docker() -> None:
    assert names.pod_mac("172.17.0.2") == "02:42:ac:11:00:02"


def test_underlay_port_name_fits_ifnamsiz() -> None:
    assert names.underlay_port_name("node1") == "n-node1"
    assert len(names.underlay_port_name("a-very-long-node-name")) <= 15


# --- text --------------------------------------------------------------------------------------


def test_route_order_and_route_n_flags() -> None:
    from kins.model.netstate import Route

    routes = [
        Route(dst="10.0.0.0/8", dev="eth0", via="192.168.0.1"),
        Route(dst="10.1.0.0/16", dev="eth0"),
        Route(dst="10.0.0.0/24", dev="eth0"),
        Route(dst="default", dev="eth0", via="192.168.0.1", metric=100),
        Route(dst="10.9.9.9/32", dev="eth0", scope="link"),
    ]
    assert [ln.split()[0] for ln in text.format_ip_route(routes).splitlines()] == [
        "default",
        "10.0.0.0/24",
        "10.0.0.0/8",
        "10.1.0.0/16",
        "10.9.9.9",
    ]
    assert text.format_ip_route(routes).splitlines()[0] == "default via 192.168.0.1 dev eth0 metric 100 "
    rows = text.format_route_n(routes).splitlines()[2:]
    assert rows[0] == "0.0.0.0         192.168.0.1     0.0.0.0         UG    100    0        0 eth0"
    assert rows[-1] == "10.9.9.9        0.0.0.0         255.255.255.255 UH    0      0        0 eth0"
    assert text.format_route(routes).splitlines()[2].startswith("default         192.168.0.1")


def test_dev_filters() -> None:
    plan = render_node_network(default_cluster(), "node1", [])
    assert text.format_ip_neigh(plan.neighs, dev="docker0") == ""
    assert text.format_bridge_fdb(plan.fdb, dev="docker0") == ""
    assert text.format_ip_route(plan.routes, dev="eth0") == (
        "default via 192.168.0.1 metric 100 \n192.168.0.0/24 proto kernel scope link src 192.168.0.21 \n"
    )
