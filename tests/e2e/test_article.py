"""The article's walk through a live cluster: its commands, on its addresses, with its answers.

One cluster (the article's two nodes and two apps) serves the whole module; nothing here changes
it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from e2e_helpers import DATA_PRODUCT_IP, DATA_PRODUCT_URL, Cluster

from kins.agents.ipmasq import CHAIN as FLANNEL_CHAIN

pytestmark = pytest.mark.root

NODES = {"node1": ("192.168.0.21", "172.30.76"), "node2": ("192.168.0.22", "172.30.9")}
COUNTERS = re.compile(r"\[\d+:\d+\]")


def _pod_node(c: Cluster) -> dict[str, tuple[str, str]]:
    """pod name -> (pod IP, node) of the article's pods."""
    return {p.name: (p.status.podIP or "", p.spec.nodeName or "") for p in c.pods() if p.status}


def test_get_pods_wide_has_the_articles_columns_and_addresses(cluster: Cluster) -> None:
    lines = cluster.kins("get", "po", "-o", "wide").stdout.splitlines()
    assert lines[0].split() == [
        "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES",
    ]  # fmt: skip
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == 6
    for name, ready, status, _restarts, _age, ip, node, *_ in rows:
        assert re.fullmatch(r"(business-manager|data-product)-[0-9a-f]{8,10}-[a-z0-9]{5}", name)
        assert (ready, status) == ("1/1", "Running")
        assert ip.startswith(NODES[node][1] + "."), (name, ip, node)
    # Spread over both nodes, as in the article.
    assert {r[6] for r in rows} == {"node1", "node2"}


def test_get_svc_shows_the_cluster_ips(cluster: Cluster) -> None:
    rows = {line.split()[0]: line.split() for line in cluster.kins("get", "svc").stdout.splitlines()[1:]}
    assert rows["data-product"][1:5] == ["ClusterIP", DATA_PRODUCT_IP, "<none>", "50051/TCP"]
    assert rows["kubernetes"][1:5] == ["ClusterIP", "10.254.0.1", "<none>", "443/TCP"]
    assert rows["business-manager"][4] == "80/TCP"
    assert rows["business-manager"][2].startswith("10.254.")


def test_describe_svc_lists_the_endpoints(cluster: Cluster) -> None:
    text = cluster.kins("describe", "svc", "data-product").stdout
    fields = dict(re.findall(r"^([A-Za-z ]+):\s+(.*)$", text, re.M))
    assert fields["IP"] == DATA_PRODUCT_IP
    assert fields["Selector"] == "app=data-product"
    assert fields["Port"].split() == ["data-product", "50051/TCP"]
    want = sorted(
        f"{ip}:50051" for ip, _ in _pod_node(cluster).values() if ip and ip in cluster.endpoint_ips("data-product")
    )
    assert sorted(fields["Endpoints"].split(",")) == want
    assert len(want) == 3


def test_pod_files_and_hostname(cluster: Cluster) -> None:
    pod = cluster.pods("business-manager")[0].name
    resolv = cluster.exec(pod, "cat", "/etc/resolv.conf").stdout.splitlines()
    assert resolv == [
        "nameserver 10.254.0.2",
        "search default.svc.cluster.local svc.cluster.local cluster.local",
        "options ndots:5",
    ]
    assert cluster.exec(pod, "hostname").stdout.strip() == pod


def test_ping_to_a_cluster_ip_gets_no_reply(cluster: Cluster) -> None:
    pod = cluster.pods("business-manager")[0].name
    res = cluster.exec(pod, "ping", "-c1", "-W1", DATA_PRODUCT_IP, check=False)
    assert res.returncode != 0
    assert "100% packet loss" in res.stdout
    assert " 0 received" in res.stdout


def _flannel_mac(c: Cluster, node: str) -> str:
    link = json.loads(c.node_exec(node, "ip", "-j", "link", "show", "flannel.1").stdout)[0]
    return str(link["address"])


