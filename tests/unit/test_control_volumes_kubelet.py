"""The kubelet's side of claims: a pod's persistentVolumeClaim volume resolved to its bound
volume's directory (read-only when asked), and the messages a pod waits with otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from kins.agents.kubelet.volumes import PodVolumes, VolumeError
from kins.api.core import Pod
from kins.api.load import load_text
from kins.store.memory import MemoryStore

POD = """
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: default}
spec:
  containers:
  - name: app
    image: busybox
    volumeMounts:
    - {name: data, mountPath: /mnt/data}
    - {name: data, mountPath: /mnt/ro, readOnly: true}
    - {name: logs, mountPath: /mnt/logs}
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: data}}
  - {name: logs, persistentVolumeClaim: {claimName: logs, readOnly: true}}
"""

CLAIM = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: %s, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
  volumeName: %s
status: {phase: %s}
"""

VOLUME = """
apiVersion: v1
kind: PersistentVolume
metadata: {name: %s}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  %s
"""


def pod() -> Pod:
    (p,) = load_text(POD)
    assert isinstance(p, Pod)
    return p


def test_claims_resolve_to_their_volumes_directories(tmp_path: Path) -> None:
    store = MemoryStore()
    made = tmp_path / "made-on-demand"
    local = tmp_path / "local"
    local.mkdir()
    for o in load_text(
        CLAIM % ("data", "pv-data", "Bound")
        + "---"
        + CLAIM % ("logs", "pv-logs", "Bound")
        + "---"
        + VOLUME % ("pv-data", f"hostPath: {{path: {made}, type: DirectoryOrCreate}}")
        + "---"
        + VOLUME % ("pv-logs", f"local: {{path: {local}}}")
    ):
        store.create(o)
    mounts = sorted(PodVolumes(store, tmp_path / "state").mounts(pod()), key=lambda m: m[1])
    assert mounts == [
        (str(made), "/mnt/data", False),
        (str(local), "/mnt/logs", True),  # the pod's volume says readOnly
        (str(made), "/mnt/ro", True),  # the mount says readOnly
    ]
    assert made.is_dir()


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        ("", 'persistentvolumeclaim "data" not found'),
        (CLAIM % ("data", '""', "Pending"), 'error processing PVC default/data: PVC is not bound (phase "Pending"'),
        (CLAIM % ("data", "gone", "Bound"), 'persistentvolume "gone" not found'),
    ],
)
def test_a_pod_waits_for_its_claim(tmp_path: Path, objects: str, message: str) -> None:
    store = MemoryStore()
    for o in load_text(objects) if objects else []:
        store.create(o)
    with pytest.raises(VolumeError, match=message.replace("(", r"\(")):
        PodVolumes(store, tmp_path).mounts(pod())


def test_ephemeral_volume_is_its_pods_claim(tmp_path: Path) -> None:
    store = MemoryStore()
    made = tmp_path / "scratch"
    text = """
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: default}
spec:
  containers: [{name: app, image: busybox, volumeMounts: [{name: scratch, mountPath: /mnt/scratch}]}]
  volumes: [{name: scratch, ephemeral: {volumeClaimTemplate: {spec: {accessModes: [ReadWriteOnce]}}}}]
"""
    (p,) = load_text(text)
    assert isinstance(p, Pod)
    with pytest.raises(VolumeError, match='persistentvolumeclaim "app-scratch" not found'):
        PodVolumes(store, tmp_path).mounts(p)
    for o in load_text(
        CLAIM % ("app-scratch", "pv-s", "Bound") + "---" + VOLUME % ("pv-s", f"hostPath: {{path: {made}}}")
    ):
        store.create(o)
    made.mkdir()
    assert PodVolumes(store, tmp_path).mounts(p) == [(str(made), "/mnt/scratch", False)]
