"""Golden ``get job`` tables and ``describe job`` pages (tests/golden/views/jobs.yaml).

Set KINS_UPDATE_GOLDEN=1 to rewrite the expected files after an intended change.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kins.api.batch import Job
from kins.api.load import load_paths
from kins.views import format_table
from kins.views.describe_job import describe_job
from kins.views.events import EventRow

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "views"
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
JOBS = sorted((o for o in load_paths([str(GOLDEN / "jobs.yaml")]) if isinstance(o, Job)), key=lambda j: j.name)


def job(name: str) -> Job:
    return next(j for j in JOBS if j.name == name)


SMOKE_EVENTS = [
    EventRow("Normal", "SuccessfulCreate", "Created pod: smoke-x7k2p", "job-controller", "2024-05-01T11:50:00Z"),
    EventRow("Normal", "SuccessfulCreate", "Created pod: smoke-q9zt4", "job-controller", "2024-05-01T11:50:12Z"),
    EventRow(
        "Warning",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
        "job-controller",
        "2024-05-01T11:50:15Z",
    ),
]

CASES: dict[str, Callable[[], str]] = {
    "get-job.txt": lambda: format_table("Job", JOBS, wide=False, all_namespaces=False, now=NOW),
    "get-job-wide.txt": lambda: format_table("Job", JOBS, wide=True, all_namespaces=False, now=NOW),
    "describe-job-migrate.txt": lambda: describe_job(job("migrate"), [], now=NOW),
    "describe-job-smoke.txt": lambda: describe_job(job("smoke"), SMOKE_EVENTS, now=NOW),
    "describe-job-shards.txt": lambda: describe_job(job("shards"), None, now=NOW),
    "describe-job-queue.txt": lambda: describe_job(job("queue"), [], now=NOW),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    got = CASES[name]()
    path = GOLDEN / name
    if os.environ.get("KINS_UPDATE_GOLDEN") == "1":
        path.write_text(got)
    assert got == path.read_text()
