"""Storage on a live cluster: a StatefulSet's claim provisioned by local-path on its pod's node,
data that outlives the pod, a read-only mount, a pod waiting for a claim that does not exist,
and the directory removed with the claim (reclaim policy Delete)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from e2e_helpers import Cluster, dead, poll, running_cluster

from kins._errors import NotFound
from kins.api.core import Pod
from kins.api.storage import PersistentVolume, PersistentVolumeClaim
from kins.daemon.state import DaemonInfo

pytestmark = pytest.mark.root

STS = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: busybox
        command: [sh, -c, "date >> /mnt/data/starts; exec sleep 3600"]
        volumeMounts: [{name: data, mountPath: /mnt/data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""

READER = """
apiVersion: v1
kind: Pod
metadata: {name: reader, namespace: default}
spec:
  containers:
  - name: reader
    image: busybox
    command: [sleep, "3600"]
    volumeMounts: [{name: data, mountPath: /mnt/data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data-db-0, readOnly: true}}]
"""

ORPHAN = """
apiVersion: v1
kind: Pod
metadata: {name: orphan, namespace: default}
spec:
  containers: [{name: app, image: busybox, command: [sleep, "3600"], volumeMounts: [{name: d, mountPath: /mnt/d}]}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: missing}}]
"""


@pytest.fixture(scope="module", params=["in-process", "process"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Both agent modes: the kubelet in the daemon, or in a ``kins agent`` process per node
    (which reads claims and volumes through its own informer)."""
    path = None
    if request.param == "process":
        text = resources.files("kins").joinpath("data/default-cluster.yaml").read_text()
        path = tmp_path_factory.mktemp("storage") / "cluster.yaml"
        path.write_text(text + "agents: {mode: process}\n")
    with running_cluster(apps=False, cluster_file=str(path) if path else None) as c:
        yield c


def _claim(c: Cluster, name: str) -> PersistentVolumeClaim | None:
    try:
        o = c.client.get("PersistentVolumeClaim", "default", name)
    except NotFound:
        return None
    return o if isinstance(o, PersistentVolumeClaim) else None


def _bound(c: Cluster, name: str) -> PersistentVolumeClaim | None:
    pvc = _claim(c, name)
    return pvc if pvc is not None and pvc.status is not None and pvc.status.phase == "Bound" else None


def _pod(c: Cluster, name: str) -> Pod:
    p = c.client.get("Pod", "default", name)
    assert isinstance(p, Pod)
    return p


def test_default_class(cluster: Cluster) -> None:
    rows = cluster.kins("get", "sc").stdout.splitlines()
    assert rows[1].split()[:5] == ["local-path", "(default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer"]


def test_statefulset_data_outlives_its_pod(cluster: Cluster) -> None:
    cluster.apply_text(STS)
    (pod,) = cluster.wait_ready("db-", 1, timeout=60)
    pvc = poll(lambda: _bound(cluster, "data-db-0"), 20, "data-db-0 to be bound")
    assert pvc.spec.storageClassName == "local-path"
    assert (pvc.metadata.annotations or {})["volume.kubernetes.io/selected-node"] == pod.spec.nodeName
    pv = cluster.client.get("PersistentVolume", None, pvc.spec.volumeName or "")
    assert isinstance(pv, PersistentVolume) and pv.spec.hostPath is not None
    host_dir = Path(pv.spec.hostPath.path)
    assert host_dir == cluster.state / "volumes" / f"pvc-{pvc.metadata.uid}_default_data-db-0"

    cluster.exec("db-0", "sh", "-c", "echo kept > /mnt/data/greeting")
    assert (host_dir / "greeting").read_text() == "kept\n"  # the pod wrote into the claim's directory

    def described() -> str | None:
        page = cluster.kins("describe", "pvc", "data-db-0").stdout
        return page if "ProvisioningSucceeded" in page else None

    page = poll(described, 10, "the provisioner's events on the claim")
    assert "Used By:       db-0" in page and "Status:        Bound" in page
    table = cluster.kins("get", "pvc").stdout.splitlines()
    assert table[1].split()[:6] == ["data-db-0", "Bound", pv.name, "1Gi", "RWO", "local-path"]

    # The pod goes; the one that replaces it is on the volume's node and finds the data.
    cluster.client.delete("Pod", "default", "db-0")

    def replaced() -> Pod | None:
        fresh = [p for p in cluster.ready_pods("db-0") if p.metadata.uid != pod.metadata.uid]
        return fresh[0] if fresh else None

    again = poll(replaced, 60, "db-0 to come back")
    assert again.spec.nodeName == pod.spec.nodeName
    assert cluster.exec("db-0", "cat", "/mnt/data/greeting").stdout == "kept\n"
    assert len(cluster.exec("db-0", "cat", "/mnt/data/starts").stdout.splitlines()) == 2
    assert _claim(cluster, "data-db-0").metadata.uid == pvc.metadata.uid  # type: ignore[union-attr]


