"""LoadBalancer addresses: the pool allocator and the controller that writes Service status."""

from __future__ import annotations

from msgspec.structs import replace

from kins.api.config import ClusterConfig, LoadBalancerPool, NodeConfig, default_cluster
from kins.api.core import (
    Event,
    LoadBalancerIngress,
    LoadBalancerStatus,
    Node,
    Service,
    ServiceSpec,
    ServiceStatus,
)
from kins.api.load import load_text
from kins.api.meta import ObjectMeta
from kins.control.base import run_until_stable
from kins.control.events import EventRecorder
from kins.control.ipam import ServiceIPController
from kins.control.lbipam import CONDITION, LoadBalancerIPController, allocate, parse_pool
from kins.control.offline import build_offline_state, node_object
from kins.store.memory import MemoryStore

# --- the allocator ----------------------------------------------------------------------------


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


# --- the controller ---------------------------------------------------------------------------


def lb_yaml(name: str, extra: str = "", annotations: str = "", typ: str = "LoadBalancer") -> str:
    ann = f", annotations: {{{annotations}}}" if annotations else ""
    return (
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default{ann}}}\n"
        f"spec: {{type: {typ}, selector: {{app: web}}, ports: [{{port: 80}}]{extra}}}\n"
    )


def cluster(*pool: str) -> ClusterConfig:
    return replace(default_cluster(), loadBalancer=LoadBalancerPool(addresses=list(pool)))


class Env:
    """The Service allocators over a MemoryStore, with the Events they record."""

    def __init__(self, cfg: ClusterConfig) -> None:
        self.cfg = cfg
        self.store = MemoryStore()
        self.events = EventRecorder(self.store)
        self.ctrl = LoadBalancerIPController(self.store, cfg, self.events)
        self.ips = ServiceIPController(self.store, cfg)
        for n in cfg.nodes:
            self.store.create(node_object(n))

    def apply(self, text: str) -> None:
        for o in load_text(text):
            self.store.create(o)
        self.settle()

    def settle(self) -> None:
        run_until_stable(self.store, [self.ips, self.ctrl])
        self.events.flush()

    def svc(self, name: str) -> Service:
        s = self.store.get("Service", "default", name)
        assert isinstance(s, Service)
        return s

    def condition(self, name: str) -> tuple[str, str | None, str | None] | None:
        st = self.svc(name).status
        for c in (st.conditions if st else None) or []:
            if c.type == CONDITION:
                return c.status, c.reason, c.message
        return None

    def event_list(self, name: str) -> list[tuple[str | None, str | None, str | None]]:
        evs = [e for e in self.store.list("Event")[0] if isinstance(e, Event) and e.involvedObject.name == name]
        return [(e.type, e.reason, e.message) for e in evs]


def test_offline_state_shows_the_address_like_the_live_cluster() -> None:
    store = build_offline_state(default_cluster(), load_text(lb_yaml("web")))
    s = store.get("Service", "default", "web")
    assert isinstance(s, Service) and s.lb_ips == ["192.168.0.200"]
    assert s.status and s.status.loadBalancer and s.status.loadBalancer.ingress
    assert s.status.loadBalancer.ingress[0].ipMode == "VIP"
    plain = store.get("Service", "default", "kubernetes")
    assert isinstance(plain, Service) and plain.status is None  # other Services are left alone


def test_allocation_writes_status_condition_and_event() -> None:
    env = Env(cluster("192.168.0.200-192.168.0.202"))
    env.apply(lb_yaml("web"))
    assert env.svc("web").lb_ips == ["192.168.0.200"]
    assert env.condition("web") == ("True", "IPAllocated", "Assigned IP 192.168.0.200")
    assert env.event_list("web") == [("Normal", "IPAllocated", "Assigned IP [192.168.0.200]")]
    env.settle()  # nothing changes, nothing is recorded again
    assert env.event_list("web") == [("Normal", "IPAllocated", "Assigned IP [192.168.0.200]")]


