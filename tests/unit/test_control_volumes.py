"""Storage controllers on in-memory stores: binding, local-path provisioning, the scheduler's
volume binding, protection finalizers and StatefulSets' claims."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import pytest
from msgspec.structs import replace

from kins.api.apps import StatefulSet
from kins.api.config import default_cluster
from kins.api.core import Event, Pod
from kins.api.load import load_text
from kins.api.meta import Object, ObjectMeta
from kins.api.storage import PersistentVolume, PersistentVolumeClaim, StorageClass
from kins.api.volumes import admit_claim, quantity
from kins.control.base import run_until_stable
from kins.control.defaults import default_controllers
from kins.control.events import EventRecorder
from kins.control.localpath import local_path_class
from kins.control.offline import node_object
from kins.daemon.graceful import GracefulStore
from kins.store.base import Store
from kins.store.memory import MemoryStore

SELECTED = "volume.kubernetes.io/selected-node"

CLAIM = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: %s, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: %s}}
  %s
"""

PV = """
apiVersion: v1
kind: PersistentVolume
metadata: {name: %s, labels: {size: "%s"}}
spec:
  capacity: {storage: %s}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath: {path: /tmp/%s}
  %s
"""

POD = """
apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: default}
spec:
  containers: [{name: app, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: %s}}]
"""

FILLER = """
apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: default}
spec:
  nodeName: %s
  containers: [{name: app, image: busybox}]
"""

STS = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: default}
spec:
  serviceName: web
  replicas: %d
  selector: {matchLabels: {app: web}}
  %s
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


class Cluster:
    """Nodes, the default class and the default controllers (the offline kubelet starts pods)
    on a store that honours finalizers as the daemon's does."""

    def __init__(self, tmp: Path, *, local_path: bool = True) -> None:
        self.raw = MemoryStore()
        self.store: Store = GracefulStore(self.raw)
        self.root = tmp / "volumes"
        for n in default_cluster().nodes:
            self.raw.create(node_object(n))
        if local_path:
            self.raw.create(local_path_class())
        self.events = EventRecorder(self.raw)

    def add(self, text: str) -> None:
        classes = [c for c in self.raw.list("StorageClass")[0] if isinstance(c, StorageClass)]
        for o in load_text(text):
            # What the API's admission does to a new claim.
            self.raw.create(admit_claim(o, classes) if isinstance(o, PersistentVolumeClaim) else o)

    def settle(self) -> None:
        ctrls = default_controllers(
            self.store, default_cluster(), random.Random(1), events=self.events, volumes_dir=self.root
        )
        run_until_stable(self.store, ctrls)
        self.events.flush()

    def claim(self, name: str) -> PersistentVolumeClaim:
        c = self.raw.get("PersistentVolumeClaim", "default", name)
        assert isinstance(c, PersistentVolumeClaim)
        return c

    def volume(self, name: str) -> PersistentVolume:
        v = self.raw.get("PersistentVolume", None, name)
        assert isinstance(v, PersistentVolume)
        return v

    def pod(self, name: str) -> Pod:
        p = self.raw.get("Pod", "default", name)
        assert isinstance(p, Pod)
        return p

    def has(self, kind: str, name: str, ns: str | None = "default") -> bool:
        return any(o.name == name for o in self.raw.list(kind, ns)[0])

    def event_reasons(self, obj: Object) -> list[tuple[str, str]]:
        evs = [e for e in self.raw.list("Event", "default")[0] if isinstance(e, Event)]
        return [(e.reason or "", e.message or "") for e in evs if e.involvedObject.name == obj.name]


def phase(obj: PersistentVolume | PersistentVolumeClaim) -> str | None:
    return obj.status.phase if obj.status else None


# --- admission and quantities --------------------------------------------------------------------


def test_quantities() -> None:
    assert quantity("1Gi") == 2**30
    assert quantity("500Mi") < quantity("1Gi") < quantity("2G")
    assert quantity("1.5Ki") == 1536 and quantity("1e3") == 1000 and quantity(5) == 5
    assert quantity("nonsense") == Decimal(0)


