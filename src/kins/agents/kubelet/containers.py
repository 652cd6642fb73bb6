"""A pod's containers as the kubelet runs them: started with their environment (env, envFrom,
valueFrom, ``$(VAR)`` expansion), their exits recorded, restarted per restartPolicy with
kubelet's back-off, and probed (readiness and liveness)."""

from __future__ import annotations

import base64
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..._errors import KinsError, NotFound
from ...api.config import ClusterConfig
from ...api.core import ConfigMap, Container, ContainerState, ContainerStateTerminated, ContainerStatus, Pod, Secret
from ...control.events import NORMAL, WARNING
from ...runtime.errors import ImageError, RuntimeFailure
from ...runtime.runtime import Runtime
from ...runtime.types import Container as RunningContainer
from ...runtime.types import ContainerSpec, ProcessExit
from ...store.base import Clock, Store
from .probes import ProbeState, probe_result, probe_state
from .state import ContainerRun, PodRun
from .status import PodEvents

log = logging.getLogger("kins.kubelet")

BACKOFF_START = 10.0
BACKOFF_MAX = 300.0
# Their containers get the API's address: they run controllers (DNS, ingress), which reach it
# with their pod's ServiceAccount token.
SYSTEM_NAMESPACES = ("kube-system", "ingress-nginx")
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


