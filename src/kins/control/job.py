"""Job -> Pods until enough of them succeed, after Kubernetes' job controller.

Pods are ``<job>-<5 random chars>`` (Indexed: ``<job>-<index>-<5 random chars>``) and carry
the labels the API server would put on the template (``batch.kubernetes.io/controller-uid``,
``batch.kubernetes.io/job-name`` and their legacy short forms). Up to ``parallelism`` pods run
at once until ``completions`` have Succeeded. With restartPolicy Never a failed pod is replaced
after an exponential back-off (10 s doubling, at most 6 min) and counts toward ``backoffLimit``;
with OnFailure the kubelet restarts the container in place and its restarts count instead.

A finished Job gets ``SuccessCriteriaMet`` / ``FailureTarget`` first and then ``Complete`` /
``Failed`` (as 1.31 reports them): ``Failed`` waits until the pods it deleted are gone.

Whatever must happen later (a back-off, ``activeDeadlineSeconds``, ``ttlSecondsAfterFinished``)
is kept as a wake-up time per Job; ``due()`` hands back the keys whose time has come, so the
controller loop needs no timer thread and tests can move an injected clock instead of sleeping.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable

import msgspec
from msgspec.structs import replace

from .._errors import NotFound
from ..api.batch import Job, JobStatus, UncountedTerminatedPods
from ..api.core import EnvVar, Pod, PodSpec, PodStatus
from ..api.meta import Condition, ObjectMeta
from ..store import deletion
from ..store.base import DELETED, Store, WatchEvent, random_suffix
from ..store.deletion import DeleteRequest
from .base import WakeUps, owner_ref, split_key
from .events import NO_EVENTS, NORMAL, WARNING, EventSink, parse_timestamp, timestamp
from .owners import OwnedPods

COMPONENT = "job-controller"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID = "controller-uid"
LEGACY_JOB_NAME = "job-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
BACKOFF_BASE = 10.0  # the job controller's DefaultJobPodFailureBackOff
BACKOFF_MAX = 360.0  # and its MaxJobPodFailureBackOff
DEFAULT_BACKOFF_LIMIT = 6


def _phase(p: Pod) -> str:
    return (p.status.phase if p.status else None) or "Pending"


def _finished_at(p: Pod) -> float | None:
    latest: float | None = None
    for cs in (p.status.containerStatuses if p.status else None) or []:
        term = cs.state.terminated if cs.state else None
        t = parse_timestamp(term.finishedAt if term else None)
        if t is not None and (latest is None or t > latest):
            latest = t
    return latest


def _restarts(p: Pod) -> int:
    st = p.status
    return sum(
        c.restartCount
        for c in [*((st.initContainerStatuses if st else None) or []), *((st.containerStatuses if st else None) or [])]
    )


def job_condition(job: Job, type_: str) -> Condition | None:
    for c in (job.status.conditions if job.status else None) or []:
        if c.type == type_ and c.status == "True":
            return c
    return None


def finished(job: Job) -> str | None:
    """``Complete`` or ``Failed`` once the Job is done, else None."""
    for t in ("Complete", "Failed"):
        if job_condition(job, t) is not None:
            return t
    return None


def format_indexes(indexes: Iterable[int]) -> str:
    """``0,1,2,4`` -> ``0-2,4``, the form of ``status.completedIndexes``."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(set(indexes)):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)


def _index(p: Pod) -> int | None:
    v = (p.metadata.annotations or {}).get(COMPLETION_INDEX)
    return int(v) if v is not None and v.isdigit() else None


