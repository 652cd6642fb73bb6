"""Pod IPs, ClusterIPs and NodePorts."""

from __future__ import annotations

import ipaddress
import random

import pytest

from kins._errors import AllocationError
from kins.api.config import default_cluster
from kins.api.core import Service
from kins.api.load import load_text
from kins.control.base import run_until_stable
from kins.control.defaults import default_controllers
from kins.control.ipam import ServiceAllocator, allocate_pod_ip, allocate_service, pod_ips_in_use
from kins.control.offline import build_offline_state


def svc(text: str) -> Service:
    (s,) = load_text(text)
    assert isinstance(s, Service)
    return s


def make(name: str, ns: str = "default", typ: str = "ClusterIP", extra: str = "", ports: str = "") -> Service:
    ports = ports or "[{port: 80, targetPort: 8080}]"
    return svc(
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\n"
        f"spec: {{type: {typ}, selector: {{app: {name}}}, ports: {ports}{extra}}}"
    )


def test_pod_ip_lowest_free_skips_vtep_gateway_and_broadcast() -> None:
    assert allocate_pod_ip("172.30.76.0/24", set()) == "172.30.76.2"
    assert allocate_pod_ip("172.30.76.0/24", {"172.30.76.2", "172.30.76.4"}) == "172.30.76.3"
    used = {f"172.30.76.{i}" for i in range(2, 254)}
    assert allocate_pod_ip("172.30.76.0/24", used) == "172.30.76.254"
    with pytest.raises(AllocationError, match=r"node n1: no free pod IP left in 172\.30\.76\.0/24"):
        allocate_pod_ip("172.30.76.0/24", used | {"172.30.76.254"}, "n1")


def test_pod_ips_in_use_come_from_the_store() -> None:
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeName: node2, containers: [{name: c}]}"
    store = build_offline_state(default_cluster(), load_text(pod))
    assert pod_ips_in_use(store, "node2") == {"172.30.9.2"}
    assert pod_ips_in_use(store, "node1") == set()


def test_cluster_ip_dynamic_is_in_upper_band_and_stable() -> None:
    cfg = default_cluster()
    a = ServiceAllocator(cfg).allocate(make("web"))
    b = ServiceAllocator(cfg).allocate(make("web"))
    assert a.spec.clusterIP == b.spec.clusterIP and a.spec.clusterIPs == [a.spec.clusterIP]
    ip = ipaddress.IPv4Address(a.spec.clusterIP or "")
    assert ip in ipaddress.IPv4Network("10.254.0.0/16") and int(ip) >= int(ipaddress.IPv4Address("10.254.1.0"))
    assert a.spec.ports is not None and a.spec.ports[0].nodePort is None
    assert (a.spec.sessionAffinity, a.spec.internalTrafficPolicy, a.spec.ipFamilies) == ("None", "Cluster", ["IPv4"])


def test_many_services_get_distinct_ips() -> None:
    alloc = ServiceAllocator(default_cluster())
    ips = [alloc.allocate(make(f"s{i}")).spec.clusterIP for i in range(2000)]
    assert len(set(ips)) == 2000
    assert "10.254.0.1" not in ips and "10.254.0.2" not in ips


def test_requested_cluster_ip_honoured_or_refused_naming_holder() -> None:
    store = build_offline_state(default_cluster(), [make("db", extra=", clusterIP: 10.254.0.50")])
    db = store.get("Service", "default", "db")
    assert isinstance(db, Service) and db.spec.clusterIP == "10.254.0.50"
    with pytest.raises(AllocationError) as e:
        allocate_service(store, default_cluster(), make("web", extra=", clusterIP: 10.254.0.50"))
    assert "provided IP is already allocated" in str(e.value) and "default/db" in str(e.value)
    assert 'spec.clusterIPs: Invalid value: ["10.254.0.50"]' in str(e.value)
    with pytest.raises(AllocationError, match="not in the valid range"):
        allocate_service(store, default_cluster(), make("web", extra=", clusterIP: 10.99.0.1"))
    with pytest.raises(AllocationError, match="default/kubernetes"):
        allocate_service(store, default_cluster(), make("web", extra=", clusterIP: 10.254.0.1"))
    # updating a Service with its own address is fine
    assert allocate_service(store, default_cluster(), db).spec.clusterIP == "10.254.0.50"


def test_dns_ip_reserved_for_kube_dns() -> None:
    cfg = default_cluster()
    alloc = ServiceAllocator(cfg)
    with pytest.raises(AllocationError, match="kube-system/kube-dns"):
        alloc.allocate(make("sneaky", extra=", clusterIP: 10.254.0.2"))
    dns = alloc.allocate(make("kube-dns", ns="kube-system", ports="[{port: 53, protocol: UDP, name: dns}]"))
    assert dns.spec.clusterIP == "10.254.0.2"


