"""CronJob -> Jobs on a cron schedule, after Kubernetes' CronJob controller (v2).

At each scheduled minute a Job ``<cronjob>-<scheduled time in minutes since the epoch>`` is made
from ``jobTemplate`` (owned by the CronJob, annotated with the scheduled time). Only the latest
missed time is run; one later than ``startingDeadlineSeconds`` is skipped. ``concurrencyPolicy``
Forbid skips a run while a Job is active, Replace deletes the active ones first. Finished Jobs
beyond ``successfulJobsHistoryLimit`` (3) / ``failedJobsHistoryLimit`` (1) are deleted, oldest
first. Like the Job controller it offers its next scheduled time through ``due()``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.batch import CronJob, CronJobStatus, Job
from ..api.core import ObjectReference
from ..api.cron import CronError, parse
from ..api.meta import ObjectMeta
from ..store.base import Store, WatchEvent
from .base import WakeUps, controller_of, owner_ref, split_key
from .events import NO_EVENTS, NORMAL, WARNING, EventSink, parse_timestamp, timestamp
from .job import finished

COMPONENT = "cronjob-controller"
SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100  # the controller's cap on missed start times it looks through


def _zone(name: str | None) -> tzinfo:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


class CronJobController:
    name = "cronjob"
    kinds = frozenset({"CronJob", "Job"})

    def __init__(self, store: Store, events: EventSink = NO_EVENTS, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.events = events
        self.clock = clock
        self._wake = WakeUps()

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        if isinstance(o, CronJob):
            return (o.key,)
        ref = controller_of(o)
        return (f"{o.namespace}/{ref.name}",) if ref is not None and ref.kind == "CronJob" else ()

    def start_keys(self) -> Iterable[str]:
        return ()

    def due(self) -> list[str]:
        return self._wake.due(self.clock())

    def _jobs(self, cj: CronJob) -> list[Job]:
        out = []
        for j in self.store.list("Job", cj.namespace)[0]:
            ref = controller_of(j)
            if isinstance(j, Job) and ref is not None and ref.uid == cj.metadata.uid:
                out.append(j)
        return out

    def _delete_job(self, cj: CronJob, job: Job) -> None:
        with contextlib.suppress(NotFound):
            self.store.delete("Job", job.namespace, job.name)
            self.events.event(cj, NORMAL, "SuccessfulDelete", f"Deleted job {job.name}", component=COMPONENT)

    def reconcile(self, key: str) -> bool:
        ns, name = split_key(key)
        try:
            cj = self.store.get("CronJob", ns, name)
        except NotFound:
            # Deleted: the garbage collector deletes its Jobs (or they were orphaned).
            self._wake.cancel(key)
            return False
        assert isinstance(cj, CronJob)
        if cj.metadata.deletionTimestamp:
            return False  # being deleted: the garbage collector owns its Jobs now
        self._wake.cancel(key)
        try:
            sched = parse(cj.spec.schedule)
        except CronError as e:
            self.events.event(cj, WARNING, "UnparseableSchedule", f"unparseable schedule: {e}", component=COMPONENT)
            return False
        now = self.clock()
        zone = _zone(cj.spec.timeZone)
        old = cj.status or CronJobStatus()
        jobs = self._jobs(cj)
        changed = False
        last_success = old.lastSuccessfulTime
        done_at = [j.status.completionTime for j in jobs if finished(j) == "Complete" and j.status]
        last_success = max([t for t in (*done_at, last_success) if t], default=None)
        active = [j for j in jobs if finished(j) is None]
        was_active = {a.name for a in old.active or []}
        for j in jobs:
            state = finished(j)
            if state is not None and j.name in was_active:
                msg = f"Saw completed job: {j.name}, condition: {state}"
                self.events.event(cj, NORMAL, "SawCompletedJob", msg, component=COMPONENT)

        # The latest scheduled time not yet run, if any.
        since = parse_timestamp(old.lastScheduleTime or cj.metadata.creationTimestamp) or now
        t = datetime.fromtimestamp(since, zone)
        due: datetime | None = None
        for _ in range(MAX_MISSED):
            nxt = sched.next_after(t)
            if nxt.timestamp() > now:
                break
            due = t = nxt
        else:
            due = t
            self.events.event(
                cj, WARNING, "TooManyMissedTimes", "too many missed start times, check clock skew", component=COMPONENT
            )
        schedule_time = old.lastScheduleTime
        if due is not None and not cj.spec.suspend:
            late = now - due.timestamp()
            deadline = cj.spec.startingDeadlineSeconds
            policy = cj.spec.concurrencyPolicy or "Allow"
            if deadline is not None and late > deadline:
                self.events.event(
                    cj,
                    WARNING,
                    "MissSchedule",
                    f"Missed scheduled time to start a job: {timestamp(due.timestamp())}",
                    component=COMPONENT,
                )
                schedule_time = timestamp(due.timestamp())
            elif policy == "Forbid" and active:
                self.events.event(
                    cj, NORMAL, "JobAlreadyActive", "Not starting job because prior execution is running and "
                    "concurrency policy is Forbid", component=COMPONENT,
                )  # fmt: skip
            else:
                if policy == "Replace":
                    for j in active:
                        self._delete_job(cj, j)
                    active = []
                job = self._new_job(cj, due)
                try:
                    created = self.store.create(job)
                except Conflict:
                    created = None
                if created is not None:
                    assert isinstance(created, Job)
                    active.append(created)
                    self.events.event(cj, NORMAL, "SuccessfulCreate", f"Created job {job.name}", component=COMPONENT)
                schedule_time = timestamp(due.timestamp())
                changed = True
        changed = self._history(cj, jobs) or changed
        nxt = sched.next_after(datetime.fromtimestamp(now, zone))
        self._wake.at(key, nxt.timestamp())
        status = CronJobStatus(
            active=[
                ObjectReference(
                    kind="Job", namespace=j.namespace, name=j.name, uid=j.metadata.uid, apiVersion="batch/v1"
                )
                for j in sorted(active, key=lambda j: j.name)
            ]
            or None,
            lastScheduleTime=schedule_time,
            lastSuccessfulTime=last_success,
        )
        if status != cj.status:
            self.store.update(replace(cj, status=status), check_rv=False)
            changed = True
        return changed

    def _history(self, cj: CronJob, jobs: list[Job]) -> bool:
        changed = False
        for state, limit, default in (
            ("Complete", cj.spec.successfulJobsHistoryLimit, 3),
            ("Failed", cj.spec.failedJobsHistoryLimit, 1),
        ):
            keep = default if limit is None else limit
            done = [j for j in jobs if finished(j) == state]
            done.sort(key=lambda j: (j.status.startTime if j.status else None) or j.metadata.creationTimestamp or "")
            for j in done[: max(0, len(done) - keep)]:
                self._delete_job(cj, j)
                changed = True
        return changed

    def _new_job(self, cj: CronJob, at: datetime) -> Job:
        tmpl = cj.spec.jobTemplate
        annotations = {**(tmpl.metadata.annotations or {}), SCHEDULED_AT: at.isoformat()}
        return Job(
            metadata=ObjectMeta(
                name=f"{cj.name}-{int(at.timestamp()) // 60}",
                namespace=cj.namespace,
                labels=dict(tmpl.metadata.labels) if tmpl.metadata.labels else None,
                annotations=annotations,
                ownerReferences=[owner_ref(cj)],
            ),
            spec=tmpl.spec,
        )


__all__ = ["SCHEDULED_AT", "CronJobController"]
