"""batch/v1 through the API's generic parts: discovery, resource names and kubectl Tables."""

from __future__ import annotations

from kins.api.registry import resolve_resource
from kins.api.resources import BY_KIND, GROUP_VERSIONS
from kins.apiserver.discovery import _group_body, _resource_list
from kins.apiserver.table import column_definitions


def test_batch_group_is_discovered() -> None:
    assert "batch/v1" in GROUP_VERSIONS
    body = _group_body("batch")
    assert body["preferredVersion"] == {"groupVersion": "batch/v1", "version": "v1"}
    names = {r["name"]: r for r in _resource_list("batch/v1")["resources"]}
    assert names["jobs"]["kind"] == "Job" and names["jobs"]["namespaced"] is True
    assert "watch" in names["jobs"]["verbs"] and "jobs/status" in names
    assert BY_KIND["Job"].path("default", "smoke") == "/apis/batch/v1/namespaces/default/jobs/smoke"


def test_job_resource_names() -> None:
    assert resolve_resource("jobs") == resolve_resource("job") == resolve_resource("jobs.batch") == "Job"


def test_job_table_columns() -> None:
    cols = [(c["name"], c["priority"]) for c in column_definitions("Job")]
    assert cols == [
        ("NAME", 0),
        ("STATUS", 0),
        ("COMPLETIONS", 0),
        ("DURATION", 0),
        ("AGE", 0),
        ("CONTAINERS", 1),
        ("IMAGES", 1),
        ("SELECTOR", 1),
    ]
