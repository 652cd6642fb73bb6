"""kubectl 1.27 (SPDY) and 1.33 (WebSocket) against a live cluster: exec, cp, port-forward, attach,
``run -it --rm`` and ``debug`` with ephemeral containers, some of them on a terminal as a user
types them."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import socket
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import Cluster, poll, running_cluster
from kubectl_bin import NEWEST, OLDEST, Kubectl, kubectl_for

pytestmark = pytest.mark.root

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"
PODS = f"""
apiVersion: v1
kind: Pod
metadata: {{name: box}}
spec:
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "while true; do sleep 1; done"]
  - name: web
    image: {AGNHOST}
    args: [netexec, --http-port=8080]
"""


def ticker(name: str) -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  containers:
  - name: t
    image: busybox
    command: [sh, -c, "i=0; while [ $i -lt 40 ]; do echo tick $i; i=$((i+1)); sleep 0.25; done"]
"""


def talker(name: str) -> str:
    """A pod that answers each line it reads, its stdin closed after the first attach."""
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    stdin: true
    stdinOnce: true
    command: [sh, -c, "while read l; do echo got $l; done; echo bye"]
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(apps=False) as c:
        yield c


def kubectl(cluster: Cluster, version: str) -> Kubectl:
    return kubectl_for(version, cluster.state / "kubeconfig")


def pod_json(k: Kubectl, name: str) -> dict[str, Any]:
    return dict(json.loads(k("get", "pod", name, "-o", "json")))


def running(k: Kubectl, name: str) -> bool:
    st = pod_json(k, name).get("status", {})
    return st.get("phase") == "Running" and all(c.get("ready") for c in st.get("containerStatuses", []))


@pytest.fixture(scope="module")
def pods(cluster: Cluster) -> Cluster:
    k = kubectl(cluster, NEWEST)
    k("apply", "-f", "-", input=PODS)
    poll(lambda: running(k, "box"), 60, "pod box running")
    return cluster


