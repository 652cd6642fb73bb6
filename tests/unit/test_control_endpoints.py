"""Endpoints, EndpointSlices, mirroring, and the article's cluster end to end."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

from msgspec.structs import replace

from kins.api.config import ClusterConfig, default_cluster
from kins.api.core import Endpoints, Pod, Service, ServicePort, ServiceSpec
from kins.api.discovery import Endpoint, EndpointSlice, EndpointSlicePort
from kins.api.load import load_text
from kins.api.meta import ObjectMeta
from kins.control.base import run_until_stable
from kins.control.defaults import default_controllers
from kins.control.offline import build_offline_state
from kins.store.base import NAME_ALPHABET, Store

ARTICLE = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: business-manager}
spec:
  replicas: 3
  selector: {matchLabels: {app: business-manager}}
  template:
    metadata: {labels: {app: business-manager}}
    spec:
      containers: [{name: app, image: bm:1, ports: [{containerPort: 8080, name: http}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: data-product}
spec:
  replicas: 3
  selector: {matchLabels: {app: data-product}}
  template:
    metadata: {labels: {app: data-product}}
    spec:
      containers: [{name: app, image: dp:1, ports: [{containerPort: 50051}]}]
---
apiVersion: v1
kind: Service
metadata: {name: business-manager}
spec: {selector: {app: business-manager}, ports: [{port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: data-product}
spec: {selector: {app: data-product}, ports: [{port: 50051, targetPort: 50051}]}
"""


def settle(store: Store, cfg: ClusterConfig) -> int:
    return run_until_stable(store, default_controllers(store, cfg, random.Random(0)))


def slices_of(store: Store, svc: str) -> list[EndpointSlice]:
    return [
        s
        for s in store.list("EndpointSlice")[0]
        if isinstance(s, EndpointSlice) and s.labels.get("kubernetes.io/service-name") == svc
    ]


def endpoints(store: Store, name: str) -> Endpoints:
    ep = store.get("Endpoints", "default", name)
    assert isinstance(ep, Endpoints)
    return ep


def test_article_scenario() -> None:
    store = build_offline_state(default_cluster(), load_text(ARTICLE))
    pods = [p for p in store.list("Pod")[0] if isinstance(p, Pod)]
    assert len(pods) == 6
    subnets = {"node1": ipaddress.IPv4Network("172.30.76.0/24"), "node2": ipaddress.IPv4Network("172.30.9.0/24")}
    for p in pods:
        assert p.status is not None and p.status.podIP
        assert ipaddress.IPv4Address(p.status.podIP) in subnets[p.spec.nodeName or ""]
    for app in ("business-manager", "data-product"):
        assert {p.spec.nodeName for p in pods if p.labels["app"] == app} == {"node1", "node2"}
    assert len({p.status.podIP for p in pods if p.status}) == 6
    bm_ips = {p.status.podIP for p in pods if p.labels["app"] == "business-manager" and p.status}
    for name, port in (("business-manager", 8080), ("data-product", 50051)):
        (sl,) = slices_of(store, name)
        assert sl.name.startswith(f"{name}-") and len(sl.name) == len(name) + 6
        assert set(sl.name[-5:]) <= set(NAME_ALPHABET)
        assert sl.labels["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
        assert sl.addressType == "IPv4" and sl.ports == [EndpointSlicePort(name="", protocol="TCP", port=port)]
        assert len(sl.endpoints or []) == 3
        for ep in sl.endpoints or []:
            assert ep.conditions is not None
            assert (ep.conditions.ready, ep.conditions.serving, ep.conditions.terminating) == (True, True, False)
            assert ep.nodeName in ("node1", "node2") and ep.targetRef and ep.targetRef.kind == "Pod"
        svc = store.get("Service", "default", name)
        ref = (sl.metadata.ownerReferences or [None])[0]
        assert ref is not None and ref.kind == "Service" and ref.uid == svc.metadata.uid
        ep_obj = endpoints(store, name)
        assert ep_obj.subsets and len(ep_obj.subsets) == 1
        assert len(ep_obj.subsets[0].addresses or []) == 3 and ep_obj.subsets[0].ports
        assert ep_obj.subsets[0].ports[0].port == port
    assert {a.ip for a in endpoints(store, "business-manager").subsets[0].addresses or []} == bm_ips  # type: ignore[index]
    svc = store.get("Service", "default", "business-manager")
    assert isinstance(svc, Service) and svc.spec.clusterIP and svc.spec.clusterIP.startswith("10.254.")


def _pod(name: str, labels: str = "{app: web}", ports: str = "[{containerPort: 8080, name: http}]") -> str:
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {labels}}}\n"
        f"spec: {{containers: [{{name: c, ports: {ports}}}]}}\n---\n"
    )