def test_headless_and_external_name() -> None:
    alloc = ServiceAllocator(default_cluster())
    h = alloc.allocate(make("h", extra=", clusterIP: None"))
    assert h.spec.clusterIP == "None" and h.headless
    x = alloc.allocate(
        svc("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {type: ExternalName, externalName: a.example}")
    )
    assert x.spec.clusterIP is None and x.spec.clusterIPs is None


def test_node_port_dynamic_requested_and_taken() -> None:
    cfg = default_cluster()
    ingress = make("ingress-nginx", ns="ingress-nginx", typ="NodePort", ports="[{port: 80, nodePort: 30799}]")
    store = build_offline_state(cfg, [ingress, make("web", typ="NodePort")])
    got = store.get("Service", "ingress-nginx", "ingress-nginx")
    assert isinstance(got, Service) and got.spec.ports and got.spec.ports[0].nodePort == 30799
    assert got.spec.externalTrafficPolicy == "Cluster"
    web = store.get("Service", "default", "web")
    assert isinstance(web, Service) and web.spec.ports
    assert web.spec.ports[0].nodePort is not None and 30000 <= web.spec.ports[0].nodePort <= 32767
    with pytest.raises(AllocationError) as e:
        allocate_service(store, cfg, make("other", typ="NodePort", ports="[{port: 81, nodePort: 30799}]"))
    msg = str(e.value)
    assert "spec.ports[0].nodePort: Invalid value: 30799: provided port is already allocated" in msg
    assert "ingress-nginx/ingress-nginx" in msg
    with pytest.raises(AllocationError, match="provided port is not in the valid range"):
        allocate_service(store, cfg, make("other", typ="NodePort", ports="[{port: 81, nodePort: 85}]"))


def test_node_port_same_number_for_tcp_and_udp() -> None:
    s = make(
        "dns",
        typ="NodePort",
        ports="[{port: 53, name: a, nodePort: 30053}, {port: 53, name: b, protocol: UDP, nodePort: 30053}]",
    )
    out = ServiceAllocator(default_cluster()).allocate(s)
    assert [p.nodePort for p in out.spec.ports or []] == [30053, 30053]
    dup = make(
        "dup", typ="NodePort", ports="[{port: 1, name: a, nodePort: 30054}, {port: 2, name: b, nodePort: 30054}]"
    )
    with pytest.raises(AllocationError, match=r"spec.ports\[1\].nodePort"):
        ServiceAllocator(default_cluster()).allocate(dup)


def test_health_check_node_port_for_local_load_balancer() -> None:
    alloc = ServiceAllocator(default_cluster())
    lb = alloc.allocate(make("lb", typ="LoadBalancer", extra=", externalTrafficPolicy: Local"))
    hc = lb.spec.healthCheckNodePort
    assert hc is not None and 30000 <= hc <= 32767
    assert lb.spec.ports and hc != lb.spec.ports[0].nodePort
    plain = alloc.allocate(make("lb2", typ="LoadBalancer"))
    assert plain.spec.healthCheckNodePort is None and plain.spec.ports and plain.spec.ports[0].nodePort
    nonp = alloc.allocate(make("lb3", typ="LoadBalancer", extra=", allocateLoadBalancerNodePorts: false"))
    assert nonp.spec.ports and nonp.spec.ports[0].nodePort is None


def test_allocations_survive_a_restart_through_the_store() -> None:
    cfg = default_cluster()
    store = build_offline_state(cfg, [make(f"s{i}", typ="NodePort") for i in range(50)])
    held = {s.spec.clusterIP for s in store.list("Service")[0] if isinstance(s, Service)}
    fresh = ServiceAllocator.from_store(store, cfg)
    new = fresh.allocate(make("new", typ="NodePort"))
    assert new.spec.clusterIP not in held
    # deleting frees the address for a request
    victim = store.get("Service", "default", "s3")
    assert isinstance(victim, Service)
    store.delete("Service", "default", "s3")
    again = allocate_service(store, cfg, make("taker", extra=f", clusterIP: {victim.spec.clusterIP}"))
    assert again.spec.clusterIP == victim.spec.clusterIP


def test_unallocated_service_in_store_gets_filled_by_controller() -> None:
    cfg = default_cluster()
    store = build_offline_state(cfg, [])
    store.create(make("raw", typ="NodePort"))
    run_until_stable(store, default_controllers(store, cfg, random.Random(0)))
    raw = store.get("Service", "default", "raw")
    assert isinstance(raw, Service) and raw.spec.clusterIP and raw.spec.ports and raw.spec.ports[0].nodePort
    kube = store.get("Service", "default", "kubernetes")
    assert isinstance(kube, Service) and kube.spec.clusterIP == "10.254.0.1"
    assert kube.spec.ports and (kube.spec.ports[0].port, kube.spec.ports[0].targetPort) == (443, 6443)
