"""The apps API group: Deployment, ReplicaSet, StatefulSet, DaemonSet."""

from __future__ import annotations

import msgspec

from ..apps import DaemonSet, DaemonSetUpdateStrategy, Deployment, ReplicaSet, StatefulSet, StatefulSetUpdateStrategy
from ..config import ClusterConfig
from ..core import PodTemplateSpec
from ..meta import LabelSelector, Object, selector_matches
from .common import Check, Errors, is_dns1123_label
from .core import pod_spec

# --- Deployment / ReplicaSet -----------------------------------------------------------------


def _workload(e: Errors, replicas: int | None, selector: LabelSelector | None, template: PodTemplateSpec) -> None:
    if replicas is not None and replicas < 0:
        e.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
    labels = template.metadata.labels or {}
    if selector is None:
        e.required("spec.selector")
    elif e.label_selector("spec.selector", selector):
        if not selector.matchLabels and not selector.matchExpressions:
            e.invalid("spec.selector", {}, "empty selector is invalid for deployment")
        elif not selector_matches(selector, labels):
            e.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    e.labels("spec.template.metadata.labels", template.metadata.labels)
    pod_spec(e, "spec.template.spec", template.spec, restart_policies=("Always",))


def _deployment(e: Errors, d: Deployment, cfg: ClusterConfig | None) -> None:
    _workload(e, d.spec.replicas, d.spec.selector, d.spec.template)
    strategy = d.spec.strategy.type if d.spec.strategy else None
    if strategy is not None and strategy not in ("Recreate", "RollingUpdate"):
        e.unsupported("spec.strategy.type", strategy, ("Recreate", "RollingUpdate"))


def _replicaset(e: Errors, rs: ReplicaSet, cfg: ClusterConfig | None) -> None:
    _workload(e, rs.spec.replicas, rs.spec.selector, rs.spec.template)


# --- StatefulSet / DaemonSet -----------------------------------------------------------------


def _set_selector(e: Errors, what: str, selector: LabelSelector | None, template: PodTemplateSpec) -> None:
    labels = template.metadata.labels or {}
    if selector is None:
        e.required("spec.selector")
    elif e.label_selector("spec.selector", selector):
        if not selector.matchLabels and not selector.matchExpressions:
            e.invalid("spec.selector", {}, f"empty selector is invalid for {what}")
        elif not selector_matches(selector, labels):
            e.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    e.labels("spec.template.metadata.labels", template.metadata.labels)
    pod_spec(e, "spec.template.spec", template.spec, restart_policies=("Always",))


def _update_strategy(e: Errors, strategy: StatefulSetUpdateStrategy | DaemonSetUpdateStrategy | None) -> str:
    kind = (strategy.type if strategy else None) or "RollingUpdate"
    if kind not in ("RollingUpdate", "OnDelete"):
        e.unsupported("spec.updateStrategy.type", kind, ("OnDelete", "RollingUpdate"))
    elif kind == "OnDelete" and strategy is not None and strategy.rollingUpdate is not None:
        e.invalid(
            "spec.updateStrategy.rollingUpdate",
            msgspec.to_builtins(strategy.rollingUpdate),
            "only allowed for updateStrategy 'RollingUpdate'",
        )
    return kind


def _statefulset(e: Errors, sts: StatefulSet, cfg: ClusterConfig | None) -> None:
    spec = sts.spec
    # serviceName is optional; when given it becomes each pod's subdomain, so it must be a label.
    if spec.serviceName:
        e.invalid_each("spec.serviceName", spec.serviceName, is_dns1123_label(spec.serviceName))
    policy = spec.podManagementPolicy
    if policy is not None and policy not in ("OrderedReady", "Parallel"):
        e.unsupported("spec.podManagementPolicy", policy, ("OrderedReady", "Parallel"))
    if _update_strategy(e, spec.updateStrategy) == "RollingUpdate":
        rolling = spec.updateStrategy.rollingUpdate if spec.updateStrategy else None
        partition = rolling.partition if rolling else None
        if isinstance(partition, int) and partition < 0:
            e.invalid("spec.updateStrategy.rollingUpdate.partition", partition, "must be greater than or equal to 0")
    for field in ("replicas", "minReadySeconds"):
        v = getattr(spec, field)
        if v is not None and v < 0:
            e.invalid(f"spec.{field}", v, "must be greater than or equal to 0")
    _set_selector(e, "statefulset", spec.selector, spec.template)


def _daemonset(e: Errors, ds: DaemonSet, cfg: ClusterConfig | None) -> None:
    spec = ds.spec
    _update_strategy(e, spec.updateStrategy)
    if spec.minReadySeconds is not None and spec.minReadySeconds < 0:
        e.invalid("spec.minReadySeconds", spec.minReadySeconds, "must be greater than or equal to 0")
    _set_selector(e, "daemonset", spec.selector, spec.template)


CHECKS: dict[type[Object], Check] = {
    Deployment: _deployment,
    ReplicaSet: _replicaset,
    StatefulSet: _statefulset,
    DaemonSet: _daemonset,
}
