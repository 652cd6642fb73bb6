"""Root tests: the fork server outlives its client; a new client finds what runs and what ended."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import pytest
from runtime_helpers import Netns

from kins.runtime import ContainerSpec, Runtime, RuntimeFailure, exec_in_pod, load_sandbox
from kins.runtime.linux import process_start_time

pytestmark = pytest.mark.root

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.02)
    return [p for p in pids if alive(p)]


def wait_http(sb: object, url: str) -> bytes:
    deadline = time.monotonic() + 10
    while True:
        r = exec_in_pod(sb, ["curl", "-sf", "--max-time", "2", url])  # type: ignore[arg-type]
        if r.returncode == 0 or time.monotonic() > deadline:
            return r.stdout
        time.sleep(0.05)


def test_pods_survive_detach_and_are_found_again(tmp_path: Path, netns: Netns, pod_files: tuple[Path, Path]) -> None:
    state = tmp_path / "state"
    (ns,) = netns.make()
    first = Runtime(state)
    second: Runtime | None = None
    try:
        server = first.zygote_pid
        sock = state / "runtime.sock"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert os.getsid(server) == server  # its own session
        assert Path(f"/proc/{server}/fd/1").resolve() == (state / "zygote.log").resolve()

        sb = first.create_sandbox("default/web", netns.path(ns), "web", *map(str, pod_files), uid="u-1")
        web = first.start_container(sb, ContainerSpec("web", AGNHOST, args=("netexec", "--http-port=8080")))
        doomed = first.start_container(sb, ContainerSpec("side", "busybox", command=("sleep", "600")))
        assert wait_http(sb, "http://127.0.0.1:8080/hostname") == b"web"
        first.detach()
        with pytest.raises(RuntimeFailure):
            first.start_container(sb, ContainerSpec("x", "busybox", command=("true",)))

        # Nobody is connected: the pod keeps serving, and an exit is kept for the next client.
        assert alive(sb.pid) and alive(web.pid) and alive(server)
        assert wait_http(sb, "http://127.0.0.1:8080/hostname") == b"web"
        os.kill(doomed.pid, signal.SIGKILL)
        assert wait_gone([doomed.pid]) == []

        second = Runtime(state)
        assert second.zygote_pid == server
        assert second.sandboxes() == [sb]
        assert second.containers() == [web]
        assert second.containers(sb)[0].start_time == process_start_time(web.pid)
        assert [(e.id, e.exit_code, e.signal) for e in second.recovered_exits] == [(doomed.id, 137, signal.SIGKILL)]
        assert second.poll_exits() == second.recovered_exits
        assert load_sandbox(state, "default/web") == sb

        # The adopted pod is fully usable: kill, exits, new attempts.
        assert second.kill_container(web, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while second.exited(web) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        ev = second.exited(web)
        assert ev is not None and ev.exit_code == 143
        assert second.containers() == []
        again = second.start_container(sb, ContainerSpec("web", AGNHOST, args=("netexec", "--http-port=8080")))
        assert again.attempt == 1
        assert wait_http(sb, "http://127.0.0.1:8080/hostname") == b"web"
        pids = second.pids()
    finally:
        first.detach()
        if second is None:
            second = Runtime(state)
        second.shutdown()
    assert wait_gone(pids) == []
    assert not (state / "runtime.sock").exists()


def test_one_client_at_a_time(tmp_path: Path) -> None:
    state = tmp_path / "state"
    a = Runtime(state)
    try:
        t0 = time.monotonic()
        with pytest.raises(RuntimeFailure, match="another client is connected"):
            Runtime(state)
        assert time.monotonic() - t0 < 10
        assert "kins.runtime.zygote" in a.loaded_modules()  # the first one is undisturbed
        a.detach()
        b = Runtime(state)  # its place is free again
        assert b.zygote_pid == a.zygote_pid
        b.shutdown()
    finally:
        a.detach()
    assert wait_gone([a.zygote_pid]) == []


def test_pods_die_with_the_server(tmp_path: Path, netns: Netns, pod_files: tuple[Path, Path]) -> None:
    state = tmp_path / "state"
    (ns,) = netns.make()
    rt = Runtime(state)
    try:
        sb = rt.create_sandbox("default/p", netns.path(ns), "p", *map(str, pod_files))
        c = rt.start_container(sb, ContainerSpec("a", "busybox", command=("sleep", "600")))
        pids = rt.pids()
        rt.detach()
        os.kill(rt.zygote_pid, signal.SIGKILL)
        assert wait_gone(pids) == [], "pod processes outlived their fork server"
        assert not alive(c.pid)
        # A stale socket file is replaced by the next server.
        fresh = Runtime(state)
        assert fresh.zygote_pid != rt.zygote_pid and fresh.sandboxes() == []
        fresh.shutdown()
    finally:
        rt.detach()


def test_state_dir_longer_than_a_socket_address(tmp_path: Path) -> None:
    state = tmp_path / ("d" * 60) / ("e" * 60)
    rt = Runtime(state)
    try:
        assert len(str(state / "runtime.sock")) > 108
        rt.detach()
        again = Runtime(state)
        assert again.zygote_pid == rt.zygote_pid
        again.shutdown()
    finally:
        rt.detach()
    assert wait_gone([rt.zygote_pid]) == []
