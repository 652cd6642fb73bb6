"""The Job controller on a MemoryStore, with a clock the tests move (no sleeping)."""

from __future__ import annotations

import random

import msgspec
import pytest
from msgspec.structs import replace

from kins.api.batch import Job
from kins.api.config import default_cluster
from kins.api.core import ContainerState, ContainerStatus, Pod, PodStatus
from kins.api.load import load_text
from kins.api.validation import validate
from kins.control.base import run_until_stable
from kins.control.events import EventRecorder, timestamp
from kins.control.garbage import GarbageCollector
from kins.control.job import JobController, format_indexes
from kins.control.offline import build_offline_state
from kins.store.base import NAME_ALPHABET
from kins.store.memory import MemoryStore

JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: smoke, namespace: default}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: probe, image: busybox, command: [sh, -c, "exit 0"]}]
"""

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


class Env:
    def __init__(self, **spec: object) -> None:
        self.store = MemoryStore()
        self.clock = Clock()
        self.events = EventRecorder(self.store, clock=self.clock)
        self.ctrl = JobController(self.store, random.Random(3), self.events, clock=self.clock)
        job = load_text(JOB)[0]
        assert isinstance(job, Job)
        self.store.create(replace(job, spec=replace(job.spec, **spec)))

    def settle(self) -> None:
        # With the garbage collector: a deleted owner's dependents are its to delete.
        run_until_stable(self.store, [self.ctrl, GarbageCollector(self.store)])

    def job(self) -> Job:
        j = self.store.get("Job", "default", "smoke")
        assert isinstance(j, Job)
        return j

    def pods(self, phase: str | None = None) -> list[Pod]:
        out = [p for p in self.store.list("Pod")[0] if isinstance(p, Pod)]
        return sorted(
            (p for p in out if phase is None or (p.status and p.status.phase) == phase),
            key=lambda p: p.metadata.creationTimestamp or "",
        )

    def running(self) -> list[Pod]:
        return [p for p in self.pods() if (p.status and p.status.phase) in ("Pending", "Running")]

    def finish(self, pod: Pod, code: int) -> None:
        """What the kubelet reports when the pod's only container exits with ``code``."""

        term = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "finishedAt": timestamp(self.clock.t),
        }
        st = PodStatus(
            phase="Succeeded" if code == 0 else "Failed",
            containerStatuses=[
                ContainerStatus(name="probe", state=msgspec.convert({"terminated": term}, ContainerState))
            ],
        )
        self.store.update(replace(pod, status=st), check_rv=False)

    def conditions(self) -> list[tuple[str, str, str | None]]:
        st = self.job().status
        return [(c.type, c.status, c.reason) for c in (st.conditions if st else None) or []]

    def event_reasons(self) -> list[tuple[str, str]]:
        self.events.flush()
        evs = self.store.list("Event")[0]
        return [(e.reason or "", e.message or "") for e in evs]  # type: ignore[attr-defined]


def test_one_pod_named_and_labelled_like_kubernetes() -> None:
    env = Env()
    env.settle()
    (pod,) = env.pods()
    job = env.job()
    uid = job.metadata.uid
    name = pod.name
    assert name.startswith("smoke-") and len(name) == len("smoke-") + 5
    assert set(name[len("smoke-") :]) <= set(NAME_ALPHABET)
    assert pod.labels == {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": "smoke",
        "controller-uid": uid,
        "job-name": "smoke",
    }
    ref = pod.metadata.ownerReferences[0]  # type: ignore[index]
    assert (ref.kind, ref.name, ref.uid, ref.controller) == ("Job", "smoke", uid, True)
    assert pod.spec.restartPolicy == "Never"
    st = job.status
    assert st is not None and st.active == 1 and st.startTime and not st.conditions
    assert ("SuccessfulCreate", f"Created pod: {name}") in env.event_reasons()


