"""LoadBalancer address allocation and the stateless choice of the announcing node."""

from __future__ import annotations

from kins.agents.healthcheck import health_response, local_endpoints
from kins.agents.lbspeaker import allocate, announcer, local_endpoint_nodes, parse_pool
from kins.api.core import LoadBalancerIngress, LoadBalancerStatus, Service, ServiceSpec, ServiceStatus
from kins.api.discovery import Endpoint, EndpointConditions, EndpointSlice
from kins.api.meta import ObjectMeta


def svc(name: str, *, ip: str | None = None, ann: str | None = None, had: str | None = None, ts: str = "1") -> Service:
    meta = ObjectMeta(name=name, namespace="default", creationTimestamp=f"2024-01-01T00:00:0{ts}Z")
    if ann:
        meta.annotations = {"metallb.io/loadBalancerIPs": ann}
    status = ServiceStatus(loadBalancer=LoadBalancerStatus(ingress=[LoadBalancerIngress(ip=had)])) if had else None
    return Service(metadata=meta, spec=ServiceSpec(type="LoadBalancer", loadBalancerIP=ip), status=status)


POOL = parse_pool(["192.168.0.200-192.168.0.202"])


def test_pool_ranges_and_cidrs() -> None:
    assert [str(a) for a in POOL] == ["192.168.0.200", "192.168.0.201", "192.168.0.202"]
    assert [str(a) for a in parse_pool(["10.0.0.0/30", "10.0.0.9/32"])] == ["10.0.0.1", "10.0.0.2", "10.0.0.9"]


def test_lowest_free_address_skipping_reserved_and_exhaustion() -> None:
    got = allocate([svc("a", ts="1"), svc("b", ts="2"), svc("c", ts="3")], POOL, {"192.168.0.200"})
    assert got["default/a"].ip == "192.168.0.201" and got["default/b"].ip == "192.168.0.202"
    assert got["default/c"].ip is None and "exhausted" in (got["default/c"].error or "")


def test_requests_win_and_are_refused_with_a_reason() -> None:
    got = allocate(
        [svc("old", had="192.168.0.201", ts="1"), svc("asks", ann="192.168.0.201", ts="2"),
         svc("dup", ip="192.168.0.201", ts="3"), svc("far", ann="10.1.1.1", ts="4")],
        POOL, set(),
    )  # fmt: skip
    assert got["default/asks"].ip == "192.168.0.201"
    assert got["default/old"].ip == "192.168.0.200"  # lost its address to an explicit request
    assert got["default/dup"].ip is None and "in use by service default/asks" in (got["default/dup"].error or "")
    assert got["default/far"].ip is None and "outside the address pool" in (got["default/far"].error or "")


def test_assignments_are_sticky() -> None:
    first = allocate([svc("a", ts="2")], POOL, set())
    assert first["default/a"].ip == "192.168.0.200"
    again = allocate([svc("z", ts="1"), svc("a", ts="2")], POOL, set(), {"default/a": "192.168.0.200"})
    assert again["default/a"].ip == "192.168.0.200" and again["default/z"].ip == "192.168.0.201"


def test_announcer_is_stable_and_only_moves_when_its_node_goes() -> None:
    nodes = ["node1", "node2", "node3"]
    owners = {ip: announcer(ip, nodes) for ip in (str(a) for a in parse_pool(["192.168.0.200-192.168.0.230"]))}
    assert set(owners.values()) == set(nodes)  # spread over the nodes
    for ip, owner in owners.items():
        assert announcer(ip, list(reversed(nodes))) == owner  # order of the list does not matter
        rest = [n for n in nodes if n != owner]
        assert announcer(ip, rest) != owner
        other = next(n for n in nodes if n != owner)
        assert announcer(ip, [n for n in nodes if n != other]) == owner  # unaffected by other nodes
    assert announcer("192.168.0.200", []) is None


def _slice(*eps: tuple[str, str, bool]) -> EndpointSlice:
    return EndpointSlice(
        metadata=ObjectMeta(name="s-1", namespace="default", labels={"kubernetes.io/service-name": "s"}),
        addressType="IPv4",
        endpoints=[Endpoint(addresses=[ip], nodeName=n, conditions=EndpointConditions(ready=r)) for ip, n, r in eps],
    )


def test_local_endpoints_count_ready_ones_per_node() -> None:
    s = Service(metadata=ObjectMeta(name="s", namespace="default"))
    sl = _slice(("172.30.76.2", "node1", True), ("172.30.76.3", "node1", False), ("172.30.9.2", "node2", True))
    assert local_endpoint_nodes(s, [sl]) == {"node1", "node2"}
    assert local_endpoints(s, [sl], "node1") == 1 and local_endpoints(s, [sl], "node3") == 0
    assert health_response("default", "s", 0)[0] == 503
    code, body = health_response("default", "s", 2)
    assert code == 200 and body == (
        b'{"service": {"namespace": "default", "name": "s"}, "localEndpoints": 2, "serviceProxyHealthy": true}'
    )