def test_default_class_admission_picks_the_newest_default_and_keeps_an_explicit_empty_class() -> None:
    old = local_path_class()
    old = replace(old, metadata=replace(old.metadata, creationTimestamp="2024-01-01T00:00:00Z"))
    new = StorageClass(
        metadata=ObjectMeta(
            name="fast",
            creationTimestamp="2025-01-01T00:00:00Z",
            annotations={"storageclass.kubernetes.io/is-default-class": "true"},
        ),
        provisioner="example.com/fast",
    )
    plain = StorageClass(metadata=ObjectMeta(name="slow"), provisioner="example.com/slow")
    (unset,) = load_text(CLAIM % ("a", "1Gi", ""))
    (empty,) = load_text(CLAIM % ("b", "1Gi", 'storageClassName: ""'))
    assert isinstance(unset, PersistentVolumeClaim) and isinstance(empty, PersistentVolumeClaim)
    admitted = admit_claim(unset, [old, new, plain])
    assert admitted.spec.storageClassName == "fast"
    assert admitted.metadata.finalizers == ["kubernetes.io/pvc-protection"]
    assert admit_claim(unset, [old, plain]).spec.storageClassName == "local-path"
    assert admit_claim(unset, [plain]).spec.storageClassName is None
    assert admit_claim(empty, [old]).spec.storageClassName == ""


# --- the binder ----------------------------------------------------------------------------------