def in_terminal(
    argv: list[str], env: dict[str, str], steps: list[tuple[str, bytes]], timeout: float = 60
) -> tuple[int, str]:
    """Runs ``argv`` on a terminal; for each step waits for its text in the output (if any), then
    types its keys. Returns the exit code and everything written."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    todo = list(steps)
    try:
        while time.monotonic() < deadline:
            if todo and todo[0][0].encode() in out:
                time.sleep(0.5)  # kubectl puts its terminal in raw mode after saying what it waits for
                os.write(master, todo.pop(0)[1])
            ready, _, _ = select.select([master], [], [], 0.2)
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
        try:
            return proc.wait(timeout=20), out.decode(errors="replace")
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{' '.join(argv)} did not end; it wrote: {out!r}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def env_of(k: Kubectl) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(k.kubeconfig.parent), "KUBECONFIG": str(k.kubeconfig)}


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_exec_stdin_and_exit_code(pods: Cluster, version: str) -> None:
    k = kubectl(pods, version)
    assert k("exec", "box", "-c", "main", "--", "hostname") == "box\n"
    p = k.run("exec", "box", "-c", "main", "--", "sh", "-c", "echo out; echo err >&2; exit 42", check=False)
    assert p.returncode == 42 and p.stdout == "out\n" and "err" in p.stderr
    assert k("exec", "-i", "box", "-c", "main", "--", "sh", "-c", "tr a-z A-Z", input="shout\n") == "SHOUT\n"
    p = k.run("exec", "box", "-c", "nope", "--", "true", check=False)
    assert p.returncode == 1 and "container nope is not valid for pod box" in p.stderr
    code, out = in_terminal(
        [str(k.binary), "exec", "-it", "box", "-c", "main", "--", "sh"],
        env_of(k),
        [("", b"stty size; exit 5\n")],
    )
    assert "30 100" in out and code == 5, out


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_cp_both_ways(pods: Cluster, version: str, tmp_path: Path) -> None:
    k = kubectl(pods, version)
    src = tmp_path / "src"
    src.mkdir()
    (src / "data.bin").write_bytes(os.urandom(150_000))
    (src / "note.txt").write_text("note\n")
    remote = f"/tmp/kins-cp-{version}-{os.getpid()}"
    k("cp", str(src), f"box:{remote}", "-c", "main")
    assert k("exec", "box", "-c", "main", "--", "cat", f"{remote}/note.txt") == "note\n"
    back = tmp_path / "back"
    k("cp", f"box:{remote}", str(back), "-c", "main")
    assert (back / "data.bin").read_bytes() == (src / "data.bin").read_bytes()
    k("exec", "box", "-c", "main", "--", "rm", "-rf", remote)


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_port_forward(pods: Cluster, version: str) -> None:
    k = kubectl(pods, version)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        local = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(k.binary), "port-forward", "pod/box", f"{local}:8080"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_of(k),
        text=True,
    )
    try:
        assert proc.stdout is not None and "Forwarding from" in proc.stdout.readline()
        for _ in range(2):
            with socket.create_connection(("127.0.0.1", local), timeout=10) as c:
                c.sendall(b"GET /hostname HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                reply = b""
                while chunk := c.recv(4096):
                    reply += chunk
            assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"box")
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_attach(pods: Cluster, version: str) -> None:
    k = kubectl(pods, version)
    name = f"talk-{version.replace('.', '-')}"
    kubectl(pods, NEWEST)("apply", "-f", "-", input=talker(name))
    poll(lambda: pod_json(k, name).get("status", {}).get("phase") == "Running", 60, f"pod {name} running")
    # stdin to its end: stdinOnce closes the container's, it says bye and ends; so does attach.
    p = k.run("attach", "-i", name, input="one\ntwo\n", timeout=60)
    assert p.returncode == 0, p
    assert "got one\ngot two\nbye\n" in p.stdout
    poll(lambda: pod_json(k, name)["status"].get("phase") == "Succeeded", 30, f"pod {name} succeeded")
    # Output only: what the container writes from then on, until it ends.
    name = f"ticker-{version.replace('.', '-')}"
    kubectl(pods, NEWEST)("apply", "-f", "-", input=ticker(name))
    poll(lambda: pod_json(k, name).get("status", {}).get("phase") == "Running", 60, f"pod {name} running")
    p = k.run("attach", name, timeout=60)
    ticks = [int(line.split()[1]) for line in p.stdout.splitlines() if line.startswith("tick ")]
    assert ticks and ticks == list(range(ticks[0], 40)), p.stdout


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_run_it_rm(pods: Cluster, version: str) -> None:
    k = kubectl(pods, version)
    name = f"shell-{version.replace('.', '-')}"
    code, out = in_terminal(
        [str(k.binary), "run", name, "-it", "--rm", "--restart=Never", "--image=busybox", "--", "sh"],
        env_of(k),
        [("pressing enter", b"\n"), ("#", b"echo hi-$((40+2)); exit 3\n")],
    )
    assert "hi-42" in out, out
    assert code == 3, out
    poll(lambda: k.run("get", "pod", name, check=False).returncode != 0, 30, f"pod {name} removed")


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_debug_with_ephemeral_containers(pods: Cluster, version: str) -> None:
    k = kubectl(pods, version)
    suffix = version.replace(".", "-")
    # Without -it: the container is added, runs and ends; its log and status say so.
    k("debug", "box", "--image=busybox", f"--container=batch-{suffix}", "--", "sh", "-c", "echo from-debug")

    def ended() -> dict[str, Any] | None:
        for cs in pod_json(k, "box")["status"].get("ephemeralContainerStatuses", []):
            if cs["name"] == f"batch-{suffix}" and "terminated" in cs["state"]:
                return dict(cs)
        return None

    cs = poll(ended, 30, "the ephemeral container's end")
    assert cs["state"]["terminated"]["exitCode"] == 0 and cs["restartCount"] == 0
    assert k("logs", "box", "-c", f"batch-{suffix}") == "from-debug\n"
    # Interactive: kubectl attaches to the new container's terminal.
    code, out = in_terminal(
        [str(k.binary), "debug", "box", "-it", "--image=busybox", "--target=main", f"--container=dbg-{suffix}"],
        env_of(k),
        [("pressing enter", b"\n"), ("#", b"echo dbg-$((6*7)); exit\n")],
    )
    assert "dbg-42" in out, out
    assert code == 0, out
    assert {c["name"] for c in pod_json(k, "box")["spec"]["ephemeralContainers"]} >= {
        f"batch-{suffix}",
        f"dbg-{suffix}",
    }
    assert running(k, "box")  # the pod's own containers go on
