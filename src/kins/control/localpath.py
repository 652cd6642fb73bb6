"""The local-path provisioner (rancher's, as k3s and kind ship it): a directory per claim.

A claim handed to ``rancher.io/local-path`` (the binder's ``volume.kubernetes.io/
storage-provisioner``) gets, once it knows its node (``volume.kubernetes.io/selected-node``,
written by the scheduler for a ``WaitForFirstConsumer`` class; an ``Immediate`` class takes the
first node that takes pods), a directory ``<root>/pvc-<uid>_<namespace>_<name>`` and a
PersistentVolume ``pvc-<uid>`` with a ``hostPath`` source there, the claim's size and access
modes, the class's reclaim policy and a required node affinity to that node; its ``claimRef``
names the claim, so the binder binds the two. A Released volume of policy ``Delete`` loses its
directory and is deleted; ``Retain`` keeps both.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from .._errors import Conflict, NotFound
from ..api.core import HostPathVolumeSource, Node
from ..api.meta import ObjectMeta
from ..api.storage import (
    PersistentVolume,
    PersistentVolumeClaim,
    PersistentVolumeSpec,
    StorageClass,
    VolumeNodeAffinity,
)
from ..api.volumes import (
    DEFAULT_CLASS_ANNOTATIONS,
    LOCAL_PATH,
    LOCAL_PATH_NODE,
    LOCAL_PATH_PROVISIONER,
    PROVISIONED_BY,
    PV_PROTECTION,
    SELECTED_NODE,
    STORAGE_PROVISIONER,
    claim_class,
    hostname_affinity,
)
from ..store.base import Store, WatchEvent
from .events import NO_EVENTS, NORMAL, WARNING, EventSink
from .pvbinder import binding_mode, claim_ref
from .scheduler import takes_pods

log = logging.getLogger("kins.localpath")

ALL = "*"
COMPONENT = "rancher.io/local-path_local-path-provisioner"
DEFAULT_ROOT = Path("/opt/local-path-provisioner")  # upstream's path, for offline renders


def local_path_class() -> StorageClass:
    """The cluster's default StorageClass, as k3s and kind install it."""
    return StorageClass(
        metadata=ObjectMeta(name=LOCAL_PATH, annotations={DEFAULT_CLASS_ANNOTATIONS[0]: "true"}),
        provisioner=LOCAL_PATH_PROVISIONER,
        reclaimPolicy="Delete",
        volumeBindingMode="WaitForFirstConsumer",
    )


def volume_dir(root: Path, pvc: PersistentVolumeClaim) -> Path:
    return root / f"pvc-{pvc.metadata.uid}_{pvc.namespace}_{pvc.name}"


class LocalPathProvisioner:
    name = "local-path-provisioner"
    kinds = frozenset({"PersistentVolume", "PersistentVolumeClaim", "StorageClass"})

    def __init__(self, store: Store, root: Path | None = None, events: EventSink = NO_EVENTS) -> None:
        """``root`` None: the volumes are planned under upstream's path, no directory is made
        (offline)."""
        self.store = store
        self.root = root if root is not None else DEFAULT_ROOT
        self.make_dirs = root is not None
        self.events = events

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        return (ALL,)

    def start_keys(self) -> Iterable[str]:
        return (ALL,)

    def reconcile(self, key: str) -> bool:
        classes = {c.name: c for c in self.store.list("StorageClass")[0] if isinstance(c, StorageClass)}
        volumes = {v.name: v for v in self.store.list("PersistentVolume")[0] if isinstance(v, PersistentVolume)}
        changed = False
        for pvc in self.store.list("PersistentVolumeClaim")[0]:
            if isinstance(pvc, PersistentVolumeClaim):
                changed |= self._provision(pvc, classes, volumes)
        for pv in volumes.values():
            changed |= self._reclaim(pv)
        return changed

    def _provision(
        self, pvc: PersistentVolumeClaim, classes: dict[str, StorageClass], volumes: dict[str, PersistentVolume]
    ) -> bool:
        ann = pvc.metadata.annotations or {}
        if (
            pvc.spec.volumeName
            or pvc.metadata.deletionTimestamp
            or ann.get(STORAGE_PROVISIONER) != LOCAL_PATH_PROVISIONER
        ):
            return False
        sc = classes.get(claim_class(pvc))
        name = f"pvc-{pvc.metadata.uid}"
        if sc is None or sc.provisioner != LOCAL_PATH_PROVISIONER or name in volumes:
            return False
        node = ann.get(SELECTED_NODE)
        if not node:
            if binding_mode(sc) == "WaitForFirstConsumer":
                return False  # the scheduler picks the node with the first pod
            nodes = sorted((n for n in self.store.list("Node")[0] if isinstance(n, Node)), key=lambda n: n.name)
            pick = next((n for n in nodes if takes_pods(n)), None)
            if pick is None:
                return False
            node = pick.name
        self.events.event(
            pvc,
            NORMAL,
            "Provisioning",
            f'External provisioner is provisioning volume for claim "{pvc.namespace}/{pvc.name}"',
            component=COMPONENT,
        )
        path = volume_dir(self.root, pvc)
        if self.make_dirs:
            try:
                path.mkdir(parents=True, exist_ok=True)
                os.chmod(path, 0o777)  # as local-path makes them: any container user may write
            except OSError as e:
                self.events.event(
                    pvc,
                    WARNING,
                    "ProvisioningFailed",
                    f"failed to provision volume with StorageClass {sc.name!r}: {e}",
                    component=COMPONENT,
                )
                return False
        requests = (pvc.spec.resources.requests if pvc.spec.resources else None) or {}
        pv = PersistentVolume(
            metadata=ObjectMeta(
                name=name,
                annotations={PROVISIONED_BY: LOCAL_PATH_PROVISIONER, LOCAL_PATH_NODE: node},
                finalizers=[PV_PROTECTION],
            ),
            spec=PersistentVolumeSpec(
                capacity={"storage": requests.get("storage", "0")},
                accessModes=pvc.spec.accessModes,
                claimRef=claim_ref(pvc),
                persistentVolumeReclaimPolicy=sc.reclaimPolicy or "Delete",
                storageClassName=sc.name,
                volumeMode=pvc.spec.volumeMode or "Filesystem",
                hostPath=HostPathVolumeSource(path=str(path), type="DirectoryOrCreate"),
                nodeAffinity=VolumeNodeAffinity(required=hostname_affinity(node)),
            ),
        )
        try:
            self.store.create(pv)
        except Conflict:
            return False
        self.events.event(
            pvc, NORMAL, "ProvisioningSucceeded", f"Successfully provisioned volume {name}", component=COMPONENT
        )
        return True

    def _reclaim(self, pv: PersistentVolume) -> bool:
        """A Released volume of ours with policy Delete: its directory, then the object."""
        ann = pv.metadata.annotations or {}
        if ann.get(PROVISIONED_BY) != LOCAL_PATH_PROVISIONER or pv.metadata.deletionTimestamp:
            return False
        if (pv.status.phase if pv.status else None) != "Released":
            return False
        if (pv.spec.persistentVolumeReclaimPolicy or "Delete") != "Delete":
            return False
        path = Path(pv.spec.hostPath.path) if pv.spec.hostPath is not None else None
        if self.make_dirs and path is not None and path.parent == self.root and path.name.startswith("pvc-"):
            shutil.rmtree(path, ignore_errors=True)
            log.info("%s: removed %s", pv.name, path)
        with contextlib.suppress(NotFound):
            self.store.delete("PersistentVolume", None, pv.name)
        return True
