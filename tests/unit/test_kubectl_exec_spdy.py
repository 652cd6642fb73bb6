"""Real kubectl binaries against the in-process API over TLS: exec, cp and port-forward, over SPDY
(kubectl 1.27) and WebSocket (1.33). The "pod" is this test process (its namespaces are the
host's): nsenter into them needs root."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import socket
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from kubectl_bin import NEWEST, OLDEST, TlsApi, require_kubectl, tls_api

from kins.api.core import Container, ContainerState, ContainerStatus, Pod, PodSpec, PodStatus
from kins.api.meta import ObjectMeta
from kins.runtime.linux import process_start_time
from kins.runtime.types import Sandbox
from kins.store.memory import MemoryStore

pytestmark = pytest.mark.root


def make_pod(name: str, *containers: str, phase: str = "Running") -> Pod:
    return Pod(
        metadata=ObjectMeta(name=name, namespace="default"),
        spec=PodSpec(containers=[Container(name=c, image="busybox") for c in containers]),
        status=PodStatus(
            phase=phase,
            containerStatuses=[
                ContainerStatus(name=c, state=msgspec.convert({"running": {}}, ContainerState)) for c in containers
            ],
        ),
    )


def self_sandbox(root: Path, name: str) -> None:
    """A sandbox record whose "pod" is this test process."""
    pid = os.getpid()
    start = process_start_time(pid)
    assert start is not None
    d = root / "pods" / f"default_{name}"
    d.mkdir(parents=True, exist_ok=True)
    sb = Sandbox(f"default_{name}", f"default/{name}", name, f"/proc/{pid}/ns/net", pid, start, str(d))
    sb.record_path.write_text(sb.to_json())


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TlsApi]:
    store = MemoryStore(history=100)
    store.create(make_pod("one", "c"))
    store.create(make_pod("two", "a", "b"))
    store.create(make_pod("done", "c", phase="Succeeded"))
    store.create(make_pod("gone", "c"))  # no sandbox
    self_sandbox(tmp_path / "state", "one")
    self_sandbox(tmp_path / "state", "two")
    with tls_api(store, tmp_path / "api", pods=tmp_path / "state") as a:
        yield a


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_kubectl_exec_output_stdin_and_exit_codes(api: TlsApi, version: str) -> None:
    k = api.kubectl(version)
    assert k("exec", "one", "--", "echo", "hello") == "hello\n"
    p = k.run("exec", "one", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert p.returncode == 3, p
    assert p.stdout == "out\n" and "err\n" in p.stderr
    assert "command terminated with exit code 3" in p.stderr
    # stdin to its end: cat sees EOF and ends.
    out = k("exec", "-i", "one", "--", "sh", "-c", "cat; echo done", input="over the wire\n")
    assert out == "over the wire\ndone\n"
    big = "x" * 300_000 + "\n"
    assert k("exec", "-i", "one", "--", "wc", "-c", input=big).strip() == str(len(big))
    # Errors kubectl shows as the API server words them.
    p = k.run("exec", "two", "-c", "nope", "--", "true", check=False)
    assert p.returncode == 1 and "container nope is not valid for pod two" in p.stderr
    p = k.run("exec", "gone", "--", "true", check=False)
    assert p.returncode == 1 and 'container "c" in pod "gone" is not running' in p.stderr
    p = k.run("exec", "done", "--", "true", check=False)
    assert p.returncode == 1 and "current phase is Succeeded" in p.stderr
    p = k.run("exec", "one", "--", "/no/such/program", check=False)
    assert p.returncode != 0


def in_terminal(argv: list[str], env: dict[str, str], typed: bytes, rows: int, cols: int) -> tuple[int, bytes]:
    """Runs ``argv`` on a terminal of ``rows`` x ``cols`` (as a user's shell would), types
    ``typed`` once it runs, and returns its exit code and everything it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 30
    try:
        time.sleep(1.0)
        os.write(master, typed)
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=10), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_kubectl_exec_it_terminal_size_and_exit_code(api: TlsApi, version: str) -> None:
    binary = require_kubectl(version)
    env = {"PATH": os.environ["PATH"], "HOME": str(api.kubeconfig.parent), "KUBECONFIG": str(api.kubeconfig)}
    argv = [str(binary), "exec", "-it", "one", "--", "sh"]
    code, out = in_terminal(argv, env, b"stty size; tty; exit 7\n", 33, 101)
    text = out.decode(errors="replace")
    assert "33 101" in text and "/dev/pts/" in text, text
    assert code == 7, text


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_kubectl_cp_both_ways(api: TlsApi, version: str, tmp_path: Path) -> None:
    k = api.kubectl(version)
    src = tmp_path / f"src-{version}"
    src.mkdir()
    (src / "a.txt").write_text("alpha\n")
    (src / "sub").mkdir()
    (src / "sub" / "b.bin").write_bytes(os.urandom(200_000))
    remote = tmp_path / f"remote-{version}"
    # The "pod" shares this filesystem: what kubectl copies in lands under remote.
    k("cp", str(src), f"one:{remote}")
    assert (remote / "a.txt").read_text() == "alpha\n"
    assert (remote / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()
    back = tmp_path / f"back-{version}"
    k("cp", f"one:{remote}", str(back))
    assert (back / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()
    k("cp", f"one:{remote}/a.txt", str(tmp_path / "single.txt"))
    assert (tmp_path / "single.txt").read_text() == "alpha\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("version", [OLDEST, "1.29", NEWEST])
def test_kubectl_port_forward(api: TlsApi, version: str) -> None:
    binary = require_kubectl(version)
    server = socket.create_server(("127.0.0.1", 0))
    target = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(b"echo " + data)

    threading.Thread(target=serve, daemon=True).start()
    local, refused = free_port(), free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(api.kubeconfig.parent), "KUBECONFIG": str(api.kubeconfig)}
    proc = subprocess.Popen(
        [str(binary), "port-forward", "pod/one", f"{local}:{target}", f"{refused}:9"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "Forwarding from 127.0.0.1" in line, line
        for i in range(3):  # one forwarded connection after another
            with socket.create_connection(("127.0.0.1", local), timeout=10) as c:
                payload = f"{i} ".encode() + b"y" * 100_000 + b"\n"
                c.sendall(payload)
                got = b""
                while len(got) < len(payload) + 5:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                assert got == b"echo " + payload
        # A port nothing listens on: the connection is dropped and kubectl says why (and gives
        # up the whole session, as kubectl does on a forwarding error).
        with socket.create_connection(("127.0.0.1", refused), timeout=10) as c:
            c.settimeout(10)
            assert c.recv(10) == b""
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
        server.close()
    assert "connection refused" in err, err


def test_newest_kubectl_over_spdy_when_websockets_are_off(api: TlsApi, tmp_path: Path) -> None:
    """kubectl 1.30+ speaks SPDY when its WebSocket features are turned off (or refused)."""
    binary = require_kubectl(NEWEST)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(api.kubeconfig.parent),
        "KUBECONFIG": str(api.kubeconfig),
        "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false",
    }

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binary), "-v=6", *args], input=input, capture_output=True, text=True, env=env, timeout=60
        )

    p = run("exec", "-i", "one", "--", "sh", "-c", "cat; exit 9", input="spdy\n")
    assert p.returncode == 9 and p.stdout == "spdy\n", p
    assert "POST" in p.stderr and "101 Switching Protocols" in p.stderr  # the SPDY upgrade, not a WebSocket
    (tmp_path / "f.txt").write_text("copied\n")
    p = run("cp", str(tmp_path / "f.txt"), f"one:{tmp_path}/g.txt")
    assert p.returncode == 0 and (tmp_path / "g.txt").read_text() == "copied\n", p
