"""Scaling and scheduling policy objects: HorizontalPodAutoscaler, PodDisruptionBudget,
PriorityClass, in the API server's words."""

from __future__ import annotations

from ..autoscaling import HorizontalPodAutoscaler
from ..config import ClusterConfig
from ..scheduling import HIGHEST_USER_PRIORITY, PREEMPTION_POLICIES, PodDisruptionBudget, PriorityClass
from .common import Check, Errors

_EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")


def _hpa(e: Errors, hpa: HorizontalPodAutoscaler, cfg: ClusterConfig | None) -> None:
    s = hpa.spec
    if not s.scaleTargetRef.kind:
        e.required("spec.scaleTargetRef.kind")
    if not s.scaleTargetRef.name:
        e.required("spec.scaleTargetRef.name")
    if s.minReplicas is not None and s.minReplicas < 1:
        e.invalid("spec.minReplicas", s.minReplicas, "must be greater than or equal to 1")
    if s.maxReplicas < 1:
        e.invalid("spec.maxReplicas", s.maxReplicas, "must be greater than or equal to 1")
    if s.minReplicas is not None and s.minReplicas > s.maxReplicas:
        e.invalid("spec.maxReplicas", s.maxReplicas, "must be greater than or equal to `minReplicas`")
    for i, m in enumerate(s.metrics or []):
        if not m.get("type"):
            e.required(f"spec.metrics[{i}].type", "must specify a metric source type")


def _pdb(e: Errors, pdb: PodDisruptionBudget, cfg: ClusterConfig | None) -> None:
    s = pdb.spec
    if s.minAvailable is not None and s.maxUnavailable is not None:
        both = {"minAvailable": s.minAvailable, "maxUnavailable": s.maxUnavailable}
        e.invalid("spec", both, "minAvailable and maxUnavailable cannot be both set")
    for field, v in (("spec.minAvailable", s.minAvailable), ("spec.maxUnavailable", s.maxUnavailable)):
        if isinstance(v, int) and v < 0:
            e.invalid(field, v, "must be greater than or equal to 0")
        elif isinstance(v, str) and not (v.endswith("%") and v[:-1].isdigit()):
            e.invalid(field, v, "a valid percent string must be a numeric string followed by an ending '%'")
    if s.selector is not None:
        e.label_selector("spec.selector", s.selector)
    policy = s.unhealthyPodEvictionPolicy
    if policy is not None and policy not in _EVICTION_POLICIES:
        e.unsupported("spec.unhealthyPodEvictionPolicy", policy, _EVICTION_POLICIES)


def _priorityclass(e: Errors, pc: PriorityClass, cfg: ClusterConfig | None) -> None:
    if pc.value > HIGHEST_USER_PRIORITY and not pc.name.startswith("system-"):
        e.forbidden("value", f"maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}")
    if pc.preemptionPolicy is not None and pc.preemptionPolicy not in PREEMPTION_POLICIES:
        e.unsupported("preemptionPolicy", pc.preemptionPolicy, PREEMPTION_POLICIES)


CHECKS: dict[type, Check] = {
    HorizontalPodAutoscaler: _hpa,
    PodDisruptionBudget: _pdb,
    PriorityClass: _priorityclass,
}
