"""``apps/v1``: Deployment and ReplicaSet."""

from __future__ import annotations

from typing import Any

import msgspec

from .core import PodTemplateSpec
from .meta import Base, Condition, LabelSelector, Object


class DeploymentSpec(Base):
    selector: LabelSelector | None = None
    template: PodTemplateSpec = msgspec.field(default_factory=PodTemplateSpec)
    replicas: int | None = None
    strategy: dict[str, Any] | None = None
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
