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

import contextlib
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from msgspec.structs import replace

from ..._errors import KernelError, KinsError, NotFound
from ...api.config import ClusterConfig
from ...api.core import Node, Pod, PodStatus, ServiceAccountTokenProjection
from ...control.events import WARNING
from ...kernel import netns as kns
from ...runtime.errors import SandboxError
from ...runtime.runtime import Runtime, pod_dir_name
from ...runtime.types import ProcessExit, Sandbox
from ...store.base import Clock, WatchEvent
from ..loop import Reconciler
from ..view import ClusterView
from .containers import Containers
from .podnet import PodNetwork
from .state import ContainerRun, PodRun, has_run, unfinished
from .status import PodEvents, PodStatusWriter, pending_status
from .volumes import PodVolumes, VolumeError, request_pod_token

log = logging.getLogger("kins.kubelet")

STOP_GRACE_MAX = 5.0  # seconds a container gets after SIGTERM before SIGKILL (capped for speed)
TOKEN_CHECK = 5.0  # seconds between looks for projected tokens due for renewal
RETRY_START = 2.0  # seconds before a pod whose volumes or sandbox failed is tried again
RETRY_NETWORK = 0.3  # seconds before a pod whose node's network is not made yet is tried again


class Kubelet(Reconciler):
    """All nodes' kubelets on the agents' loop (plus a small pool for pod start-up and probes)."""

    name = "kubelet"
    kinds = frozenset({"Pod", "Node", "ConfigMap", "Secret", "PersistentVolumeClaim", "PersistentVolume"})
    resync = 30.0
    after = ("overlay",)
    TICK = 0.05  # seconds between looks at exits, restarts, probes and statuses to write

    def __init__(
        self,
        cfg: ClusterConfig,
        store: ClusterView,
        state_dir: Path,
        kernel_lock: threading.Lock,
        only: frozenset[str] | None = None,
    ) -> None:
        """``only``: the nodes whose pods this kubelet runs (every node when None). A kubelet of
        one node has a runtime server of its own, so it adopts and removes only its pods."""
        self.cfg = cfg
        self.only = only
        self.store = store
        self.state_dir = state_dir
        self.clock = Clock()
        self.pods: dict[str, PodRun] = {}
        self.lock = threading.RLock()
        self._exits: queue.SimpleQueue[ProcessExit] = queue.SimpleQueue()  # the runtime's, for the loop
        own = next(iter(only)) if only is not None and len(only) == 1 else ""
        self.runtime = Runtime(state_dir, on_exit=self._exits.put, name=own)
        self.volumes = PodVolumes(self.store, state_dir, self._request_token)
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kins-kubelet")
        self.net = PodNetwork(cfg, store, state_dir, kernel_lock)
        # What the runtime still runs from before this kubelet started, by pod key.
        self._adoptable: dict[str, Sandbox] = {s.pod_key: s for s in self.runtime.sandboxes()}
        self._first_sync = True
        self.recorder = PodEvents(store)
        self.status_writer = PodStatusWriter(store, self.clock, self.pods, self.lock)
        self.containers = Containers(
            cfg,
            store,
            self.runtime,
            state_dir,
            self.clock,
            self.recorder,
            self.pods,
            self.lock,
            self.status_writer.get_pod,
            self._submit,
        )
        self._next_tick = 0.0
        self._next_probe = 0.0
        self._next_token_check = 0.0

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
                ev = self._exits.get_nowait()
            except queue.Empty:
                break
            self.containers.on_exit(ev)
        now = time.monotonic()
        self._retry_starts(now)
        self.containers.restarts(now)
        if now >= self._next_probe:
            self.containers.probe(now)
            self._next_probe = now + 0.1
        if now >= self._next_token_check:
            self._renew_tokens()
            self._next_token_check = now + TOKEN_CHECK
        self.status_writer.flush()
        self._next_tick = time.monotonic() + self.TICK

    def _resync(self) -> None:
        pods = [p for p in self.store.list("Pod")[0] if isinstance(p, Pod)]
        nodes = {n.name for n in self.store.list("Node")[0] if isinstance(n, Node)}
        seen: set[str] = set()
        for p in pods:
            node = p.spec.nodeName
            if not node or (self.only is not None and node not in self.only):
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
                    self._submit(self._remove_orphans, [sandbox], None)
                # Otherwise the pod's start replaces the sandbox.
            if node not in nodes or p.metadata.deletionTimestamp:
                if run is not None and not run.stopping:
                    run.stopping = True
                    self._submit(self._stop, run, True)
                elif run is None:
                    self._submit(self._finalize_unstarted, p)
                continue
            if run is None and unfinished(p):
                run = PodRun(key=p.key, uid=p.metadata.uid or "", node=node)
                self.pods[p.key] = run
                self._submit(self._start, p, run)
            elif run is not None and p.spec.ephemeralContainers and run.sandbox is not None:
                self.containers.start_ephemeral(p, run)
        for key in list(self.pods):
            if key not in seen:
                run = self.pods[key]
                if not run.stopping:
                    run.stopping = True
                    self._submit(self._stop, run, False)
        if self._first_sync:
            self._first_sync = False
            wanted = self.net.wanted(pods)
            # Sandboxes left that no pod claims are the pod's with the same name, if there is one
            # (its start replaces them), else of pods that are gone.
            orphans = [sb for key, sb in self._adoptable.items() if key not in seen]
            self._adoptable.clear()
            self._submit(self._remove_orphans, orphans, wanted)

    def _submit(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on the pool; a failure is logged."""
        self.pool.submit(self._guard, fn, *args)

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
                self._submit(self._start, pod, r)

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
            self.containers.adopt(run, c, stored.get(c.name), live.get(c.name), policy, now)
        ephemeral = {cs.name: cs for cs in status.ephemeralContainerStatuses or []}
        self.containers.adopt_ephemeral(run, pod, ephemeral, live)
        self.pods[pod.key] = run
        if run.phase in ("Running", "Pending"):
            run.phase = "Running" if has_run(run) else "Pending"
            # Heals the pod's link if something broke it; a no-op when it is right.
            self._submit(self.net.repair, pod.key, run.node, pod)
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
        self.net.remove_unclaimed(wanted, self._claims, self.only)

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
            if isinstance(e, VolumeError):
                self.recorder.event(run, WARNING, "FailedMount", f"Unable to attach or mount volumes: {e}")
            else:
                self.recorder.event(run, WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
            with self.lock:
                for cr in run.containers.values():
                    cr.waiting = (reason, str(e))
                run.retry_at = time.monotonic() + RETRY_START
                run.dirty = True
            return
        run.sandbox = sandbox
        for c in pod.spec.containers:
            self.containers.start(pod, run, run.containers[c.name])
        # Those added while the pod was starting (the store's copy is the newest).
        self.containers.start_ephemeral(self.status_writer.get_pod(run) or pod, run)
        with self.lock:
            # Kubernetes' rule: Running once a container has started; an image that cannot be
            # pulled leaves the pod Pending (its container waiting with ErrImagePull).
            run.phase = "Running" if has_run(run) else "Pending"
            run.dirty = True

    # --- volumes ------------------------------------------------------------------------------

    def _request_token(self, pod: Pod, proj: ServiceAccountTokenProjection) -> tuple[str, float]:
        client = getattr(self.store, "client", None)
        if client is None:
            raise KinsError("this kubelet has no API client")
        return request_pod_token(client, pod, proj)

    def _renew_tokens(self) -> None:
        with self.lock:
            runs = [r for r in self.pods.values() if r.sandbox is not None and not r.stopping]
        pods = (self.status_writer.get_pod(r) for r in runs)
        self.volumes.tokens_due((p for p in pods if p is not None), self._submit)

    def _refresh_volumes(self, changed: set[tuple[str, str | None, str]]) -> None:
        """ConfigMaps or Secrets changed: running pods that mount them see the new files."""
        with self.lock:
            runs = [r for r in self.pods.values() if r.sandbox is not None and not r.stopping]
        pods = (self.status_writer.get_pod(r) for r in runs)
        self.volumes.refresh((p for p in pods if p is not None), changed, self._submit)

    # --- stopping -----------------------------------------------------------------------------

    def _stop(self, run: PodRun, delete_object: bool) -> None:
        pod = self.status_writer.get_pod(run)
        grace = STOP_GRACE_MAX
        if pod is not None and pod.metadata.deletionGracePeriodSeconds is not None:
            grace = min(float(pod.metadata.deletionGracePeriodSeconds), STOP_GRACE_MAX)
        if run.sandbox is not None:
            self.containers.stop(run, grace)
            with contextlib.suppress(Exception):
                self.runtime.remove_sandbox(run.sandbox, grace=0)
        if run.netns:
            self.net.remove(run.node, run.netns)
        self.volumes.remove(run.key)
        with self.lock:
            if run.ip:
                self.net.release(run.node, run.ip)
            if self.pods.get(run.key) is run:
                del self.pods[run.key]
        if delete_object:
            ns, _, name = run.key.partition("/")
            with contextlib.suppress(NotFound):
                cur = self.store.get("Pod", ns, name)
                if (cur.metadata.uid or "") == run.uid:
                    self.store.delete("Pod", ns, name)

    def _finalize_unstarted(self, pod: Pod) -> None:
        with contextlib.suppress(NotFound):
            self.store.delete("Pod", pod.namespace, pod.name)

    def teardown(self) -> None:
        """``kins down``: every pod process ends."""
        self.status_writer.close()
        self.recorder.close()
        self.runtime.shutdown()
        self.pool.shutdown(wait=False)

    def close(self) -> None:
        """Daemon exit without teardown: pods keep running in the runtime's processes."""
        self.status_writer.close()  # the last statuses reach the API while it still answers
        self.recorder.close()  # its last events reach the store before the store closes
        detach = getattr(self.runtime, "detach", None)
        if detach is not None:
            detach()
        else:
            self.runtime.shutdown()
        self.pool.shutdown(wait=False)
