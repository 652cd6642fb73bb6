"""``kubectl describe statefulset`` and ``kubectl describe daemonset``.

Both count the pods their selector picks by phase, as kubectl's getPodStatusForController
does. The API server defaults a StatefulSet's update strategy to RollingUpdate with partition
0, so the page shows that for a set that names none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..api.apps import DaemonSet, RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetUpdateStrategy
from ..api.core import Pod
from ..api.meta import LabelSelector, selector_matches
from .common import format_labels, rfc1123z, selector_string
from .describe import _annotations, _events, _labels, _now, _Page, _pod_template
from .events import EventRow


def _pods_status(selector: LabelSelector | None, namespace: str, pods: Sequence[Pod]) -> str:
    counts = {"Running": 0, "Pending": 0, "Succeeded": 0, "Failed": 0}
    for p in pods:
        if p.namespace != namespace or selector is None or not selector_matches(selector, p.labels):
            continue
        phase = (p.status.phase if p.status else None) or "Pending"
        if phase in counts:
            counts[phase] += 1
    return (
        f"Pods Status:\t{counts['Running']} Running / {counts['Pending']} Waiting / "
        f"{counts['Succeeded']} Succeeded / {counts['Failed']} Failed\n"
    )


def _claims(p: _Page, templates: list[dict[str, Any]] | None) -> None:
    """kubectl's describeVolumeClaimTemplates."""
    if not templates:
        p.w(0, "Volume Claims:\t<none>\n")
        return
    p.w(0, "Volume Claims:\n")
    for t in templates:
        meta = t.get("metadata") or {}
        spec = t.get("spec") or {}
        p.w(1, f"Name:\t{meta.get('name', '')}\n")
        p.w(1, f"StorageClass:\t{spec.get('storageClassName') or ''}\n")
        _labels(p, "  Labels", meta.get("labels"))
        _annotations(p, meta.get("annotations"), "  Annotations")
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        p.w(1, f"Capacity:\t{storage if storage is not None else '<default>'}\n")
        p.w(1, f"Access Modes:\t[{' '.join(spec.get('accessModes') or [])}]\n")


def describe_statefulset(
    sts: StatefulSet,
    pods: Sequence[Pod] = (),
    events: Sequence[EventRow] | None = (),
    *,
    now: datetime | None = None,
) -> str:
    spec = sts.spec
    p = _Page()
    p.w(0, f"Name:\t{sts.name}\n")
    p.w(0, f"Namespace:\t{sts.namespace}\n")
    p.w(0, f"CreationTimestamp:\t{rfc1123z(sts.metadata.creationTimestamp)}\n")
    p.w(0, f"Selector:\t{selector_string(spec.selector)}\n")
    _labels(p, "Labels", sts.metadata.labels)
    _annotations(p, sts.metadata.annotations)
    replicas = spec.replicas if spec.replicas is not None else 1
    p.w(0, f"Replicas:\t{replicas} desired | {sts.status.replicas if sts.status else 0} total\n")
    strategy = spec.updateStrategy or StatefulSetUpdateStrategy()
    kind = strategy.type or "RollingUpdate"
    p.w(0, f"Update Strategy:\t{kind}\n")
    if kind == "RollingUpdate":
        ru = strategy.rollingUpdate or RollingUpdateStatefulSetStrategy()
        p.w(1, f"Partition:\t{ru.partition or 0}\n")
        if ru.maxUnavailable is not None:
            p.w(1, f"MaxUnavailable:\t{ru.maxUnavailable}\n")
    p.w(0, _pods_status(spec.selector, sts.namespace, pods))
    _pod_template(p, spec.template)
    _claims(p, spec.volumeClaimTemplates)
    _events(p, events, _now(now))
    return p.text()


def describe_daemonset(
    ds: DaemonSet,
    pods: Sequence[Pod] = (),
    events: Sequence[EventRow] | None = (),
    *,
    now: datetime | None = None,
) -> str:
    spec = ds.spec
    st = ds.status
    p = _Page()
    p.w(0, f"Name:\t{ds.name}\n")
    p.w(0, f"Selector:\t{selector_string(spec.selector)}\n")
    p.w(0, f"Node-Selector:\t{format_labels(spec.template.spec.nodeSelector)}\n")
    _labels(p, "Labels", ds.metadata.labels)
    _annotations(p, ds.metadata.annotations)
    # kubectl writes these five without a tab, so they stay out of the aligned column.
    p.w(0, f"Desired Number of Nodes Scheduled: {st.desiredNumberScheduled if st else 0}\n")
    p.w(0, f"Current Number of Nodes Scheduled: {st.currentNumberScheduled if st else 0}\n")
    p.w(0, f"Number of Nodes Scheduled with Up-to-date Pods: {(st.updatedNumberScheduled if st else None) or 0}\n")
    p.w(0, f"Number of Nodes Scheduled with Available Pods: {(st.numberAvailable if st else None) or 0}\n")
    p.w(0, f"Number of Nodes Misscheduled: {st.numberMisscheduled if st else 0}\n")
    p.w(0, _pods_status(spec.selector, ds.namespace, pods))
    _pod_template(p, spec.template)
    _events(p, events, _now(now))
    return p.text()
