"""StatefulSets and DaemonSets on a MemoryStore, converged by the default controllers."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest
from msgspec.structs import replace

from kins.api.apps import DaemonSet, RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetUpdateStrategy
from kins.api.config import ClusterConfig, NodeConfig, default_cluster
from kins.api.core import Node, NodeSpec, Pod, PodStatus, Taint
from kins.api.load import load_text
from kins.api.meta import Object
from kins.api.storage import PersistentVolume, PersistentVolumeClaim
from kins.control.base import ControllerSet, run_until_stable
from kins.control.defaults import default_controllers
from kins.control.events import NO_EVENTS, EventRecorder
from kins.control.offline import build_offline_state, node_object
from kins.control.statefulset import POD_INDEX_LABEL, POD_NAME_LABEL, REVISION_LABEL, StatefulSetController
from kins.store.base import Store
from kins.store.memory import MemoryStore

STS = """
apiVersion: v1
kind: Service
metadata: {name: nginx, namespace: default}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80, name: http}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: default}
spec:
  serviceName: nginx
  replicas: %d
  %s
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: nginx:1.25}]
"""

DS = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      %s
      containers: [{name: agent, image: busybox}]
"""


def sts(replicas: int = 3, extra: str = "") -> list[Object]:
    return load_text(STS % (replicas, extra))


def pods(store: Store, prefix: str = "web-") -> dict[str, Pod]:
    return {p.name: p for p in store.list("Pod", "default")[0] if isinstance(p, Pod) and p.name.startswith(prefix)}


def settle(store: Store, cfg: ClusterConfig | None = None) -> int:
    return run_until_stable(store, default_controllers(store, cfg or default_cluster(), random.Random(3)))


def get_sts(store: Store) -> StatefulSet:
    s = store.get("StatefulSet", "default", "web")
    assert isinstance(s, StatefulSet)
    return s


def set_sts(store: Store, **spec: Any) -> None:
    s = get_sts(store)
    store.update(replace(s, spec=replace(s.spec, **spec)))


class Stepper:
    """The default controllers (offline kubelet included) run one round at a time."""

    def __init__(self, store: Store, kubelet: bool = True) -> None:
        self.store = store
        ctrls = default_controllers(store, default_cluster(), random.Random(1), kubelet=kubelet, events=NO_EVENTS)
        for c in ctrls:
            if isinstance(c, StatefulSetController):
                c.paced = True  # pod by pod, as the live cluster goes
        self.cs = ControllerSet(ctrls)
        self.w = store.watch(self.cs.kinds, store.resource_version)
        self.w.__enter__()
        self.cs.start(store)

    def round(self) -> None:
        self.cs.feed(self.w.drain())  # what the test wrote since the last round
        self.cs.run_round(self.w.drain, self.store)

    def settle(self) -> None:
        self.cs.feed(self.w.drain())
        for _ in range(100):
            if not self.cs.pending:
                return
            self.cs.run_round(self.w.drain, self.store)
        raise AssertionError("controllers did not settle")


def test_pods_are_named_by_ordinal_with_identity_labels_and_dns_names() -> None:
    store = build_offline_state(default_cluster(), sts(3))
    ps = pods(store)
    assert sorted(ps) == ["web-0", "web-1", "web-2"]
    rev = get_sts(store).status.updateRevision  # type: ignore[union-attr]
    assert rev is not None and rev.startswith("web-")
    for i in range(3):
        p = ps[f"web-{i}"]
        assert p.labels[POD_NAME_LABEL] == f"web-{i}"
        assert p.labels[POD_INDEX_LABEL] == str(i)
        assert p.labels[REVISION_LABEL] == rev
        assert p.spec.hostname == f"web-{i}" and p.spec.subdomain == "nginx"
        assert p.status is not None and p.status.phase == "Running" and p.status.podIP
    st = get_sts(store).status
    assert st is not None
    assert (st.replicas, st.readyReplicas, st.currentReplicas, st.updatedReplicas, st.availableReplicas) == (
        3,
        3,
        3,
        3,
        3,
    )
    assert st.observedGeneration == get_sts(store).metadata.generation
    assert st.currentRevision == st.updateRevision == rev


