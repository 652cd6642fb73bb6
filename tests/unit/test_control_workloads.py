"""Deployments, ReplicaSets, scheduling and the offline kubelet."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from msgspec.structs import replace

from kins._errors import KinsError, NotFound
from kins.api.apps import Deployment, ReplicaSet
from kins.api.config import ClusterConfig, NodeConfig, default_cluster
from kins.api.core import Pod
from kins.api.load import load_text
from kins.api.meta import ObjectMeta
from kins.control.base import run_until_stable
from kins.control.defaults import default_controllers
from kins.control.deployment import pod_template_hash, safe_encode
from kins.control.offline import build_offline_state
from kins.store.base import NAME_ALPHABET, Store, WatchEvent
from kins.store.memory import MemoryStore

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: %d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: nginx:1.25, ports: [{containerPort: 80, name: http}]}]
"""


def deploy(replicas: int = 3) -> list:  # type: ignore[type-arg]
    return load_text(DEPLOY % replicas)


def pods(store: Store) -> list[Pod]:
    return [p for p in store.list("Pod")[0] if isinstance(p, Pod)]


def settle(store: Store, cfg: ClusterConfig | None = None, seed: int = 7) -> int:
    return run_until_stable(store, default_controllers(store, cfg or default_cluster(), random.Random(seed)))


def set_replicas(store: Store, n: int) -> None:
    d = store.get("Deployment", "default", "web")
    assert isinstance(d, Deployment)
    store.update(replace(d, spec=replace(d.spec, replicas=n)))


def test_safe_encode_maps_digits_like_kubernetes() -> None:
    assert safe_encode("0123456789") == "456789bcdf"


def test_template_hash_is_stable_and_well_formed() -> None:
    d = deploy()[0]
    assert isinstance(d, Deployment)
    h = pod_template_hash(d.spec.template)
    again = load_text(DEPLOY % 5)[0]
    assert isinstance(again, Deployment)
    assert pod_template_hash(again.spec.template) == h  # replicas are not part of the template
    assert 1 <= len(h) <= 10 and set(h) <= set(NAME_ALPHABET)
    other = replace(d.spec.template, spec=replace(d.spec.template.spec, hostname="x"))
    assert pod_template_hash(other) != h
    assert pod_template_hash(d.spec.template, 1) != h


def test_deployment_creates_replicaset_and_named_pods() -> None:
    store = build_offline_state(default_cluster(), deploy(3))
    d = store.get("Deployment", "default", "web")
    assert isinstance(d, Deployment)
    h = pod_template_hash(d.spec.template)
    (rs,) = store.list("ReplicaSet")[0]
    assert isinstance(rs, ReplicaSet)
    assert rs.name == f"web-{h}"
    assert rs.labels == {"app": "web", "pod-template-hash": h}
    assert rs.spec.selector is not None and rs.spec.selector.matchLabels == {"app": "web", "pod-template-hash": h}
    assert rs.metadata.ownerReferences and rs.metadata.ownerReferences[0].uid == d.metadata.uid
    ps = pods(store)
    assert len(ps) == 3
    for p in ps:
        prefix, suffix = p.name.rsplit("-", 1)
        assert prefix == rs.name and len(suffix) == 5 and set(suffix) <= set(NAME_ALPHABET)
        ref = p.metadata.ownerReferences[0] if p.metadata.ownerReferences else None
        assert ref is not None and ref.kind == "ReplicaSet" and ref.uid == rs.metadata.uid and ref.controller
        assert p.labels["pod-template-hash"] == h
    assert d.status is not None
    assert (d.status.replicas, d.status.readyReplicas, d.status.availableReplicas) == (3, 3, 3)
    assert rs.status is not None and rs.status.readyReplicas == 3


def test_pod_names_follow_the_seed() -> None:
    a = {p.name for p in pods(build_offline_state(default_cluster(), deploy(3), seed=1))}
    b = {p.name for p in pods(build_offline_state(default_cluster(), deploy(3), seed=1))}
    c = {p.name for p in pods(build_offline_state(default_cluster(), deploy(3), seed=2))}
    assert a == b and a != c


