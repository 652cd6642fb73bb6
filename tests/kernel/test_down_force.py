"""`kins down --force NAME`: a cluster whose state directory is gone is removed by its prefix,
and nothing of another cluster is touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kins.kernel import netns
from kins.kernel.apply import apply_cluster

pytestmark = pytest.mark.root

KINS = [sys.executable, "-c", "from kins.cli import main; main()"]
SLEEP = "import time; time.sleep(600)"


@contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
            p.wait()


def _start(started: list[subprocess.Popen[bytes]], argv: list[str]) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started.append(p)
    return p


def _alive(p: subprocess.Popen[bytes]) -> bool:
    return p.poll() is None


def _down(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KINS_STATE_DIR": str(root)}
    env.pop("KINS_CLUSTER", None)
    return subprocess.run([*KINS, "down", *args], env=env, capture_output=True, text=True, timeout=60)


def test_force_removes_a_cluster_whose_state_is_gone(kc, article, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    apply_cluster(kc.name, article.nodes, kc.state_dir, article.hosts)
    made = netns.list_namespaces(kc.name)
    pod_ns = next(n for n in made if "-pod-" in n)
    shutil.rmtree(kc.state_dir)  # the ledger goes with it
    root = tmp_path / "root"
    state = root / kc.name
    # Another cluster whose name starts like this one's (its namespaces fit this one's prefix
    # too) and a third one: both running, both must survive.
    longer, other = f"{kc.name}-node", f"o{kc.name}"
    decoy_ns = netns.ns_name(longer, "node-n9")
    netns.create(decoy_ns)
    try:
        assert decoy_ns in netns.list_namespaces(kc.name)  # the ambiguity the sweep must resolve
        with processes() as started:
            ours = [
                _start(started, ["ip", "netns", "exec", pod_ns, "sleep", "600"]),
                _start(started, [sys.executable, "-c", SLEEP, "kins.daemon.main", "--name", kc.name]),
                _start(started, [sys.executable, "-c", SLEEP, "kins.agents.process", "--state-dir", str(state)]),
                _start(started, [sys.executable, "-c", f"# kins.runtime.zygote\n{SLEEP}", f"{state}/runtime-n1.sock"]),
            ]
            theirs = [
                _start(started, ["ip", "netns", "exec", decoy_ns, "sleep", "600"]),
                _start(started, [sys.executable, "-c", SLEEP, "kins.daemon.main", "--name", longer]),
                _start(started, [sys.executable, "-c", SLEEP, "kins.daemon.main", "--name", other]),
                _start(started, [sys.executable, "-c", SLEEP, "kins.agents.process", "--state-dir", f"{root}/{other}"]),
            ]
            # Without --force a missing state directory is an error that says what to do.
            res = _down(root, kc.name)
            assert res.returncode != 0 and "--force" in res.stderr
            assert all(_alive(p) for p in ours) and netns.list_namespaces(kc.name)

            res = _down(root, "--force", kc.name)
            assert res.returncode == 0, res.stderr
            assert f"cluster '{kc.name}' removed" in res.stdout
            assert f"{len(made)} namespaces and {len(ours)} processes" in res.stdout
            for p in ours:
                p.wait(timeout=5)
            assert [n for n in netns.list_namespaces(kc.name) if n != decoy_ns] == []
            assert all(_alive(p) for p in theirs)
            assert netns.exists(decoy_ns)
            # Again: nothing is left to remove, and that is no error.
            res = _down(root, "--force", kc.name)
            assert res.returncode == 0 and "0 namespaces and 0 processes" in res.stdout
            assert all(_alive(p) for p in theirs)
    finally:
        netns.remove(decoy_ns)


def test_force_needs_a_valid_name(tmp_path: Path) -> None:
    res = _down(tmp_path, "--force")
    assert res.returncode != 0 and "--force needs the cluster's name" in res.stderr
    res = _down(tmp_path, "--force", "Not_A_Label")
    assert res.returncode != 0 and "DNS-1123 label" in res.stderr
    res = _down(tmp_path, "--force", "a", "--name", "b")
    assert res.returncode != 0 and "two clusters named" in res.stderr


def test_force_leaves_alone_processes_that_only_look_similar(tmp_path: Path) -> None:
    # A process naming the cluster in an unrelated way (not its daemon's --name, not a state
    # directory of that name) is not the cluster's.
    name = "fz1"
    with processes() as started:
        decoys = [
            _start(started, [sys.executable, "-c", SLEEP, "--name", name]),
            _start(started, [sys.executable, "-c", SLEEP, "kins.daemon.main", "--name", f"{name}x"]),
            _start(started, [sys.executable, "-c", SLEEP, "kins.agents.process", "--state-dir", f"/x/{name}/sub"]),
        ]
        res = _down(tmp_path, "--force", name)
        assert res.returncode == 0, res.stderr
        assert all(_alive(p) for p in decoys)