def test_ordered_ready_creates_the_next_pod_only_after_the_previous_is_ready() -> None:
    store = MemoryStore()
    for n in default_cluster().nodes:
        store.create(node_object(n))
    for o in sts(3):
        store.create(o)
    # Without the offline kubelet nothing becomes ready: only web-0 is ever created.
    step = Stepper(store, kubelet=False)
    for _ in range(4):
        step.round()
    assert sorted(pods(store)) == ["web-0"]
    # web-0 Running and Ready lets web-1 come.
    p0 = pods(store)["web-0"]
    from kins.control.kubelet_sim import running_status

    store.update(replace(p0, status=running_status(p0, None, "10.244.1.9", "2026-01-01T00:00:00Z")))
    for _ in range(3):
        step.round()
    assert sorted(pods(store)) == ["web-0", "web-1"]


def test_parallel_creates_all_pods_at_once() -> None:
    store = MemoryStore()
    for n in default_cluster().nodes:
        store.create(node_object(n))
    for o in sts(4, "podManagementPolicy: Parallel"):
        store.create(o)
    step = Stepper(store, kubelet=False)
    step.round()
    assert sorted(pods(store)) == ["web-0", "web-1", "web-2", "web-3"]


def test_a_deleted_pod_comes_back_with_the_same_name() -> None:
    store = build_offline_state(default_cluster(), sts(3))
    old = pods(store)["web-1"]
    store.delete("Pod", "default", "web-1")
    settle(store)
    new = pods(store)["web-1"]
    assert new.metadata.uid != old.metadata.uid
    assert new.spec.hostname == "web-1"
    assert sorted(pods(store)) == ["web-0", "web-1", "web-2"]


def test_scale_down_removes_the_highest_ordinals_one_by_one() -> None:
    store = build_offline_state(default_cluster(), sts(4))
    set_sts(store, replicas=1)
    step = Stepper(store)
    step.round()
    assert sorted(pods(store)) == ["web-0", "web-1", "web-2"]  # web-3 first
    step.round()
    assert sorted(pods(store)) == ["web-0", "web-1"]
    settle(store)
    assert sorted(pods(store)) == ["web-0"]
    assert get_sts(store).status.replicas == 1  # type: ignore[union-attr]


def test_rolling_update_goes_in_reverse_order_and_honours_the_partition() -> None:
    store = build_offline_state(default_cluster(), sts(4, "updateStrategy: {rollingUpdate: {partition: 2}}"))
    before = {n: p.metadata.uid for n, p in pods(store).items()}
    old_rev = get_sts(store).status.currentRevision  # type: ignore[union-attr]
    step = Stepper(store)  # the running controller has seen the old template
    s = get_sts(store)
    c = s.spec.template.spec.containers[0]
    tmpl = replace(s.spec.template, spec=replace(s.spec.template.spec, containers=[replace(c, image="nginx:1.27")]))
    set_sts(store, template=tmpl)
    step.round()
    assert "web-3" not in pods(store)  # the highest ordinal goes first
    assert before["web-2"] == pods(store)["web-2"].metadata.uid
    step.settle()
    ps = pods(store)
    new_rev = get_sts(store).status.updateRevision  # type: ignore[union-attr]
    assert new_rev != old_rev
    assert [ps[f"web-{i}"].labels[REVISION_LABEL] for i in range(4)] == [old_rev, old_rev, new_rev, new_rev]
    assert ps["web-3"].spec.containers[0].image == "nginx:1.27"
    assert ps["web-0"].metadata.uid == before["web-0"] and ps["web-1"].metadata.uid == before["web-1"]
    st = get_sts(store).status
    assert st is not None and (st.currentReplicas, st.updatedReplicas, st.currentRevision) == (2, 2, old_rev)
    # Below the partition a recreated pod keeps the old revision and template.
    store.delete("Pod", "default", "web-0")
    step.settle()
    assert pods(store)["web-0"].labels[REVISION_LABEL] == old_rev
    assert pods(store)["web-0"].spec.containers[0].image == "nginx:1.25"
    # Partition 0 finishes the rollout and makes the new revision the current one.
    set_sts(
        store, updateStrategy=StatefulSetUpdateStrategy(rollingUpdate=RollingUpdateStatefulSetStrategy(partition=0))
    )
    step.settle()
    assert {p.labels[REVISION_LABEL] for p in pods(store).values()} == {new_rev}
    assert get_sts(store).status.currentRevision == new_rev  # type: ignore[union-attr]


