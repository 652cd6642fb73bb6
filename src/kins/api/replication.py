"""Core ``v1`` ReplicationController: stored and served (``kubectl get all`` lists it); no
controller acts on it."""

from __future__ import annotations

import msgspec

from .core import PodTemplateSpec
from .meta import Base, Condition, Object


class ReplicationControllerSpec(Base):
    replicas: int | None = None
    minReadySeconds: int | None = None
    selector: dict[str, str] | None = None
    template: PodTemplateSpec | None = None


class ReplicationControllerStatus(Base):
    replicas: int = 0
    fullyLabeledReplicas: int | None = None
    readyReplicas: int | None = None
    availableReplicas: int | None = None
    observedGeneration: int | None = None
    conditions: list[Condition] | None = None


class ReplicationController(Object):
    KIND = "ReplicationController"
    PLURAL = "replicationcontrollers"
    spec: ReplicationControllerSpec = msgspec.field(default_factory=ReplicationControllerSpec)
    status: ReplicationControllerStatus | None = None
