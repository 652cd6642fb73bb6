"""The kubelet's resource metrics: its pods' and nodes' CPU and memory, posted to the API.

Every ``PERIOD`` seconds the sampler reads /proc once (``usage.py``), takes each running
container's CPU rate over about ``WINDOW`` seconds (metrics-server's resolution) and its memory,
and posts one report for the nodes this kubelet serves to ``/kins/v1/metrics``; the API keeps
the latest and serves it as the Metrics API (``kubectl top``). A node's usage is its pods'
(sandbox holders included, as a pod's cgroup holds its pause container) plus the agent's own
processes: this process and its pod runtime server, shared equally between the nodes it serves.

A container seen for the first time has one sample only; its process started with no CPU time,
so its start is the window's first point (metrics-server does the same for fresh containers),
and a new pod shows in ``kubectl top`` on the next sample after it starts.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from msgspec.structs import replace

from ...api.core import Node, NodeStatus
from ...api.meta import Object
from .state import PodRun
from .usage import CLOCK_TICK_NS, History, Point, ProcessTable, usage_of

log = logging.getLogger("kins.kubelet.metrics")

# Seconds between samples: half the window, so a rate spans two periods. Reading a process's
# PSS costs a page-table walk (~0.1-0.3 ms for a forked interpreter): at 500 pods that is ~3 %
# of a core at this period.
PERIOD = 7.5
WINDOW = 15.0  # seconds the CPU rate is taken over, once a container has run that long
FRESH_MIN = 0.5  # seconds a new container must have run before its rate means anything

Post = Callable[[list[dict[str, Any]]], object]


class NodeLister(Protocol):
    def list(self, kind: str) -> tuple[list[Object], int]: ...


class NodeStore(NodeLister, Protocol):
    def get(self, kind: str, namespace: str | None, name: str) -> Object: ...

    def update_status(self, obj: Object, *, check_rv: bool = True) -> Object: ...


MAX_PODS = "110"  # the kubelet's default --max-pods


def machine_capacity() -> dict[str, str]:
    """What a node has: every node shares this machine, and each reports all of it, as kind's
    nodes report their host's CPUs and memory."""
    cpus = len(os.sched_getaffinity(0))
    with open("/proc/meminfo") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
    return {"cpu": str(cpus), "memory": f"{kib}Ki", "pods": MAX_PODS}


def ensure_capacity(store: NodeStore, name: str, capacity: dict[str, str]) -> None:
    """Record the node's capacity and allocatable in its status when it has none, as a kubelet
    registering its node does (``kubectl top nodes`` shows usage as a share of allocatable)."""
    node = store.get("Node", None, name)
    if not isinstance(node, Node):
        return
    st = node.status or NodeStatus()
    if st.capacity and st.allocatable:
        return
    status = replace(st, capacity=st.capacity or dict(capacity), allocatable=st.allocatable or dict(capacity))
    store.update_status(replace(node, status=status))