def test_completions_and_parallelism() -> None:
    env = Env(completions=5, parallelism=2)
    env.settle()
    assert len(env.running()) == 2
    for done in range(1, 5):
        env.finish(env.running()[0], 0)
        env.settle()
        assert env.job().status.succeeded == done  # type: ignore[union-attr]
        # never more running than still needed
        assert len(env.running()) == min(2, 5 - done)
    env.clock.t += 7
    env.finish(env.running()[0], 0)
    env.settle()
    st = env.job().status
    assert st is not None and st.succeeded == 5 and not st.active and len(env.pods()) == 5
    assert env.conditions() == [
        ("SuccessCriteriaMet", "True", "CompletionsReached"),
        ("Complete", "True", "CompletionsReached"),
    ]
    assert st.completionTime == "2023-11-14T22:13:27Z"
    assert ("Completed", "Job completed") in env.event_reasons()


def test_never_replaces_failed_pods_after_a_growing_back_off_until_the_limit() -> None:
    env = Env(backoffLimit=2)
    env.settle()
    env.finish(env.running()[0], 1)
    env.settle()
    assert env.running() == []  # backing off: 10 s after the failure
    env.clock.t += 9
    env.settle()
    assert env.running() == []
    env.clock.t += 1
    env.settle()
    assert len(env.running()) == 1 and env.job().status.failed == 1  # type: ignore[union-attr]
    env.finish(env.running()[0], 1)
    env.clock.t += 19
    env.settle()
    assert env.running() == []  # the second back-off is 20 s
    env.clock.t += 1
    env.settle()
    assert len(env.running()) == 1
    env.finish(env.running()[0], 1)
    env.settle()
    st = env.job().status
    assert st is not None and st.failed == 3 and not st.active and st.completionTime is None
    assert env.conditions() == [
        ("FailureTarget", "True", "BackoffLimitExceeded"),
        ("Failed", "True", "BackoffLimitExceeded"),
    ]
    assert len(env.pods("Failed")) == 3
    assert ("BackoffLimitExceeded", "Job has reached the specified backoff limit") in env.event_reasons()


def test_back_off_honours_a_small_base() -> None:
    env = Env(backoffLimit=1)
    env.ctrl.backoff_base = 0.0
    env.settle()
    env.finish(env.running()[0], 1)
    env.settle()
    assert len(env.running()) == 1


def test_on_failure_counts_container_restarts() -> None:
    env = Env(backoffLimit=2)
    job = env.job()
    tmpl = job.spec.template
    env.store.update(
        replace(job, spec=replace(job.spec, template=replace(tmpl, spec=replace(tmpl.spec, restartPolicy="OnFailure"))))
    )
    env.settle()
    (pod,) = env.pods()
    assert pod.spec.restartPolicy == "OnFailure"
    for restarts in (1, 2):
        pod = env.pods()[0]
        st = PodStatus(phase="Running", containerStatuses=[ContainerStatus(name="probe", restartCount=restarts)])
        env.store.update(replace(pod, status=st), check_rv=False)
        env.settle()
    # restarted in place, never replaced; at the limit the Job fails and its pod goes
    assert env.conditions()[-1] == ("Failed", "True", "BackoffLimitExceeded")
    assert env.pods() == []


def test_active_deadline() -> None:
    env = Env(activeDeadlineSeconds=30, parallelism=2, completions=4)
    env.settle()
    assert len(env.running()) == 2
    env.clock.t += 29
    env.settle()
    assert env.conditions() == []
    env.clock.t += 1
    env.settle()  # woken by the deadline itself, no event needed
    assert env.conditions() == [
        ("FailureTarget", "True", "DeadlineExceeded"),
        ("Failed", "True", "DeadlineExceeded"),
    ]
    assert env.pods() == []
    assert ("DeadlineExceeded", "Job was active longer than specified deadline") in env.event_reasons()


def test_ttl_after_finished_deletes_job_and_pods() -> None:
    env = Env(ttlSecondsAfterFinished=60)
    env.settle()
    env.finish(env.running()[0], 0)
    env.settle()
    assert env.conditions()[-1][0] == "Complete"
    env.clock.t += 59
    env.settle()
    assert env.store.list("Job")[0] and env.pods()
    env.clock.t += 1
    env.settle()
    assert env.store.list("Job")[0] == [] and env.pods() == []


