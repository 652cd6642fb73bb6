"""The node agents' pod half: a kubelet for every node of the cluster.

For each pod bound to a node it hands out the pod's address (CNI host-local style, lowest free),
builds the pod's namespace and veth through the kernel layer, prepares the pod's volumes, starts
a sandbox and the containers through the runtime, runs readiness and liveness probes, restarts
containers per restartPolicy with kubelet's back-off, and reports all of it in the pod's status.
A deleted (Terminating) pod is stopped, its namespace and volumes removed, and then its object is
deleted for good.

Pod processes outlive the daemon (the runtime's server keeps them), so a kubelet that starts
adopts what it finds running: same sandbox, address, namespace and containers, restart counts and
readiness taken from the stored status, probes resumed. Containers that ended meanwhile are
restarted per restartPolicy; sandboxes and namespaces of pods that are gone are removed.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from msgspec.structs import replace

from ..._errors import KernelError, KinsError, NotFound
from ...api.config import ClusterConfig
from ...api.core import (
    ConfigMap,
    Container,
    ContainerState,
    ContainerStateTerminated,
    Node,
    Pod,
    PodStatus,
    Secret,
)
from ...control.events import NORMAL, WARNING
from ...kernel import netns as kns
from ...runtime.errors import ImageError, RuntimeFailure, SandboxError
from ...runtime.runtime import Runtime, pod_dir_name
from ...runtime.types import ContainerSpec, ProcessExit, Sandbox
from ...store.base import Clock, WatchEvent
from ..loop import Reconciler
from ..probes import ProbeState, probe_result, probe_state
from ..view import ClusterView
from ..volumes import PodVolumes
from .podnet import PodNetwork
from .state import ContainerRun, PodRun, has_run, unfinished
from .status import PodEvents, PodStatusWriter, pending_status

log = logging.getLogger("kins.kubelet")

BACKOFF_START = 10.0
BACKOFF_MAX = 300.0
STOP_GRACE_MAX = 5.0  # seconds a container gets after SIGTERM before SIGKILL (capped for speed)
RETRY_START = 2.0  # seconds before a pod whose volumes or sandbox failed is tried again
RETRY_NETWORK = 0.3  # seconds before a pod whose node's network is not made yet is tried again
# Their containers get the API's address and token: they run controllers (DNS, ingress).
SYSTEM_NAMESPACES = ("kube-system", "ingress-nginx")


class Kubelet(Reconciler):
    """All nodes' kubelets on the agents' loop (plus a small pool for pod start-up and probes)."""

    name = "kubelet"
    kinds = frozenset({"Pod", "Node", "ConfigMap", "Secret"})
    resync = 30.0
    TICK = 0.05  # seconds between looks at exits, restarts, probes and statuses to write

    def __init__(self, cfg: ClusterConfig, store: ClusterView, state_dir: Path, kernel_lock: threading.Lock) -> None:
        self.cfg = cfg
        self.store = store
        self.raw = store
        self.state_dir = state_dir
        self.clock = Clock()
        self.pods: dict[str, PodRun] = {}
        self.lock = threading.RLock()
        self.events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.runtime = Runtime(state_dir, on_exit=lambda ev: self.events.put(("exit", ev)))
        self.volumes = PodVolumes(self.raw, state_dir)
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kins-kubelet")
        self.by_container: dict[str, tuple[str, str]] = {}  # runtime container id -> (pod key, name)
        self.net = PodNetwork(cfg, store, state_dir, kernel_lock)
        # What the runtime still runs from before this kubelet started, by pod key.
        self._adoptable: dict[str, Sandbox] = {s.pod_key: s for s in self.runtime.sandboxes()}
        self._recovered = {e.id: e for e in self.runtime.recovered_exits}
        self._first_sync = True
        self.recorder = PodEvents(store)
        self.status_writer = PodStatusWriter(store, self.clock, self.pods, self.lock)
        self._next_tick = 0.0
        self._next_probe = 0.0

    # --- status -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {
                "pods": len(self.pods),
                "running": sum(1 for p in self.pods.values() if p.phase == "Running"),
            }

    # --- the loop -----------------------------------------------------------------------------

    def sync(self, changes: Sequence[WatchEvent] = ()) -> None:
        if not changes or any(e.object.kind in ("Pod", "Node") for e in changes):
            self._resync()
        changed: set[tuple[str, str | None, str]] = {
            (e.object.kind, e.object.namespace, e.object.name) for e in changes
        }
        if any(k in ("ConfigMap", "Secret") for k, _, _ in changed):
            self._refresh_volumes(changed)
        self.tick()

    def next_tick(self) -> float:
        return self._next_tick - time.monotonic()

    def tick(self) -> None:
        while True:
            try:
                kind, data = self.events.get_nowait()
            except queue.Empty:
                break
            if kind == "exit":
                self._on_exit(data)
        now = time.monotonic()
        self._retry_starts(now)
        self._restarts(now)
        if now >= self._next_probe:
            self._probe(now)
            self._next_probe = now + 0.1
        self.status_writer.flush()
        self._next_tick = time.monotonic() + self.TICK

    def _resync(self) -> None:
        pods = [p for p in self.raw.list("Pod")[0] if isinstance(p, Pod)]
        nodes = {n.name for n in self.raw.list("Node")[0] if isinstance(n, Node)}
        seen: set[str] = set()
        for p in pods:
            node = p.spec.nodeName
            if not node:
                continue
            seen.add(p.key)
            run = self.pods.get(p.key)
            if run is not None and run.uid != (p.metadata.uid or ""):
                # Same name, new object: the old one is gone.
                self._stop(run, delete_object=False)
                run = None
            if run is None and p.key in self._adoptable:
                sandbox = self._adoptable.pop(p.key)
                run = self._adopt(p, sandbox)
                if run is None and (p.metadata.deletionTimestamp or not unfinished(p) or node not in nodes):
                    self.pool.submit(self._guard, self._remove_orphans, [sandbox], None)
                # Otherwise the pod's start replaces the sandbox.
            if node not in nodes or p.metadata.deletionTimestamp:
                if run is not None and not run.stopping:
                    run.stopping = True
                    self.pool.submit(self._guard, self._stop, run, True)
                elif run is None:
                    self.pool.submit(self._guard, self._finalize_unstarted, p)
                continue
            if run is None and unfinished(p):
                run = PodRun(key=p.key, uid=p.metadata.uid or "", node=node)
                self.pods[p.key] = run
                self.pool.submit(self._guard, self._start, p, run)
        for key in list(self.pods):
            if key not in seen:
                run = self.pods[key]
                if not run.stopping:
                    run.stopping = True
                    self.pool.submit(self._guard, self._stop, run, False)
        if self._first_sync:
            self._first_sync = False
            wanted = self.net.wanted(pods)
            # Sandboxes left that no pod claims are the pod's with the same name, if there is one
            # (its start replaces them), else of pods that are gone.
            orphans = [sb for key, sb in self._adoptable.items() if key not in seen]
            self._adoptable.clear()
            self.pool.submit(self._guard, self._remove_orphans, orphans, wanted)

    def _guard(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%s failed", getattr(fn, "__name__", fn))

    def _retry_starts(self, now: float) -> None:
        with self.lock:
            due = [r for r in self.pods.values() if r.retry_at is not None and r.retry_at <= now and not r.stopping]
            for r in due:
                r.retry_at = None
        for r in due:
            pod = self.status_writer.get_pod(r)
            if pod is not None:
                self.pool.submit(self._guard, self._start, pod, r)

    # --- adopting what runs from before ---------------------------------------------------------

    def _adopt(self, pod: Pod, sandbox: Sandbox) -> PodRun | None:
        """Take over a pod whose sandbox the runtime still runs; None if it cannot be (another
        object of the same name, or its namespace is gone): then it is started anew."""
        uid = pod.metadata.uid or ""
        status = pod.status or PodStatus()
        node = pod.spec.nodeName or ""
        if sandbox.uid != uid or not status.podIP or not os.path.exists(sandbox.netns_path):
            return None
        run = PodRun(key=pod.key, uid=uid, node=node, ip=status.podIP, netns=os.path.basename(sandbox.netns_path))
        run.sandbox = sandbox
        run.phase = status.phase or "Running"
        self.net.hold(node, status.podIP)
        live = {c.name: c for c in self.runtime.containers(sandbox)}
        stored = {cs.name: cs for cs in status.containerStatuses or []}
        now = time.monotonic()
        policy = pod.spec.restartPolicy or "Always"
        for c in pod.spec.containers:
            cs = stored.get(c.name)
            cr = ContainerRun(spec=c, restarts=cs.restartCount if cs else 0, waiting=None)
            cr.last_terminated = cs.lastState.terminated if cs and cs.lastState else None
            state = (cs.state if cs else None) or ContainerState()
            running = live.get(c.name)
            run.containers[c.name] = cr
            if running is not None:
                cr.running = running
                cr.started_at = (state.running.startedAt if state.running else None) or self.clock.now()
                cr.started_mono = now
                cr.ready = bool(cs and cs.ready) or c.readinessProbe is None
                cr.readiness = probe_state(c.readinessProbe, now)
                if cr.readiness is not None and cr.ready:
                    # Ready before: stays Ready unless the probe now fails its threshold.
                    cr.readiness.successes = cr.readiness.probe.successThreshold or 1
                    cr.readiness.next_at = now + (cr.readiness.probe.periodSeconds or 10)
                cr.liveness = probe_state(c.livenessProbe, now)
                if cr.liveness is not None:
                    cr.liveness.next_at = now + (cr.liveness.probe.periodSeconds or 10)
                self.by_container[running.id] = (pod.key, c.name)
                continue
            if state.running is not None:
                # It ended while no kubelet was watching: as if its exit had been seen now.
                cid = (cs.containerID if cs else None) or ""
                ev = self._recovered.get(cid.removeprefix("kins://"))
                cr.started_at = state.running.startedAt
                self._ended(run, cr, policy, ev.exit_code if ev else 137, ev.signal if ev else None, cid)
                if ev is None:
                    assert cr.terminated is not None
                    cr.terminated.reason = "ContainerStatusUnknown"
            elif state.terminated is not None:
                cr.terminated = state.terminated
                code = cr.terminated.exitCode or 0
                if run.phase not in ("Succeeded", "Failed") and (
                    policy == "Always" or (policy == "OnFailure" and code != 0)
                ):
                    cr.restart_at = now
            else:
                # Waiting (back-off, a start error, not started yet): try again now.
                w = state.waiting
                cr.waiting = (w.reason, w.message or "") if w is not None and w.reason else None
                cr.terminated = cr.last_terminated
                cr.restart_at = now
        self.pods[pod.key] = run
        if run.phase in ("Running", "Pending"):
            run.phase = "Running" if has_run(run) else "Pending"
            # Heals the pod's link if something broke it; a no-op when it is right.
            self.pool.submit(self._guard, self.net.repair, pod.key, run.node, pod)
        log.info("%s: adopted sandbox %s (pid %d)", pod.key, sandbox.id, sandbox.pid)
        return run

    def _remove_orphans(self, sandboxes: list[Sandbox], wanted: set[str] | None) -> None:
        """Sandboxes of pods that no longer exist, and (given the namespaces the pods in the
        store need) pod namespaces that no pod claims."""
        for sb in sandboxes:
            log.info("%s: removing the sandbox of a pod that is gone", sb.pod_key)
            with contextlib.suppress(Exception):
                self.runtime.remove_sandbox(sb, grace=0)
            shutil.rmtree(Path(sb.dir) / "volumes", ignore_errors=True)
        if wanted is None:
            return
        self.net.remove_unclaimed(wanted, self._claims)

    def _claims(self, netns: str) -> bool:
        """Whether a pod the kubelet runs has the namespace ``netns``."""
        with self.lock:
            return any(self.net.namespace_of(key) == netns for key in self.pods)

    # --- starting a pod -----------------------------------------------------------------------

    def _start(self, pod: Pod, run: PodRun) -> None:
        cfg = self.net.config()
        node_cfg = cfg.node(run.node)
        ip = self.net.allocate_ip(cfg, run.node, pod)
        run.ip = ip
        status = pending_status(pod, ip, node_cfg.ip, self.clock)
        pod = replace(pod, status=status)
        # A pod started again (its sandbox was lost) keeps counting its containers' restarts.
        counts = {cs.name: cs.restartCount for cs in status.containerStatuses or []}
        for c in pod.spec.containers:
            run.containers[c.name] = ContainerRun(spec=c, restarts=counts.get(c.name, 0))
        self.status_writer.write(run)
        plan = self.net.plan(cfg, node_cfg, pod)
        run.netns = self.net.namespace(plan)
        try:
            self.net.apply(cfg, run.node, plan)
        except KernelError as e:
            # A pod bound to a node that has just joined (a DaemonSet's, say) comes before the
            # network agent made the node's namespace: try again shortly, as kubelet retries
            # a sandbox whose network plugin is not ready yet.
            log.info("%s: %s; trying again", run.key, e)
            with self.lock:
                for cr in run.containers.values():
                    cr.waiting = ("ContainerCreating", str(e))
                run.retry_at = time.monotonic() + RETRY_NETWORK
                run.dirty = True
            return
        resolv, hosts = self.net.write_files(run.key, plan)
        existing = [s for s in self.runtime.sandboxes() if s.pod_key == run.key]
        for s in existing:
            self.runtime.remove_sandbox(s, grace=0)
        # Containers that outlived their sandbox's holder would still hold the pod's ports.
        sid = pod_dir_name(run.key)
        self.runtime.stop_containers([c for c in self.runtime.containers() if c.sandbox_id == sid], grace=0)
        try:
            mounts = self.volumes.mounts(pod)
            sandbox = self.runtime.create_sandbox(
                run.key,
                kns.path(run.netns),
                plan.hostname,
                str(resolv),
                str(hosts),
                mounts=mounts,
                uid=run.uid,
            )
        except (KinsError, OSError) as e:
            reason = "CreatePodSandboxError" if isinstance(e, SandboxError) else "ContainerCreating"
            log.warning("%s: %s", run.key, e)
            self.recorder.event(run, WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
            with self.lock:
                for cr in run.containers.values():
                    cr.waiting = (reason, str(e))
                run.retry_at = time.monotonic() + RETRY_START
                run.dirty = True
            return
        run.sandbox = sandbox
        for c in pod.spec.containers:
            self._start_container(pod, run, run.containers[c.name])
        with self.lock:
            # Kubernetes' rule: Running once a container has started; an image that cannot be
            # pulled leaves the pod Pending (its container waiting with ErrImagePull).
            run.phase = "Running" if has_run(run) else "Pending"
            run.dirty = True

    def _env(self, pod: Pod, run: PodRun, c: Container) -> dict[str, str]:
        env: dict[str, str] = {
            "HOSTNAME": pod.name,
            "POD_NAME": pod.name,
            "POD_NAMESPACE": pod.namespace,
            "POD_IP": run.ip,
            "KUBERNETES_SERVICE_HOST": "",
            "KUBERNETES_SERVICE_PORT": "443",
        }
        if pod.namespace in SYSTEM_NAMESPACES:
            # The daemon's API on its unix socket (plain HTTP, bearer token): pods share the
            # host's filesystem, so the path is all they need.
            env["KINS_API"] = f"unix:{self.state_dir / 'api.sock'}"
            env["KINS_TOKEN_FILE"] = str(self.state_dir / "token")
        with contextlib.suppress(NotFound):
            k = self.raw.get("Service", "default", "kubernetes")
            env["KUBERNETES_SERVICE_HOST"] = getattr(k.spec, "clusterIP", "") or ""  # type: ignore[attr-defined]
        for src in c.envFrom or []:
            data = self._ref_data(pod.namespace, src.configMapRef, src.secretRef)
            env.update({(src.prefix or "") + k: v for k, v in data.items()})
        for e in c.env or []:
            if e.value is not None:
                env[e.name] = _expand(e.value, env)
            elif e.valueFrom is not None:
                v = self._value_from(pod, run, e.valueFrom)
                if v is not None:
                    env[e.name] = v
        return env

    def _ref_data(self, ns: str, cm: Any, sec: Any) -> dict[str, str]:
        try:
            if cm is not None and cm.name:
                o = self.raw.get("ConfigMap", ns, cm.name)
                return dict(o.data or {}) if isinstance(o, ConfigMap) else {}
            if sec is not None and sec.name:
                o = self.raw.get("Secret", ns, sec.name)
                if isinstance(o, Secret):
                    return {k: base64.b64decode(v).decode(errors="replace") for k, v in (o.data or {}).items()}
        except NotFound:
            if not ((cm and cm.optional) or (sec and sec.optional)):
                raise
        return {}

    def _value_from(self, pod: Pod, run: PodRun, src: Any) -> str | None:
        if src.fieldRef is not None:
            path = src.fieldRef.fieldPath
            return {
                "metadata.name": pod.name,
                "metadata.namespace": pod.namespace,
                "metadata.uid": pod.metadata.uid or "",
                "spec.nodeName": pod.spec.nodeName or "",
                "status.podIP": run.ip,
                "status.hostIP": self.cfg.node(run.node).ip if run.node in {n.name for n in self.cfg.nodes} else "",
            }.get(path)
        ref = src.configMapKeyRef or src.secretKeyRef
        if ref is None:
            return None
        data = self._ref_data(pod.namespace, src.configMapKeyRef, src.secretKeyRef)
        return data.get(ref.key)

    # --- volumes ------------------------------------------------------------------------------

    def _refresh_volumes(self, changed: set[tuple[str, str | None, str]]) -> None:
        """ConfigMaps or Secrets changed: running pods that mount them see the new files."""
        with self.lock:
            runs = [r for r in self.pods.values() if r.sandbox is not None and not r.stopping]
        for run in runs:
            pod = self.status_writer.get_pod(run)
            if pod is None:
                continue
            for v in pod.spec.volumes or []:
                ref = ("ConfigMap", v.configMap.name) if v.configMap is not None else None
                if v.secret is not None:
                    ref = ("Secret", v.secret.secretName)
                if ref is not None and (ref[0], pod.namespace, ref[1]) in changed:
                    path = self.volumes.dir(run.key) / v.name
                    self.pool.submit(self._guard, self.volumes.write_api_volume, pod.namespace, v, path)

    def _start_container(self, pod: Pod, run: PodRun, cr: ContainerRun) -> None:
        c = cr.spec
        assert run.sandbox is not None
        try:
            env = self._env(pod, run, c)
        except NotFound as e:
            cr.waiting = ("CreateContainerConfigError", str(e))
            run.dirty = True
            self.recorder.event(run, WARNING, "Failed", f"Error: {e}", c.name)
            return
        spec = ContainerSpec(
            name=c.name,
            image=c.image or "",
            command=tuple(c.command or ()),
            args=tuple(c.args or ()),
            env=env,
            working_dir=c.workingDir,
        )
        try:
            started = self.runtime.start_container(run.sandbox, spec)
        except ImageError as e:
            with self.lock:
                cr.waiting = ("ErrImagePull", str(e))
                run.dirty = True
            self.recorder.event(run, WARNING, "Failed", f'Failed to pull image "{spec.image}": {e}', c.name)
            self.recorder.event(run, WARNING, "Failed", "Error: ErrImagePull", c.name)
            return
        except (RuntimeFailure, KinsError) as e:
            with self.lock:
                cr.waiting = ("RunContainerError", str(e))
                cr.restart_at = time.monotonic() + max(cr.backoff, BACKOFF_START)
                run.dirty = True
            self.recorder.event(run, WARNING, "Failed", f"Error: {e}", c.name)
            return
        # Built-in images and host binaries are always "present": kubelet's IfNotPresent path.
        self.recorder.event(run, NORMAL, "Pulled", f'Container image "{spec.image}" already present on machine', c.name)
        self.recorder.event(run, NORMAL, "Created", f"Created container {c.name}", c.name)
        self.recorder.event(run, NORMAL, "Started", f"Started container {c.name}", c.name)
        now = time.monotonic()
        with self.lock:
            self.by_container[started.id] = (run.key, c.name)
            cr.running = started
            cr.started_at = self.clock.now()
            cr.started_mono = now
            cr.waiting = None
            cr.terminated = None
            cr.ready = c.readinessProbe is None
            cr.readiness = probe_state(c.readinessProbe, now)
            cr.liveness = probe_state(c.livenessProbe, now)
            if run.phase == "Pending" and run.sandbox is not None:
                run.phase = "Running"
            run.dirty = True

    # --- exits and restarts -------------------------------------------------------------------

    def _on_exit(self, ev: ProcessExit) -> None:
        if ev.sandbox:
            return
        with self.lock:
            where = self.by_container.pop(ev.id, None)
            if where is None:
                return
            run = self.pods.get(where[0])
            if run is None or run.stopping:
                return
            cr = run.containers[where[1]]
            pod = self.status_writer.get_pod(run)
            policy = (pod.spec.restartPolicy if pod else None) or "Always"
            self._ended(run, cr, policy, ev.exit_code, ev.signal, f"kins://{ev.id}")

    def _ended(
        self, run: PodRun, cr: ContainerRun, policy: str, exit_code: int, sig: int | None, container_id: str
    ) -> None:
        """A container ended: record it, then restart it per ``policy`` or finish the pod."""
        state = ContainerStateTerminated(
            exitCode=exit_code,
            signal=sig,
            reason="Completed" if exit_code == 0 else "Error",
            startedAt=cr.started_at,
            finishedAt=self.clock.now(),
            containerID=container_id,
        )
        cr.running = None
        cr.ready = False
        cr.terminated = state
        run.dirty = True
        if policy == "Always" or (policy == "OnFailure" and exit_code != 0):
            # kubelet's back-off: the first restart is immediate, then 10 s doubling to 5 min;
            # a container that ran for 10 minutes starts over.
            if time.monotonic() - cr.started_mono > 600:
                cr.backoff = 0.0
            cr.restart_at = time.monotonic() + cr.backoff
            cr.backoff = BACKOFF_START if cr.backoff == 0 else min(cr.backoff * 2, BACKOFF_MAX)
            if cr.restart_at > time.monotonic():
                cr.waiting = ("CrashLoopBackOff", f"back-off {cr.backoff:.0f}s restarting failed container")
                ns, _, name = run.key.partition("/")
                msg = f"Back-off restarting failed container {cr.spec.name} in pod {name}_{ns}({run.uid})"
                self.recorder.event(run, WARNING, "BackOff", msg, cr.spec.name)
        elif all(x.running is None and x.restart_at is None for x in run.containers.values()):
            failed = any(x.terminated is not None and x.terminated.exitCode for x in run.containers.values())
            run.phase = "Failed" if failed else "Succeeded"

    def _restarts(self, now: float) -> None:
        todo: list[tuple[PodRun, ContainerRun]] = []
        with self.lock:
            for run in self.pods.values():
                if run.stopping or run.sandbox is None:
                    continue
                for cr in run.containers.values():
                    if cr.restart_at is not None and cr.restart_at <= now and cr.running is None:
                        cr.restart_at = None
                        cr.last_terminated = cr.terminated
                        if cr.terminated is not None:
                            cr.restarts += 1
                        todo.append((run, cr))
        for run, cr in todo:
            pod = self.status_writer.get_pod(run)
            if pod is not None:
                self.pool.submit(self._guard, self._start_container, pod, run, cr)

    # --- probes -------------------------------------------------------------------------------

    def _probe(self, now: float) -> None:
        with self.lock:
            due: list[tuple[PodRun, ContainerRun, ProbeState, str]] = []
            for run in self.pods.values():
                if run.stopping or run.sandbox is None:
                    continue
                for cr in run.containers.values():
                    if cr.running is None:
                        continue
                    for ps, kind in ((cr.readiness, "readiness"), (cr.liveness, "liveness")):
                        if ps is not None and ps.next_at <= now:
                            ps.next_at = now + 3600  # not again until this one reported
                            due.append((run, cr, ps, kind))
        for item in due:
            self.pool.submit(self._guard, self._run_probe, *item)

    def _run_probe(self, run: PodRun, cr: ContainerRun, ps: ProbeState, kind: str) -> None:
        ok, why = probe_result(ps.probe, run, cr.spec)
        with self.lock:
            p = ps.probe
            now = time.monotonic()
            ps.next_at = now + (p.periodSeconds or 10)
            # kubelet reports every failed probe; kins probes a not-yet-ready container more often
            # than its period, so it reports at most one failure per period.
            if not ok and now - ps.reported_at >= (p.periodSeconds or 10):
                ps.reported_at = now
                self.recorder.event(run, WARNING, "Unhealthy", f"{kind.capitalize()} probe failed: {why}", cr.spec.name)
            if ok:
                ps.successes += 1
                ps.failures = 0
            else:
                ps.failures += 1
                ps.successes = 0
            if kind == "readiness":
                if ok and ps.successes >= (p.successThreshold or 1) and not cr.ready:
                    cr.ready = True
                    run.dirty = True
                elif not ok and ps.failures >= (p.failureThreshold or 3) and cr.ready:
                    cr.ready = False
                    run.dirty = True
                elif not ok and not cr.ready and ps.failures == 1:
                    # Until the first success, probe quickly so the pod turns Ready soon after it
                    # starts listening (the period applies once it has been Ready).
                    ps.next_at = time.monotonic() + min(p.periodSeconds or 10, 0.2)
            elif kind == "liveness" and not ok and ps.failures >= (p.failureThreshold or 3) and cr.running:
                log.info("%s/%s: liveness probe failed %d times, restarting", run.key, cr.spec.name, ps.failures)
                msg = f"Container {cr.spec.name} failed liveness probe, will be restarted"
                self.recorder.event(run, NORMAL, "Killing", msg, cr.spec.name)
                ps.failures = 0
                self.runtime.kill_container(cr.running)
        if kind == "readiness" and not ok and not cr.ready:
            with self.lock:
                ps.next_at = min(ps.next_at, time.monotonic() + 0.2)

    # --- stopping -----------------------------------------------------------------------------

    def _stop(self, run: PodRun, delete_object: bool) -> None:
        pod = self.status_writer.get_pod(run)
        grace = STOP_GRACE_MAX
        if pod is not None and pod.metadata.deletionGracePeriodSeconds is not None:
            grace = min(float(pod.metadata.deletionGracePeriodSeconds), STOP_GRACE_MAX)
        if run.sandbox is not None:
            with self.lock:
                running = [cr.running for cr in run.containers.values() if cr.running is not None]
                for c in running:
                    self.by_container.pop(c.id, None)
                    self.recorder.event(run, NORMAL, "Killing", f"Stopping container {c.name}", c.name)
            with contextlib.suppress(Exception):
                self.runtime.stop_containers(running, grace=grace)
            with contextlib.suppress(Exception):
                self.runtime.remove_sandbox(run.sandbox, grace=0)
        if run.netns:
            self.net.remove(run.node, run.netns)
        # Volumes go with the pod (emptyDir data included); hostPath volumes are never in here.
        shutil.rmtree(self.volumes.dir(run.key), ignore_errors=True)
        with self.lock:
            if run.ip:
                self.net.release(run.node, run.ip)
            if self.pods.get(run.key) is run:
                del self.pods[run.key]
        if delete_object:
            ns, _, name = run.key.partition("/")
            with contextlib.suppress(NotFound):
                cur = self.raw.get("Pod", ns, name)
                if (cur.metadata.uid or "") == run.uid:
                    self.raw.delete("Pod", ns, name)

    def _finalize_unstarted(self, pod: Pod) -> None:
        with contextlib.suppress(NotFound):
            self.raw.delete("Pod", pod.namespace, pod.name)

    def teardown(self) -> None:
        """``kins down``: every pod process ends."""
        self.recorder.close()
        self.runtime.shutdown()
        self.pool.shutdown(wait=False)

    def close(self) -> None:
        """Daemon exit without teardown: pods keep running in the runtime's processes."""
        self.recorder.close()  # its last events reach the store before the store closes
        detach = getattr(self.runtime, "detach", None)
        if detach is not None:
            detach()
        else:
            self.runtime.shutdown()
        self.pool.shutdown(wait=False)


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in env values; $$ escapes."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$(", i) and ")" in value[i:]:
            j = value.index(")", i)
            name = value[i + 2 : j]
            out.append(env.get(name, value[i : j + 1]))
            i = j + 1
        else:
            out.append(value[i])
            i += 1
    return "".join(out)
