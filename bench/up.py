"""`kins up` of the article's cluster until the first request through data-product's ClusterIP
is answered (what a user waits for), repeated; prints min and median.

    sudo python bench/up.py [--runs 5] [--cluster FILE] [--baseline SRC_DIR]

``--baseline`` alternates runs of another tree's sources (``PYTHONPATH=SRC_DIR``, e.g. a
``git worktree`` of an older commit's ``src``) with this one, so both face the same machine load;
``--cluster`` brings up that cluster file instead of the article's default.

Also the helpers the other live benchmarks share (scratch state directory, `kins` commands,
cluster processes and their memory).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

KINS = [sys.executable, "-c", "from kins.cli import main; main()"]
DATA_PRODUCT_URL = "http://10.254.116.224:50051/"
_ARTICLE = resources.files("kins").joinpath("data/article")
# `kins apply` arguments for the article's two apps (without the system pods of a full `kins up`).
ARTICLE_APPS_ARGS = [
    "-f",
    str(_ARTICLE.joinpath("business-manager.yaml")),
    "-f",
    str(_ARTICLE.joinpath("data-product.yaml")),
]


class Live:
    """A cluster name in a scratch ``$KINS_STATE_DIR``; `kins down` and cleanup on close."""

    def __init__(self, prefix: str = "b", src: str | None = None) -> None:
        self.name = f"{prefix}{secrets.token_hex(3)}"
        self.root = Path(tempfile.mkdtemp(prefix="kins-bench-"))
        self.env = {**os.environ, "KINS_STATE_DIR": str(self.root), "KINS_CLUSTER": self.name}
        if src is not None:
            self.env["PYTHONPATH"] = src

    @property
    def state(self) -> Path:
        return self.root / self.name

    def kins(self, *args: str, stdin: str | None = None, timeout: float = 300) -> str:
        res = subprocess.run([*KINS, *args], env=self.env, capture_output=True, text=True, input=stdin, timeout=timeout)
        if res.returncode != 0:
            raise SystemExit(f"kins {' '.join(args)} failed:\n{res.stdout}{res.stderr}")
        return res.stdout

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*KINS, *args], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )

    def client(self) -> Any:
        from kins.apiserver.auth import read_token
        from kins.client import Client
        from kins.daemon.state import DaemonInfo

        info = DaemonInfo.read(self.state)
        assert info is not None
        return Client(info.url, read_token(self.state), ca_file=info.ca_file)

    def netns(self, kind: str, name: str) -> str:
        return f"kins-{self.name}-{kind}-{name}"

    def pod_netns(self, prefix: str) -> list[str]:
        """Namespaces of the default namespace's pods named ``prefix*``."""
        want = f"kins-{self.name}-pod-default-{prefix}"
        base = Path("/run/netns")
        return sorted(p.name for p in base.iterdir() if p.name.startswith(want)) if base.is_dir() else []

    def close(self) -> None:
        if self.state.exists():
            subprocess.run([*KINS, "down", "--name", self.name], env=self.env, capture_output=True, timeout=120)
        shutil.rmtree(self.root, ignore_errors=True)


def in_netns(netns: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=timeout)


def poll(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def cluster_pids(live: Live) -> list[int]:
    """The daemon, the runtime's fork server and every process inside the cluster's namespaces."""
    inodes = set()
    base = Path("/run/netns")
    for p in base.iterdir() if base.is_dir() else []:
        if p.name.startswith(f"kins-{live.name}-"):
            with contextlib.suppress(OSError):
                inodes.add(p.stat().st_ino)
    mark = str(live.state).encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino in inodes:
                pids.append(int(entry))
                continue
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            fd1 = os.readlink(f"/proc/{entry}/fd/1") if os.path.exists(f"/proc/{entry}/fd/1") else ""
            if mark in cmd or fd1.startswith(str(live.state)):
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def pss_kib(pids: list[int]) -> int:
    """Sum of the processes' proportional set sizes (shared pages split among their users)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total


def one_up(src: str | None = None, cluster: str | None = None) -> tuple[float, float | None]:
    """Seconds from `kins up` to the first answered request, and until `kins up` returned (None
    when it did not finish in time: it also waits for the system pods)."""
    live = Live(src=src)
    proc: subprocess.Popen[bytes] | None = None
    try:
        t0 = time.monotonic()
        extra = ["--cluster", cluster] if cluster else []
        proc = live.popen("up", "--name", live.name, "-q", "--timeout", "60", *extra)

        def answered() -> bool:
            for ns in live.pod_netns("business-manager"):
                if in_netns(ns, "curl", "-s", "-o", "/dev/null", "-m", "0.5", DATA_PRODUCT_URL).returncode == 0:
                    return True
            return False

        poll(answered, 60, "the first answer from data-product")
        first = time.monotonic() - t0
        try:
            proc.wait(timeout=15)
            returned: float | None = time.monotonic() - t0 if proc.returncode == 0 else None
        except subprocess.TimeoutExpired:
            returned = None
        return first, returned
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait()
        live.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cluster", help="a cluster file (default: the article's cluster)")
    ap.add_argument("--baseline", metavar="SRC_DIR", help="also run this tree's sources, alternating")
    a = ap.parse_args()
    trees: list[tuple[str, str | None]] = [("this tree", None)]
    if a.baseline:
        trees.insert(0, ("baseline", str(Path(a.baseline).resolve())))
    firsts: dict[str, list[float]] = {label: [] for label, _ in trees}
    for i in range(a.runs):
        for label, src in trees:
            first, returned = one_up(src, a.cluster)
            firsts[label].append(first)
            done = f"{returned:.2f}s" if returned is not None else "not within 15 s more"
            print(f"run {i + 1} ({label}): first answered request {first:.2f}s (kins up returned: {done})")
    for label, vals in firsts.items():
        print(
            f"{label}: kins up -> first answered request: min {min(vals):.2f}s, median {statistics.median(vals):.2f}s"
        )


if __name__ == "__main__":
    main()