def test_scale_up_and_down_deletes_unready_first() -> None:
    store = build_offline_state(default_cluster(), deploy(3))
    set_replicas(store, 5)
    settle(store)
    assert len(pods(store)) == 5
    # make one pod unready: scale-down takes it before any ready one
    victim = pods(store)[2]
    assert victim.status is not None and victim.status.conditions is not None
    conds = [replace(c, status="False") if c.type == "Ready" else c for c in victim.status.conditions]
    store.update(replace(victim, status=replace(victim.status, conditions=conds)))
    set_replicas(store, 4)
    settle(store)
    names = {p.name for p in pods(store)}
    assert len(names) == 4 and victim.name not in names
    set_replicas(store, 1)
    settle(store)
    assert len(pods(store)) == 1
    d = store.get("Deployment", "default", "web")
    assert isinstance(d, Deployment) and d.status is not None and d.status.replicas == 1


def test_template_change_rolls_to_a_new_replicaset() -> None:
    store = build_offline_state(default_cluster(), deploy(2))
    d = store.get("Deployment", "default", "web")
    assert isinstance(d, Deployment)
    old_rs = f"web-{pod_template_hash(d.spec.template)}"
    tmpl = d.spec.template
    c0 = replace(tmpl.spec.containers[0], image="nginx:1.26")
    new_tmpl = replace(tmpl, spec=replace(tmpl.spec, containers=[c0]))
    store.update(replace(d, spec=replace(d.spec, template=new_tmpl)))
    settle(store)
    new_rs = f"web-{pod_template_hash(new_tmpl)}"
    assert new_rs != old_rs
    rs = {r.name: r for r in store.list("ReplicaSet")[0] if isinstance(r, ReplicaSet)}
    assert rs[old_rs].spec.replicas == 0 and rs[new_rs].spec.replicas == 2
    assert (
        rs[new_rs].metadata.annotations and rs[new_rs].metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    )
    assert {p.name.rsplit("-", 1)[0] for p in pods(store)} == {new_rs}
    assert all(p.spec.containers[0].image == "nginx:1.26" for p in pods(store))


def test_deleting_a_deployment_collects_its_replicasets_and_pods() -> None:
    store = build_offline_state(default_cluster(), deploy(2))
    store.delete("Deployment", "default", "web")
    settle(store)
    assert store.list("ReplicaSet")[0] == [] and pods(store) == []


def test_scheduler_spreads_and_kubelet_assigns_lowest_ips() -> None:
    store = build_offline_state(default_cluster(), deploy(3))
    ps = pods(store)
    assert Counter(p.spec.nodeName for p in ps) in (Counter(node1=2, node2=1), Counter(node1=1, node2=2))
    by_node: dict[str, list[str]] = {}
    for p in ps:
        assert p.status is not None and p.status.phase == "Running" and p.ready
        assert p.status.podIPs and p.status.podIPs[0].ip == p.status.podIP
        assert p.status.startTime and p.status.containerStatuses and p.status.containerStatuses[0].ready
        by_node.setdefault(p.spec.nodeName or "", []).append(p.status.podIP or "")
        assert p.status.hostIP == {"node1": "192.168.0.21", "node2": "192.168.0.22"}[p.spec.nodeName or ""]
    prefix = {"node1": "172.30.76.", "node2": "172.30.9."}
    for node, ips in by_node.items():
        assert sorted(ips) == [f"{prefix[node]}{i}" for i in range(2, 2 + len(ips))]


def _three_nodes() -> ClusterConfig:
    cfg = default_cluster()
    cfg.nodes.append(NodeConfig(name="node3", ip="192.168.0.23", podCIDR="172.30.5.0/24", labels={"disk": "ssd"}))
    return cfg