def test_on_delete_replaces_only_deleted_pods() -> None:
    store = build_offline_state(default_cluster(), sts(2, "updateStrategy: {type: OnDelete}"))
    s = get_sts(store)
    tmpl = replace(s.spec.template, metadata=replace(s.spec.template.metadata, labels={"app": "web", "v": "2"}))
    set_sts(store, template=tmpl)
    settle(store)
    revs = {n: p.labels[REVISION_LABEL] for n, p in pods(store).items()}
    assert revs["web-0"] == revs["web-1"] != get_sts(store).status.updateRevision  # type: ignore[union-attr]
    store.delete("Pod", "default", "web-1")
    settle(store)
    assert pods(store)["web-1"].labels[REVISION_LABEL] == get_sts(store).status.updateRevision  # type: ignore[union-attr]


def test_volume_claim_templates_become_bound_claims_offline() -> None:
    claim = (
        "volumeClaimTemplates: [{metadata: {name: data}, "
        "spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}]"
    )
    store = build_offline_state(default_cluster(), sts(2, claim))
    for i in range(2):
        p = pods(store)[f"web-{i}"]
        vol = next(v for v in p.spec.volumes or [] if v.name == "data")
        assert vol.persistentVolumeClaim is not None and vol.persistentVolumeClaim.claimName == f"data-web-{i}"
        pvc = store.get("PersistentVolumeClaim", "default", f"data-web-{i}")
        assert isinstance(pvc, PersistentVolumeClaim)
        assert pvc.status is not None and pvc.status.phase == "Bound"
        assert pvc.spec.storageClassName == "local-path" and pvc.labels == {"app": "web"}
        pv = store.get("PersistentVolume", None, pvc.spec.volumeName or "")
        assert isinstance(pv, PersistentVolume) and pv.spec.hostPath is not None
        # Planned where local-path puts them, on the node the pod was scheduled to.
        assert pv.spec.hostPath.path == f"/opt/local-path-provisioner/pvc-{pvc.metadata.uid}_default_data-web-{i}"
        assert (pvc.metadata.annotations or {})["volume.kubernetes.io/selected-node"] == p.spec.nodeName


def test_events_read_like_the_statefulset_controllers() -> None:
    store = MemoryStore()
    for n in default_cluster().nodes:
        store.create(node_object(n))
    for o in sts(2):
        store.create(o)
    rec = EventRecorder(store)
    run_until_stable(store, default_controllers(store, default_cluster(), random.Random(1), events=rec))
    rec.flush()
    msgs = {(e.reason, e.message) for e in store.list("Event", "default")[0]}  # type: ignore[attr-defined]
    assert ("SuccessfulCreate", "create Pod web-0 in StatefulSet web successful") in msgs
    assert ("SuccessfulCreate", "create Pod web-1 in StatefulSet web successful") in msgs


def test_deleting_the_set_deletes_its_pods() -> None:
    store = build_offline_state(default_cluster(), sts(2))
    store.delete("StatefulSet", "default", "web")
    settle(store)
    assert pods(store) == {}