def boottime() -> float:
    """Seconds since boot, the clock processes' start times count in."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Proc:
    """A process group whose rate is followed: a container, a sandbox holder or the agent."""

    pid: int
    start_time: int  # clock ticks since boot; 0 when unknown
    history: History
    seen: bool = True


@dataclass
class _Totals:
    cpu: int = 0
    memory: int = 0
    window: float = 0.0
    pods: list[dict[str, Any]] = field(default_factory=list)


class MetricsSampler:
    """Samples the pods in ``pods`` (the kubelet's records, guarded by ``lock``) and posts the
    nodes' reports with ``post``. ``nodes()`` names the nodes this kubelet serves; ``own()``
    the pids of the agent's own processes."""

    def __init__(
        self,
        pods: dict[str, PodRun],
        lock: threading.RLock,
        nodes: Callable[[], Sequence[str]],
        own: Callable[[], Sequence[int]],
        post: Post,
        *,
        register: Callable[[str], None] | None = None,
        period: float = PERIOD,
        window: float = WINDOW,
    ) -> None:
        self._pods = pods
        self._lock = lock
        self._nodes = nodes
        self._own = own
        self._post = post
        self._register = register
        self.period = period
        self.window = window
        self._procs: dict[str, _Proc] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> MetricsSampler:
        self._thread = threading.Thread(target=self._run, name="kins-kubelet-metrics", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            # Each step on its own: the API may be restarting, a write may conflict; the next
            # period tries again.
            if self._register is not None:
                try:
                    for node in self._nodes():
                        self._register(node)
                except Exception as e:
                    log.info("node capacity not recorded yet: %s", e)
            try:
                reports = self.sample()
                if reports:
                    self._post(reports)
            except Exception as e:
                log.warning("metrics not posted: %s", e)
            self._stop.wait(self.period)

    # --- one sample -----------------------------------------------------------------------

    def _rate(
        self, table: ProcessTable, key: str, pid: int, start_time: int, now: float, *, alone: bool = False
    ) -> tuple[int, int, float]:
        """(nanocores, memory bytes, window seconds) of the process group rooted at ``pid`` (of
        ``pid`` alone with ``alone``); the window is 0 while no rate is known yet."""
        pids = table.tree(pid, start_time)
        if alone:
            pids = [pid] if pids else []
        if not pids:
            return 0, 0, 0.0
        use = usage_of(table, pids)
        proc = self._procs.get(key)
        if proc is None or proc.pid != pid or proc.start_time != start_time:
            proc = _Proc(pid, start_time, History(self.window))
            st = table.procs[pid]
            started = st.start_time * CLOCK_TICK_NS / 1e9
            # A process forked by the runtime starts with no CPU time of its own.
            if 0 <= now - started <= self.window:
                proc.history.add(Point(started, 0))
            self._procs[key] = proc
        proc.seen = True
        proc.history.add(Point(now, use.cpu_ns))
        rate = proc.history.rate()
        if rate is None or rate[1] < FRESH_MIN:
            return 0, use.memory, 0.0
        return rate[0], use.memory, rate[1]

    def sample(self) -> list[dict[str, Any]]:
        """Read the processes now and return the nodes' reports (the body ``post`` sends)."""
        nodes = list(self._nodes())
        if not nodes:
            return []
        with self._lock:
            runs = [
                (
                    run.key,
                    run.uid,
                    run.node,
                    run.sandbox,
                    [(name, cr.running) for name, cr in run.containers.items() if cr.running is not None],
                )
                for run in self._pods.values()
                if not run.stopping
            ]
        table = ProcessTable()
        now = boottime()
        wall = time.time()
        for proc in self._procs.values():
            proc.seen = False
        totals = {n: _Totals() for n in nodes}
        for key, uid, node, sandbox, containers in runs:
            tot = totals.get(node)
            if tot is None:
                continue
            if sandbox is not None:
                cpu, mem, _ = self._rate(table, "sandbox/" + sandbox.id, sandbox.pid, sandbox.start_time, now)
                tot.cpu += cpu
                tot.memory += mem
            entries: list[dict[str, Any]] = []
            window = 0.0
            for name, running in containers:
                assert running is not None
                cpu, mem, win = self._rate(table, "container/" + running.id, running.pid, running.start_time, now)
                tot.cpu += cpu
                tot.memory += mem
                if win <= 0:
                    continue  # no rate yet: the pod shows once all its containers have one
                entries.append({"name": name, "cpu": cpu, "memory": mem})
                window = max(window, win)
            if entries and len(entries) == len(containers):
                ns, _, name = key.partition("/")
                tot.pods.append(
                    {
                        "namespace": ns,
                        "name": name,
                        "uid": uid,
                        "timestamp": rfc3339(wall),
                        "window": round(window, 3),
                        "containers": entries,
                    }
                )
                tot.window = max(tot.window, window)
        # The agent's own processes serve every node alike: each node is charged its share.
        own_cpu = own_mem = 0
        own_window = 0.0
        for pid in dict.fromkeys(self._own()):
            if pid <= 0 or (st := table.procs.get(pid)) is None:
                continue
            # Alone: the agent's descendants include the runtime server and every pod.
            cpu, mem, win = self._rate(table, f"agent/{pid}", pid, st.start_time, now, alone=True)
            own_cpu += cpu
            own_mem += mem
            own_window = max(own_window, win)
        for key in [k for k, p in self._procs.items() if not p.seen]:
            del self._procs[key]
        reports = []
        for node, tot in totals.items():
            window = max(tot.window, own_window)
            if window <= 0:
                continue  # nothing has a rate yet (the first sample of a fresh agent)
            reports.append(
                {
                    "node": node,
                    "timestamp": rfc3339(wall),
                    "window": round(window, 3),
                    "cpu": tot.cpu + own_cpu // len(nodes),
                    "memory": tot.memory + own_mem // len(nodes),
                    "pods": tot.pods,
                }
            )
        return reports


def served_nodes(store: NodeLister, only: frozenset[str] | None) -> list[str]:
    """The nodes a kubelet serves: those in ``only`` (every node when None) that exist."""
    names = [n.name for n in store.list("Node")[0]]
    return sorted(n for n in names if only is None or n in only)


def own_processes(runtime_pid: Callable[[], int]) -> Callable[[], list[int]]:
    """This process and the pod runtime's server (its pid as the runtime knows it now)."""
    me = os.getpid()
    return lambda: [me, runtime_pid()]
