"""Appendix A on a live cluster: a database outside the cluster (the host ``mysql`` and two read
replicas) reached from pods through a selector-less Service and hand-written Endpoints, by DNS
name and ClusterIP; moved by editing the Endpoints; balanced over several addresses. And an
ExternalName Service: a CNAME in DNS, never a proxy rule."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from e2e_helpers import Cluster, poll
from outside_helpers import full_cluster

from kins.api.config import default_cluster

pytestmark = pytest.mark.root

DB = {"mysql": "192.168.0.103", "mysql-r1": "192.168.0.104", "mysql-r2": "192.168.0.105"}


def _endpoints(*ips: str) -> str:
    addrs = ", ".join(f"{{ip: {ip}}}" for ip in ips)
    return f"""
apiVersion: v1
kind: Endpoints
metadata: {{name: mysql, namespace: default}}
subsets:
- addresses: [{addrs}]
  ports: [{{port: 3306, protocol: TCP}}]
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    data = msgspec.to_builtins(default_cluster())
    data["hosts"] += [{"name": n, "ip": ip, "serve": [3306]} for n, ip in DB.items() if n != "mysql"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cluster.yaml"
        path.write_text(json.dumps(data))
        with full_cluster(str(path)) as c:
            c.kins("apply", "-f", str(Path(__file__).resolve().parents[2] / "src/kins/data/article/mysql.yaml"))
            yield c


def pod(c: Cluster) -> str:
    return c.ready_pods("business-manager")[0].name


def db_hosts(c: Cluster, url: str, n: int) -> Counter[str]:
    return Counter(json.loads(line)["host"] if line else "<none>" for line in c.curl_many(pod(c), url, n))


def test_outside_database_by_name_and_cluster_ip(cluster: Cluster) -> None:
    ip = cluster.service("mysql").spec.clusterIP
    assert ip
    for url in ("http://mysql:3306/", "http://mysql.default.svc.cluster.local:3306/", f"http://{ip}:3306/"):
        answer = json.loads(cluster.curl(pod(cluster), url))
        assert (answer["host"], answer["ip"]) == ("mysql", DB["mysql"])
    # A plain TCP client gets the greeting that names the host, then its lines answered.
    r = cluster.exec(pod(cluster), "bash", "-c", "exec 3<>/dev/tcp/mysql/3306; echo select 1 >&3; head -2 <&3")
    assert r.stdout.splitlines() == [f"mysql ({DB['mysql']}:3306) ready", "mysql: select 1"]


def test_moving_the_database_is_editing_the_endpoints(cluster: Cluster) -> None:
    try:
        cluster.apply_text(_endpoints(DB["mysql-r1"]))
        poll(lambda: db_hosts(cluster, "http://mysql:3306/", 3) == {"mysql-r1": 3}, 15, "mysql-r1 answering")
    finally:
        cluster.apply_text(_endpoints(DB["mysql"]))
    poll(lambda: db_hosts(cluster, "http://mysql:3306/", 3) == {"mysql": 3}, 15, "mysql answering again")


def test_several_addresses_are_balanced(cluster: Cluster) -> None:
    try:
        cluster.apply_text(_endpoints(*DB.values()))
        poll(lambda: set(db_hosts(cluster, "http://mysql:3306/", 30)) == set(DB), 20, "every replica answering")
    finally:
        cluster.apply_text(_endpoints(DB["mysql"]))


def test_external_name_is_a_cname_and_never_proxied(cluster: Cluster) -> None:
    cluster.apply_text(
        """
apiVersion: v1
kind: Service
metadata: {name: legacy-db, namespace: default}
spec:
  type: ExternalName
  externalName: mysql.default.svc.cluster.local
"""
    )
    svc = cluster.service("legacy-db")
    assert not svc.spec.clusterIP
    dig = poll(
        lambda: cluster.exec(pod(cluster), "dig", "+noall", "+answer", "legacy-db.default.svc.cluster.local").stdout,
        10,
        "the CNAME",
    )
    assert "CNAME" in dig and "mysql.default.svc.cluster.local." in dig
    answer = json.loads(cluster.curl(pod(cluster), "http://legacy-db:3306/"))
    assert answer["host"] == "mysql"
    cluster.wait_rules_synced()
    for node in ("node1", "node2"):
        rules = cluster.node_exec(node, "iptables-save").stdout
        assert "legacy-db" not in rules and "default/mysql" in rules
    cluster.kins("delete", "svc", "legacy-db")


def test_pods_leave_masqueraded_to_their_node(cluster: Cluster) -> None:
    # The outside host has no route to the pod network: it sees the pod's node.
    p = cluster.ready_pods("business-manager")[0]
    node_ip = {"node1": "192.168.0.21", "node2": "192.168.0.22"}[p.spec.nodeName or ""]
    answer = json.loads(cluster.curl(p.name, f"http://{DB['mysql']}:3306/"))
    assert answer["client"].rsplit(":", 1)[0] == node_ip