def test_scheduler_honours_node_selector_and_node_name() -> None:
    text = (DEPLOY % 3).replace("containers:", "nodeSelector: {disk: ssd}\n      containers:")
    extra = """
apiVersion: v1
kind: Pod
metadata: {name: pinned}
spec: {nodeName: node2, containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: by-host}
spec: {nodeSelector: {kubernetes.io/hostname: node1}, containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: nowhere}
spec: {nodeSelector: {disk: floppy}, containers: [{name: c}]}
"""
    store = build_offline_state(_three_nodes(), load_text(text) + load_text(extra))
    placed = {p.name: p for p in pods(store)}
    assert {p.spec.nodeName for n, p in placed.items() if n.startswith("web-")} == {"node3"}
    assert placed["pinned"].spec.nodeName == "node2"
    assert placed["pinned"].status is not None and placed["pinned"].status.podIP == "172.30.9.2"
    assert placed["by-host"].spec.nodeName == "node1"
    nowhere = placed["nowhere"]
    assert nowhere.spec.nodeName is None and nowhere.status is not None and nowhere.status.phase == "Pending"
    cond = next(c for c in nowhere.status.conditions or [] if c.type == "PodScheduled")
    assert cond.status == "False" and cond.reason == "Unschedulable"
    assert "node affinity/selector" in (cond.message or "")


def test_pod_ip_released_on_delete_and_never_handed_out_twice() -> None:
    text = "\n---\n".join(
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec: {{nodeName: node1, containers: [{{name: c}}]}}"
        for i in range(4)
    )
    store = build_offline_state(default_cluster(), load_text(text))
    ips = {p.name: p.status.podIP for p in pods(store) if p.status}
    assert sorted(ips.values()) == ["172.30.76.2", "172.30.76.3", "172.30.76.4", "172.30.76.5"]
    freed = ips["p1"]
    store.delete("Pod", "default", "p1")
    store.create(Pod(metadata=ObjectMeta(name="late"), spec=replace(pods(store)[0].spec, nodeName="node1")))
    store.create(Pod(metadata=ObjectMeta(name="later"), spec=replace(pods(store)[0].spec, nodeName="node1")))
    settle(store)
    after = {p.name: p.status.podIP for p in pods(store) if p.status}
    assert len(set(after.values())) == len(after) == 5
    assert after["late"] == freed and after["later"] == "172.30.76.6"


def test_pod_subnet_exhaustion_leaves_pod_pending() -> None:
    cfg = default_cluster()
    cfg.nodes = [NodeConfig(name="tiny", ip="192.168.0.30", podCIDR="172.30.200.0/30")]
    text = "\n---\n".join(
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec: {{containers: [{{name: c}}]}}" for i in range(2)
    )
    store = build_offline_state(cfg, load_text(text))
    got = {p.name: p for p in pods(store)}
    running = [p for p in got.values() if p.status and p.status.phase == "Running"]
    assert len(running) == 1 and running[0].status is not None and running[0].status.podIP == "172.30.200.2"
    stuck = next(p for p in got.values() if p not in running)
    assert stuck.status is not None and "no free pod IP left in 172.30.200.0/30" in (stuck.status.message or "")


class _Restless:
    name = "restless"
    kinds = frozenset({"Namespace"})

    def __init__(self, store: Store) -> None:
        self.store = store

    def observe(self, ev: WatchEvent) -> list[str]:
        return [ev.object.name]

    def start_keys(self) -> list[str]:
        return []

    def reconcile(self, key: str) -> bool:
        ns = self.store.get("Namespace", None, key)
        labels = {"n": str(int(ns.labels.get("n", "0")) + 1)}
        self.store.update(replace(ns, metadata=replace(ns.metadata, labels=labels)))
        return True


def test_run_until_stable_gives_up_on_a_controller_that_never_settles() -> None:
    store = MemoryStore()
    store.create(load_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}")[0])
    with pytest.raises(KinsError, match=r"did not settle after 5 rounds.*restless"):
        run_until_stable(store, [_Restless(store)], max_rounds=5)


def test_missing_objects_are_not_errors() -> None:
    store = build_offline_state(default_cluster(), [])
    with pytest.raises(NotFound):
        store.get("Deployment", "default", "web")
    assert settle(store) <= 1
