"""Storage through kubectl 1.27 and 1.33 against the in-process API: admission (default class,
protection finalizers), the controllers' binding shown by ``kubectl get pv,pvc,sc``, a claim
in use held Terminating, describe pages equal to kins' own, and ``kins get``."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from kubectl_bin import OLDEST, all_versions, tls_api

from kins.api.config import default_cluster
from kins.api.core import Pod
from kins.api.storage import PersistentVolume, PersistentVolumeClaim, StorageClass
from kins.control.base import run_until_stable
from kins.control.defaults import default_controllers
from kins.control.localpath import local_path_class
from kins.control.offline import node_object
from kins.daemon.graceful import GracefulStore
from kins.store.memory import MemoryStore
from kins.views.describe import describe_pod
from kins.views.describe_storage import describe_pv, describe_pvc, describe_storageclass

MANIFEST = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 2Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: default}
spec:
  # No kube-api-access volume: kubectl up to 1.32 and 1.33 describe it differently.
  automountServiceAccountToken: false
  containers: [{name: app, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: manual-1}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteMany]
  storageClassName: manual
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /srv/manual-1}
"""


@pytest.mark.parametrize("version", all_versions())
def test_kubectl_sees_claims_bound_by_the_controllers(tmp_path: Path, version: str) -> None:
    raw = MemoryStore()
    for n in default_cluster().nodes:
        raw.create(node_object(n))
    raw.create(local_path_class())
    store = GracefulStore(raw)
    root = tmp_path / "volumes"

    def settle() -> None:
        ctrls = default_controllers(store, default_cluster(), random.Random(1), volumes_dir=root)
        run_until_stable(store, ctrls)

    with tls_api(store, tmp_path) as api:
        k = api.kubectl(version)
        # kubectl 1.27 validates against OpenAPI v2, which this API may not serve.
        no_v2 = ["--validate=false"] if version == OLDEST else []
        k("apply", *no_v2, "-f", "-", input=MANIFEST)
        # Admission: the default class and the protection finalizers.
        claim = json.loads(k("get", "pvc", "data", "-o", "json"))
        assert claim["spec"]["storageClassName"] == "local-path"
        assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
        assert claim["status"]["phase"] == "Pending"
        pv = json.loads(k("get", "pv", "manual-1", "-o", "json"))
        assert pv["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"] and pv["status"]["phase"] == "Available"

        settle()
        claim = json.loads(k("get", "pvc", "data", "-o", "json"))
        volume = f"pvc-{claim['metadata']['uid']}"
        assert claim["spec"]["volumeName"] == volume and claim["status"]["phase"] == "Bound"
        node = json.loads(k("get", "pod", "app", "-o", "json"))["spec"]["nodeName"]
        assert claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node

        rows = k("get", "pvc", "--no-headers").split()
        assert rows[:6] == ["data", "Bound", volume, "2Gi", "RWO", "local-path"]
        pvs = {line.split()[0]: line.split() for line in k("get", "pv", "--no-headers").splitlines()}
        assert pvs[volume][1:6] == ["2Gi", "RWO", "Delete", "Bound", "default/data"]
        assert pvs["manual-1"][1:5] == ["1Gi", "RWX", "Retain", "Available"]
        sc = k("get", "sc", "--no-headers").split()
        assert sc[:5] == ["local-path", "(default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer"]
        both = k("get", "pv,pvc,sc")
        assert f"persistentvolume/{volume}" in both and "persistentvolumeclaim/data" in both
        assert "storageclass.storage.k8s.io/local-path (default)" in both
        assert (root / f"{volume}_default_data").is_dir()

        # kubectl's describe pages, and kins' own.
        pvc_obj = raw.get("PersistentVolumeClaim", "default", "data")
        pv_obj = raw.get("PersistentVolume", None, volume)
        sc_obj = raw.get("StorageClass", None, "local-path")
        assert isinstance(pvc_obj, PersistentVolumeClaim) and isinstance(pv_obj, PersistentVolume)
        assert isinstance(sc_obj, StorageClass)
        pods = [p for p in raw.list("Pod", "default")[0] if isinstance(p, Pod)]
        assert k("describe", "pvc", "data") == describe_pvc(pvc_obj, pods, [])
        assert k("describe", "pv", volume) == describe_pv(pv_obj, [])
        assert k("describe", "pv", "manual-1") == describe_pv(raw.get("PersistentVolume", None, "manual-1"), [])  # type: ignore[arg-type]
        assert k("describe", "sc", "local-path") == describe_storageclass(sc_obj, [])
        pod_page = k("describe", "pod", "app")
        assert re.search(r"ClaimName:\s+data\n\s+ReadOnly:\s+false\n", pod_page)
        assert (
            describe_pod(pods[0], []).split("Volumes:")[1].split("QoS")[0]
            == pod_page.split("Volumes:")[1].split("QoS")[0]
        )

        # A claim's spec stays as bound; its metadata may change.
        moved = k.run("patch", "pvc", "data", "-p", '{"spec":{"storageClassName":"other"}}', check=False)
        assert moved.returncode != 0 and "spec: Forbidden: spec is immutable after creation" in moved.stderr
        grown = k.run(
            "patch", "pvc", "data", "-p", '{"spec":{"resources":{"requests":{"storage":"5Gi"}}}}', check=False
        )
        assert grown.returncode != 0 and "spec.resources.requests.storage: Forbidden: only dynamically" in grown.stderr
        k("label", "pvc", "data", "tier=db")

        # In use by the pod: the claim is held, Terminating, until the pod is gone.
        k("delete", "pvc", "data", "--wait=false")
        settle()
        assert k("get", "pvc", "data", "--no-headers").split()[1] == "Terminating"
        k("delete", "pod", "app", "--wait=false")
        settle()
        assert k("get", "pvc", "data", "--no-headers").split()[1] == "Terminating"  # the pod is stopping
        raw.delete("Pod", "default", "app")  # what the kubelet does once the pod has stopped
        settle()
        gone = k.run("get", "pvc", "data", check=False)
        assert gone.returncode != 0 and 'persistentvolumeclaims "data" not found' in gone.stderr
        assert volume not in k("get", "pv", "-o", "name")
        assert not (root / f"{volume}_default_data").exists()

        # A claim the API refuses names the field.
        bad = k.run(
            "apply",
            *no_v2,
            "-f",
            "-",
            check=False,
            input=MANIFEST.split("---")[0].replace("storage: 2Gi", "storage: -1"),
        )
        assert bad.returncode != 0 and "spec.resources[storage]" in bad.stderr


def test_kins_get_shows_claims_of_a_statefulset_offline(tmp_path: Path) -> None:
    (tmp_path / "sts.yaml").write_text(
        """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: default}
spec:
  serviceName: web
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""
    )
    cmd = [sys.executable, "-c", "from kins.cli import main; main()", "get", "pvc", "-f", str(tmp_path)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = [line.split() for line in res.stdout.splitlines()[1:]]
    assert [r[:2] for r in rows] == [["data-web-0", "Bound"], ["data-web-1", "Bound"]]
    assert all(r[2].startswith("pvc-") and r[3:6] == ["1Gi", "RWO", "local-path"] for r in rows)
