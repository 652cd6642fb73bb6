"""``kubectl describe job``.

kins stores a Job as it was sent; the API server would have filled in its defaults (one
completion, parallelism 1, NonIndexed, backoffLimit 6) and the generated selector and labels,
so the page shows those as kubectl would read them back from a real cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from msgspec.structs import replace

from ..api.batch import Job
from ..control.job import (
    CONTROLLER_UID,
    DEFAULT_BACKOFF_LIMIT,
    JOB_NAME,
    LEGACY_CONTROLLER_UID,
    LEGACY_JOB_NAME,
)
from .common import human_duration, parse_time, rfc1123z
from .describe import _annotations, _controller, _events, _labels, _now, _Page, _pod_template
from .events import EventRow
from .table import job_selector


def describe_job(job: Job, events: Sequence[EventRow] | None = (), *, now: datetime | None = None) -> str:
    spec = job.spec
    st = job.status
    uid = job.metadata.uid or ""
    generated = {CONTROLLER_UID: uid, JOB_NAME: job.name, LEGACY_CONTROLLER_UID: uid, LEGACY_JOB_NAME: job.name}
    tmpl = spec.template
    if spec.selector is None:
        tmpl = replace(tmpl, metadata=replace(tmpl.metadata, labels={**(tmpl.metadata.labels or {}), **generated}))
    p = _Page()
    p.w(0, f"Name:\t{job.name}\n")
    p.w(0, f"Namespace:\t{job.namespace}\n")
    p.w(0, f"Selector:\t{job_selector(job)}\n")
    _labels(p, "Labels", job.metadata.labels or tmpl.metadata.labels)
    _annotations(p, job.metadata.annotations)
    if owner := _controller(job):
        p.w(0, f"Controlled By:\t{owner}\n")
    both_unset = spec.completions is None and spec.parallelism is None
    p.w(0, f"Parallelism:\t{spec.parallelism if spec.parallelism is not None else 1}\n")
    completions = 1 if both_unset else spec.completions
    p.w(0, f"Completions:\t{completions if completions is not None else '<unset>'}\n")
    p.w(0, f"Completion Mode:\t{spec.completionMode or 'NonIndexed'}\n")
    p.w(0, f"Suspend:\t{'true' if spec.suspend else 'false'}\n")
    limit = spec.backoffLimit if spec.backoffLimit is not None else DEFAULT_BACKOFF_LIMIT
    p.w(0, f"Backoff Limit:\t{limit}\n")
    if spec.ttlSecondsAfterFinished is not None:
        p.w(0, f"TTL Seconds After Finished:\t{spec.ttlSecondsAfterFinished}\n")
    start = st.startTime if st else None
    end = st.completionTime if st else None
    if start:
        p.w(0, f"Start Time:\t{rfc1123z(start)}\n")
    if end:
        p.w(0, f"Completed At:\t{rfc1123z(end)}\n")
    t0, t1 = parse_time(start), parse_time(end)
    if t0 is not None and t1 is not None:
        p.w(0, f"Duration:\t{human_duration(t1 - t0)}\n")
    if spec.activeDeadlineSeconds is not None:
        p.w(0, f"Active Deadline Seconds:\t{spec.activeDeadlineSeconds}s\n")
    active = (st.active if st else None) or 0
    ok = (st.succeeded if st else None) or 0
    failed = (st.failed if st else None) or 0
    ready = st.ready if st else None
    if ready is None:
        p.w(0, f"Pods Statuses:\t{active} Active / {ok} Succeeded / {failed} Failed\n")
    else:
        p.w(0, f"Pods Statuses:\t{active} Active ({ready} Ready) / {ok} Succeeded / {failed} Failed\n")
    if spec.completionMode == "Indexed":
        p.w(0, f"Completed Indexes:\t{(st.completedIndexes if st else None) or '<none>'}\n")
    _pod_template(p, tmpl)
    _events(p, events, _now(now))
    return p.text()


__all__ = ["describe_job"]