def test_requested_address_by_field_or_annotation() -> None:
    env = Env(cluster("192.168.0.200-192.168.0.210"))
    env.apply(lb_yaml("by-field", ", loadBalancerIP: 192.168.0.205"))
    env.apply(lb_yaml("by-ann", annotations="metallb.io/loadBalancerIPs: 192.168.0.207"))
    env.apply(lb_yaml("any"))
    assert env.svc("by-field").lb_ips == ["192.168.0.205"]
    assert env.svc("by-ann").lb_ips == ["192.168.0.207"]
    assert env.svc("any").lb_ips == ["192.168.0.200"]
    env.apply(lb_yaml("taken", annotations="metallb.io/loadBalancerIPs: 192.168.0.205"))
    cond = env.condition("taken")
    assert cond is not None and cond[:2] == ("False", "AllocationFailed")
    assert "192.168.0.205 is already in use by service default/by-field" in (cond[2] or "")
    assert env.svc("taken").lb_ips == []
    ((typ, reason, msg),) = env.event_list("taken")
    assert (typ, reason) == ("Warning", "AllocationFailed")
    assert msg == "Failed to allocate IP: 192.168.0.205 is already in use by service default/by-field"


def test_pool_exhaustion_then_release_on_delete() -> None:
    env = Env(cluster("192.168.0.200/32"))
    env.apply(lb_yaml("a"))
    env.apply(lb_yaml("b"))
    assert env.svc("a").lb_ips == ["192.168.0.200"] and env.svc("b").lb_ips == []
    cond = env.condition("b")
    assert cond is not None and cond[0] == "False" and "pool is exhausted" in (cond[2] or "")
    assert [e[:2] for e in env.event_list("b")] == [("Warning", "AllocationFailed")]
    env.store.delete("Service", "default", "a")
    env.settle()
    assert env.svc("b").lb_ips == ["192.168.0.200"]
    assert env.condition("b") == ("True", "IPAllocated", "Assigned IP 192.168.0.200")


def test_release_on_type_change() -> None:
    env = Env(cluster("192.168.0.200/32"))
    env.apply(lb_yaml("a"))
    env.apply(lb_yaml("b"))
    a = env.svc("a")
    env.store.update(replace(a, spec=replace(a.spec, type="ClusterIP")))
    env.settle()
    a = env.svc("a")
    assert a.lb_ips == [] and env.condition("a") is None
    assert a.status is None or a.status.loadBalancer is None
    assert env.svc("b").lb_ips == ["192.168.0.200"]


def test_other_classes_are_left_alone() -> None:
    env = Env(cluster("192.168.0.200/32"))
    env.apply(lb_yaml("other", ", loadBalancerClass: example.com/lb"))
    s = env.svc("other")
    assert s.lb_ips == [] and env.condition("other") is None and env.event_list("other") == []


def test_hosts_and_nodes_addresses_are_reserved() -> None:
    # The pool overlaps the underlay's nodes (.21, .22) and the host client (.100).
    env = Env(cluster("192.168.0.21-192.168.0.23", "192.168.0.100/32"))
    env.apply(lb_yaml("a"))
    assert env.svc("a").lb_ips == ["192.168.0.23"]
    env.apply(lb_yaml("host", annotations="metallb.io/loadBalancerIPs: 192.168.0.100"))
    cond = env.condition("host")
    assert cond is not None and "in use by a node or host" in (cond[2] or "")
    env.apply(lb_yaml("b"))
    assert env.svc("b").lb_ips == []  # .21, .22 are nodes', .100 the host's
    # A node joining on an address of the pool reserves it: the Service holding it gives it up.
    env.store.create(node_object(NodeConfig(name="node3", ip="192.168.0.23", podCIDR="172.30.3.0/24")))
    env.settle()
    assert env.svc("a").lb_ips == []
    node = env.store.get("Node", None, "node3")
    assert isinstance(node, Node)
    env.store.delete("Node", None, "node3")
    env.settle()
    assert sorted(env.svc(n).lb_ips[0] for n in ("a", "b") if env.svc(n).lb_ips) == ["192.168.0.23"]
