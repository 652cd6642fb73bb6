"""Where a cluster's daemon keeps its state, and how commands find a running cluster.

``$KINS_STATE_DIR`` (default ``/var/lib/kins``) holds one directory per cluster name with the
store (SQLite), the API token (0600), the daemon's address (``daemon.json``), the kernel ledger,
pod files and logs. A cluster counts as running while the pid in ``daemon.json`` is alive and is
a kins daemon for that name.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .._errors import KinsError

DEFAULT_ROOT = "/var/lib/kins"


def state_root() -> Path:
    return Path(os.environ.get("KINS_STATE_DIR") or DEFAULT_ROOT)


def cluster_dir(name: str) -> Path:
    return state_root() / name


@dataclass(frozen=True)
class DaemonInfo:
    name: str
    pid: int
    url: str  # https://127.0.0.1:PORT
    socket: str  # unix socket path (plain HTTP) reachable from pods through the shared filesystem
    ca_file: str
    state_dir: str
    started: float

    def write(self) -> None:
        path = Path(self.state_dir) / "daemon.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)

    @classmethod
    def read(cls, state_dir: Path) -> DaemonInfo | None:
        try:
            return cls(**json.loads((state_dir / "daemon.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None


def pid_alive(pid: int, name: str | None = None) -> bool:
    """True if ``pid`` runs a kins daemon (for ``name``, when given)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if b"kins.daemon.main" not in cmdline:
        return False
    return name is None or name.encode() in cmdline


def running_clusters() -> list[DaemonInfo]:
    root = state_root()
    out: list[DaemonInfo] = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        info = DaemonInfo.read(d)
        if info is not None and pid_alive(info.pid, info.name):
            out.append(info)
    return out


def known_clusters() -> list[str]:
    """Cluster names with a state directory (running or not)."""
    root = state_root()
    return sorted(d.name for d in root.iterdir() if (d / "cluster.yaml").exists()) if root.is_dir() else []


def pick_cluster(name: str | None) -> DaemonInfo:
    """The cluster a command talks to: ``--name``, else ``$KINS_CLUSTER``, else the only running one."""
    name = name or os.environ.get("KINS_CLUSTER") or None
    running = running_clusters()
    if name is not None:
        for info in running:
            if info.name == name:
                return info
        raise KinsError(f"cluster {name!r} is not running (start it with `kins up --name {name}`)")
    if not running:
        raise KinsError("no cluster is running: start one with `kins up`, or give manifests with -f")
    if len(running) > 1:
        names = ", ".join(i.name for i in running)
        raise KinsError(f"several clusters are running ({names}): choose one with --name or KINS_CLUSTER")
    return running[0]
