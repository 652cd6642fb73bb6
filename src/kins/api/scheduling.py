"""Who runs and who may be evicted: PriorityClass (``scheduling.k8s.io/v1``) and
PodDisruptionBudget (``policy/v1``). Stored and served; kins' scheduler does not preempt."""

from __future__ import annotations

from typing import Any

import msgspec

from .core import IntOrString
from .meta import Base, Condition, LabelSelector, Object

PREEMPTION_POLICIES = ("Never", "PreemptLowerPriority")
# PriorityClass values above this are reserved for the system's own classes.
HIGHEST_USER_PRIORITY = 1_000_000_000


class PriorityClass(Object):
    KIND = "PriorityClass"
    API_VERSION = "scheduling.k8s.io/v1"
    NAMESPACED = False
    PLURAL = "priorityclasses"
    value: int = 0
    globalDefault: bool | None = None
    description: str | None = None
    preemptionPolicy: str | None = None


class PodDisruptionBudgetSpec(Base):
    minAvailable: IntOrString | None = None
    maxUnavailable: IntOrString | None = None
    selector: LabelSelector | None = None
    unhealthyPodEvictionPolicy: str | None = None


class PodDisruptionBudgetStatus(Base):
    observedGeneration: int | None = None
    disruptedPods: dict[str, Any] | None = None
    disruptionsAllowed: int = 0
    currentHealthy: int = 0
    desiredHealthy: int = 0
    expectedPods: int = 0
    conditions: list[Condition] | None = None


class PodDisruptionBudget(Object):
    KIND = "PodDisruptionBudget"
    API_VERSION = "policy/v1"
    PLURAL = "poddisruptionbudgets"
    spec: PodDisruptionBudgetSpec = msgspec.field(default_factory=PodDisruptionBudgetSpec)
    status: PodDisruptionBudgetStatus | None = None
