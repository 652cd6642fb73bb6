"""The scheduler's volume binding (upstream's VolumeBinding plugin): what a pod's
PersistentVolumeClaims say about where it can run.

``check`` looks at a pod's claims once per scheduling pass: a claim that is missing, being
deleted, unbound with an ``Immediate`` class or ``ReadWriteOncePod`` and used by a scheduled pod
(the VolumeRestrictions plugin's part) makes the pod unschedulable on every node (the messages
are upstream's); a bound claim admits only the nodes its volume's node affinity admits
(a pod returns to the node its local volume is on); an unbound claim of a
``WaitForFirstConsumer`` class admits a node that an Available volume matching it can reach, or
any node when its class provisions volumes, or only the node already written on it. The
scheduler then writes the chosen node on those claims (``select_node``) and leaves the pod
unbound until the binder and the provisioner have bound them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.core import Node, Pod
from ..api.storage import PersistentVolume, PersistentVolumeClaim, StorageClass
from ..api.volumes import (
    HOSTNAME_LABEL,
    NO_PROVISIONER,
    SELECTED_NODE,
    annotate,
    claim_class,
    ephemeral_claims,
    pod_claims,
    pv_fits_node,
)
from ..store.base import Store
from .pvbinder import binding_mode, find_volume

NODE_CONFLICT = "node(s) had volume node affinity conflict"
NO_VOLUME = "node(s) didn't find available persistent volumes to bind"
PV_MISSING = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
RWOP_CONFLICT = "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode"


def owned_by_pod(pvc: PersistentVolumeClaim, pod: Pod) -> bool:
    return any(r.kind == "Pod" and r.uid == pod.metadata.uid for r in pvc.metadata.ownerReferences or [])


def _labels(node: Node) -> dict[str, str]:
    return {HOSTNAME_LABEL: node.name, **node.labels}


@dataclass
class PodVolumes:
    """What a pod's claims allow: ``error`` (no node will do), the volumes its bound claims are
    on, and its unbound delayed-binding claims (``waiting``)."""

    error: str | None = None
    bound: list[PersistentVolume | None] = field(default_factory=list)
    waiting: list[PersistentVolumeClaim] = field(default_factory=list)
    volumes: list[PersistentVolume] = field(default_factory=list)
    classes: dict[str, StorageClass] = field(default_factory=dict)

    def node_conflict(self, node: Node) -> str | None:
        """Why ``node`` will not do for the pod's volumes; None when it will."""
        labels = _labels(node)
        for pv in self.bound:
            if pv is None:
                return PV_MISSING
            if not pv_fits_node(pv, labels, node.name):
                return NODE_CONFLICT
        for pvc in self.waiting:
            selected = (pvc.metadata.annotations or {}).get(SELECTED_NODE)
            if selected:
                if selected != node.name:
                    return NODE_CONFLICT
                continue
            if find_volume(pvc, self.volumes, node) is not None:
                continue
            sc = self.classes.get(claim_class(pvc))
            if sc is None or not sc.provisioner or sc.provisioner == NO_PROVISIONER:
                return NO_VOLUME
        return None


class VolumeBinding:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._claims: dict[str, PersistentVolumeClaim] = {}
        self._volumes: dict[str, PersistentVolume] = {}
        self._classes: dict[str, StorageClass] = {}
        self._loaded = False
        self._held: dict[str, str] = {}  # claim key -> a scheduled pod using it

    def begin(self, pods: Iterable[Pod] = ()) -> None:
        """A new scheduling pass: the claims and volumes are read again when a pod needs them;
        ``pods``: the cluster's pods, whose scheduled ones hold their ReadWriteOncePod claims."""
        self._loaded = False
        self._held = {}
        for p in pods:
            if p.spec.nodeName and (p.status.phase if p.status else None) not in ("Succeeded", "Failed"):
                for c in pod_claims(p):
                    self._held.setdefault(f"{p.namespace}/{c}", p.name)

    def hold(self, pod: Pod) -> None:
        """``pod`` was just bound: later pods of this pass see its claims in use."""
        for c in pod_claims(pod):
            self._held.setdefault(f"{pod.namespace}/{c}", pod.name)

    def _load(self) -> None:
        if self._loaded:
            return
        self._claims = {
            c.key: c for c in self.store.list("PersistentVolumeClaim")[0] if isinstance(c, PersistentVolumeClaim)
        }
        self._volumes = {v.name: v for v in self.store.list("PersistentVolume")[0] if isinstance(v, PersistentVolume)}
        self._classes = {c.name: c for c in self.store.list("StorageClass")[0] if isinstance(c, StorageClass)}
        self._loaded = True

    def check(self, pod: Pod) -> PodVolumes:
        names = pod_claims(pod)
        if not names:
            return PodVolumes()
        self._load()
        out = PodVolumes(volumes=list(self._volumes.values()), classes=self._classes)
        ephemeral = set(ephemeral_claims(pod).values())
        for name in names:
            pvc = self._claims.get(f"{pod.namespace}/{name}")
            if pvc is None and name in ephemeral:
                return PodVolumes(
                    error=f'waiting for ephemeral volume controller to create the persistentvolumeclaim "{name}"'
                )
            if pvc is None:
                return PodVolumes(error=f'persistentvolumeclaim "{name}" not found')
            if name in ephemeral and not owned_by_pod(pvc, pod):
                ns = pod.namespace
                return PodVolumes(error=f"PVC {ns}/{name} was not created for pod {ns}/{pod.name} (pod is not owner)")
            if pvc.metadata.deletionTimestamp:
                return PodVolumes(error=f'persistentvolumeclaim "{name}" is being deleted')
            holder = self._held.get(pvc.key)
            if "ReadWriteOncePod" in (pvc.spec.accessModes or []) and holder not in (None, pod.name):
                return PodVolumes(error=RWOP_CONFLICT)
            if pvc.spec.volumeName and (pvc.status.phase if pvc.status else None) == "Bound":
                out.bound.append(self._volumes.get(pvc.spec.volumeName))
            elif binding_mode(self._classes.get(claim_class(pvc))) == "WaitForFirstConsumer":
                out.waiting.append(pvc)
            else:
                return PodVolumes(error=UNBOUND_IMMEDIATE)
        return out

    def select_node(self, vols: PodVolumes, node: str) -> bool:
        """Write ``node`` on the pod's waiting claims that have none yet; True if any was."""
        changed = False
        for pvc in vols.waiting:
            if (pvc.metadata.annotations or {}).get(SELECTED_NODE):
                continue
            try:
                updated = self.store.update(replace(pvc, metadata=annotate(pvc.metadata, {SELECTED_NODE: node})))
            except (Conflict, NotFound):
                continue
            if isinstance(updated, PersistentVolumeClaim):
                self._claims[updated.key] = updated
            changed = True
        return changed
