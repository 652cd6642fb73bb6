"""``autoscaling/v2`` HorizontalPodAutoscaler, and ``autoscaling/v1`` converted to it.

Stored as v2, as the API server does. v1 knows one target (CPU utilization): converting a v1
object gives v2 a single CPU Resource metric; serving v2 as v1 keeps only that metric (the API
server also carries the others in annotations; kins does not).
"""

from __future__ import annotations

from typing import Any

import msgspec

from .meta import Base, Condition, Object

# The v2 default when no metric is given (as the API server defaults it).
DEFAULT_CPU_UTILIZATION = 80


class CrossVersionObjectReference(Base):
    kind: str = ""
    name: str = ""
    apiVersion: str | None = None


class HorizontalPodAutoscalerSpec(Base):
    scaleTargetRef: CrossVersionObjectReference = msgspec.field(default_factory=CrossVersionObjectReference)
    minReplicas: int | None = None
    maxReplicas: int = 0
    metrics: list[dict[str, Any]] | None = None
    behavior: dict[str, Any] | None = None


class HorizontalPodAutoscalerStatus(Base):
    observedGeneration: int | None = None
    lastScaleTime: str | None = None
    currentReplicas: int | None = None
    desiredReplicas: int = 0
    currentMetrics: list[dict[str, Any]] | None = None
    conditions: list[Condition] | None = None


class HorizontalPodAutoscaler(Object):
    KIND = "HorizontalPodAutoscaler"
    API_VERSION = "autoscaling/v2"
    PLURAL = "horizontalpodautoscalers"
    spec: HorizontalPodAutoscalerSpec = msgspec.field(default_factory=HorizontalPodAutoscalerSpec)
    status: HorizontalPodAutoscalerStatus | None = None

    def cpu_target(self) -> int | None:
        """The CPU utilization target, if the autoscaler has one."""
        for m in self.spec.metrics or []:
            res = m.get("resource") if m.get("type") == "Resource" else None
            if isinstance(res, dict) and res.get("name") == "cpu":
                target = res.get("target") or {}
                if target.get("type") == "Utilization" and isinstance(target.get("averageUtilization"), int):
                    return int(target["averageUtilization"])
        return None


def cpu_metric(utilization: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}},
    }


class HorizontalPodAutoscalerSpecV1(Base):
    scaleTargetRef: CrossVersionObjectReference = msgspec.field(default_factory=CrossVersionObjectReference)
    minReplicas: int | None = None
    maxReplicas: int = 0
    targetCPUUtilizationPercentage: int | None = None


class HorizontalPodAutoscalerStatusV1(Base):
    observedGeneration: int | None = None
    lastScaleTime: str | None = None
    currentReplicas: int = 0
    desiredReplicas: int = 0
    currentCPUUtilizationPercentage: int | None = None


class HorizontalPodAutoscalerV1(Object):
    KIND = "HorizontalPodAutoscaler"
    API_VERSION = "autoscaling/v1"
    PLURAL = "horizontalpodautoscalers"
    spec: HorizontalPodAutoscalerSpecV1 = msgspec.field(default_factory=HorizontalPodAutoscalerSpecV1)
    status: HorizontalPodAutoscalerStatusV1 | None = None

    def to_stored(self) -> HorizontalPodAutoscaler:
        s = self.spec
        target = s.targetCPUUtilizationPercentage
        status = None
        if self.status is not None:
            st = self.status
            status = HorizontalPodAutoscalerStatus(
                observedGeneration=st.observedGeneration,
                lastScaleTime=st.lastScaleTime,
                currentReplicas=st.currentReplicas,
                desiredReplicas=st.desiredReplicas,
            )
        return HorizontalPodAutoscaler(
            metadata=self.metadata,
            spec=HorizontalPodAutoscalerSpec(
                scaleTargetRef=s.scaleTargetRef,
                minReplicas=s.minReplicas,
                maxReplicas=s.maxReplicas,
                metrics=[cpu_metric(target)] if target is not None else None,
            ),
            status=status,
        )

    @staticmethod
    def from_stored(doc: dict[str, Any]) -> dict[str, Any]:
        """A stored (v2) object's JSON as v1 serves it."""
        hpa = msgspec.convert(doc, HorizontalPodAutoscaler)
        spec: dict[str, Any] = {
            "scaleTargetRef": msgspec.to_builtins(hpa.spec.scaleTargetRef),
            "maxReplicas": hpa.spec.maxReplicas,
        }
        if hpa.spec.minReplicas is not None:
            spec["minReplicas"] = hpa.spec.minReplicas
        target = hpa.cpu_target()
        if target is not None:
            spec["targetCPUUtilizationPercentage"] = target
        out = {**doc, "apiVersion": "autoscaling/v1", "spec": spec}
        st = hpa.status
        if st is not None:
            status: dict[str, Any] = {
                "currentReplicas": st.currentReplicas or 0,
                "desiredReplicas": st.desiredReplicas,
            }
            for k in ("observedGeneration", "lastScaleTime"):
                if getattr(st, k) is not None:
                    status[k] = getattr(st, k)
            for m in st.currentMetrics or []:
                res = m.get("resource") or {}
                if m.get("type") == "Resource" and res.get("name") == "cpu":
                    util = (res.get("current") or {}).get("averageUtilization")
                    if util is not None:
                        status["currentCPUUtilizationPercentage"] = util
            out["status"] = status
        return out
