"""The pod runtime seen by the kubelet: sandboxes, containers, exits, logs.

All pod processes are forked by one fork server per cluster (``zygote.py``), started here on
first use as a fresh, minimal interpreter (``-I -S``, stdlib only) so that what it shares with
its children is small and nothing heavy from the caller (the daemon) is copied into hundreds of
pods. The server runs in its own session and outlives its client: ``Runtime`` connects to it
over ``<state>/runtime.sock`` and learns what runs (and what ended while nobody was connected),
so a restarted daemon finds its pods. ``detach()`` leaves them running, ``shutdown()`` ends
them and the server.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kins._errors import Conflict, NotFound
from kins.runtime import stdio
from kins.runtime.errors import ContainerStartError, ImageError, RuntimeFailure, SandboxError
from kins.runtime.linux import process_start_time
from kins.runtime.mounts import Mount, check_mounts
from kins.runtime.types import Container, ContainerSpec, ProcessExit, Sandbox

_KINS_DIR = Path(__file__).resolve().parent.parent

# Registers ``kins`` and ``kins.runtime`` as bare packages so that only the fork server's own
# modules load, never kins/__init__.py and whatever the public API grows to import.
_BOOT = """
import sys, types
for name, path in (("kins", {kins!r}), ("kins.runtime", {kins!r} + "/runtime")):
    m = types.ModuleType(name); m.__path__ = [path]; sys.modules[name] = m