def test_suspend_and_resume() -> None:
    env = Env(suspend=True, parallelism=2, completions=2)
    env.settle()
    assert env.pods() == []
    assert env.conditions() == [("Suspended", "True", "JobSuspended")]
    assert env.job().status.startTime is None  # type: ignore[union-attr]
    job = env.job()
    env.store.update(replace(job, spec=replace(job.spec, suspend=False)))
    env.clock.t += 5
    env.settle()
    assert len(env.running()) == 2
    assert env.conditions() == [("Suspended", "False", "JobResumed")]
    job = env.job()
    env.store.update(replace(job, spec=replace(job.spec, suspend=True)))
    env.settle()
    assert env.running() == [] and env.conditions() == [("Suspended", "True", "JobSuspended")]
    reasons = [r for r, _ in env.event_reasons()]
    assert {"Suspended", "Resumed", "SuccessfulDelete"} <= set(reasons)


def test_indexed_completion() -> None:
    env = Env(completionMode="Indexed", completions=3, parallelism=3)
    env.settle()
    pods = env.running()
    idx = sorted(int((p.metadata.annotations or {})["batch.kubernetes.io/job-completion-index"]) for p in pods)
    assert idx == [0, 1, 2]
    for p in pods:
        i = p.labels["batch.kubernetes.io/job-completion-index"]
        assert p.name.startswith(f"smoke-{i}-")
        assert {"name": "JOB_COMPLETION_INDEX", "value": i} in [
            {"name": e.name, "value": e.value} for e in p.spec.containers[0].env or []
        ]
    by_index = {p.labels["batch.kubernetes.io/job-completion-index"]: p for p in pods}
    env.finish(by_index["0"], 0)
    env.finish(by_index["2"], 0)
    env.settle()
    assert env.job().status.completedIndexes == "0,2"  # type: ignore[union-attr]
    env.finish(by_index["1"], 0)
    env.settle()
    assert env.job().status.completedIndexes == "0-2"  # type: ignore[union-attr]
    assert env.conditions()[-1] == ("Complete", "True", "CompletionsReached")


def test_deleting_a_job_deletes_its_pods() -> None:
    env = Env(parallelism=3, completions=3)
    env.settle()
    assert len(env.pods()) == 3
    env.store.delete("Job", "default", "smoke")
    env.settle()
    assert env.pods() == []


def test_format_indexes() -> None:
    assert format_indexes([4, 0, 1, 2, 7, 8]) == "0-2,4,7-8"
    assert format_indexes([]) == ""


def test_offline_convergence_runs_job_pods() -> None:
    objs = load_text(JOB)
    store = build_offline_state(default_cluster(), objs)
    pods = [p for p in store.list("Pod")[0] if isinstance(p, Pod)]
    assert len(pods) == 1 and pods[0].labels["job-name"] == "smoke"
    assert pods[0].spec.nodeName and pods[0].status and pods[0].status.phase == "Running"
    job = store.get("Job", "default", "smoke")
    assert job.status is not None and job.status.active == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"restartPolicy": "Always"}, 'spec.template.spec.restartPolicy: Unsupported value: "Always"'),
        ({"restartPolicy": None}, 'spec.template.spec.restartPolicy: Unsupported value: "Always"'),
        ({"parallelism": -1}, "spec.parallelism: Invalid value: -1: must be greater than or equal to 0"),
        ({"completions": -2}, "spec.completions: Invalid value: -2: must be greater than or equal to 0"),
        ({"backoffLimit": -1}, "spec.backoffLimit: Invalid value: -1"),
        ({"completionMode": "Indexed"}, "spec.completions: Required value: when completion mode is Indexed"),
        ({"completionMode": "Some"}, 'spec.completionMode: Unsupported value: "Some"'),
        ({"selector": {"matchLabels": {"a": "b"}}}, "`selector` does not match template `labels`"),
    ],
)
def test_validation(patch: dict[str, object], message: str) -> None:
    import msgspec

    raw = msgspec.to_builtins(load_text(JOB)[0])
    spec = raw["spec"]
    for k, v in patch.items():
        if k == "restartPolicy":
            spec["template"]["spec"]["restartPolicy"] = v
        else:
            spec[k] = v
    job = msgspec.convert(raw, Job)
    errs = [str(e) for e in validate(job)]
    assert any(message in e for e in errs), errs


def test_valid_job_passes() -> None:
    assert validate(load_text(JOB)[0]) == []