def test_failed_pod_is_replaced_under_its_name() -> None:
    store = build_offline_state(default_cluster(), sts(2))
    p = pods(store)["web-0"]
    store.update(replace(p, status=PodStatus(phase="Failed")))
    settle(store)
    again = pods(store)["web-0"]
    assert again.metadata.uid != p.metadata.uid and again.status is not None and again.status.phase == "Running"


# --- DaemonSet ---------------------------------------------------------------------------------


def ds_pods(store: Store) -> dict[str, Pod]:
    return {p.spec.nodeName or "": p for p in pods(store, "agent-").values()}


def get_ds(store: Store) -> DaemonSet:
    d = store.get("DaemonSet", "default", "agent")
    assert isinstance(d, DaemonSet)
    return d


def test_daemonset_runs_one_pod_per_node_pinned_to_it() -> None:
    cfg = default_cluster()
    store = build_offline_state(cfg, load_text(DS % ""))
    per_node = ds_pods(store)
    assert sorted(per_node) == sorted(n.name for n in cfg.nodes)
    assert len(pods(store, "agent-")) == len(cfg.nodes)
    for node, p in per_node.items():
        assert msgspec.to_builtins(p.spec.affinity) == {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
                    ]
                }
            }
        }
        assert p.labels["app"] == "agent" and REVISION_LABEL in p.labels
        assert p.status is not None and p.status.phase == "Running"
    st = get_ds(store).status
    n = len(cfg.nodes)
    assert st is not None
    assert (st.desiredNumberScheduled, st.currentNumberScheduled, st.numberReady, st.updatedNumberScheduled) == (
        n,
        n,
        n,
        n,
    )
    assert st.numberAvailable == n and st.numberMisscheduled == 0


def test_daemonset_follows_nodes_added_and_removed() -> None:
    cfg = default_cluster()
    store = build_offline_state(cfg, load_text(DS % ""))
    new = NodeConfig(name="node-new", ip="192.168.10.99", podCIDR="10.244.99.0/24")
    store.create(node_object(new))
    settle(store)
    assert "node-new" in ds_pods(store)
    assert get_ds(store).status.desiredNumberScheduled == len(cfg.nodes) + 1  # type: ignore[union-attr]
    store.delete("Node", None, cfg.nodes[0].name)
    settle(store)
    assert cfg.nodes[0].name not in ds_pods(store)
    assert len(pods(store, "agent-")) == len(cfg.nodes)


def test_daemonset_node_selector_and_taints() -> None:
    cfg = default_cluster()
    names = sorted(n.name for n in cfg.nodes)
    store = build_offline_state(cfg, load_text(DS % f"nodeSelector: {{kubernetes.io/hostname: {names[0]}}}"))
    assert sorted(ds_pods(store)) == [names[0]]
    # A NoSchedule taint keeps a set without the toleration off the node.
    store2 = build_offline_state(cfg, load_text(DS % ""))
    node = store2.get("Node", None, names[-1])
    assert isinstance(node, Node)
    store2.update(
        replace(node, spec=replace(node.spec, taints=[Taint(key="dedicated", value="x", effect="NoSchedule")]))
    )
    settle(store2)
    assert names[-1] not in ds_pods(store2)
    # ... and a cordoned node keeps its daemon pod, as the controller's default tolerations say.
    node = store2.get("Node", None, names[0])
    assert isinstance(node, Node)
    store2.update(replace(node, spec=replace(node.spec, unschedulable=True)))
    settle(store2)
    assert names[0] in ds_pods(store2)


