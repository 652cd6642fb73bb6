"""The 5-field cron parser and the CronJob controller on a MemoryStore with a moved clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from msgspec.structs import replace

from kins.api.batch import CronJob, CronJobStatus, Job, JobStatus
from kins.api.cron import CronError, parse
from kins.api.load import load_text
from kins.api.meta import Condition
from kins.api.validation import validate
from kins.control.base import run_until_stable
from kins.control.cronjob import SCHEDULED_AT, CronJobController
from kins.control.events import EventRecorder, timestamp
from kins.control.garbage import GarbageCollector
from kins.store.memory import MemoryStore
from kins.views import format_table

CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: default}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    metadata: {labels: {app: tick}}
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: tick, image: busybox, command: [date]}]
"""

T0 = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC).timestamp()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "after", "want"),
    [
        ("*/15 9-17 * * mon-fri", "2024-05-03T17:50", "2024-05-06T09:00"),
        ("@hourly", "2024-05-03T17:50", "2024-05-03T18:00"),
        ("@monthly", "2024-12-31T23:59", "2025-01-01T00:00"),
        ("0 0 13 * 5", "2024-05-03T17:50", "2024-05-10T00:00"),  # day 13 OR a Friday
        ("0 0 13 * *", "2024-05-03T17:50", "2024-05-13T00:00"),
        ("30 4 * JAN,jul 7", "2024-05-03T17:50", "2024-07-07T04:30"),  # 7 is Sunday
        ("5/20 * * * *", "2024-05-03T17:50", "2024-05-03T18:05"),
        ("0 12 29 2 *", "2024-03-01T00:00", "2028-02-29T12:00"),
    ],
)
def test_next_after(schedule: str, after: str, want: str) -> None:
    assert parse(schedule).next_after(at(after)) == at(want)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("60 * * * *", "value out of range (0-59): 60"),
        ("* * * foo *", "failed to parse int from foo"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("*/0 * * * *", "invalid step in */0"),
    ],
)
def test_parse_errors(schedule: str, message: str) -> None:
    with pytest.raises(CronError, match=re.escape(message)):
        parse(schedule)


class Env:
    def __init__(self, **spec: object) -> None:
        self.store = MemoryStore()
        self.t = T0
        self.events = EventRecorder(self.store, clock=lambda: self.t)
        self.ctrl = CronJobController(self.store, self.events, clock=lambda: self.t)
        cj = load_text(CRONJOB)[0]
        assert isinstance(cj, CronJob)
        created = self.store.create(replace(cj, spec=replace(cj.spec, **spec)))
        # The store stamps its own creation time: the schedule counts from a last run at 12:00.
        self.store.update(replace(created, status=CronJobStatus(lastScheduleTime="2024-05-01T12:00:00Z")))

    def settle(self) -> None:
        # With the garbage collector: a deleted owner's dependents are its to delete.
        run_until_stable(self.store, [self.ctrl, GarbageCollector(self.store)])

    def cronjob(self) -> CronJob:
        cj = self.store.get("CronJob", "default", "tick")
        assert isinstance(cj, CronJob)
        return cj

    def jobs(self) -> list[Job]:
        return sorted((j for j in self.store.list("Job")[0] if isinstance(j, Job)), key=lambda j: j.name)

    def finish(self, job: Job, how: str) -> None:
        cond = Condition(type=how, status="True")
        st = JobStatus(conditions=[cond], startTime=timestamp(self.t), completionTime=timestamp(self.t))
        self.store.update(replace(job, status=st if how == "Complete" else replace(st, completionTime=None)))

    def reasons(self) -> list[str]:
        self.events.flush()
        return [e.reason or "" for e in self.store.list("Event")[0]]  # type: ignore[attr-defined]


def test_runs_at_each_scheduled_minute_with_kubernetes_names() -> None:
    env = Env()
    env.settle()
    assert env.jobs() == []
    env.t = at("2024-05-01T12:05:00").timestamp()
    env.settle()  # woken by its own schedule
    (job,) = env.jobs()
    minute = int(env.t) // 60
    assert job.name == f"tick-{minute}"
    assert job.labels == {"app": "tick"}
    assert (job.metadata.annotations or {})[SCHEDULED_AT] == "2024-05-01T12:05:00+00:00"
    ref = (job.metadata.ownerReferences or [])[0]
    assert (ref.kind, ref.name, ref.controller) == ("CronJob", "tick", True)
    st = env.cronjob().status
    assert st is not None and st.lastScheduleTime == "2024-05-01T12:05:00Z"
    assert [a.name for a in st.active or []] == [job.name]
    assert "SuccessfulCreate" in env.reasons()
    row = format_table("CronJob", [env.cronjob()], wide=False, all_namespaces=False, now=at("2024-05-01T12:06:00"))
    head, line = row.splitlines()
    assert [c.strip() for c in head.split("   ") if c.strip()] == [
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST SCHEDULE",
        "AGE",
    ]
    # (the store stamped the creation time, so AGE is not checked)
    assert line.split()[:8] == ["tick", "*/5", "*", "*", "*", "*", "<none>", "False"]
    assert line.split()[8:10] == ["1", "60s"]


