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


# --- a cluster whose state directory is gone (``kins down --force``) ------------------------------


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]] if raw else []


def _option(argv: list[str], flag: str) -> str | None:
    """The value after ``flag`` in ``argv`` (``--name X``), or None."""
    for i, arg in enumerate(argv[:-1]):
        if arg == flag:
            return argv[i + 1]
    return None


def _is_fork_server(argv: list[str]) -> bool:
    return len(argv) >= 2 and any("kins.runtime.zygote" in a for a in argv[:-1])


def running_daemon_names() -> set[str]:
    """The cluster names of the kins daemons running on this machine, whatever their state root."""
    out: set[str] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            argv = _argv(int(entry))
            if "kins.daemon.main" in argv and (name := _option(argv, "--name")):
                out.add(name)
    return out


def prefixed_processes(cluster: str, namespaces: list[str]) -> list[int]:
    """The processes of ``cluster`` found without its state directory: its daemon (started with
    ``--name <cluster>``), its node agents (``--state-dir …/<cluster>``: a cluster's state
    directory is named after it), its fork servers (listening on ``…/<cluster>/runtime*.sock``)
    and every process in one of ``namespaces`` (the cluster's, named with its prefix). Nothing
    else: a process of another cluster carries another name."""
    inodes: set[int] = set()
    for ns in namespaces:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(f"/run/netns/{ns}").st_ino)
    me = os.getpid()
    pids: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        argv = _argv(pid)
        ours = False
        if "kins.daemon.main" in argv:
            ours = _option(argv, "--name") == cluster
        elif "kins.agents.process" in argv:
            state = _option(argv, "--state-dir")
            ours = state is not None and Path(state).name == cluster
        elif _is_fork_server(argv):
            sock = Path(argv[-1])
            ours = sock.parent.name == cluster and sock.name.startswith("runtime")
        if not ours:
            try:
                ours = os.stat(f"/proc/{pid}/ns/net").st_ino in inodes
            except OSError:
                continue
        if ours:
            pids.append(pid)
    return pids


def kill_prefixed_processes(cluster: str, namespaces: list[str], timeout: float = 5.0) -> int:
    """SIGKILL every process of the cluster (``prefixed_processes``) and wait until they are
    gone; how many there were. A second look catches what a dying daemon started meanwhile."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    for _ in range(3):
        pids = [p for p in prefixed_processes(cluster, namespaces) if _alive(p)]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed.update(pids)
        for pid in pids:
            while time.monotonic() < deadline and _alive(pid):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                time.sleep(0.01)
    return len(killed)