from kins.runtime.zygote import main
main(sys.argv[1])
"""

SOCKET_NAME = "runtime.sock"
LOG_NAME = "zygote.log"  # ``kins down``'s cleanup finds the servers by these files (zygote*.log)
START_TIMEOUT = 30.0
BUSY_WAIT = 3.0  # how long to wait for the server's current client to go away


class Busy(Exception):
    pass


ExitCallback = Callable[[ProcessExit], None]

# Servers this process started, to reap them (a Runtime that detached may have started one).
_spawned: dict[int, subprocess.Popen[bytes]] = {}


def _connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        if len(os.fsencode(path)) < 100:
            sock.connect(str(path))
        else:
            # Too long for sun_path: reach it through a descriptor of its directory.
            fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                sock.connect(f"/proc/self/fd/{fd}/{path.name}")
            finally:
                os.close(fd)
    except BaseException:
        sock.close()
        raise
    return sock


def _gone(pid: int, start_time: int | None) -> bool:
    st = process_start_time(pid)
    if st is None or (start_time is not None and st != start_time):
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


def pod_dir_name(pod_key: str) -> str:
    """``namespace/name`` -> ``namespace_name`` (the kubelet's /var/log/pods layout)."""
    name = pod_key.replace("/", "_")
    if pod_key.count("/") != 1 or not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name.startswith("."):
        raise ValueError(f"bad pod key {pod_key!r}")
    return name


def decode_status(status: int) -> tuple[int, int | None]:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return 128 + sig, sig
    return os.waitstatus_to_exitcode(status), None


class Runtime:
    """Runs pods' processes. Thread-safe; ``on_exit`` is called from a reader thread."""

    def __init__(
        self,
        state_dir: str | Path,
        *,
        on_exit: ExitCallback | None = None,
        python: str = sys.executable,
        name: str = "",
    ):
        """``name``: which of the cluster's servers (one per node when each node's kubelet runs
        in a process of its own; "" for the one server of a single kubelet). Sandbox records
        stay in ``<state>/pods`` either way."""
        self.state_dir = Path(state_dir)
        self._suffix = f"-{name}" if name else ""
        self.pods_dir = self.state_dir / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._replies: dict[int, dict[str, Any]] = {}
        self._reply_ready = threading.Condition(self._lock)
        self._exits: queue.SimpleQueue[ProcessExit] = queue.SimpleQueue()
        self._exited: dict[str, ProcessExit] = {}
        self._exit_cond = threading.Condition(self._lock)
        self._sandboxes: dict[str, Sandbox] = {}
        self._containers: dict[str, Container] = {}
        self._closed = False

        self._detached = False
        self._spawned: subprocess.Popen[bytes] | None = None
        self.zygote_pid = 0
        self.recovered_exits: list[ProcessExit] = []
        """Exits that happened while no client was connected (also returned by poll_exits)."""
        self._sock = self._attach(python)
        self.zygote_start = process_start_time(self.zygote_pid)
        self._reader = threading.Thread(target=self._read_loop, name="kins-runtime", daemon=True)
        self._reader.start()

    # -- connecting --------------------------------------------------------------------------

    @property
    def socket_path(self) -> Path:
        return self.state_dir / SOCKET_NAME.replace(".sock", f"{self._suffix}.sock")

    @property
    def log_path(self) -> Path:
        return self.state_dir / LOG_NAME.replace(".log", f"{self._suffix}.log")

    def _attach(self, python: str) -> socket.socket:
        """Connect to the cluster's server, starting it if none runs; read its inventory."""
        with open(self.state_dir / f"runtime{self._suffix}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one starter at a time
            last: Exception | None = None
            deadline = time.monotonic() + BUSY_WAIT
            for _ in range(200):
                try:
                    sock = _connect(self.socket_path)
                except OSError as exc:
                    if exc.errno not in (errno.ENOENT, errno.ECONNREFUSED):
                        raise RuntimeFailure(f"pod runtime at {self.socket_path}: {exc}") from None
                    sock = self._start_server(python)
                try:
                    self._read_inventory(sock)
                    return sock
                except Busy as exc:
                    # Another client is connected; if it is dying, its place frees up soon.
                    sock.close()
                    if time.monotonic() > deadline:
                        raise RuntimeFailure(f"pod runtime at {self.socket_path}: {exc}") from None
                    time.sleep(0.05)
                except (OSError, ValueError, RuntimeFailure) as exc:
                    # It was exiting (idle) as we connected: start a fresh one.
                    sock.close()
                    last = exc
            raise RuntimeFailure(f"pod runtime did not start: {last} (see {self.log_path})")

    def _start_server(self, python: str) -> socket.socket:
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                [python, "-I", "-S", "-c", _BOOT.format(kins=str(_KINS_DIR)), str(self.socket_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Its own session: neither a Ctrl-C at the daemon's terminal nor the daemon's end
                # reaches it.
                start_new_session=True,
            )
        _spawned[proc.pid] = proc
        self._spawned = proc
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeFailure(f"pod runtime exited ({proc.returncode}); see {self.log_path}")
            try:
                return _connect(self.socket_path)
            except OSError as exc:
                # Connecting before the server replaced a stale socket file can be refused.
                if exc.errno not in (errno.ENOENT, errno.ECONNREFUSED) or time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeFailure(f"pod runtime did not start: {exc}") from None
            time.sleep(0.005)

    def _read_inventory(self, sock: socket.socket) -> None:
        sock.settimeout(START_TIMEOUT)
        sandboxes: dict[str, Sandbox] = {}
        containers: dict[str, Container] = {}
        exits: list[ProcessExit] = []
        while True:
            data = sock.recv(1 << 20)
            if not data:
                raise RuntimeFailure("pod runtime closed the connection")
            msg = json.loads(data)
            ev = msg.get("event")
            meta = msg.get("meta") or {}
            if ev == "sandbox":
                sandboxes[msg["id"]] = Sandbox(
                    msg["id"],
                    meta.get("pod_key", ""),
                    meta.get("hostname", ""),
                    meta.get("netns", ""),
                    msg["pid"],
                    msg["start_time"],
                    meta.get("dir", ""),
                    meta.get("uid", ""),
                )
            elif ev == "container":
                containers[msg["id"]] = Container(
                    msg["id"],
                    msg["sandbox_id"],
                    meta.get("name", ""),
                    int(meta.get("attempt", 0)),
                    msg["pid"],
                    meta.get("image", ""),
                    msg.get("app"),
                    meta.get("log", ""),
                    msg["start_time"],
                )
            elif ev == "exit":
                code, sig = decode_status(msg["status"])
                exits.append(ProcessExit(msg["id"], msg["pid"], code, sig, bool(msg["sandbox"])))
            elif ev == "ready":
                break
            elif ev == "busy":
                raise Busy(f"another client is connected to the pod runtime (pid {msg['pid']})")
        sock.settimeout(None)
        self.zygote_pid = int(msg["pid"])
        self._sandboxes = sandboxes
        self._containers = containers
        self.recovered_exits = exits
        for e in exits:
            self._exited[e.id] = e
            self._exits.put(e)

    # -- transport ---------------------------------------------------------------------------

    def _read_loop(self) -> None:
        while True:
            try:
                data = self._sock.recv(1 << 20)
            except OSError:
                data = b""
            if not data:
                with self._lock:
                    self._closed = True
                    self._reply_ready.notify_all()
                    self._exit_cond.notify_all()
                return
            msg = json.loads(data)
            if msg.get("event") == "exit":
                self._record_exit(msg)
                continue
            with self._lock:
                self._replies[msg["seq"]] = msg
                self._reply_ready.notify_all()

    def _record_exit(self, msg: dict[str, Any]) -> None:
        code, sig = decode_status(msg["status"])
        ev = ProcessExit(msg["id"], msg["pid"], code, sig, bool(msg["sandbox"]))
        with self._lock:
            self._exited[ev.id] = ev
            # What runs is what the server would list on a reconnect.
            if ev.sandbox:
                self._sandboxes.pop(ev.id, None)
            else:
                self._containers.pop(ev.id, None)
            self._exit_cond.notify_all()
        self._exits.put(ev)
        if self._on_exit is not None:
            self._on_exit(ev)

    def _call(self, op: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._closed:
                raise RuntimeFailure("pod runtime is not running")
            seq = next(self._seq)
            self._sock.send(json.dumps({"seq": seq, "op": op, **fields}).encode())
            while seq not in self._replies:
                if self._closed:
                    raise RuntimeFailure("pod runtime stopped while answering")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise RuntimeFailure(f"pod runtime did not answer {op!r} in time")
                self._reply_ready.wait(left)
            return self._replies.pop(seq)

    # -- sandboxes ---------------------------------------------------------------------------

    def create_sandbox(
        self,
        pod_key: str,
        netns_path: str,
        hostname: str,
        resolv_conf: str | None,
        hosts: str | None,
        *,
        mounts: list[Mount] | None = None,
        uid: str = "",
    ) -> Sandbox:
        """Start the pod's holder process in ``netns_path`` with its own hostname and its own
        /etc/resolv.conf and /etc/hosts (bind mounts of the given files, if given).

        ``mounts`` are the pod's volumes, ``(host path, path in the pod, read only)``, bound in
        the pod's mount namespace; a missing mount point is created there only, never on the
        host. All containers of the pod share that namespace, so they all see every volume."""
        sid = pod_dir_name(pod_key)
        if sid in self._sandboxes:
            raise Conflict(f"pod {pod_key} already has a sandbox")
        for path in (netns_path, resolv_conf, hosts):
            if path and not os.path.exists(path):
                raise SandboxError(f"pod {pod_key}: {path} does not exist")
        if len(hostname.encode()) > 64:
            raise SandboxError(f"pod {pod_key}: hostname longer than 64 bytes")
        try:
            checked = check_mounts(list(mounts or []))
        except ValueError as exc:
            raise SandboxError(f"pod {pod_key}: {exc}") from None
        for src, _, _ in checked:
            if not os.path.exists(src):
                raise SandboxError(f"pod {pod_key}: volume source {src} does not exist")
        pod_dir = self.pods_dir / sid
        pod_dir.mkdir(parents=True, exist_ok=True)
        scratch = pod_dir / ".mounts"
        if checked:
            scratch.mkdir(exist_ok=True)
        meta = {"pod_key": pod_key, "hostname": hostname, "netns": str(netns_path), "dir": str(pod_dir), "uid": uid}
        reply = self._call(
            "sandbox",
            id=sid,
            netns=str(netns_path),
            hostname=hostname,
            resolv_conf=str(resolv_conf) if resolv_conf else None,
            hosts=str(hosts) if hosts else None,
            mounts=[list(m) for m in checked],
            scratch=str(scratch),
            meta=meta,
        )
        if not reply["ok"]:
            raise SandboxError(f"pod {pod_key}: {reply['error']}")
        pid = reply["pid"]
        sandbox = Sandbox(sid, pod_key, hostname, str(netns_path), pid, reply["start_time"], str(pod_dir), uid)
        tmp = sandbox.record_path.with_suffix(".tmp")
        tmp.write_text(sandbox.to_json())
        os.replace(tmp, sandbox.record_path)
        self._sandboxes[sid] = sandbox
        return sandbox

    def sandboxes(self) -> list[Sandbox]:
        return list(self._sandboxes.values())

    def containers(self, sandbox: Sandbox | None = None) -> list[Container]:
        return [c for c in self._containers.values() if sandbox is None or c.sandbox_id == sandbox.id]

    def remove_sandbox(self, sandbox: Sandbox, *, grace: float = 2.0) -> None:
        """Stop the pod's containers (SIGTERM, then SIGKILL after ``grace`` seconds) and its
        holder. Its mount and UTS namespaces go with it; logs stay until the pod dir is deleted."""
        self.stop_containers(self.containers(sandbox), grace=grace)
        with self._lock:
            done = sandbox.id in self._exited
        if not done and self._call("kill", id=sandbox.id, signal=signal.SIGKILL)["alive"]:
            self._wait_exit(sandbox.id, 10.0)
        self._sandboxes.pop(sandbox.id, None)
        with self._lock:
            self._exited.pop(sandbox.id, None)
        sandbox.record_path.unlink(missing_ok=True)

    # -- containers --------------------------------------------------------------------------

    def start_container(self, sandbox: Sandbox, spec: ContainerSpec) -> Container:
        """Start one container. Raises ImageError when the image cannot run here and
        ContainerStartError when its process could not start."""
        if sandbox.id not in self._sandboxes:
            raise NotFound(f"no sandbox for pod {sandbox.pod_key}")
        log_dir = Path(sandbox.dir) / spec.name
        log_dir.mkdir(parents=True, exist_ok=True)
        attempt = sum(1 for p in log_dir.iterdir() if p.suffix == ".log")
        cid = f"{sandbox.id}/{spec.name}/{attempt}"
        log_path = log_dir / f"{attempt}.log"
        fifo = stdio.make_fifo(str(log_path)) if spec.stdin else None
        reply = self._call(
            "start",
            id=cid,
            sandbox=sandbox.id,
            image=spec.image,
            command=list(spec.command),
            args=list(spec.args),
            env=dict(spec.env),
            workdir=spec.working_dir,
            log=str(log_path),
            stdin=spec.stdin,
            stdin_once=spec.stdin_once,
            tty=spec.tty,
            stdin_fifo=fifo,
            meta={"name": spec.name, "attempt": attempt, "image": spec.image, "log": str(log_path)},
        )
        if not reply["ok"]:
            where = f"pod {sandbox.pod_key} container {spec.name}"
            if reply["kind"] == "image":
                raise ImageError(f"{where}: {reply['error']}")
            raise ContainerStartError(f"{where}: {reply['error']}")
        container = Container(
            cid,
            sandbox.id,
            spec.name,
            attempt,
            reply["pid"],
            spec.image,
            reply["app"],
            str(log_path),
            reply["start_time"],
        )
        with self._lock:
            if cid not in self._exited:  # it may have ended already
                self._containers[cid] = container
        return container

    def kill_container(self, container: Container, sig: int = signal.SIGTERM) -> bool:
        """Send ``sig`` to the container's processes; False if it had already exited."""
        return bool(self._call("kill", id=container.id, signal=int(sig))["alive"])

    def stop_container(self, container: Container, *, grace: float = 10.0) -> ProcessExit | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns how it ended."""
        return self.stop_containers([container], grace=grace).get(container.id)

    def stop_containers(self, containers: Iterable[Container], *, grace: float = 10.0) -> dict[str, ProcessExit]:
        todo = list(containers)
        for c in todo:
            self.kill_container(c, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        deadline = time.monotonic() + grace
        out: dict[str, ProcessExit] = {}
        for c in todo:
            ev = self._wait_exit(c.id, max(0.0, deadline - time.monotonic()))
            if ev is None:
                self.kill_container(c, signal.SIGKILL)
                ev = self._wait_exit(c.id, 10.0)
            if ev is not None:
                out[c.id] = ev
            self._containers.pop(c.id, None)
            with self._lock:
                self._exited.pop(c.id, None)
        return out

    def _wait_exit(self, id_: str, timeout: float) -> ProcessExit | None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while id_ not in self._exited:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    return None
                self._exit_cond.wait(left)
            return self._exited[id_]

    def poll_exits(self) -> list[ProcessExit]:
        """Exits reported since the last call, without blocking."""
        out = []
        while True:
            try:
                out.append(self._exits.get_nowait())
            except queue.Empty:
                return out

    def wait_exits(self, timeout: float | None = None) -> list[ProcessExit]:
        """Block until at least one exit is reported (or ``timeout``); returns all pending."""
        try:
            first = self._exits.get(timeout=timeout)
        except queue.Empty:
            return []
        return [first, *self.poll_exits()]

    def exited(self, container: Container) -> ProcessExit | None:
        with self._lock:
            return self._exited.get(container.id)

    def loaded_modules(self) -> list[str]:
        """Modules the fork server has imported (what every pod process inherits)."""
        return list(self._call("modules")["modules"])

    def pids(self) -> list[int]:
        """The fork server and every pod process it runs."""
        return [
            self.zygote_pid,
            *(s.pid for s in self._sandboxes.values()),
            *(c.pid for c in self._containers.values()),
        ]

    # -- detaching and shutdown --------------------------------------------------------------

    def detach(self) -> None:
        """Close the connection only: every pod keeps running, and the next ``Runtime`` on this
        state dir finds them. Idempotent."""
        if self._detached:
            return
        self._detached = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the reader
        self._reader.join(timeout=5)
        self._sock.close()

    def shutdown(self) -> None:
        """Kill every pod process and stop the fork server. Idempotent."""
        if not self._detached:
            if not self._closed:
                with contextlib.suppress(RuntimeFailure, OSError):
                    self._call("shutdown", timeout=20)
            self._wait_server()
            self.detach()
        for sandbox in self._sandboxes.values():
            sandbox.record_path.unlink(missing_ok=True)
        self._sandboxes.clear()
        self._containers.clear()

    def _wait_server(self) -> None:
        pid, start = self.zygote_pid, self.zygote_start
        proc = _spawned.pop(pid, None)
        if proc is not None:  # our child: reap it
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            return
        deadline = time.monotonic() + 10
        while not _gone(pid, start) and time.monotonic() < deadline:
            time.sleep(0.01)
        if not _gone(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def load_sandbox(state_dir: str | Path, pod_key: str) -> Sandbox:
    """The running sandbox of ``pod_key`` as recorded in the state dir (for ``kins exec``)."""
    path = Path(state_dir) / "pods" / pod_dir_name(pod_key) / "sandbox.json"
    try:
        sandbox = Sandbox.from_json(path.read_text())
    except FileNotFoundError:
        raise NotFound(f"pod {pod_key} has no running sandbox") from None
    if process_start_time(sandbox.pid) != sandbox.start_time:
        raise NotFound(f"pod {pod_key}: its sandbox is no longer running")
    return sandbox