def test_missed_times_run_once_and_a_late_start_is_skipped() -> None:
    env = Env(startingDeadlineSeconds=60)
    env.t = at("2024-05-01T12:31:30").timestamp()  # six times missed, the latest 90 s ago
    env.settle()
    assert env.jobs() == [] and "MissSchedule" in env.reasons()
    env2 = Env()
    env2.t = at("2024-05-01T12:31:30").timestamp()
    env2.settle()
    assert [j.name for j in env2.jobs()] == [f"tick-{int(at('2024-05-01T12:30:00').timestamp()) // 60}"]


def test_forbid_skips_while_active_and_replace_deletes() -> None:
    env = Env(concurrencyPolicy="Forbid")
    env.t = at("2024-05-01T12:05:00").timestamp()
    env.settle()
    env.t = at("2024-05-01T12:10:00").timestamp()
    env.settle()
    assert len(env.jobs()) == 1 and "JobAlreadyActive" in env.reasons()
    env = Env(concurrencyPolicy="Replace")
    env.t = at("2024-05-01T12:05:00").timestamp()
    env.settle()
    first = env.jobs()[0].name
    env.t = at("2024-05-01T12:10:00").timestamp()
    env.settle()
    assert [j.name for j in env.jobs()] != [first] and len(env.jobs()) == 1


def test_history_limits_and_last_successful_time() -> None:
    env = Env(successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1)
    for i, how in enumerate(["Complete", "Failed", "Complete", "Failed", "Complete"]):
        env.t = at("2024-05-01T12:00:00").timestamp() + 300 * (i + 1)
        env.settle()
        newest = env.jobs()[-1]
        env.t += 10
        env.finish(newest, how)
        env.settle()
    states = [(j.name, (j.status.conditions or [])[0].type) for j in env.jobs() if j.status]
    minutes = [int(at("2024-05-01T12:00:00").timestamp()) // 60 + 5 * (i + 1) for i in range(5)]
    assert states == [
        (f"tick-{minutes[2]}", "Complete"),
        (f"tick-{minutes[3]}", "Failed"),
        (f"tick-{minutes[4]}", "Complete"),
    ]
    st = env.cronjob().status
    assert st is not None and st.active is None
    assert st.lastSuccessfulTime == "2024-05-01T12:25:10Z"
    assert {"SuccessfulDelete", "SawCompletedJob"} <= set(env.reasons())


def test_suspended_cronjob_creates_nothing() -> None:
    env = Env(suspend=True)
    env.t = at("2024-05-01T12:05:00").timestamp()
    env.settle()
    assert env.jobs() == []


def test_time_zone() -> None:
    env = Env(schedule="0 14 * * *", timeZone="Europe/Paris")  # 14:00 in Paris is 12:00 UTC in May
    env.t = at("2024-05-02T12:00:00").timestamp()
    env.settle()
    (job,) = env.jobs()
    assert (job.metadata.annotations or {})[SCHEDULED_AT] == datetime(
        2024, 5, 2, 14, 0, tzinfo=ZoneInfo("Europe/Paris")
    ).isoformat()


def test_validation() -> None:
    cj = load_text(CRONJOB)[0]
    assert isinstance(cj, CronJob)
    assert validate(cj) == []
    bad = replace(cj, spec=replace(cj.spec, schedule="61 * * * *", concurrencyPolicy="Sometimes"))
    msgs = [str(e) for e in validate(bad)]
    assert any('spec.schedule: Invalid value: "61 * * * *": value out of range (0-59): 61' in m for m in msgs)
    assert any('spec.concurrencyPolicy: Unsupported value: "Sometimes"' in m for m in msgs)
    tmpl = cj.spec.jobTemplate
    always = replace(tmpl.spec.template, spec=replace(tmpl.spec.template.spec, restartPolicy="Always"))
    bad = replace(cj, spec=replace(cj.spec, jobTemplate=replace(tmpl, spec=replace(tmpl.spec, template=always))))
    msgs = [str(e) for e in validate(bad)]
    assert any('spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always"' in m for m in msgs)


def test_deleting_a_cronjob_deletes_its_jobs() -> None:
    env = Env()
    env.t = at("2024-05-01T12:05:00").timestamp()
    env.settle()
    assert len(env.jobs()) == 1
    env.store.delete("CronJob", "default", "tick")
    env.settle()
    assert env.jobs() == []
