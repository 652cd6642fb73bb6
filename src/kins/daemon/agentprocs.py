"""Node agents as processes: one ``kins agent`` per Node, started, watched and restarted.

What systemd does for kube-proxy, flanneld and the kubelet on a real node: a process that dies
is started again (after a short back-off that grows if it keeps dying); a Node that is deleted
keeps its agent until its kubelet has stopped the node's pods, then the agent is stopped and
the node's namespace removed. The agents report what they applied to the API
server; ``wait_applied`` and ``status`` read those reports.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..api.core import Node, Pod
from ..kernel.apply import remove_node
from ..store.base import Store

log = logging.getLogger("kins.agentprocs")

RESTART_FIRST = 0.2
RESTART_MAX = 10.0
STOP_GRACE = 5.0
DRAIN_TIMEOUT = 30.0  # seconds a deleted Node's agent has to stop the node's pods


@dataclass
class _Agent:
    node: str
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    backoff: float = RESTART_FIRST
    start_at: float = 0.0
    started: float = 0.0
    report: dict[str, Any] = field(default_factory=dict)
    gone_since: float | None = None  # its Node was deleted: draining


class AgentProcesses:
    """Keeps one agent process per Node of ``store`` running."""

    def __init__(self, cluster: str, store: Store, state_dir: Path, api: str, token_file: Path) -> None:
        self.cluster = cluster
        self.store = store
        self.state_dir = state_dir
        self.api = api
        self.token_file = token_file
        self.agents: dict[str, _Agent] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def argv(self, node: str) -> list[str]:
        return [
            sys.executable, "-m", "kins.agents.process",
            "--node", node,
            "--api", self.api,
            "--token-file", str(self.token_file),
            "--state-dir", str(self.state_dir),
            "--log-file", str(self.state_dir / f"agent-{node}.log"),
        ]  # fmt: skip

    # --- supervising --------------------------------------------------------------------------

    def start(self) -> AgentProcesses:
        self._stop_strays()
        self.reconcile()
        self._thread = threading.Thread(target=self._run, name="agent-processes", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.reconcile()
            except Exception:
                log.exception("agent processes")

    def reconcile(self) -> None:
        nodes = {n.name for n in self.store.list("Node")[0] if isinstance(n, Node)}
        now = time.monotonic()
        with self._cond:
            gone = [a for name, a in self.agents.items() if name not in nodes and self._done(a, now)]
            for a in gone:
                del self.agents[a.node]
            for name in sorted(nodes):
                a = self.agents.setdefault(name, _Agent(name))
                a.gone_since = None
                if a.proc is not None and a.proc.poll() is not None:
                    rc = a.proc.returncode
                    log.warning("agent of node %s exited (%s); starting it again in %.1fs", name, rc, a.backoff)
                    a.proc = None
                    a.report = {}
                    a.start_at = now + a.backoff
                    # A process that ran a while was healthy: its next failure starts afresh.
                    a.backoff = RESTART_FIRST if now - a.started > 30 else min(a.backoff * 2, RESTART_MAX)
                    a.restarts += 1
                    self._cond.notify_all()
                if a.proc is None and now >= a.start_at:
                    a.proc = subprocess.Popen(
                        self.argv(name), stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True
                    )
                    a.started = now
                    log.info("agent of node %s started (pid %d)", name, a.proc.pid)
        for a in gone:
            self._stop_one(a)
            remove_node(self.cluster, a.node, self.state_dir)  # idempotent: the agent may have done it

    def _done(self, a: _Agent, now: float) -> bool:
        """Whether the agent of a deleted Node may go: its kubelet has stopped the node's pods
        and deleted their objects (or it had DRAIN_TIMEOUT seconds to)."""
        if a.gone_since is None:
            a.gone_since = now
        left = [p for p in self.store.list("Pod")[0] if isinstance(p, Pod) and p.spec.nodeName == a.node]
        return not left or now - a.gone_since > DRAIN_TIMEOUT or a.proc is None

    def _stop_strays(self) -> None:
        """Agents a daemon before this one started (it was killed, they were not): they
        report to nobody now, and this daemon starts its own."""
        mark = [b"kins.agents.process", f"--state-dir\0{self.state_dir}\0".encode()]
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if all(m in cmdline for m in mark):
                log.info("stopping agent process %s of an earlier daemon", entry)
                with contextlib.suppress(OSError):
                    os.kill(int(entry), signal.SIGTERM)

    def _stop_one(self, a: _Agent) -> None:
        if a.proc is None:
            return
        a.proc.terminate()
        try:
            a.proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            a.proc.kill()
            a.proc.wait()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._cond:
            agents = list(self.agents.values())
        for a in agents:
            self._stop_one(a)

    # --- what they report ---------------------------------------------------------------------

    def report(self, node: str, body: dict[str, Any]) -> None:
        with self._cond:
            a = self.agents.get(node)
            if a is None or a.proc is None or body.get("pid") != a.proc.pid:
                return  # a process this daemon did not start, or one already replaced
            a.report = body
            self._cond.notify_all()

    def _applied(self) -> int:
        vals = [int(a.report.get("appliedResourceVersion", 0)) for a in self.agents.values()]
        return min(vals, default=0)

    def wait_applied(self, rv: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._applied() >= rv, timeout)

    def status(self) -> dict[str, Any]:
        with self._cond:
            return {
                "appliedResourceVersion": self._applied(),
                "nodes": {
                    a.node: {
                        "pid": a.proc.pid if a.proc is not None else None,
                        "restarts": a.restarts,
                        "appliedResourceVersion": a.report.get("appliedResourceVersion", 0),
                        "lastSyncSeconds": a.report.get("lastSyncSeconds", 0.0),
                        "agents": a.report.get("agents", {}),
                    }
                    for a in self.agents.values()
                },
            }
