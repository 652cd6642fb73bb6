"""resolv.conf and /etc/hosts as kubelet and the runtime write them, for each DNS policy."""

from __future__ import annotations

from typing import Any

from kins.api.config import default_cluster
from kins.api.core import HostAlias, Pod, PodDNSConfig, PodDNSConfigOption, PodIP, PodSpec, PodStatus
from kins.api.meta import ObjectMeta
from kins.render.podfiles import HostDNS, pod_dns_config, render_hosts_file, render_resolv_conf

CFG = default_cluster()
HOSTS_HEAD = (
    "# Kubernetes-managed hosts file.\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)


def pod(name: str = "web", ns: str = "default", ip: str | None = "172.30.76.2", **spec: Any) -> Pod:
    return Pod(metadata=ObjectMeta(name=name, namespace=ns), spec=PodSpec(**spec), status=PodStatus(podIP=ip))


def test_cluster_first_containerd_and_docker_order() -> None:
    p = pod(ns="shop")
    assert render_resolv_conf(p, CFG, runtime="containerd") == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.254.0.2\noptions ndots:5\n"
    )
    # The article's Docker node (dockershim) put the nameserver first: kins' default.
    assert render_resolv_conf(p, CFG) == (
        "nameserver 10.254.0.2\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
    )


def test_cluster_first_is_the_default_policy_and_appends_host_searches() -> None:
    host = HostDNS(nameservers=("192.168.0.1",), searches=("corp.example", "cluster.local"), options=("rotate",))
    conf = pod_dns_config(pod(dnsPolicy="ClusterFirst"), CFG, host)
    assert conf.servers == ["10.254.0.2"]  # the node's servers are replaced
    assert conf.searches == ["default.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"]
    assert conf.options == ["ndots:5"]  # the node's options are dropped
    assert pod_dns_config(pod(), CFG, host) == conf


def test_default_policy_without_upstream() -> None:
    # The nodes have no resolver of their own: kubelet's --resolv-conf="" behaviour.
    assert render_resolv_conf(pod(dnsPolicy="Default"), CFG) == "nameserver 127.0.0.1\nsearch .\n"


def test_default_policy_with_node_resolver() -> None:
    host = HostDNS(nameservers=("192.168.0.1",), searches=("corp.example",), options=("edns0",))
    assert render_resolv_conf(pod(dnsPolicy="Default"), CFG, host, runtime="docker") == (
        "nameserver 192.168.0.1\nsearch corp.example\noptions edns0\n"
    )


def test_host_network_falls_back_unless_with_host_net() -> None:
    assert "10.254.0.2" not in render_resolv_conf(pod(hostNetwork=True), CFG)
    assert "nameserver 10.254.0.2\n" in render_resolv_conf(
        pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), CFG
    )
    assert "10.254.0.2" in render_resolv_conf(pod(dnsPolicy="ClusterFirstWithHostNet"), CFG)


def test_none_with_dns_config() -> None:
    dc = PodDNSConfig(
        nameservers=["1.1.1.1", "8.8.8.8"],
        searches=["ns1.svc.cluster-domain.example", "my.dns.search.suffix"],
        options=[PodDNSConfigOption(name="ndots", value="2"), PodDNSConfigOption(name="edns0")],
    )
    assert render_resolv_conf(pod(dnsPolicy="None", dnsConfig=dc), CFG) == (
        "nameserver 1.1.1.1\nnameserver 8.8.8.8\n"
        "search ns1.svc.cluster-domain.example my.dns.search.suffix\n"
        "options ndots:2 edns0\n"
    )


def test_cluster_first_merged_with_dns_config() -> None:
    dc = PodDNSConfig(
        nameservers=["10.254.0.2", "1.1.1.1"],
        searches=["svc.cluster.local", "extra.example"],
        options=[PodDNSConfigOption(name="ndots", value="1"), PodDNSConfigOption(name="single-request-reopen")],
    )
    conf = pod_dns_config(pod(dnsConfig=dc), CFG)
    assert conf.servers == ["10.254.0.2", "1.1.1.1"]  # appended, duplicates dropped
    assert conf.searches == ["default.svc.cluster.local", "svc.cluster.local", "cluster.local", "extra.example"]
    assert conf.options == ["ndots:1", "single-request-reopen"]  # same name replaced


def test_limits() -> None:
    many = PodDNSConfig(nameservers=[f"10.0.0.{i}" for i in range(1, 6)], searches=[f"d{i}.example" for i in range(40)])
    conf = pod_dns_config(pod(dnsPolicy="None", dnsConfig=many), CFG)
    assert conf.servers == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert conf.searches == [f"d{i}.example" for i in range(32)]

    too_long = "a" * 254
    conf = pod_dns_config(pod(dnsPolicy="None", dnsConfig=PodDNSConfig(searches=[too_long, "ok.example"])), CFG)
    assert conf.searches == ["ok.example"]

    wide = [f"{'x' * 200}-{i}.example" for i in range(12)]  # 12 x 211 chars: over 2048 with spaces
    conf = pod_dns_config(pod(dnsPolicy="None", dnsConfig=PodDNSConfig(searches=wide)), CFG)
    assert len(" ".join(conf.searches)) <= 2048
    assert conf.searches == wide[: len(conf.searches)] and len(conf.searches) == 9


def test_hosts_file_plain() -> None:
    assert render_hosts_file(pod(), CFG) == HOSTS_HEAD + "172.30.76.2\tweb\n"


def test_hosts_file_subdomain_fqdn_and_hostname() -> None:
    p = pod(name="mysql-0", ns="db", hostname="primary", subdomain="mysql")
    assert render_hosts_file(p, CFG) == HOSTS_HEAD + "172.30.76.2\tprimary.mysql.db.svc.cluster.local\tprimary\n"


def test_hosts_file_host_aliases() -> None:
    aliases = [
        HostAlias(ip="127.0.0.1", hostnames=["foo.local", "bar.local"]),
        HostAlias(ip="10.1.2.3", hostnames=["x"]),
    ]
    assert render_hosts_file(pod(hostAliases=aliases), CFG) == (
        HOSTS_HEAD
        + "172.30.76.2\tweb\n"
        + "\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tx\n"
    )


def test_hosts_file_all_pod_ips_and_long_name() -> None:
    name = "a" * 62 + "-bcdef"
    p = Pod(
        metadata=ObjectMeta(name=name, namespace="default"),
        status=PodStatus(podIP="172.30.76.2", podIPs=[PodIP(ip="172.30.76.2"), PodIP(ip="fd00::2")]),
    )
    short = "a" * 62  # cut to 63 characters, then the trailing "-" dropped
    assert render_hosts_file(p, CFG).endswith(f"172.30.76.2\t{short}\nfd00::2\t{short}\n")


def test_hosts_file_host_network() -> None:
    text = render_hosts_file(pod(hostNetwork=True, hostAliases=[HostAlias(ip="1.2.3.4", hostnames=["h"])]), CFG)
    assert text.startswith("# Kubernetes-managed hosts file (host network).\n")
    assert text.endswith("\n# Entries added by HostAliases.\n1.2.3.4\th\n")
