"""``apps/v1``: Deployment, ReplicaSet, StatefulSet and DaemonSet."""

from __future__ import annotations

from typing import Any

import msgspec

from .core import IntOrString, PodTemplateSpec
from .meta import Base, Condition, LabelSelector, Object


class RollingUpdateDeployment(Base):
    maxUnavailable: IntOrString | None = None
    maxSurge: IntOrString | None = None


class DeploymentStrategy(Base):
    type: str | None = None
    rollingUpdate: RollingUpdateDeployment | None = None


class DeploymentSpec(Base):
    selector: LabelSelector | None = None
    template: PodTemplateSpec = msgspec.field(default_factory=PodTemplateSpec)
    replicas: int | None = None
    strategy: DeploymentStrategy | None = None
    minReadySeconds: int | None = None
    revisionHistoryLimit: int | None = None
    progressDeadlineSeconds: int | None = None
    paused: bool | None = None


class DeploymentStatus(Base):
    observedGeneration: int | None = None
    replicas: int | None = None
    updatedReplicas: int | None = None
    readyReplicas: int | None = None
    availableReplicas: int | None = None
    unavailableReplicas: int | None = None
    conditions: list[Condition] | None = None
    collisionCount: int | None = None


class Deployment(Object):
    KIND = "Deployment"
    API_VERSION = "apps/v1"
    PLURAL = "deployments"
    spec: DeploymentSpec = msgspec.field(default_factory=DeploymentSpec)
    status: DeploymentStatus | None = None


class ReplicaSetSpec(Base):
    selector: LabelSelector | None = None
    template: PodTemplateSpec = msgspec.field(default_factory=PodTemplateSpec)
    replicas: int | None = None
    minReadySeconds: int | None = None


class ReplicaSetStatus(Base):
    replicas: int = 0
    fullyLabeledReplicas: int | None = None
    readyReplicas: int | None = None
    availableReplicas: int | None = None
    observedGeneration: int | None = None
    conditions: list[Condition] | None = None


class ReplicaSet(Object):
    KIND = "ReplicaSet"
    API_VERSION = "apps/v1"
    PLURAL = "replicasets"
    spec: ReplicaSetSpec = msgspec.field(default_factory=ReplicaSetSpec)
    status: ReplicaSetStatus | None = None


class RollingUpdateStatefulSetStrategy(Base):
    partition: int | None = None
    maxUnavailable: IntOrString | None = None


class StatefulSetUpdateStrategy(Base):
    type: str | None = None
    rollingUpdate: RollingUpdateStatefulSetStrategy | None = None


class StatefulSetPersistentVolumeClaimRetentionPolicy(Base):
    whenDeleted: str | None = None
    whenScaled: str | None = None


class StatefulSetOrdinals(Base):
    start: int | None = None


class StatefulSetSpec(Base):
    selector: LabelSelector | None = None
    template: PodTemplateSpec = msgspec.field(default_factory=PodTemplateSpec)
    replicas: int | None = None
    serviceName: str | None = None
    podManagementPolicy: str | None = None
    updateStrategy: StatefulSetUpdateStrategy | None = None
    # accepted so real manifests load; kins has no storage and creates no claims, so these
    # PersistentVolumeClaims stay plain mappings rather than a whole PVC model
    volumeClaimTemplates: list[dict[str, Any]] | None = None
    persistentVolumeClaimRetentionPolicy: StatefulSetPersistentVolumeClaimRetentionPolicy | None = None
    revisionHistoryLimit: int | None = None
    minReadySeconds: int | None = None
    ordinals: StatefulSetOrdinals | None = None


class StatefulSetStatus(Base):
    observedGeneration: int | None = None
    replicas: int = 0
    readyReplicas: int | None = None
    currentReplicas: int | None = None
    updatedReplicas: int | None = None
    availableReplicas: int | None = None
    currentRevision: str | None = None
    updateRevision: str | None = None
    collisionCount: int | None = None
    conditions: list[Condition] | None = None


class StatefulSet(Object):
    KIND = "StatefulSet"
    API_VERSION = "apps/v1"
    PLURAL = "statefulsets"
    spec: StatefulSetSpec = msgspec.field(default_factory=StatefulSetSpec)
    status: StatefulSetStatus | None = None


class RollingUpdateDaemonSet(Base):
    maxUnavailable: IntOrString | None = None
    maxSurge: IntOrString | None = None


class DaemonSetUpdateStrategy(Base):
    type: str | None = None
    rollingUpdate: RollingUpdateDaemonSet | None = None


class DaemonSetSpec(Base):
    selector: LabelSelector | None = None
    template: PodTemplateSpec = msgspec.field(default_factory=PodTemplateSpec)
    updateStrategy: DaemonSetUpdateStrategy | None = None
    minReadySeconds: int | None = None
    revisionHistoryLimit: int | None = None


class DaemonSetStatus(Base):
    currentNumberScheduled: int = 0
    numberMisscheduled: int = 0
    desiredNumberScheduled: int = 0
    numberReady: int = 0
    observedGeneration: int | None = None
    updatedNumberScheduled: int | None = None
    numberAvailable: int | None = None
    numberUnavailable: int | None = None
    collisionCount: int | None = None
    conditions: list[Condition] | None = None


class DaemonSet(Object):
    KIND = "DaemonSet"
    API_VERSION = "apps/v1"
    PLURAL = "daemonsets"
    spec: DaemonSetSpec = msgspec.field(default_factory=DaemonSetSpec)
    status: DaemonSetStatus | None = None