def test_daemon_killed_and_started_again_keeps_claims_and_data(cluster: Cluster) -> None:
    before = _bound(cluster, "data-db-0")
    pod = _pod(cluster, "db-0")
    assert before is not None
    info = DaemonInfo.read(cluster.state)
    assert info is not None
    os.kill(info.pid, signal.SIGKILL)
    poll(lambda: dead(info.pid), 10, "the daemon to die")
    cluster.kins("up", "--name", cluster.name, "-q", "--timeout", "60", timeout=90)
    cluster.close()  # its client knew the old daemon's port
    after = poll(lambda: _bound(cluster, "data-db-0"), 20, "data-db-0 still bound")
    assert after.metadata.uid == before.metadata.uid and after.spec.volumeName == before.spec.volumeName
    assert [o.name for o in cluster.client.list("PersistentVolume")] == [before.spec.volumeName]
    assert [o.name for o in cluster.client.list("StorageClass")] == ["local-path"]
    # The pod was adopted, not restarted, and still reads its data.
    assert _pod(cluster, "db-0").metadata.uid == pod.metadata.uid
    assert cluster.exec("db-0", "cat", "/mnt/data/greeting").stdout == "kept\n"


def test_read_only_mount_of_the_same_claim(cluster: Cluster) -> None:
    cluster.apply_text(READER)
    (reader,) = cluster.wait_ready("reader", 1, timeout=60)
    assert reader.spec.nodeName == _pod(cluster, "db-0").spec.nodeName  # the volume's node
    assert cluster.exec("reader", "cat", "/mnt/data/greeting").stdout == "kept\n"
    res = cluster.exec("reader", "sh", "-c", "echo no > /mnt/data/greeting", check=False)
    assert res.returncode != 0 and "Read-only file system" in res.stderr


def test_pod_waits_for_a_missing_claim(cluster: Cluster) -> None:
    cluster.apply_text(ORPHAN)

    def unschedulable() -> str | None:
        p = _pod(cluster, "orphan")
        for cond in (p.status.conditions if p.status else None) or []:
            if cond.type == "PodScheduled" and cond.status == "False":
                return cond.message
        return None

    msg = poll(unschedulable, 20, "orphan to be unschedulable")
    assert 'persistentvolumeclaim "missing" not found' in msg
    assert not _pod(cluster, "orphan").spec.nodeName
    cluster.client.delete("Pod", "default", "orphan")


EPHEMERAL = """
apiVersion: v1
kind: Pod
metadata: {name: scratch, namespace: default}
spec:
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "echo temporary > /mnt/scratch/note; exec sleep 3600"]
    volumeMounts: [{name: scratch, mountPath: /mnt/scratch}]
  volumes:
  - name: scratch
    ephemeral:
      volumeClaimTemplate:
        spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


def test_ephemeral_volume_goes_with_its_pod(cluster: Cluster) -> None:
    cluster.apply_text(EPHEMERAL)
    cluster.wait_ready("scratch", 1, timeout=60)
    pvc = poll(lambda: _bound(cluster, "scratch-scratch"), 20, "the pod's claim to be bound")
    host_dir = cluster.state / "volumes" / f"pvc-{pvc.metadata.uid}_default_scratch-scratch"
    poll(lambda: (host_dir / "note").exists(), 10, "the pod's note")
    assert (host_dir / "note").read_text() == "temporary\n"
    cluster.client.delete("Pod", "default", "scratch")
    poll(lambda: _claim(cluster, "scratch-scratch") is None, 60, "the claim to go with its pod")
    poll(lambda: not host_dir.exists(), 30, "its directory to go")


def test_claim_deleted_with_its_directory(cluster: Cluster) -> None:
    pvc = _bound(cluster, "data-db-0")
    assert pvc is not None
    volume = pvc.spec.volumeName or ""
    pv = cluster.client.get("PersistentVolume", None, volume)
    assert isinstance(pv, PersistentVolume) and pv.spec.hostPath is not None
    host_dir = Path(pv.spec.hostPath.path)
    cluster.client.delete("StatefulSet", "default", "db")
    # Retain (the default) keeps the claim when the set goes; the pods still use it for now.
    cluster.client.delete("PersistentVolumeClaim", "default", "data-db-0")
    held = _claim(cluster, "data-db-0")
    assert held is not None and held.metadata.deletionTimestamp
    assert held.metadata.finalizers == ["kubernetes.io/pvc-protection"]
    cluster.client.delete("Pod", "default", "reader")
    poll(lambda: not cluster.pods("db-") and not cluster.pods("reader"), 60, "the pods to go")
    poll(lambda: _claim_gone(cluster), 30, "the claim to go")
    poll(lambda: volume not in {o.name for o in cluster.client.list("PersistentVolume")}, 30, "the volume to go")
    assert not host_dir.exists()


def _claim_gone(c: Cluster) -> bool:
    return "data-db-0" not in {o.name for o in c.client.list("PersistentVolumeClaim", "default")}