WEB_SVC = """apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{name: h, port: 80, targetPort: http}]%s}
"""


def _set(store: Store, name: str, ready: bool | None = None, terminating: bool = False) -> None:
    p = store.get("Pod", "default", name)
    assert isinstance(p, Pod) and p.status is not None
    if ready is not None:
        conds = [replace(c, status=str(ready)) if c.type == "Ready" else c for c in p.status.conditions or []]
        p = replace(p, status=replace(p.status, conditions=conds))
    if terminating:
        p = replace(p, metadata=replace(p.metadata, deletionTimestamp="2024-01-01T00:00:00Z"))
    store.update(p)


def test_readiness_and_terminating() -> None:
    cfg = default_cluster()
    store = build_offline_state(cfg, load_text(_pod("a") + _pod("b") + _pod("c") + WEB_SVC % ""))
    _set(store, "b", ready=False)
    _set(store, "c", terminating=True)
    settle(store, cfg)
    ips = {p.name: p.status.podIP for p in store.list("Pod")[0] if isinstance(p, Pod) and p.status and p.status.podIP}
    (sub,) = endpoints(store, "web").subsets or []
    assert [a.ip for a in sub.addresses or []] == [ips["a"]]
    assert [a.ip for a in sub.notReadyAddresses or []] == [ips["b"]]  # terminating c is left out
    assert sub.ports and (sub.ports[0].name, sub.ports[0].port) == ("h", 8080)
    (sl,) = slices_of(store, "web")
    conds = {
        e.targetRef.name: (e.conditions.ready, e.conditions.serving, e.conditions.terminating)
        for e in sl.endpoints or []
        if e.targetRef and e.conditions
    }
    assert conds == {"a": (True, True, False), "b": (False, False, False), "c": (False, True, True)}


def test_publish_not_ready_addresses() -> None:
    cfg = default_cluster()
    store = build_offline_state(cfg, load_text(_pod("a") + _pod("b") + WEB_SVC % ", publishNotReadyAddresses: true"))
    _set(store, "b", ready=False)
    settle(store, cfg)
    (sub,) = endpoints(store, "web").subsets or []
    assert len(sub.addresses or []) == 2 and not sub.notReadyAddresses
    (sl,) = slices_of(store, "web")
    assert all(e.conditions and e.conditions.ready for e in sl.endpoints or [])


def test_named_target_port_resolved_per_pod() -> None:
    text = _pod("a") + _pod("b", ports="[{containerPort: 9090, name: http}]") + _pod("c", ports="[]") + WEB_SVC % ""
    store = build_offline_state(default_cluster(), load_text(text))
    subsets = endpoints(store, "web").subsets or []
    by_port = {
        s.ports[0].port: [a.targetRef.name for a in s.addresses or [] if a.targetRef] for s in subsets if s.ports
    }
    assert by_port == {8080: ["a"], 9090: ["b"]}  # c has no port named http
    slices = slices_of(store, "web")
    got = sorted(((s.ports or [])[0].port or 0, len(s.endpoints or [])) for s in slices if s.ports)
    assert got == [(8080, 1), (9090, 1)]


def test_slices_hold_at_most_100_endpoints() -> None:
    store = build_offline_state(default_cluster(), load_text("".join(_pod(f"p{i}") for i in range(150)) + WEB_SVC % ""))
    sizes = sorted(len(s.endpoints or []) for s in slices_of(store, "web"))
    assert sizes == [50, 100]
    (sub,) = endpoints(store, "web").subsets or []
    assert len(sub.addresses or []) == 150