def test_daemonset_rolling_update_replaces_every_pod() -> None:
    store = build_offline_state(default_cluster(), load_text(DS % ""))
    d = get_ds(store)
    c = d.spec.template.spec.containers[0]
    tmpl = replace(d.spec.template, spec=replace(d.spec.template.spec, containers=[replace(c, image="busybox:2")]))
    store.update(replace(d, spec=replace(d.spec, template=tmpl)))
    step = Stepper(store)
    step.round()
    # maxUnavailable 1: one node at a time.
    images = [p.spec.containers[0].image for p in ds_pods(store).values()]
    assert images.count("busybox") >= len(default_cluster().nodes) - 1
    settle(store)
    assert {p.spec.containers[0].image for p in ds_pods(store).values()} == {"busybox:2"}
    st = get_ds(store).status
    assert st is not None and st.updatedNumberScheduled == st.desiredNumberScheduled


def test_node_spec_default_is_schedulable() -> None:
    assert not NodeSpec().unschedulable


# --- validation --------------------------------------------------------------------------------


def _errors(text: str) -> list[tuple[str, str]]:
    from kins._errors import MultiValidationError
    from kins.api.validation import validate_all

    try:
        validate_all(load_text(text), default_cluster())
    except MultiValidationError as e:
        return [(x.field, x.message) for x in e.errors]
    return []


SET = """
apiVersion: apps/v1
kind: %s
metadata: {name: web, namespace: default}
spec:
  %s
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: nginx}]}
"""


def test_valid_sets_pass_and_service_name_is_optional() -> None:
    assert _errors(SET % ("StatefulSet", "selector: {matchLabels: {app: web}}")) == []
    assert _errors(SET % ("DaemonSet", "selector: {matchLabels: {app: web}}")) == []
    assert _errors(STS % (3, "")) == []


W = "selector: {matchLabels: {app: web}}\n  "


@pytest.mark.parametrize(
    ("kind", "spec", "field", "fragment"),
    [
        ("StatefulSet", "replicas: 1", "spec.selector", "Required value"),
        ("DaemonSet", "updateStrategy: {type: RollingUpdate}", "spec.selector", "Required value"),
        ("StatefulSet", "selector: {matchLabels: {app: db}}", "spec.template.metadata.labels", "does not match"),
        ("DaemonSet", "selector: {matchLabels: {app: db}}", "spec.template.metadata.labels", "does not match"),
        ("StatefulSet", "selector: {}", "spec.selector", "empty selector is invalid for statefulset"),
        ("StatefulSet", W + "replicas: -1", "spec.replicas", ">= 0"),
        ("StatefulSet", W + "serviceName: Nginx_1", "spec.serviceName", "RFC 1123"),
        (
            "StatefulSet",
            W + "podManagementPolicy: Random",
            "spec.podManagementPolicy",
            "Unsupported value",
        ),
        (
            "StatefulSet",
            W + "updateStrategy: {rollingUpdate: {partition: -2}}",
            "spec.updateStrategy.rollingUpdate.partition",
            "greater than or equal to 0",
        ),
        (
            "DaemonSet",
            W + "updateStrategy: {type: OnDelete, rollingUpdate: {maxUnavailable: 1}}",
            "spec.updateStrategy.rollingUpdate",
            "only allowed for updateStrategy 'RollingUpdate'",
        ),
        (
            "DaemonSet",
            W + "updateStrategy: {type: Surge}",
            "spec.updateStrategy.type",
            "Unsupported value",
        ),
    ],
)
def test_invalid_sets(kind: str, spec: str, field: str, fragment: str) -> None:
    errs = _errors(SET % (kind, spec))
    fields = [f for f, _ in errs]
    assert field in fields, errs
    msg = next(m for f, m in errs if f == field)
    if fragment == ">= 0":
        fragment = "greater than or equal to 0"
    assert fragment in msg, msg


def test_offline_convergence_of_a_large_set_is_not_one_round_per_pod() -> None:
    store = build_offline_state(default_cluster(), sts(150))
    assert len(pods(store)) == 150
    assert get_sts(store).status.readyReplicas == 150  # type: ignore[union-attr]
    set_sts(store, replicas=5)
    assert settle(store) < 10
    assert sorted(pods(store)) == [f"web-{i}" for i in range(5)]
