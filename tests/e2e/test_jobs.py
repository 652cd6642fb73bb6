"""Live: Jobs whose pods run to completion (a smoke test against a Service) or fail past their
backoffLimit, seen through kins get / describe / wait / logs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from e2e_helpers import Cluster, poll, running_cluster

from kins.api.batch import Job
from kins.api.core import Pod

pytestmark = pytest.mark.root

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.39
        args: [netexec, --http-port=8080]
        readinessProbe: {httpGet: {port: 8080, path: /}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""

SMOKE = """
apiVersion: batch/v1
kind: Job
metadata: {name: smoke}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: probe
        image: busybox
        command: [sh, -c, "echo probing; curl -sf --max-time 3 http://%s/hostname && echo && echo smoke-ok && exit 0"]
"""

BROKEN = """
apiVersion: batch/v1
kind: Job
metadata: {name: broken}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: fail
        image: busybox
        command: [sh, -c, "echo about to fail; exit 1"]
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(apps=False) as c:
        yield c


def job_pods(c: Cluster, job: str) -> list[Pod]:
    return [p for p in c.client.list("Pod") if isinstance(p, Pod) and p.labels.get("job-name") == job]


def test_a_smoke_test_job_completes_against_a_service(cluster: Cluster) -> None:
    cluster.apply_text(WEB)
    cluster.wait_ready("web-", 1)
    ip = cluster.service("web").spec.clusterIP
    poll(lambda: cluster.endpoint_ips("web"), 15, "web's endpoint")
    cluster.wait_rules_synced()
    cluster.apply_text(SMOKE % ip)
    res = cluster.kins("wait", "--for=condition=complete", "job/smoke", "--timeout", "60s", check=False, timeout=90)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "job.batch/smoke condition met" in res.stdout
    job = cluster.client.get("Job", "default", "smoke")
    assert isinstance(job, Job) and job.status is not None
    assert job.status.succeeded == 1 and job.status.completionTime
    assert [c.type for c in job.status.conditions or []] == ["SuccessCriteriaMet", "Complete"]
    (pod,) = job_pods(cluster, "smoke")
    assert pod.status is not None and pod.status.phase == "Succeeded"
    assert pod.labels["batch.kubernetes.io/controller-uid"] == job.metadata.uid
    logs = cluster.kins("logs", pod.name).stdout
    assert "probing" in logs and "smoke-ok" in logs and "web-" in logs  # netexec's /hostname: the pod name
    table = cluster.kins("get", "jobs").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert table[1].split()[:3] == ["smoke", "Complete", "1/1"]
    page = cluster.kins("describe", "job", "smoke").stdout
    assert "Pods Statuses:    0 Active (0 Ready) / 1 Succeeded / 0 Failed" in page
    assert f"Created pod: {pod.name}" in page or "SuccessfulCreate" in page


def test_a_failing_job_stops_at_its_backoff_limit(cluster: Cluster) -> None:
    cluster.apply_text(BROKEN)
    res = cluster.kins("wait", "--for=condition=failed", "job/broken", "--timeout", "60s", check=False, timeout=90)
    assert res.returncode == 0, res.stdout + res.stderr
    job = cluster.client.get("Job", "default", "broken")
    assert isinstance(job, Job) and job.status is not None
    conds = [(c.type, c.reason) for c in job.status.conditions or []]
    assert conds == [("FailureTarget", "BackoffLimitExceeded"), ("Failed", "BackoffLimitExceeded")]
    assert job.status.failed == 2 and not job.status.active
    pods = job_pods(cluster, "broken")
    assert len(pods) == 2 and all(p.status and p.status.phase == "Failed" for p in pods)
    assert "about to fail" in cluster.kins("logs", pods[0].name).stdout
    row = cluster.kins("get", "job", "broken").stdout.splitlines()[1].split()
    assert row[:3] == ["broken", "Failed", "0/1"]
    # the controller's events, as kubectl describe job lists them
    poll(lambda: "BackoffLimitExceeded" in cluster.kins("describe", "job", "broken").stdout, 10, "the event")
    # the job is a wait condition too: complete never comes
    res = cluster.kins("wait", "--for=condition=complete", "job/broken", "--timeout", "1s", check=False)
    assert res.returncode == 1


TICK = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "* * * * *"
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: tick, image: busybox, command: [sh, -c, "echo tick"]}]
"""


def test_a_cronjob_starts_a_job_at_the_next_minute(cluster: Cluster) -> None:
    cluster.apply_text(TICK)

    def completed() -> Job | None:
        for j in cluster.client.list("Job"):
            if isinstance(j, Job) and j.name.startswith("tick-") and j.status and j.status.completionTime:
                return j
        return None

    job = poll(completed, 90, "the CronJob's first Job to complete", interval=0.5)
    minute = int(job.name.removeprefix("tick-"))
    scheduled = (job.metadata.annotations or {})["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert scheduled.startswith(time.strftime("%Y-%m-%dT%H:%M:00", time.gmtime(minute * 60)))
    row = cluster.kins("get", "cj").stdout.splitlines()
    assert row[0].split()[:4] == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND"]
    assert row[1].split()[:8] == ["tick", "*", "*", "*", "*", "*", "<none>", "False"]
    (pod,) = job_pods(cluster, job.name)
    assert "tick" in cluster.kins("logs", pod.name).stdout
    cluster.kins("delete", "cronjob", "tick")
    gone = lambda: not [j for j in cluster.client.list("Job") if j.name.startswith("tick-")]  # noqa: E731
    poll(gone, 15, "the CronJob's Jobs to go with it")
    poll(lambda: not job_pods(cluster, job.name), 30, "their pods to go")