class JobController:
    name = "job"
    kinds = frozenset({"Job", "Pod"})

    def __init__(
        self,
        store: Store,
        rng: random.Random,
        events: EventSink = NO_EVENTS,
        *,
        clock: Callable[[], float] = time.time,
        backoff_base: float = BACKOFF_BASE,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self.store = store
        self.rng = rng
        self.events = events
        self.clock = clock
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._index = OwnedPods(store, "Job")
        self._uid: dict[str, str] = {}  # job key -> uid, to clean up after a deleted Job
        self._wake = WakeUps()  # job keys and when to look at them again

    # --- the controller protocol ----------------------------------------------------------------

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        if isinstance(o, Job):
            if ev.type != DELETED:
                self._uid[o.key] = o.metadata.uid or ""
            return (o.key,)
        owner = self._index.observe(ev)
        return (owner,) if owner else ()

    def start_keys(self) -> Iterable[str]:
        return ()

    def due(self) -> list[str]:
        """Jobs whose back-off, deadline or TTL has come (they leave the wake-up list)."""
        return self._wake.due(self.clock())

    # --- reconciling ----------------------------------------------------------------------------

    def _live(self, job: Job) -> list[Pod]:
        """The Job's pods that have not finished (terminating ones included)."""
        return [p for p in self._index.pods(job.metadata.uid or "") if _phase(p) not in ("Succeeded", "Failed")]

    def _delete_pods(self, job: Job | None, pods: Iterable[Pod]) -> None:
        for p in pods:
            with contextlib.suppress(NotFound):
                self.store.delete("Pod", p.namespace, p.name)
                if job is not None:
                    self.events.event(job, NORMAL, "SuccessfulDelete", f"Deleted pod: {p.name}", component=COMPONENT)

    def reconcile(self, key: str) -> bool:
        ns, name = split_key(key)
        try:
            job = self.store.get("Job", ns, name)
        except NotFound:
            # Deleted: the garbage collector deletes its pods (or they were orphaned).
            self._wake.cancel(key)
            self._index.forget(self._uid.pop(key, ""))
            return False
        assert isinstance(job, Job)
        if job.metadata.deletionTimestamp:
            return False  # being deleted: the garbage collector owns its pods now
        self._uid[key] = job.metadata.uid or ""
        self._wake.cancel(key)
        now = self.clock()
        pods = self._index.pods(job.metadata.uid or "")
        done = finished(job)
        if done is not None:
            return self._finished(job, pods, done, now)
        return self._sync(job, pods, now)

    def _finished(self, job: Job, pods: list[Pod], done: str, now: float) -> bool:
        ttl = job.spec.ttlSecondsAfterFinished
        if ttl is None:
            return False
        st = job.status or JobStatus()
        cond = job_condition(job, done)
        end = parse_timestamp(st.completionTime or (cond.lastTransitionTime if cond else None)) or now
        if now < end + ttl:
            self._wake.at_latest(job.key, end + ttl)
            return False
        # As the TTL-after-finished controller deletes: in the foreground, its pods first.
        with contextlib.suppress(NotFound):
            deletion.delete(self.store, "Job", job.namespace, job.name, DeleteRequest(propagation="Foreground"))
        return True

    def _sync(self, job: Job, pods: list[Pod], now: float) -> bool:
        spec = job.spec
        old = job.status or JobStatus()
        indexed = spec.completionMode == "Indexed"
        parallelism = spec.parallelism if spec.parallelism is not None else 1
        # The API server's defaults: neither count set means one pod that must succeed.
        completions = spec.completions if spec.completions is not None or spec.parallelism is not None else 1
        backoff_limit = spec.backoffLimit if spec.backoffLimit is not None else DEFAULT_BACKOFF_LIMIT
        never = (spec.template.spec.restartPolicy or "Never") == "Never"
        suspended = bool(spec.suspend)
        changed = False

        succeeded_pods = [p for p in pods if _phase(p) == "Succeeded"]
        failed_pods = [p for p in pods if _phase(p) == "Failed"]
        live = [p for p in pods if _phase(p) not in ("Succeeded", "Failed")]
        active = [p for p in live if not p.terminating]
        # Counted pods may be deleted later; the counts never go down.
        succeeded = max(old.succeeded or 0, len(succeeded_pods))
        failed = max(old.failed or 0, len(failed_pods))
        done_indexes = {i for p in succeeded_pods if (i := _index(p)) is not None}

        conds = list(old.conditions or [])
        start = old.startTime
        completion = old.completionTime

        def cond(type_: str, status: str, reason: str, message: str) -> None:
            """Set one condition; its times move only when its status or reason changes."""
            at = timestamp(now)
            c = Condition(
                type=type_, status=status, reason=reason, message=message, lastProbeTime=at, lastTransitionTime=at
            )
            for i, x in enumerate(conds):
                if x.type == type_:
                    if x.status != status or x.reason != reason:
                        conds[i] = c
                    return
            conds.append(c)

        # --- suspension -------------------------------------------------------------------------
        was_suspended = any(c.type == "Suspended" and c.status == "True" for c in conds)
        if suspended:
            if active:
                self._delete_pods(job, active)
                active = []
                changed = True
            if not was_suspended:
                cond("Suspended", "True", "JobSuspended", "Job suspended")
                self.events.event(job, NORMAL, "Suspended", "Job suspended", component=COMPONENT)
        elif was_suspended:
            cond("Suspended", "False", "JobResumed", "Job resumed")
            self.events.event(job, NORMAL, "Resumed", "Job resumed", component=COMPONENT)
            start = timestamp(now)  # the deadline counts from the resumption
        if not suspended and start is None:
            start = timestamp(now)

        # --- success or failure -----------------------------------------------------------------
        failure: tuple[str, str] | None = None
        if any(c.type == "FailureTarget" and c.status == "True" for c in conds):
            ft = next(c for c in conds if c.type == "FailureTarget")
            failure = (ft.reason or "", ft.message or "")
        elif not suspended:
            restarts = sum(_restarts(p) for p in active)
            if (never and failed > backoff_limit) or (
                not never and (restarts > 0 if backoff_limit == 0 else restarts >= backoff_limit)
            ):
                failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
            elif spec.activeDeadlineSeconds is not None and start is not None:
                deadline = (parse_timestamp(start) or now) + spec.activeDeadlineSeconds
                if now >= deadline:
                    failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
                else:
                    self._wake.at_latest(job.key, deadline)
        if indexed and completions is not None:
            complete = len(done_indexes) >= completions
        elif completions is not None:
            complete = succeeded >= completions
        else:
            # A work queue: done once one pod succeeded and the others have finished.
            complete = succeeded > 0 and not active
        if failure is not None:
            if not any(c.type == "FailureTarget" for c in conds):
                cond("FailureTarget", "True", *failure)
                self.events.event(job, WARNING, failure[0], failure[1], component=COMPONENT)
            if active:
                self._delete_pods(job, active)
                changed = True
                active = []
            # Failed once the pods it stopped are gone (a pod's deletion brings the Job back).
            live = self._live(job)
            if not live:
                cond("Failed", "True", *failure)
        elif complete:
            if not any(c.type == "SuccessCriteriaMet" for c in conds):
                cond("SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods")
            if active:
                self._delete_pods(job, active)
                changed = True
                active = []
            live = self._live(job)
            if not live:
                cond("Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods")
                completion = completion or timestamp(now)
                self.events.event(job, NORMAL, "Completed", "Job completed", component=COMPONENT)
        elif not suspended:
            changed = self._create(job, active, pods, succeeded, failed, done_indexes, parallelism, now) or changed
            live = self._live(job)
            active = [p for p in live if not p.terminating]

        status = JobStatus(
            conditions=conds or None,
            startTime=start,
            completionTime=completion,
            active=len(active) or None,
            succeeded=succeeded or None,
            failed=failed or None,
            terminating=sum(1 for p in live if p.terminating),
            ready=sum(1 for p in active if p.ready),
            completedIndexes=format_indexes(done_indexes) if indexed else None,
            uncountedTerminatedPods=UncountedTerminatedPods(),
        )
        if status != job.status:
            updated = self.store.update(replace(job, status=status), check_rv=False)
            assert isinstance(updated, Job)
            if finished(updated) is not None and job.spec.ttlSecondsAfterFinished is not None:
                self._wake.at_latest(job.key, now + job.spec.ttlSecondsAfterFinished)
            changed = True
        return changed

    def _create(
        self,
        job: Job,
        active: list[Pod],
        pods: list[Pod],
        succeeded: int,
        failed: int,
        done_indexes: set[int],
        parallelism: int,
        now: float,
    ) -> bool:
        spec = job.spec
        completions = spec.completions if spec.completions is not None or spec.parallelism is not None else 1
        if spec.completionMode == "Indexed" and completions is not None:
            busy = {i for p in active if (i := _index(p)) is not None}
            todo = [i for i in range(completions) if i not in done_indexes and i not in busy]
            want: list[int | None] = list(todo[: max(0, parallelism - len(active))])
        else:
            n = parallelism if completions is None else min(parallelism, completions - succeeded)
            if completions is None and succeeded:
                n = 0  # a work queue's pods stop being replaced once one succeeded
            want = [None] * max(0, n - len(active))
        if not want:
            return False
        if failed:
            # The back-off grows with each failure and counts from the latest one.
            delay = min(self.backoff_base * 2 ** (failed - 1), self.backoff_max)
            last = max((t for p in pods if _phase(p) == "Failed" and (t := _finished_at(p)) is not None), default=None)
            if last is not None and now < last + delay:
                self._wake.at_latest(job.key, last + delay)
                return False
        for index in want:
            pod = self.store.create(self._new_pod(job, index))
            assert isinstance(pod, Pod)
            # Indexed now, so this round's status counts it before its watch event arrives.
            self._index.add(pod.key, job.metadata.uid or "")
            self.events.event(job, NORMAL, "SuccessfulCreate", f"Created pod: {pod.name}", component=COMPONENT)
        return True

    def _new_pod(self, job: Job, index: int | None) -> Pod:
        tmpl = job.spec.template
        spec = msgspec.json.decode(msgspec.json.encode(tmpl.spec), type=PodSpec)
        uid = job.metadata.uid or ""
        labels = {
            **(tmpl.metadata.labels or {}),
            CONTROLLER_UID: uid,
            JOB_NAME: job.name,
            LEGACY_CONTROLLER_UID: uid,
            LEGACY_JOB_NAME: job.name,
        }
        annotations = dict(tmpl.metadata.annotations or {})
        prefix = job.name
        if index is not None:
            labels[COMPLETION_INDEX] = str(index)
            annotations[COMPLETION_INDEX] = str(index)
            prefix = f"{job.name}-{index}"
            for c in spec.containers:
                c.env = [*(c.env or []), EnvVar(name="JOB_COMPLETION_INDEX", value=str(index))]
        while True:
            name = f"{prefix}-{random_suffix(self.rng)}"
            try:
                self.store.get("Pod", job.namespace, name)
            except NotFound:
                break
        return Pod(
            metadata=ObjectMeta(
                name=name,
                namespace=job.namespace,
                labels=labels,
                annotations=annotations or None,
                ownerReferences=[owner_ref(job)],
            ),
            spec=spec,
            status=PodStatus(phase="Pending"),
        )
