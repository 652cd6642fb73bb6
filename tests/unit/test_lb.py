"""The stateless choice of the node announcing a LoadBalancer address, and local endpoints."""

from __future__ import annotations

from kins.agents.healthcheck import health_response, local_endpoints
from kins.agents.lbspeaker import announcer, local_endpoint_nodes
from kins.api.core import Service
from kins.api.discovery import Endpoint, EndpointConditions, EndpointSlice
from kins.api.meta import ObjectMeta
from kins.control.lbipam import parse_pool


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
