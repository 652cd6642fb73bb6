"""What the kubelet reports: the pod's status (phase, conditions, container statuses), written
whole since the kubelet owns it, and the Events about pods and their containers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from msgspec.structs import replace

from ..._errors import Conflict, NotFound
from ...api.core import (
    ContainerState,
    ContainerStateRunning,
    ContainerStateWaiting,
    ContainerStatus,
    ObjectReference,
    Pod,
    PodIP,
    PodStatus,
)
from ...api.meta import Condition
from ...control.events import EventRecorder
from ...store.base import Clock, Store
from ..view import ClusterView
from .state import ContainerRun, PodRun

log = logging.getLogger("kins.kubelet")


class PodEvents:
    """Events about pods (or their containers), reported by the node's kubelet."""

    def __init__(self, store: Store) -> None:
        self.recorder = EventRecorder(store, expire=False)
        self.recorder.start()

    def event(self, run: PodRun, type_: str, reason: str, message: str, container: str | None = None) -> None:
        ns, _, name = run.key.partition("/")
        ref = ObjectReference(kind="Pod", namespace=ns, name=name, uid=run.uid, apiVersion="v1")
        field = "ephemeralContainers" if container in run.ephemeral else "containers"
        path = f"spec.{field}{{{container}}}" if container else None
        self.recorder.event(ref, type_, reason, message, component="kubelet", host=run.node, field_path=path)

    def close(self) -> None:
        self.recorder.close()


def pending_status(pod: Pod, ip: str, host_ip: str | None, clock: Clock) -> PodStatus:
    """The status of a pod being started: its address and node's, the rest left as it was."""
    return replace(
        pod.status or PodStatus(),
        phase="Pending",
        podIP=ip,
        podIPs=[PodIP(ip=ip)],
        hostIP=host_ip,
        hostIPs=[PodIP(ip=host_ip)] if host_ip else None,
        startTime=(pod.status.startTime if pod.status else None) or clock.now(),
        qosClass="BestEffort",
    )


def container_status(cr: ContainerRun) -> ContainerStatus:
    if cr.running is not None:
        state = ContainerState(running=ContainerStateRunning(startedAt=cr.started_at))
    elif cr.waiting is not None:
        state = ContainerState(waiting=ContainerStateWaiting(reason=cr.waiting[0], message=cr.waiting[1] or None))
    elif cr.terminated is not None:
        state = ContainerState(terminated=cr.terminated)
    else:
        state = ContainerState(waiting=ContainerStateWaiting(reason="ContainerCreating"))
    last = ContainerState(terminated=cr.last_terminated) if cr.last_terminated else None
    return ContainerStatus(
        name=cr.spec.name,
        ready=cr.ready and cr.running is not None,
        restartCount=cr.restarts,
        image=cr.spec.image,
        imageID="",
        containerID=f"kins://{cr.running.id}" if cr.running else None,
        started=cr.running is not None,
        state=state,
        lastState=last,
    )


class PodStatusWriter:
    """Reads a pod's object and writes its status from the kubelet's record of it.

    ``pods`` and ``lock``: the kubelet's records and the lock that guards them."""

    def __init__(self, store: ClusterView, clock: Clock, pods: Mapping[str, PodRun], lock: threading.RLock) -> None:
        self.store = store
        self.clock = clock
        self.pods = pods
        self.lock = lock
        # Statuses are written by a thread of their own: each is an API request, and the
        # kubelet's loop (starts, exits, probes) must not wait for them. One thread keeps a
        # pod's writes in order; a pod queued twice is written once, with its latest record.
        self._queue: dict[str, PodRun] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._write_queued, name="kubelet-status", daemon=True)
        self._thread.start()

    def get_pod(self, run: PodRun) -> Pod | None:
        """The object ``run`` is the record of (None once it is gone or replaced)."""
        ns, _, name = run.key.partition("/")
        try:
            p = self.store.get("Pod", ns, name)
        except NotFound:
            return None
        return p if isinstance(p, Pod) and (p.metadata.uid or "") == run.uid else None

    def flush(self) -> None:
        """Queue the status of every pod whose record changed since it was last written."""
        with self.lock:
            dirty = [r for r in self.pods.values() if r.dirty and not r.stopping]
            for r in dirty:
                r.dirty = False
        if dirty:
            with self._cond:
                for r in dirty:
                    self._queue[r.key] = r
                self._cond.notify()

    def _write_queued(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if not self._queue:
                    return  # closed, nothing left
                batch, self._queue = list(self._queue.values()), {}
            for r in batch:
                try:
                    self.write(r)
                except Exception:
                    log.exception("status of %s", r.key)
                    r.dirty = True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    def write(self, run: PodRun) -> None:
        for _ in range(5):
            pod = self.get_pod(run)
            if pod is None:
                return
            now = self.clock.now()
            with self.lock:
                statuses = [container_status(cr) for cr in run.containers.values()]
                ephemeral = [container_status(cr) for cr in run.ephemeral.values()] or None
                all_ready = bool(statuses) and all(s.ready for s in statuses)
                phase = run.phase
            old = pod.status or PodStatus()
            prev = {c.type: c for c in old.conditions or []}

            def cond(t: str, ok: bool, prev: dict[str, Condition] = prev, now: str = now) -> Condition:
                s = "True" if ok else "False"
                p = prev.get(t)
                return Condition(
                    type=t,
                    status=s,
                    lastTransitionTime=p.lastTransitionTime if p and p.status == s else now,
                    reason=None if ok or t in ("PodScheduled", "Initialized") else "ContainersNotReady",
                )

            started = run.sandbox is not None
            conds = [
                cond("Initialized", True),
                cond("Ready", all_ready and phase == "Running"),
                cond("ContainersReady", all_ready),
                cond("PodScheduled", True),
            ]
            if started:
                conds.insert(0, cond("PodReadyToStartContainers", True))
            status = replace(
                old,
                phase=phase,
                conditions=conds,
                containerStatuses=statuses,
                ephemeralContainerStatuses=ephemeral,
                podIP=run.ip or old.podIP,
                podIPs=[PodIP(ip=run.ip)] if run.ip else old.podIPs,
            )
            if status == old:
                return
            try:
                # The kubelet owns a pod's status: written whole, whatever version its copy has.
                self.store.update_status(replace(pod, status=status), check_rv=False)
                return
            except Conflict:
                continue