def test_claim_binds_to_the_smallest_volume_that_serves_it(tmp_path: Path) -> None:
    c = Cluster(tmp_path, local_path=False)
    c.add(PV % ("big", "big", "10Gi", "big", "") + "---" + PV % ("small", "small", "1Gi", "small", ""))
    c.add(PV % ("tiny", "tiny", "100Mi", "tiny", ""))
    c.add(CLAIM % ("data", "500Mi", "storageClassName: manual"))
    c.settle()
    claim, pv = c.claim("data"), c.volume("small")
    assert phase(claim) == "Bound" and claim.spec.volumeName == "small"
    assert claim.status is not None and claim.status.capacity == {"storage": "1Gi"}
    assert claim.status.accessModes == ["ReadWriteOnce"]
    ann = claim.metadata.annotations or {}
    assert ann["pv.kubernetes.io/bind-completed"] == "yes" and ann["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert phase(pv) == "Bound" and pv.spec.claimRef is not None and pv.spec.claimRef.uid == claim.metadata.uid
    assert (pv.metadata.annotations or {})["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert phase(c.volume("big")) == "Available" and phase(c.volume("tiny")) == "Available"
    assert c.volume("big").metadata.finalizers == ["kubernetes.io/pv-protection"]


def test_selector_and_prebinding(tmp_path: Path) -> None:
    c = Cluster(tmp_path, local_path=False)
    c.add(PV % ("big", "big", "10Gi", "big", "") + "---" + PV % ("small", "small", "1Gi", "small", ""))
    c.add(CLAIM % ("picky", "1Gi", "storageClassName: manual\n  selector: {matchLabels: {size: big}}"))
    c.add(CLAIM % ("named", "1Gi", "storageClassName: manual\n  volumeName: small"))
    c.settle()
    assert c.claim("picky").spec.volumeName == "big" and phase(c.claim("picky")) == "Bound"
    named = c.claim("named")
    assert named.spec.volumeName == "small" and phase(named) == "Bound"
    # The user named the volume: the controller bound only the volume's side.
    assert "pv.kubernetes.io/bound-by-controller" not in (named.metadata.annotations or {})
    assert (c.volume("small").metadata.annotations or {})["pv.kubernetes.io/bound-by-controller"] == "yes"


def test_volume_prebound_by_claimref_waits_for_its_claim(tmp_path: Path) -> None:
    c = Cluster(tmp_path, local_path=False)
    c.add(PV % ("mine", "x", "1Gi", "mine", "claimRef: {namespace: default, name: later}"))
    c.add(CLAIM % ("other", "1Gi", "storageClassName: manual"))
    c.settle()
    assert phase(c.volume("mine")) == "Available" and phase(c.claim("other")) == "Pending"
    c.add(CLAIM % ("later", "1Gi", "storageClassName: manual"))
    c.settle()
    assert c.claim("later").spec.volumeName == "mine" and phase(c.volume("mine")) == "Bound"


def test_unmatched_claims_stay_pending_with_the_controllers_events(tmp_path: Path) -> None:
    c = Cluster(tmp_path, local_path=False)
    c.add(CLAIM % ("noclass", "1Gi", 'storageClassName: ""'))
    c.add(CLAIM % ("ghost", "1Gi", "storageClassName: ghost"))
    c.settle()
    assert phase(c.claim("noclass")) == "Pending" and phase(c.claim("ghost")) == "Pending"
    assert ("FailedBinding", "no persistent volumes available for this claim and no storage class is set") in (
        c.event_reasons(c.claim("noclass"))
    )
    assert ("ProvisioningFailed", 'storageclass.storage.k8s.io "ghost" not found') in c.event_reasons(c.claim("ghost"))


def test_released_lost_and_retained(tmp_path: Path) -> None:
    c = Cluster(tmp_path, local_path=False)
    c.add(PV % ("a", "a", "1Gi", "a", "") + "---" + PV % ("b", "b", "1Gi", "b", ""))
    c.add(CLAIM % ("one", "1Gi", "storageClassName: manual\n  volumeName: a"))
    c.add(CLAIM % ("two", "1Gi", "storageClassName: manual\n  volumeName: b"))
    c.settle()
    c.store.delete("PersistentVolumeClaim", "default", "one")
    c.settle()
    assert not c.has("PersistentVolumeClaim", "one")
    assert phase(c.volume("a")) == "Released"  # Retain, the default of a PV made by hand
    c.raw.delete("PersistentVolume", None, "b")  # behind the protection's back
    c.settle()
    assert phase(c.claim("two")) == "Lost"
    assert any(r == "ClaimLost" for r, _ in c.event_reasons(c.claim("two")))


# --- local-path, the scheduler and protection -----------------------------------------------------


def test_wait_for_first_consumer_then_provisioned_on_the_pods_node(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    c.add(CLAIM % ("data", "1Gi", ""))
    c.settle()
    claim = c.claim("data")
    assert claim.spec.storageClassName == "local-path" and phase(claim) == "Pending"
    assert ("WaitForFirstConsumer", "waiting for first consumer to be created before binding") in (
        c.event_reasons(claim)
    )
    assert not c.raw.list("PersistentVolume")[0] and not c.root.exists()
    c.add(POD % ("app", "data"))
    c.settle()
    claim, pod = c.claim("data"), c.pod("app")
    node = pod.spec.nodeName
    assert node and phase(claim) == "Bound" and claim.spec.volumeName == f"pvc-{claim.metadata.uid}"
    ann = claim.metadata.annotations or {}
    assert ann["volume.kubernetes.io/selected-node"] == node
    assert ann["volume.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
    pv = c.volume(f"pvc-{claim.metadata.uid}")
    path = c.root / f"pvc-{claim.metadata.uid}_default_data"
    assert path.is_dir() and pv.spec.hostPath is not None and pv.spec.hostPath.path == str(path)
    assert pv.spec.persistentVolumeReclaimPolicy == "Delete" and pv.spec.storageClassName == "local-path"
    assert pv.spec.capacity == {"storage": "1Gi"}
    assert pv.spec.nodeAffinity is not None and pv.spec.nodeAffinity.required is not None
    terms = pv.spec.nodeAffinity.required.nodeSelectorTerms or []
    assert terms[0].matchExpressions is not None and terms[0].matchExpressions[0].values == [node]
    reasons = [r for r, _ in c.event_reasons(claim)]
    assert "ExternalProvisioning" in reasons and "Provisioning" in reasons and "ProvisioningSucceeded" in reasons
    # A new pod on the claim goes back to the volume's node, even where the other node is emptier.
    for i in range(3):
        c.add(FILLER % (f"filler{i}", node))
    c.raw.delete("Pod", "default", "app")
    c.add(POD % ("again", "data"))
    c.settle()
    assert c.pod("again").spec.nodeName == node


def test_a_pod_whose_volume_is_on_a_cordoned_node_waits(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    c.add(CLAIM % ("data", "1Gi", ""))
    c.add(POD % ("app", "data"))
    c.settle()
    node = c.pod("app").spec.nodeName
    n = c.raw.get("Node", None, node or "")
    c.raw.update(replace(n, spec=replace(n.spec, unschedulable=True)))  # type: ignore[attr-defined]
    c.raw.delete("Pod", "default", "app")
    c.add(POD % ("again", "data"))
    c.settle()
    p = c.pod("again")
    assert not p.spec.nodeName and p.status is not None
    cond = next(x for x in p.status.conditions or [] if x.type == "PodScheduled")
    assert cond.message == (
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had volume node affinity conflict."
    )
    assert ("FailedScheduling", cond.message) in c.event_reasons(p)


def test_claim_names_the_pod_it_waits_for(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    c.add(CLAIM % ("data", "1Gi", ""))
    c.add(POD.replace("spec:\n", "spec:\n  nodeSelector: {disk: ssd}\n", 1) % ("app", "data"))
    c.settle()
    assert not c.pod("app").spec.nodeName and phase(c.claim("data")) == "Pending"
    assert ("WaitForPodScheduled", "waiting for pod app to be scheduled") in c.event_reasons(c.claim("data"))


def test_immediate_local_path_class_provisions_without_a_pod(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    now = replace(local_path_class(), metadata=ObjectMeta(name="now"), volumeBindingMode="Immediate")
    c.raw.create(now)
    c.add(CLAIM % ("data", "1Gi", "storageClassName: now"))
    c.settle()
    claim = c.claim("data")
    assert phase(claim) == "Bound" and SELECTED not in (claim.metadata.annotations or {})
    pv = c.volume(claim.spec.volumeName or "")
    assert (pv.metadata.annotations or {})["local.path.provisioner/selected-node"] == "node1"
    assert (c.root / f"pvc-{claim.metadata.uid}_default_data").is_dir()
    c.add(POD % ("app", "data"))
    c.settle()
    assert c.pod("app").spec.nodeName == "node1"


def test_pods_wait_for_missing_and_unbound_immediate_claims(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    c.raw.create(StorageClass(metadata=ObjectMeta(name="manual"), provisioner="kubernetes.io/no-provisioner"))
    c.add(POD % ("lonely", "nothing"))
    c.add(CLAIM % ("waits", "1Gi", "storageClassName: manual"))
    c.add(POD % ("stuck", "waits"))
    c.settle()

    def scheduled(name: str) -> str:
        p = c.pod(name)
        assert not p.spec.nodeName and p.status is not None
        cond = next(x for x in p.status.conditions or [] if x.type == "PodScheduled")
        assert cond.status == "False" and cond.reason == "Unschedulable"
        return cond.message or ""

    assert scheduled("lonely") == '0/2 nodes are available: persistentvolumeclaim "nothing" not found.'
    assert scheduled("stuck") == "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    # A matching volume appears: the claim binds and the pod is scheduled.
    c.add(PV % ("late", "late", "1Gi", "late", ""))
    c.settle()
    assert c.pod("stuck").spec.nodeName and phase(c.claim("waits")) == "Bound"


def test_static_volume_with_node_affinity_decides_the_node(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    c.raw.create(
        StorageClass(
            metadata=ObjectMeta(name="manual"),
            provisioner="kubernetes.io/no-provisioner",
            volumeBindingMode="WaitForFirstConsumer",
        )
    )
    affinity = (
        "nodeAffinity: {required: {nodeSelectorTerms: [{matchExpressions: "
        "[{key: kubernetes.io/hostname, operator: In, values: [node2]}]}]}}"
    )
    c.add(PV % ("local2", "x", "1Gi", "local2", affinity))
    c.add(CLAIM % ("data", "1Gi", "storageClassName: manual"))
    c.add(POD % ("app", "data"))
    c.settle()
    assert c.pod("app").spec.nodeName == "node2" and c.claim("data").spec.volumeName == "local2"


def test_claim_in_use_is_protected_and_delete_policy_removes_the_directory(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    c.add(CLAIM % ("data", "1Gi", ""))
    c.add(POD % ("app", "data"))
    c.settle()
    claim = c.claim("data")
    pv_name = f"pvc-{claim.metadata.uid}"
    path = c.root / f"pvc-{claim.metadata.uid}_default_data"
    (path / "file").write_text("kept while in use\n")
    c.store.delete("PersistentVolumeClaim", "default", "data")
    c.settle()
    held = c.claim("data")
    assert held.metadata.deletionTimestamp and held.metadata.finalizers == ["kubernetes.io/pvc-protection"]
    assert path.is_dir() and phase(c.volume(pv_name)) == "Bound"
    # A new pod cannot use a claim being deleted.
    c.add(POD % ("late", "data"))
    c.settle()
    assert not c.pod("late").spec.nodeName
    c.raw.delete("Pod", "default", "app")
    c.raw.delete("Pod", "default", "late")
    c.settle()
    assert not c.has("PersistentVolumeClaim", "data")
    assert not c.has("PersistentVolume", pv_name, None)
    assert not path.exists()


def test_retain_keeps_volume_and_directory(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    keep = replace(local_path_class(), metadata=ObjectMeta(name="keep"), reclaimPolicy="Retain")
    c.raw.create(keep)
    c.add(CLAIM % ("data", "1Gi", "storageClassName: keep"))
    c.add(POD % ("app", "data"))
    c.settle()
    claim = c.claim("data")
    c.raw.delete("Pod", "default", "app")
    c.store.delete("PersistentVolumeClaim", "default", "data")
    c.settle()
    pv = c.volume(f"pvc-{claim.metadata.uid}")
    assert phase(pv) == "Released" and (c.root / f"pvc-{claim.metadata.uid}_default_data").is_dir()


def test_deleting_a_volume_in_use_waits_until_it_is_released(tmp_path: Path) -> None:
    c = Cluster(tmp_path, local_path=False)
    c.add(PV % ("a", "a", "1Gi", "a", ""))
    c.add(CLAIM % ("one", "1Gi", "storageClassName: manual"))
    c.settle()
    c.store.delete("PersistentVolume", None, "a")
    c.settle()
    assert c.volume("a").metadata.deletionTimestamp and phase(c.volume("a")) == "Bound"
    c.store.delete("PersistentVolumeClaim", "default", "one")
    c.settle()
    assert not c.has("PersistentVolume", "a", None)


# --- StatefulSets ---------------------------------------------------------------------------------


def sts_claims(c: Cluster) -> set[str]:
    return {o.name for o in c.raw.list("PersistentVolumeClaim", "default")[0] if not o.metadata.deletionTimestamp}


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_statefulset_claims_outlive_pods_and_follow_the_retention_policy(tmp_path: Path, policy: str) -> None:
    c = Cluster(tmp_path)
    retention = f"persistentVolumeClaimRetentionPolicy: {{whenDeleted: {policy}, whenScaled: {policy}}}"
    c.add(STS % (3, retention))
    c.settle()
    assert sts_claims(c) == {"data-web-0", "data-web-1", "data-web-2"}
    for i in range(3):
        p = c.pod(f"web-{i}")
        claim = c.claim(f"data-web-{i}")
        assert phase(claim) == "Bound" and claim.labels == {"app": "web"}
        assert claim.metadata.finalizers == ["kubernetes.io/pvc-protection"]
        vols = {v.name: v for v in p.spec.volumes or []}
        assert vols["data"].persistentVolumeClaim is not None
        assert vols["data"].persistentVolumeClaim.claimName == f"data-web-{i}"
        owners = [r.kind for r in claim.metadata.ownerReferences or []]
        assert owners == (["StatefulSet"] if policy == "Delete" else [])
    # A pod deleted comes back on the node its volume is on, with the same claim.
    node0 = c.pod("web-0").spec.nodeName
    uid0 = c.claim("data-web-0").metadata.uid
    c.raw.delete("Pod", "default", "web-0")
    c.settle()
    assert c.pod("web-0").spec.nodeName == node0 and c.claim("data-web-0").metadata.uid == uid0
    # Scale down to one.
    s = c.raw.get("StatefulSet", "default", "web")
    assert isinstance(s, StatefulSet)
    c.raw.update(replace(s, spec=replace(s.spec, replicas=1)))
    for _ in range(3):  # the daemon's kubelet would remove the Terminating pods
        c.settle()
        for o in c.raw.list("Pod", "default")[0]:
            if o.metadata.deletionTimestamp:
                c.raw.delete("Pod", "default", o.name)
    c.settle()
    want = {"data-web-0"} if policy == "Delete" else {"data-web-0", "data-web-1", "data-web-2"}
    assert sts_claims(c) == want
    c.store.delete("StatefulSet", "default", "web")
    for o in c.raw.list("Pod", "default")[0]:
        c.raw.delete("Pod", "default", o.name)
    c.settle()
    assert sts_claims(c) == (set() if policy == "Delete" else {"data-web-0", "data-web-1", "data-web-2"})


# --- generic ephemeral volumes ----------------------------------------------------------------------

EPHEMERAL = """
apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: default}
spec:
  containers: [{name: app, image: busybox, volumeMounts: [{name: scratch, mountPath: /mnt/scratch}]}]
  volumes:
  - name: scratch
    ephemeral:
      volumeClaimTemplate:
        metadata: {labels: {kind: scratch}}
        spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


def test_ephemeral_volume_claim_lives_and_dies_with_its_pod(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    c.add(EPHEMERAL % "app")
    c.settle()
    pod, claim = c.pod("app"), c.claim("app-scratch")
    assert pod.spec.nodeName and phase(claim) == "Bound" and claim.labels == {"kind": "scratch"}
    assert claim.spec.storageClassName == "local-path" and claim.spec.volumeMode == "Filesystem"
    refs = claim.metadata.ownerReferences or []
    assert [(r.kind, r.name, r.uid, r.controller) for r in refs] == [("Pod", "app", pod.metadata.uid, True)]
    path = c.root / f"pvc-{claim.metadata.uid}_default_app-scratch"
    assert path.is_dir()
    c.raw.delete("Pod", "default", "app")  # as the kubelet removes a stopped pod
    c.settle()
    assert not c.has("PersistentVolumeClaim", "app-scratch")
    assert not c.raw.list("PersistentVolume")[0] and not path.exists()


def test_ephemeral_volume_does_not_take_over_a_claim_it_does_not_own(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    c.add(CLAIM % ("app-scratch", "1Gi", ""))
    c.add(EPHEMERAL % "app")
    c.settle()
    pod = c.pod("app")
    assert not pod.spec.nodeName and pod.status is not None
    cond = next(x for x in pod.status.conditions or [] if x.type == "PodScheduled")
    assert cond.message == (
        "0/2 nodes are available: PVC default/app-scratch was not created for pod default/app (pod is not owner)."
    )
    assert not c.claim("app-scratch").metadata.ownerReferences


def test_volume_given_up_when_its_claim_is_bound_elsewhere(tmp_path: Path) -> None:
    c = Cluster(tmp_path, local_path=False)
    c.add(PV % ("a", "a", "1Gi", "a", "") + "---" + PV % ("b", "b", "1Gi", "b", ""))
    c.add(CLAIM % ("one", "1Gi", "storageClassName: manual\n  volumeName: b"))
    c.settle()
    claim = c.claim("one")
    # Another writer points volume a at the claim as well (a controller's, so it may be undone).
    a = c.volume("a")
    ref = replace(c.volume("b").spec.claimRef)  # type: ignore[type-var]
    ann = {"pv.kubernetes.io/bound-by-controller": "yes"}
    c.raw.update(replace(a, metadata=replace(a.metadata, annotations=ann), spec=replace(a.spec, claimRef=ref)))
    c.settle()
    assert c.volume("a").spec.claimRef is None and phase(c.volume("a")) == "Available"
    assert c.claim("one").spec.volumeName == "b" == claim.spec.volumeName and phase(c.volume("b")) == "Bound"


def test_read_write_once_pod_claim_takes_one_pod(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    c.add((CLAIM % ("solo", "1Gi", "")).replace("[ReadWriteOnce]", "[ReadWriteOncePod]"))
    c.add(POD % ("first", "solo"))
    c.add(POD % ("second", "solo"))  # in the same pass
    c.settle()
    assert c.pod("first").spec.nodeName
    p = c.pod("second")
    assert not p.spec.nodeName and p.status is not None
    cond = next(x for x in p.status.conditions or [] if x.type == "PodScheduled")
    assert cond.message == (
        "0/2 nodes are available: node has pod using PersistentVolumeClaim with the same name and "
        "ReadWriteOncePod access mode."
    )
    c.raw.delete("Pod", "default", "first")
    c.settle()
    assert c.pod("second").spec.nodeName
