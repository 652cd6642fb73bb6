"""Storage: PersistentVolume and PersistentVolumeClaim (core ``v1``) and StorageClass
(``storage.k8s.io/v1``).

The fields kins acts on (sizes, access modes, classes, ``hostPath`` and ``local`` sources, node
affinity) are typed; the other volume sources only by name (see ``docs/storage.md``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from .core import HostPathVolumeSource, NFSVolumeSource, NodeSelector, ObjectReference, Quantity
from .meta import Base, Condition, LabelSelector, Object
from .networking import TypedLocalObjectReference

ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
VOLUME_MODES = ("Block", "Filesystem")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")


class LocalVolumeSource(Base):
    path: str = ""
    fsType: str | None = None


class VolumeNodeAffinity(Base):
    required: NodeSelector | None = None


class PersistentVolumeSpec(Base):
    capacity: dict[str, Quantity] | None = None
    accessModes: list[str] | None = None
    claimRef: ObjectReference | None = None
    persistentVolumeReclaimPolicy: str | None = None
    storageClassName: str | None = None
    mountOptions: list[str] | None = None
    volumeMode: str | None = None
    nodeAffinity: VolumeNodeAffinity | None = None
    volumeAttributesClassName: str | None = None
    # the volume sources (exactly one is set)
    hostPath: HostPathVolumeSource | None = None
    local: LocalVolumeSource | None = None
    nfs: NFSVolumeSource | None = None
    csi: dict[str, Any] | None = None
    gcePersistentDisk: dict[str, Any] | None = None
    awsElasticBlockStore: dict[str, Any] | None = None
    glusterfs: dict[str, Any] | None = None
    rbd: dict[str, Any] | None = None
    iscsi: dict[str, Any] | None = None
    cinder: dict[str, Any] | None = None
    cephfs: dict[str, Any] | None = None
    fc: dict[str, Any] | None = None
    flocker: dict[str, Any] | None = None
    flexVolume: dict[str, Any] | None = None
    azureFile: dict[str, Any] | None = None
    azureDisk: dict[str, Any] | None = None
    vsphereVolume: dict[str, Any] | None = None
    quobyte: dict[str, Any] | None = None
    photonPersistentDisk: dict[str, Any] | None = None
    portworxVolume: dict[str, Any] | None = None
    scaleIO: dict[str, Any] | None = None
    storageos: dict[str, Any] | None = None


class PersistentVolumeStatus(Base):
    phase: str | None = None
    message: str | None = None
    reason: str | None = None
    lastPhaseTransitionTime: str | None = None


class PersistentVolume(Object):
    KIND = "PersistentVolume"
    NAMESPACED = False
    PLURAL = "persistentvolumes"
    spec: PersistentVolumeSpec = msgspec.field(default_factory=PersistentVolumeSpec)
    status: PersistentVolumeStatus | None = None


class VolumeResourceRequirements(Base):
    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None


class TypedObjectReference(Base):
    apiGroup: str | None = None
    kind: str = ""
    name: str = ""
    namespace: str | None = None


class PersistentVolumeClaimSpec(Base):
    accessModes: list[str] | None = None
    selector: LabelSelector | None = None
    resources: VolumeResourceRequirements | None = None
    volumeName: str | None = None
    storageClassName: str | None = None
    volumeMode: str | None = None
    dataSource: TypedLocalObjectReference | None = None
    dataSourceRef: TypedObjectReference | None = None
    volumeAttributesClassName: str | None = None


class PersistentVolumeClaimStatus(Base):
    phase: str | None = None
    accessModes: list[str] | None = None
    capacity: dict[str, Quantity] | None = None
    conditions: list[Condition] | None = None
    allocatedResources: dict[str, Quantity] | None = None
    allocatedResourceStatuses: dict[str, str] | None = None
    currentVolumeAttributesClassName: str | None = None
    modifyVolumeStatus: dict[str, Any] | None = None


class PersistentVolumeClaim(Object):
    KIND = "PersistentVolumeClaim"
    PLURAL = "persistentvolumeclaims"
    spec: PersistentVolumeClaimSpec = msgspec.field(default_factory=PersistentVolumeClaimSpec)
    status: PersistentVolumeClaimStatus | None = None


class StorageClass(Object):
    """No spec: the class's fields are top-level."""

    KIND = "StorageClass"
    API_VERSION = "storage.k8s.io/v1"
    NAMESPACED = False
    PLURAL = "storageclasses"
    provisioner: str = ""
    parameters: dict[str, str] | None = None
    reclaimPolicy: str | None = None
    mountOptions: list[str] | None = None
    allowVolumeExpansion: bool | None = None
    volumeBindingMode: str | None = None
    allowedTopologies: list[dict[str, Any]] | None = None
