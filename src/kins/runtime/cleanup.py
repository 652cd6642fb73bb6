"""Find and end every process a cluster left behind, whatever state its daemon is in.

Used by ``kins down`` after the daemon stopped (or crashed): any process living in one of the
cluster's network namespaces (pod holders, containers, nginx, DNS) and the cluster's fork
server (found by its log file in the state directory) is killed. Nothing else is touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def _netns_inodes(cluster_prefix: str) -> set[int]:
    out: set[int] = set()
    base = Path("/run/netns")
    if not base.is_dir():
        return out
    for p in base.iterdir():
        if p.name.startswith(cluster_prefix):
            with contextlib.suppress(OSError):
                out.add(p.stat().st_ino)
    return out


def cluster_processes(state_dir: str | Path, cluster: str) -> list[int]:
    """PIDs of the cluster's processes (in its namespaces, or its fork server)."""
    state = Path(state_dir).resolve()
    inodes = _netns_inodes(f"kins-{cluster}-")
    # The fork servers: one per cluster, or one per node's kubelet (zygote-<node>.log).
    logs = {str(p) for p in state.glob("zygote*.log")} | {str(state / "zygote.log"), str(state / "runtime.log")}
    me = os.getpid()
    pids: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == me:
            continue
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino in inodes:
                pids.append(pid)
                continue
            if os.readlink(f"/proc/{pid}/fd/1") in logs:
                pids.append(pid)
        except OSError:
            continue
    return pids


def kill_cluster_processes(state_dir: str | Path, cluster: str | None = None, timeout: float = 5.0) -> int:
    """SIGKILL every process of the cluster and wait until they are gone; how many there were."""
    name = cluster or Path(state_dir).name
    pids = cluster_processes(state_dir, name)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            # A zombie child of ours would linger: reap it if it is one.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not _alive(pid):
                break
            time.sleep(0.01)
    return len(pids)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
