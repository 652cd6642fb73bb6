"""Root tests: a pod sandbox's namespaces, seen through exec_in_pod; containers and their exits."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from runtime_helpers import Netns

from kins._errors import NotFound
from kins.runtime import (
    ContainerSpec,
    ContainerStartError,
    ImageError,
    Runtime,
    exec_in_pod,
    load_sandbox,
)
from kins.runtime.types import Container, ProcessExit

pytestmark = pytest.mark.root

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"


def wait_exit(rt: Runtime, c: Container, timeout: float = 10.0) -> ProcessExit:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ev = rt.exited(c)
        if ev is not None:
            return ev
        time.sleep(0.02)
    raise AssertionError(f"{c.id} did not exit")


def wait_for_http(sandbox_exec: object, url: str, timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        res = exec_in_pod(sandbox_exec, ["curl", "-sf", "--max-time", "2", url])  # type: ignore[arg-type]
        if res.returncode == 0 or time.monotonic() > deadline:
            return res.stdout
        time.sleep(0.05)


def test_sandbox_hostname_and_files(runtime: Runtime, netns: Netns, pod_files: tuple[Path, Path]) -> None:
    (ns,) = netns.make()
    resolv, hosts = pod_files
    host_resolv = Path("/etc/resolv.conf").read_bytes()
    host_hosts = Path("/etc/hosts").read_bytes()
    sb = runtime.create_sandbox("default/web-0", netns.path(ns), "web-0", str(resolv), str(hosts))

    assert exec_in_pod(sb, ["hostname"]).stdout == b"web-0\n"
    assert exec_in_pod(sb, ["cat", "/etc/resolv.conf"]).stdout == resolv.read_bytes()
    assert exec_in_pod(sb, ["cat", "/etc/hosts"]).stdout == hosts.read_bytes()
    # The pod is in its own network namespace: only its loopback, also in /sys.
    links = exec_in_pod(sb, ["ip", "-o", "link"]).stdout.decode()
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    assert exec_in_pod(sb, ["ls", "/sys/class/net"]).stdout.split() == [b"lo"]
    # Copies of other namespaces' mounts would keep those namespaces alive: none in the pod.
    mountinfo = exec_in_pod(sb, ["cat", "/proc/self/mountinfo"]).stdout.decode()
    assert " nsfs " not in mountinfo
    # The host's own files and hostname never change.
    assert Path("/etc/resolv.conf").read_bytes() == host_resolv
    assert Path("/etc/hosts").read_bytes() == host_hosts
    assert str(resolv) not in Path("/proc/self/mountinfo").read_text()

    # Another process (kins exec) finds the sandbox through the state dir.
    again = load_sandbox(runtime.state_dir, "default/web-0")
    assert again == sb
    assert exec_in_pod(again, ["sh", "-c", "cat; echo $HOSTNAME"], input=b"in\n").stdout == b"in\nweb-0\n"
    assert exec_in_pod(sb, ["sh", "-c", "exit 5"]).returncode == 5

    runtime.remove_sandbox(sb)
    with pytest.raises(NotFound):
        load_sandbox(runtime.state_dir, "default/web-0")
    with pytest.raises(NotFound):
        exec_in_pod(sb, ["hostname"])
    assert not Path(f"/proc/{sb.pid}").exists()


def test_host_binary_container_env_workdir_and_exit_code(
    runtime: Runtime, netns: Netns, pod_files: tuple[Path, Path], tmp_path: Path
) -> None:
    (ns,) = netns.make()
    sb = runtime.create_sandbox("default/job", netns.path(ns), "job", *map(str, pod_files))
    spec = ContainerSpec(
        "main",
        "docker.io/library/busybox:1.36",
        command=("sh", "-c"),
        args=('echo "$GREETING from $(hostname) in $(pwd)"; echo oops >&2; exit 3',),
        env={"GREETING": "hello"},
        working_dir=str(tmp_path),
    )
    c = runtime.start_container(sb, spec)
    assert c.builtin is None
    ev = wait_exit(runtime, c)
    assert (ev.exit_code, ev.signal, ev.pid) == (3, None, c.pid)
    assert Path(c.log_path).read_text() == f"hello from job in {tmp_path}\noops\n"
    assert ev in runtime.poll_exits()
    # A restarted container gets a new attempt number and its own log file.
    c2 = runtime.start_container(sb, spec)
    assert (c2.attempt, c2.id) == (1, "default_job/main/1")
    assert wait_exit(runtime, c2).exit_code == 3
    assert Path(c2.log_path).name == "1.log"


def test_images_kins_cannot_run_are_clear_errors(runtime: Runtime, netns: Netns, pod_files: tuple[Path, Path]) -> None:
    (ns,) = netns.make()
    sb = runtime.create_sandbox("default/bad", netns.path(ns), "bad", *map(str, pod_files))
    with pytest.raises(ImageError, match="not built into kins and the container has no command"):
        runtime.start_container(sb, ContainerSpec("c", "quay.io/example/unknown:v1"))
    with pytest.raises(ImageError, match="subcommand 'porter' is not built into kins"):
        runtime.start_container(sb, ContainerSpec("c", AGNHOST, args=("porter",)))
    with pytest.raises(ContainerStartError, match="exec no-such-binary-kins: No such file"):
        runtime.start_container(sb, ContainerSpec("c", "busybox", command=("no-such-binary-kins",)))
    with pytest.raises(ContainerStartError, match="working directory /no/such/dir"):
        runtime.start_container(sb, ContainerSpec("c", "busybox", command=("true",), working_dir="/no/such/dir"))
    # Failed starts leave nothing running and report no exit.
    assert runtime.containers(sb) == []
    time.sleep(0.2)
    assert runtime.poll_exits() == []
    # The sandbox still works after the failures.
    ok = runtime.start_container(sb, ContainerSpec("c", "busybox", command=("true",)))
    assert wait_exit(runtime, ok).exit_code == 0


def test_killed_container_reports_its_exit_status(runtime: Runtime, netns: Netns, pod_files: tuple[Path, Path]) -> None:
    (ns,) = netns.make()
    sb = runtime.create_sandbox("default/agn", netns.path(ns), "agn", *map(str, pod_files))
    args = ("netexec", "--http-port=8080", "--udp-port=8081")
    a = runtime.start_container(sb, ContainerSpec("a", AGNHOST, args=args))
    assert a.builtin == "netexec"
    assert wait_for_http(sb, "http://127.0.0.1:8080/hostname") == b"agn"
    assert Path(f"/proc/{a.pid}/comm").read_text().strip() == "netexec"
    assert runtime.kill_container(a, signal.SIGKILL)
    ev = wait_exit(runtime, a)
    assert (ev.exit_code, ev.signal, ev.sandbox) == (137, signal.SIGKILL, False)
    assert not runtime.kill_container(a, signal.SIGKILL)  # already gone

    b = runtime.start_container(sb, ContainerSpec("b", AGNHOST, args=args))
    wait_for_http(sb, "http://127.0.0.1:8080/healthz")
    stopped = runtime.stop_container(b, grace=5)
    assert stopped is not None and (stopped.exit_code, stopped.signal) == (143, signal.SIGTERM)

    # netexec's /exit ends the process with the code asked for.
    c = runtime.start_container(sb, ContainerSpec("c", AGNHOST, command=("/agnhost",), args=args))
    wait_for_http(sb, "http://127.0.0.1:8080/healthz")
    exec_in_pod(sb, ["curl", "-s", "http://127.0.0.1:8080/exit?code=7"])
    assert wait_exit(runtime, c).exit_code == 7
    assert "GET /exit?code=7" in Path(c.log_path).read_text()

    # A pause container ends cleanly on SIGTERM, like the pause image.
    p = runtime.start_container(sb, ContainerSpec("p", "registry.k8s.io/pause:3.9"))
    time.sleep(0.2)
    paused = runtime.stop_container(p, grace=5)
    assert paused is not None and paused.exit_code == 0

    # Removing the sandbox kills what still runs in it and reports the holder's end too.
    d = runtime.start_container(sb, ContainerSpec("d", "busybox", command=("sleep", "600")))
    runtime.remove_sandbox(sb, grace=0)
    exits = {e.id: e for e in runtime.poll_exits()}
    assert exits[d.id].signal == signal.SIGKILL
    assert exits[sb.id].sandbox
    assert not Path(f"/proc/{d.pid}").exists()


def test_fork_server_stays_small(runtime: Runtime) -> None:
    modules = set(runtime.loaded_modules())
    assert {"kins.apps.agnhost", "kins.apps.shop", "asyncio"} <= modules
    heavy = {"msgspec", "pyroute2", "aiohttp", "httpx", "yaml_rs", "rich", "typer", "kins.api"}
    assert not heavy & modules


def test_shutdown_leaves_nothing(tmp_path: Path, netns: Netns, pod_files: tuple[Path, Path]) -> None:
    names = netns.make(3)
    rt = Runtime(tmp_path / "state")
    pids = []
    try:
        for i, ns in enumerate(names):
            sb = rt.create_sandbox(f"default/p{i}", netns.path(ns), f"p{i}", *map(str, pod_files))
            rt.start_container(sb, ContainerSpec("a", AGNHOST, args=("netexec",)))
            # A grandchild in its own session: only the subreaper sweep finds it.
            rt.start_container(sb, ContainerSpec("b", "busybox", command=("sh", "-c", "setsid sleep 600 & sleep 600")))
        pids = rt.pids()
        time.sleep(0.3)
    finally:
        rt.shutdown()
    assert len(pids) == 1 + 3 * 3
    assert not [p for p in pids if Path(f"/proc/{p}").exists()]
    leftover = [
        p.name
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and "sleep 600" in (p / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    ]
    assert leftover == []
    assert str(tmp_path) not in Path("/proc/self/mountinfo").read_text()
    assert not list((tmp_path / "state" / "pods").glob("*/sandbox.json"))
