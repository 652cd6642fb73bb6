"""Ledger records, namespace naming and ownership, sysctl paths, link compatibility (no root)."""

from __future__ import annotations

import json

import pytest

from kins._errors import KernelError
from kins.api.config import default_cluster
from kins.kernel import netns
from kins.kernel.apply import _sysctl_path, host_plan
from kins.kernel.ledger import LEDGER_FILE, Ledger, teardown
from kins.kernel.netlink import LinkState, link_incompat
from kins.model.netstate import Link


def test_names_carry_the_cluster_prefix() -> None:
    assert netns.node_ns("demo", "node1") == "kins-demo-node-node1"
    assert netns.host_ns("demo", "client") == "kins-demo-host-client"
    assert netns.underlay_ns("demo") == "kins-demo-underlay"
    assert netns.pod_ns("demo", "pod-default-web-0") == "kins-demo-pod-default-web-0"
    assert netns.pod_ns("demo", "default-web-0") == "kins-demo-pod-default-web-0"
    with pytest.raises(KernelError):
        netns.cluster_prefix("Bad_Name")


def test_foreign_namespaces_are_refused() -> None:
    for name in ("foo", "kinsfoo", "../kins-x", "kins-x/../../etc"):
        with pytest.raises(KernelError):
            netns.check_owned(name) if "/" not in name else netns.check_owned(name, "x")
    with pytest.raises(KernelError):
        netns.create("not-ours")
    with pytest.raises(KernelError):
        netns.remove("not-ours")
    with pytest.raises(KernelError):
        netns.check_owned("kins-other-node-n1", "demo")
    netns.check_owned("kins-demo-node-n1", "demo")


def test_interface_names_fit_ifnamsiz() -> None:
    assert netns.ifname("n-", "node1") == "n-node1"
    long = netns.ifname("h-", "a-very-long-host-name")
    assert len(long) == 15 and long.startswith("h-")
    assert long == netns.ifname("h-", "a-very-long-host-name")
    assert long != netns.ifname("h-", "a-very-long-host-name2")


def test_sysctl_paths_keep_dotted_device_names() -> None:
    assert _sysctl_path("net.ipv4.ip_forward") == "/proc/sys/net/ipv4/ip_forward"
    assert _sysctl_path("net.ipv6.conf.flannel.1.accept_ra") == "/proc/sys/net/ipv6/conf/flannel.1/accept_ra"
    assert _sysctl_path("net.ipv4.conf.all.route_localnet") == "/proc/sys/net/ipv4/conf/all/route_localnet"
    assert _sysctl_path("net/ipv4/conf/eth0.100/rp_filter") == "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"


def test_ledger_is_written_atomically_and_reloads(tmp_path) -> None:
    led = Ledger.load("demo", tmp_path)
    led.add_netns("kins-demo-underlay", "underlay")
    led.add_netns("kins-demo-node-node1", "node", "node1")
    led.add_netns("kins-demo-pod-default-a", "pod", "node1")
    led.add_file(tmp_path / "pods" / "a")
    doc = json.loads((tmp_path / LEDGER_FILE).read_text())
    assert doc["cluster"] == "demo"
    assert doc["netns"]["kins-demo-pod-default-a"] == {"kind": "pod", "owner": "node1"}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    again = Ledger.load("demo", tmp_path)
    assert again.netns == led.netns and again.files == led.files
    assert again.pods_of("node1") == ["kins-demo-pod-default-a"]
    again.drop_netns("kins-demo-pod-default-a")
    assert Ledger.load("demo", tmp_path).pods_of("node1") == []


def test_ledger_refuses_what_is_not_the_clusters(tmp_path) -> None:
    led = Ledger.load("demo", tmp_path / "state")
    with pytest.raises(KernelError):
        led.add_netns("kins-other-node-x", "node")
    with pytest.raises(ValueError):
        led.add_file("/etc/passwd")
    led.add_file("/etc/netns/kins-demo-pod-default-a/resolv.conf")  # named after one of its namespaces
    with pytest.raises(ValueError):
        Ledger.load("other", tmp_path / "state")  # the file belongs to "demo"


def test_teardown_of_nothing_is_a_noop(tmp_path) -> None:
    assert teardown("demo", tmp_path) == []
    led = Ledger.load("demo", tmp_path)
    led.add_netns("kins-demo-node-gone", "node", "gone")  # recorded, never created
    assert teardown("demo", tmp_path) == []
    assert teardown("demo", tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def _vx(**over: object) -> LinkState:
    base = {"vni": 1, "local": "192.168.0.21", "dev": 2, "port": 8472, "learning": False}
    base.update(over)
    return LinkState(3, "flannel.1", "vxlan", 1450, "0a:00:00:00:00:01", True, None, None, None, None, base)


def test_link_incompatibility_reasons() -> None:
    want = Link("flannel.1", "vxlan", mtu=1450, vni=1, local="192.168.0.21", dev="eth0", port=8472, learning=False)
    assert link_incompat(want, _vx(), 2) is None
    assert link_incompat(want, _vx(vni=2), 2) == "vni: 2 vs 1"
    assert link_incompat(want, _vx(local="192.168.0.99"), 2) == "local: 192.168.0.99 vs 192.168.0.21"
    assert link_incompat(want, _vx(), 5) == "dev: 2 vs 5"
    assert link_incompat(want, _vx(learning=True), 2) == "learning: True vs False"
    # MTU is settable, so it never makes a link incompatible.
    assert link_incompat(Link("flannel.1", "vxlan", mtu=1400, vni=1, learning=False), _vx(), None) is None
    bridge = LinkState(4, "docker0", "bridge", 1450, None, True, None, None, None, None, {})
    assert link_incompat(Link("docker0", "veth"), bridge) == "kind: bridge vs veth"


def test_host_plan_puts_the_host_on_the_underlay() -> None:
    p = host_plan(default_cluster(), "client")
    assert (p.name, p.ip) == ("client", "192.168.0.100")
    assert [(a.dev, a.cidr) for a in p.addrs] == [("eth0", "192.168.0.100/24")]
    assert [(lk.name, lk.kind, lk.mtu) for lk in p.links] == [("eth0", "veth", 1500)]
    with pytest.raises(KeyError):
        host_plan(default_cluster(), "nobody")
