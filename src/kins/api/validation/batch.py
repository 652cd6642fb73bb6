"""The batch API group: Job, CronJob."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..batch import CronJob, Job, JobSpec
from ..config import ClusterConfig
from ..cron import CronError, parse
from ..meta import Object, selector_matches
from .common import Check, Errors
from .core import pod_spec

# --- Job ------------------------------------------------------------------------------------

_JOB_RESTART_POLICIES = ("OnFailure", "Never")


def _job_spec(e: Errors, path: str, spec: JobSpec) -> None:
    for field in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        v = getattr(spec, field)
        if v is not None and v < 0:
            e.invalid(f"{path}.{field}", v, "must be greater than or equal to 0")
    mode = spec.completionMode
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        e.unsupported(f"{path}.completionMode", mode, ("NonIndexed", "Indexed"))
    if mode == "Indexed" and spec.completions is None:
        e.required(f"{path}.completions", "when completion mode is Indexed")
    labels = spec.template.metadata.labels or {}
    sel = spec.selector
    if sel is not None and e.label_selector(f"{path}.selector", sel) and not selector_matches(sel, labels):
        e.invalid(f"{path}.template.metadata.labels", labels, "`selector` does not match template `labels`")
    e.labels(f"{path}.template.metadata.labels", spec.template.metadata.labels)
    # The API server defaults an unset restartPolicy to Always, which a Job refuses.
    policy = spec.template.spec.restartPolicy or "Always"
    if policy not in _JOB_RESTART_POLICIES:
        e.unsupported(f"{path}.template.spec.restartPolicy", policy, _JOB_RESTART_POLICIES)
    pod_spec(e, f"{path}.template.spec", spec.template.spec, restart_policies=(*_JOB_RESTART_POLICIES, "Always"))


def _job(e: Errors, job: Job, cfg: ClusterConfig | None) -> None:
    _job_spec(e, "spec", job.spec)


def _cronjob(e: Errors, cj: CronJob, cfg: ClusterConfig | None) -> None:
    spec = cj.spec
    # Its Jobs append 11 characters (-<minutes since the epoch>) to the name.
    if len(cj.name) > 52:
        e.invalid("metadata.name", cj.name, "must be no more than 52 characters")
    if not spec.schedule:
        e.required("spec.schedule")
    elif "TZ" in spec.schedule:
        e.invalid("spec.schedule", spec.schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    else:
        try:
            parse(spec.schedule)
        except CronError as err:
            e.invalid("spec.schedule", spec.schedule, str(err))
    if spec.timeZone is not None:
        try:
            ZoneInfo(spec.timeZone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            e.invalid("spec.timeZone", spec.timeZone, f"unknown time zone {spec.timeZone}")
    policy = spec.concurrencyPolicy
    if policy is not None and policy not in ("Allow", "Forbid", "Replace"):
        e.unsupported("spec.concurrencyPolicy", policy, ("Allow", "Forbid", "Replace"))
    for field in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        v = getattr(spec, field)
        if v is not None and v < 0:
            e.invalid(f"spec.{field}", v, "must be greater than or equal to 0")
    _job_spec(e, "spec.jobTemplate.spec", spec.jobTemplate.spec)


CHECKS: dict[type[Object], Check] = {
    Job: _job,
    CronJob: _cronjob,
}
