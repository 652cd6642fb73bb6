"""Services of type LoadBalancer on a live cluster, seen from the outside host ``client``:
addresses from the pool (requested, refused), ARP answered by one node, the client's source
address kept with ``externalTrafficPolicy: Local`` and masqueraded with ``Cluster``, health
check node ports, ClientIP affinity, and the address moving when its node goes away."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from e2e_helpers import Cluster, poll, running_cluster
from outside_helpers import AGNHOST, CLIENT_IP, NODE1, NODE2, http_batch

from kins.api.core import Service

pytestmark = pytest.mark.root

NODES = {"node1": NODE1, "node2": NODE2}


def _deploy(name: str, replicas: int, node: str | None = None) -> str:
    pin = f"\n      nodeSelector: {{kubernetes.io/hostname: {node}}}" if node else ""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:{pin}
      containers:
      - name: netexec
        image: {AGNHOST}
        args: [netexec, --http-port=8080]
        readinessProbe:
          tcpSocket: {{port: 8080}}
          periodSeconds: 1
"""


def _lb(name: str, app: str, extra: str = "", annotations: str = "") -> str:
    ann = f"\n  annotations: {{{annotations}}}" if annotations else ""
    return f"""
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default{ann}
spec:
  type: LoadBalancer
  selector: {{app: {app}}}
  ports: [{{port: 80, targetPort: 8080}}]{extra}
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(apps=False) as c:
        c.apply_text("---".join([_deploy("web", 3), _deploy("solo", 1, "node2")]))
        c.wait_ready("web", 3, timeout=60)
        c.wait_ready("solo", 1, timeout=60)
        yield c


def lb_ip(c: Cluster, name: str, timeout: float = 10) -> str:
    def check() -> str | None:
        ips = c.service(name).lb_ips
        return ips[0] if ips else None

    return poll(check, timeout, f"an address for service {name}")


def announcer(c: Cluster, name: str) -> str:
    return poll(lambda: (c.service(name).metadata.annotations or {}).get("kins.io/lb-announcer"), 10, "announcer")


def mac(c: Cluster, node: str) -> str:
    return c.node_exec(node, "cat", "/sys/class/net/eth0/address").stdout.strip()


def neigh_mac(c: Cluster, ip: str) -> str | None:
    for e in json.loads(c.host_exec("client", "ip", "-j", "neigh", "show", ip).stdout or "[]"):
        if e.get("lladdr"):
            return str(e["lladdr"])
    return None


def clientips(c: Cluster, ip: str, n: int = 10, path: str = "/clientip") -> list[str]:
    got = http_batch(c, "client", [(ip, 80, "", "GET", path)] * n)
    assert all(code == 200 for code, _ in got), got
    return [body.rsplit(":", 1)[0] if path == "/clientip" else body for _, body in got]


def test_address_from_pool_answered_by_exactly_one_node(cluster: Cluster) -> None:
    cluster.apply_text(_lb("web-lb", "web"))
    ip = lb_ip(cluster, "web-lb")
    assert ip.startswith("192.168.0.") and 200 <= int(ip.rsplit(".", 1)[1]) <= 220
    owner = announcer(cluster, "web-lb")
    have = {n: ip in cluster.node_exec(n, "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout for n in NODES}
    assert have == {n: n == owner for n in NODES}
    poll(
        lambda: all(code == 200 for code, _ in http_batch(cluster, "client", [(ip, 80, "", "GET", "/hostname")])),
        10,
        "LB",
    )
    assert neigh_mac(cluster, ip) == mac(cluster, owner)
    # Cluster policy: spread over all pods, and the pods see a node's address, not the client's.
    names = set(clientips(cluster, ip, 30, "/hostname"))
    assert names == {p.name for p in cluster.ready_pods("web")}
    assert CLIENT_IP not in set(clientips(cluster, ip))


def test_local_policy_keeps_the_client_address_and_only_uses_local_endpoints(cluster: Cluster) -> None:
    cluster.apply_text(_lb("solo-local", "solo", "\n  externalTrafficPolicy: Local"))
    ip = lb_ip(cluster, "solo-local")
    # Only node2 has the endpoint, so only node2 may announce it.
    poll(lambda: announcer(cluster, "solo-local") == "node2", 10, "node2 announces")
    poll(lambda: http_batch(cluster, "client", [(ip, 80, "", "GET", "/clientip")])[0][0] == 200, 10, "reachable")
    assert set(clientips(cluster, ip, 10)) == {CLIENT_IP}
    svc = cluster.service("solo-local")
    hc = svc.spec.healthCheckNodePort
    assert hc
    want = {"node1": (503, 0), "node2": (200, 1)}
    for node, addr in NODES.items():
        ((code, body),) = http_batch(cluster, "client", [(addr, hc, "", "GET", "/healthz")])
        doc = json.loads(body)
        assert (code, doc["localEndpoints"]) == want[node]
        assert doc["service"] == {"namespace": "default", "name": "solo-local"} and doc["serviceProxyHealthy"] is True
    # node1 has no local endpoint: its NodePort drops the traffic instead of forwarding it.
    port = svc.spec.ports[0].nodePort  # type: ignore[index]
    ((code, _),) = http_batch(cluster, "client", [(NODE1, port, "", "GET", "/clientip")])  # type: ignore[list-item]
    assert code == 0


def test_requested_addresses_and_refusals(cluster: Cluster) -> None:
    cluster.apply_text(_lb("want-215", "web", annotations="metallb.io/loadBalancerIPs: 192.168.0.215"))
    assert lb_ip(cluster, "want-215") == "192.168.0.215"
    cluster.apply_text(_lb("want-taken", "web", "\n  loadBalancerIP: 192.168.0.215"))
    cluster.apply_text(_lb("want-outside", "web", annotations="metallb.io/loadBalancerIPs: 10.9.9.9"))

    def refusal(name: str) -> str | None:
        st = cluster.service(name).status
        conds = [c for c in (st.conditions if st else None) or [] if c.type == "AddressAssigned"]
        return conds[0].message if conds and conds[0].status == "False" else None

    taken = poll(lambda: refusal("want-taken"), 10, "refusal of a taken address")
    assert "192.168.0.215" in taken and "default/want-215" in taken
    outside = poll(lambda: refusal("want-outside"), 10, "refusal of an address outside the pool")
    assert "outside the address pool" in outside
    for name in ("want-taken", "want-outside"):
        assert cluster.service(name).lb_ips == []
    log = (cluster.state / "daemon.log").read_text()
    assert "AllocationFailed service/default/want-taken" in log
    # Freed: the waiting Service gets the address.
    cluster.kins("delete", "svc", "want-215", "want-outside")
    assert lb_ip(cluster, "want-taken") == "192.168.0.215"
    cluster.kins("delete", "svc", "want-taken")


def test_client_ip_affinity_sticks(cluster: Cluster) -> None:
    cluster.apply_text(_lb("web-sticky", "web", "\n  sessionAffinity: ClientIP"))
    ip = lb_ip(cluster, "web-sticky")
    poll(lambda: http_batch(cluster, "client", [(ip, 80, "", "GET", "/hostname")])[0][0] == 200, 10, "reachable")
    assert len(set(clientips(cluster, ip, 40, "/hostname"))) == 1
    cluster.kins("delete", "svc", "web-sticky")


def test_address_moves_when_its_node_is_removed(cluster: Cluster) -> None:
    ip = lb_ip(cluster, "web-lb")
    old = announcer(cluster, "web-lb")
    other = next(n for n in NODES if n != old)
    assert http_batch(cluster, "client", [(ip, 80, "", "GET", "/hostname")])[0][0] == 200
    assert neigh_mac(cluster, ip) == mac(cluster, old)
    new_mac = mac(cluster, other)
    cluster.kins("node", "remove", old)
    poll(lambda: announcer(cluster, "web-lb") == other, 15, f"{other} announcing {ip}")
    # The gratuitous ARP updates the client's entry without waiting for it to go stale.
    poll(lambda: neigh_mac(cluster, ip) == new_mac, 5, "the client's neighbour entry moving", interval=0.1)
    cluster.wait_ready("web", 3, timeout=60)
    poll(lambda: http_batch(cluster, "client", [(ip, 80, "", "GET", "/hostname")])[0][0] == 200, 20, "LB after move")
    svc = cluster.service("web-lb")
    assert isinstance(svc, Service) and svc.lb_ips == [ip]  # the address itself stays