def test_selectorless_service_keeps_user_endpoints_and_mirrors_them() -> None:
    text = """
apiVersion: v1
kind: Service
metadata: {name: mysql}
spec: {ports: [{port: 3306}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: mysql}
subsets: [{addresses: [{ip: 192.168.0.103}], ports: [{port: 3306}]}]
"""
    store = build_offline_state(default_cluster(), load_text(text))
    ep = endpoints(store, "mysql")
    assert ep.subsets and ep.subsets[0].addresses and ep.subsets[0].addresses[0].ip == "192.168.0.103"
    (sl,) = slices_of(store, "mysql")
    assert sl.labels["endpointslice.kubernetes.io/managed-by"] == "endpointslicemirroring-controller.k8s.io"
    assert [e.addresses for e in sl.endpoints or []] == [["192.168.0.103"]]
    assert sl.ports == [EndpointSlicePort(name="", protocol="TCP", port=3306)]
    # the mirror follows the user's edits
    store.update(
        replace(
            ep, subsets=[replace(ep.subsets[0], addresses=[replace(ep.subsets[0].addresses[0], ip="192.168.0.104")])]
        )
    )
    settle(store, default_cluster())
    (sl2,) = slices_of(store, "mysql")
    assert [e.addresses for e in sl2.endpoints or []] == [["192.168.0.104"]] and sl2.name == sl.name


def test_user_slices_left_alone_and_external_name_gets_nothing() -> None:
    text = """
apiVersion: v1
kind: Service
metadata: {name: ext}
spec: {ports: [{port: 5432}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ext-1, labels: {kubernetes.io/service-name: ext}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.7]}]
ports: [{name: "", port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: cname}
spec: {type: ExternalName, externalName: db.example.com, selector: {app: web}}
"""
    store = build_offline_state(default_cluster(), load_text(text + "---\n" + _pod("a")))
    assert [s.name for s in slices_of(store, "ext")] == ["ext-1"]
    assert slices_of(store, "cname") == []
    assert [e.name for e in store.list("Endpoints")[0]] == []


def test_service_delete_and_selector_change_clean_up() -> None:
    cfg = default_cluster()
    store = build_offline_state(cfg, load_text(_pod("a") + _pod("b", labels="{app: api}") + WEB_SVC % ""))
    svc = store.get("Service", "default", "web")
    assert isinstance(svc, Service)
    store.update(replace(svc, spec=replace(svc.spec, selector={"app": "api"})))
    settle(store, cfg)
    (sl,) = slices_of(store, "web")
    assert [e.targetRef.name for e in sl.endpoints or [] if e.targetRef] == ["b"]
    (sub,) = endpoints(store, "web").subsets or []
    assert [a.targetRef.name for a in sub.addresses or [] if a.targetRef] == ["b"]
    store.delete("Service", "default", "web")
    settle(store, cfg)
    assert slices_of(store, "web") == []
    assert [e.name for e in store.list("Endpoints")[0]] == []


def test_offline_build_of_a_10k_service_dump_keeps_its_slices() -> None:
    objs: list = []  # type: ignore[type-arg]
    for i in range(10_000):
        objs.append(
            Service(
                metadata=ObjectMeta(name=f"s{i}", namespace="default"),
                spec=ServiceSpec(selector={"app": f"a{i}"}, ports=[ServicePort(port=80, targetPort=8080)]),
            )
        )
        objs.append(
            EndpointSlice(
                metadata=ObjectMeta(
                    name=f"s{i}-x", namespace="default", labels={"kubernetes.io/service-name": f"s{i}"}
                ),
                endpoints=[Endpoint(addresses=[f"10.1.{i // 256}.{i % 256}"])],
                ports=[EndpointSlicePort(name="", port=8080)],
            )
        )
    store = build_offline_state(default_cluster(), objs)
    # A dump's slices are taken as given (its pods are not in the input): nothing is recomputed.
    assert len(store.list("Endpoints")[0]) == 0
    slices = store.list("EndpointSlice")[0]
    assert len(slices) == 10_000
    assert {s.name for s in slices} == {f"s{i}-x" for i in range(10_000)}


def test_controllers_run_over_the_sqlite_store(tmp_path: Path) -> None:
    from kins.control.offline import node_object
    from kins.store.sqlite import SqliteStore

    cfg = default_cluster()
    store = SqliteStore(tmp_path / "state.db")
    for n in cfg.nodes:
        store.create(node_object(n))
    for o in load_text(ARTICLE):
        store.create(o)  # Services unallocated: the service-ip controller fills them in
    settle(store, cfg)
    pods = [p for p in store.list("Pod")[0] if isinstance(p, Pod)]
    assert len(pods) == 6 and all(p.ready for p in pods)
    assert sorted(len(s.endpoints or []) for s in store.list("EndpointSlice")[0] if isinstance(s, EndpointSlice)) == [
        3,
        3,
    ]
    svc = store.get("Service", "default", "data-product")
    assert isinstance(svc, Service) and svc.spec.clusterIP
    assert settle(store, cfg) <= 1  # a restart finds nothing to do
    store.close()