@pytest.mark.parametrize(("node", "peer"), [("node1", "node2"), ("node2", "node1")])
def test_node_network_commands(cluster: Cluster, node: str, peer: str) -> None:
    ip, net = NODES[node]
    peer_ip, peer_net = NODES[peer]
    routes = cluster.node_exec(node, "ip", "route").stdout.splitlines()
    assert f"{peer_net}.0/24 via {peer_net}.0 dev flannel.1 onlink " in routes
    assert f"{net}.0/24 dev docker0 proto kernel scope link src {net}.1 " in routes
    assert f"192.168.0.0/24 dev eth0 proto kernel scope link src {ip} " in routes

    table = [line.split() for line in cluster.node_exec(node, "route", "-n").stdout.splitlines()[2:]]
    assert [peer_net + ".0", peer_net + ".0", "255.255.255.0", "UG", "0", "0", "0", "flannel.1"] in table
    assert [net + ".0", "0.0.0.0", "255.255.255.0", "U", "0", "0", "0", "docker0"] in table

    ifc = cluster.node_exec(node, "ifconfig").stdout
    blocks = {b.split(":", 1)[0]: b for b in ifc.strip().split("\n\n")}
    assert f"inet {net}.1  netmask 255.255.255.0" in blocks["docker0"]
    assert "mtu 1450" in blocks["docker0"].splitlines()[0]
    assert f"inet {net}.0  netmask 255.255.255.255" in blocks["flannel.1"]
    assert "mtu 1450" in blocks["flannel.1"].splitlines()[0]
    assert f"inet {ip}  netmask 255.255.255.0" in blocks["eth0"]

    mac = _flannel_mac(cluster, peer)
    neigh = cluster.node_exec(node, "ip", "neigh", "show", "dev", "flannel.1").stdout.splitlines()
    assert f"{peer_net}.0 lladdr {mac} PERMANENT " in neigh
    fdb = cluster.node_exec(node, "bridge", "fdb", "show").stdout.splitlines()
    assert f"{mac} dev flannel.1 dst {peer_ip} self permanent" in fdb


def test_iptables_save_has_the_articles_chains(cluster: Cluster) -> None:
    save = cluster.node_exec("node1", "iptables-save").stdout
    assert (
        f'-A KUBE-SERVICES -d {DATA_PRODUCT_IP}/32 -p tcp -m comment --comment "default/data-product:data-product '
        'cluster IP" -m tcp --dport 50051 -j KUBE-SVC-45TXGSBX3LGQQRTB' in save
    )
    svc_rules = [line for line in save.splitlines() if line.startswith("-A KUBE-SVC-45TXGSBX3LGQQRTB ")]
    probs = [m.group(1) for r in svc_rules if (m := re.search(r"--probability (\S+)", r))]
    assert probs == ["0.33333333349", "0.50000000000"]
    assert sum(1 for r in svc_rules if "-j KUBE-SEP-" in r) == 3
    assert "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000" in save
    assert re.search(r"-A KUBE-POSTROUTING .*-j MASQUERADE", save)
    for ip, _node in _pod_node(cluster).values():
        if ip in cluster.endpoint_ips("data-product"):
            assert f"-j DNAT --to-destination {ip}:50051" in save


@pytest.mark.parametrize("node", ["node1", "node2"])
def test_live_iptables_equal_the_offline_render(cluster: Cluster, node: str, tmp_path: Path) -> None:
    """The rules on a node are exactly what `kins render` computes offline from a dump of the
    live Services and EndpointSlices (counters and iptables-save's comments aside)."""
    cluster.wait_rules_synced()
    files: list[str] = []
    for res in ("svc", "endpointslices"):
        path = tmp_path / f"{res}.yaml"
        path.write_text(cluster.kins("get", res, "-A", "-o", "yaml").stdout)
        files += ["-f", str(path)]
    cfg = str(cluster.state / "cluster.yaml")
    rendered = cluster.kins("render", *files, "--cluster", cfg, "--node", node, "--what", "iptables-save").stdout
    live = cluster.node_exec(node, "iptables-save").stdout

    def norm(text: str) -> list[str]:
        return [COUNTERS.sub("[0:0]", line) for line in text.splitlines() if line and not line.startswith("#")]

    # Everything, flanneld's masquerade chain included, exactly as rendered offline.
    assert norm(live) == norm(rendered)
    assert any(FLANNEL_CHAIN in line for line in norm(live))


def test_cross_node_pod_to_pod(cluster: Cluster) -> None:
    where = _pod_node(cluster)
    pairs = 0
    for src in (p for p in where if p.startswith("business-manager")):
        for dst, (ip, node) in where.items():
            if not dst.startswith("data-product") or node == where[src][1]:
                continue
            answer = json.loads(cluster.curl(src, f"http://{ip}:50051/"))
            assert (answer["pod"], answer["podIP"]) == (dst, ip)
            pairs += 1
    assert pairs >= 2  # both directions across the VXLAN overlay


def test_cluster_ip_spreads_over_pods_on_both_nodes(cluster: Cluster) -> None:
    src = cluster.pods("business-manager")[0].name
    n = 300
    answers = cluster.curl_many(src, DATA_PRODUCT_URL, n)
    served = Counter(json.loads(a)["pod"] for a in answers if a)
    assert sum(served.values()) == n, f"only {sum(served.values())}/{n} requests answered"
    where = _pod_node(cluster)
    backends = sorted(p for p in where if p.startswith("data-product"))
    assert sorted(served) == backends
    assert {where[p][1] for p in served} == {"node1", "node2"}
    # Uniform over 3 backends: chi-square with 2 degrees of freedom stays under 13.8 with
    # probability 0.999.
    expected = n / len(backends)
    chi2 = sum((served[p] - expected) ** 2 / expected for p in backends)
    assert chi2 < 13.8, f"uneven spread {dict(served)} (chi-square {chi2:.1f})"