class Containers:
    """The containers of the pods in ``pods`` (the kubelet's records, guarded by ``lock``).

    ``get_pod`` reads the object a record is of; ``submit`` runs work on the kubelet's pool;
    ``store`` is where env sources (ConfigMaps, Secrets, the kubernetes Service) are read."""

    def __init__(
        self,
        cfg: ClusterConfig,
        store: Store,
        runtime: Runtime,
        state_dir: Path,
        clock: Clock,
        events: PodEvents,
        pods: Mapping[str, PodRun],
        lock: threading.RLock,
        get_pod: Callable[[PodRun], Pod | None],
        submit: Callable[..., None],
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.runtime = runtime
        self.state_dir = state_dir
        self.clock = clock
        self.events = events
        self.pods = pods
        self.lock = lock
        self.get_pod = get_pod
        self.submit = submit
        self.by_container: dict[str, tuple[str, str]] = {}  # runtime container id -> (pod key, name)
        # Exits the runtime saw while no kubelet was watching, by container id.
        self.recovered = {e.id: e for e in runtime.recovered_exits}

    # --- starting -----------------------------------------------------------------------------

    def start(self, pod: Pod, run: PodRun, cr: ContainerRun) -> None:
        c = cr.spec
        assert run.sandbox is not None
        try:
            env = self.env(pod, run, c)
        except NotFound as e:
            cr.waiting = ("CreateContainerConfigError", str(e))
            run.dirty = True
            self.events.event(run, WARNING, "Failed", f"Error: {e}", c.name)
            return
        spec = ContainerSpec(
            name=c.name,
            image=c.image or "",
            # $(VAR) in command and args is expanded from the container's environment.
            command=tuple(expand(a, env) for a in c.command or ()),
            args=tuple(expand(a, env) for a in c.args or ()),
            env=env,
            working_dir=c.workingDir,
            stdin=bool(c.stdin),
            stdin_once=bool(c.stdinOnce),
            tty=bool(c.tty),
        )
        try:
            started = self.runtime.start_container(run.sandbox, spec)
        except ImageError as e:
            with self.lock:
                cr.waiting = ("ErrImagePull", str(e))
                run.dirty = True
            self.events.event(run, WARNING, "Failed", f'Failed to pull image "{spec.image}": {e}', c.name)
            self.events.event(run, WARNING, "Failed", "Error: ErrImagePull", c.name)
            return
        except (RuntimeFailure, KinsError) as e:
            with self.lock:
                cr.waiting = ("RunContainerError", str(e))
                cr.restart_at = time.monotonic() + max(cr.backoff, BACKOFF_START)
                run.dirty = True
            self.events.event(run, WARNING, "Failed", f"Error: {e}", c.name)
            return
        # Built-in images and host binaries are always "present": kubelet's IfNotPresent path.
        self.events.event(run, NORMAL, "Pulled", f'Container image "{spec.image}" already present on machine', c.name)
        self.events.event(run, NORMAL, "Created", f"Created container {c.name}", c.name)
        self.events.event(run, NORMAL, "Started", f"Started container {c.name}", c.name)
        now = time.monotonic()
        with self.lock:
            self.by_container[started.id] = (run.key, c.name)
            cr.running = started
            cr.started_at = self.clock.now()
            cr.started_mono = now
            cr.waiting = None
            cr.terminated = None
            cr.ready = c.readinessProbe is None and c.name not in run.ephemeral
            cr.readiness = probe_state(c.readinessProbe, now)
            cr.liveness = probe_state(c.livenessProbe, now)
            if run.phase == "Pending" and run.sandbox is not None:
                run.phase = "Running"
            run.dirty = True

    def env(self, pod: Pod, run: PodRun, c: Container) -> dict[str, str]:
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
            # host's filesystem, so the path is all they need; the token is the projected one.
            env["KINS_API"] = f"unix:{self.state_dir / 'api.sock'}"
            env["KINS_TOKEN_FILE"] = SERVICE_ACCOUNT_TOKEN
        with contextlib.suppress(NotFound):
            k = self.store.get("Service", "default", "kubernetes")
            env["KUBERNETES_SERVICE_HOST"] = getattr(k.spec, "clusterIP", "") or ""  # type: ignore[attr-defined]
        for src in c.envFrom or []:
            data = self._ref_data(pod.namespace, src.configMapRef, src.secretRef)
            env.update({(src.prefix or "") + k: v for k, v in data.items()})
        for e in c.env or []:
            if e.value is not None:
                env[e.name] = expand(e.value, env)
            elif e.valueFrom is not None:
                v = self._value_from(pod, run, e.valueFrom)
                if v is not None:
                    env[e.name] = v
        return env

    def _ref_data(self, ns: str, cm: Any, sec: Any) -> dict[str, str]:
        try:
            if cm is not None and cm.name:
                o = self.store.get("ConfigMap", ns, cm.name)
                return dict(o.data or {}) if isinstance(o, ConfigMap) else {}
            if sec is not None and sec.name:
                o = self.store.get("Secret", ns, sec.name)
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

    # --- adopting, exits and restarts ---------------------------------------------------------

    def adopt(
        self,
        run: PodRun,
        c: Container,
        cs: ContainerStatus | None,
        running: RunningContainer | None,
        policy: str,
        now: float,
    ) -> None:
        """Take over container ``c`` of a pod that runs from before: its record rebuilt from the
        stored status ``cs`` and what the runtime still runs of it (``running``)."""
        cr = ContainerRun(spec=c, restarts=cs.restartCount if cs else 0, waiting=None)
        cr.last_terminated = cs.lastState.terminated if cs and cs.lastState else None
        state = (cs.state if cs else None) or ContainerState()
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
            self.by_container[running.id] = (run.key, c.name)
            return
        if state.running is not None:
            # It ended while no kubelet was watching: as if its exit had been seen now.
            cid = (cs.containerID if cs else None) or ""
            ev = self.recovered.get(cid.removeprefix("kins://"))
            cr.started_at = state.running.startedAt
            self.ended(run, cr, policy, ev.exit_code if ev else 137, ev.signal if ev else None, cid)
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

    def start_ephemeral(self, pod: Pod, run: PodRun) -> None:
        """Start the pod's ephemeral containers not started yet (each once, ever)."""
        new = []
        with self.lock:
            if run.sandbox is None or run.stopping:
                return
            for ec in pod.spec.ephemeralContainers or []:
                if ec.name not in run.ephemeral:
                    run.ephemeral[ec.name] = cr = ContainerRun(spec=ec)
                    new.append(cr)
                    run.dirty = True
        for cr in new:
            self.submit(self.start, pod, run, cr)

    def adopt_ephemeral(
        self, run: PodRun, pod: Pod, stored: Mapping[str, ContainerStatus], live: Mapping[str, RunningContainer]
    ) -> None:
        """Ephemeral containers of a pod adopted after a restart: running, or as last reported."""
        for ec in pod.spec.ephemeralContainers or []:
            cs = stored.get(ec.name)
            cr = ContainerRun(spec=ec, waiting=None)
            run.ephemeral[ec.name] = cr
            running = live.get(ec.name)
            if running is not None:
                cr.running = running
                cr.started_at = (
                    cs.state.running.startedAt if cs and cs.state and cs.state.running else None
                ) or self.clock.now()
                self.by_container[running.id] = (run.key, ec.name)
            elif cs is not None and cs.state is not None and cs.state.terminated is not None:
                cr.terminated = cs.state.terminated
            else:
                cr.terminated = ContainerStateTerminated(exitCode=137, reason="ContainerStatusUnknown")

    def on_exit(self, ev: ProcessExit) -> None:
        if ev.sandbox:
            return
        with self.lock:
            where = self.by_container.pop(ev.id, None)
            if where is None:
                return
            run = self.pods.get(where[0])
            if run is None or run.stopping:
                return
            if where[1] in run.ephemeral:
                self.ended(run, run.ephemeral[where[1]], "Never", ev.exit_code, ev.signal, f"kins://{ev.id}", True)
                return
            cr = run.containers[where[1]]
            pod = self.get_pod(run)
            policy = (pod.spec.restartPolicy if pod else None) or "Always"
            self.ended(run, cr, policy, ev.exit_code, ev.signal, f"kins://{ev.id}")

    def ended(
        self,
        run: PodRun,
        cr: ContainerRun,
        policy: str,
        exit_code: int,
        sig: int | None,
        container_id: str,
        ephemeral: bool = False,
    ) -> None:
        """A container ended: record it, then restart it per ``policy`` or finish the pod (an
        ephemeral container's end changes nothing else)."""
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
        if ephemeral:
            return
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
                self.events.event(run, WARNING, "BackOff", msg, cr.spec.name)
        elif all(x.running is None and x.restart_at is None for x in run.containers.values()):
            failed = any(x.terminated is not None and x.terminated.exitCode for x in run.containers.values())
            run.phase = "Failed" if failed else "Succeeded"

    def restarts(self, now: float) -> None:
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
            pod = self.get_pod(run)
            if pod is not None:
                self.submit(self.start, pod, run, cr)

    def probe(self, now: float) -> None:
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
            self.submit(self.run_probe, *item)

    def run_probe(self, run: PodRun, cr: ContainerRun, ps: ProbeState, kind: str) -> None:
        ok, why = probe_result(ps.probe, run, cr.spec)
        with self.lock:
            p = ps.probe
            now = time.monotonic()
            ps.next_at = now + (p.periodSeconds or 10)
            # kubelet reports every failed probe; kins probes a not-yet-ready container more often
            # than its period, so it reports at most one failure per period.
            if not ok and now - ps.reported_at >= (p.periodSeconds or 10):
                ps.reported_at = now
                self.events.event(run, WARNING, "Unhealthy", f"{kind.capitalize()} probe failed: {why}", cr.spec.name)
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
                self.events.event(run, NORMAL, "Killing", msg, cr.spec.name)
                ps.failures = 0
                self.runtime.kill_container(cr.running)
        if kind == "readiness" and not ok and not cr.ready:
            with self.lock:
                ps.next_at = min(ps.next_at, time.monotonic() + 0.2)

    # --- stopping -----------------------------------------------------------------------------

    def stop(self, run: PodRun, grace: float) -> None:
        """Stop the pod's running containers (SIGTERM, SIGKILL after ``grace`` seconds)."""
        with self.lock:
            runs = [*run.containers.values(), *run.ephemeral.values()]
            running = [cr.running for cr in runs if cr.running is not None]
            for c in running:
                self.by_container.pop(c.id, None)
                self.events.event(run, NORMAL, "Killing", f"Stopping container {c.name}", c.name)
        with contextlib.suppress(Exception):
            self.runtime.stop_containers(running, grace=grace)


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in env values, command and args; $$ escapes."""
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
