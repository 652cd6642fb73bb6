"""The fork server: one single-threaded process per cluster that forks every pod process.

It has imported the built-in apps before its first fork, so a pod costs a fork (about a
millisecond) and the pages it writes to, not a new interpreter. It outlives its clients: it
listens on ``<state>/runtime.sock`` (0600) and serves one ``Runtime`` at a time (another
is told it is busy), so a daemon that crashes or restarts leaves its pods running. One JSON
object per SOCK_SEQPACKET message:

    on connect  {"event": "sandbox" | "container", "id", "pid", "start_time", "meta", ...} per
                live process, then the exits buffered while no client was connected, then
                {"event": "ready", "pid": <server pid>}; or {"event": "busy"} and a close
    request     {"seq": N, "op": "sandbox" | "start" | "kill" | "modules" | "shutdown", ...}
    reply       {"seq": N, "ok": true, ...} or {"seq": N, "ok": false, "kind": ..., "error": ...}
    event       {"event": "exit", "id": ..., "pid": ..., "status": <raw wait status>, "sandbox": bool}

Children are started with PR_SET_PDEATHSIG, and the server is a child subreaper, so no pod
process outlives it. Only ``shutdown`` (or a signal) ends it and everything it runs; with no
client and nothing running it exits by itself after a while.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import socket
import sys
import time
import traceback
from typing import Any

from kins import apps
from kins.kernel import syscalls
from kins.runtime import linux, stdio
from kins.runtime.mounts import MountSetup

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NAMESPACES = ("net", "uts", "mnt")


class StartFailed(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# Images with a shell and no ENTRYPOINT (their CMD a shell): what kubectl run/debug start.
SHELL_IMAGES = ("busybox", "alpine", "ubuntu", "debian", "fedora", "centos", "nicolaka/netshoot")


def _shell_image(image: str) -> bool:
    name = image.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return any(name == i or name.endswith("/" + i) for i in SHELL_IMAGES)


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        data = os.read(fd, 4096)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def nsfs_mounts_to_detach(mountinfo: str) -> list[str]:
    """Mount points to detach so that no namespace file (nsfs) stays mounted.

    A directory like /run/netns whose mounts are all namespace files is detached as a whole
    (one call instead of one per namespace: it matters with hundreds of pods).
    """
    mounts: dict[str, tuple[str, str, str]] = {}  # id -> (parent id, mount point, fstype)
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        f = left.split(" ")
        mounts[f[0]] = (f[1], f[4].replace("\\040", " "), right.split(" ", 1)[0])
    children: dict[str, list[str]] = {}
    for mid, (parent, _, _) in mounts.items():
        children.setdefault(parent, []).append(mid)
    out: list[str] = []
    for parent, kids in children.items():
        nsfs = [mounts[k][1] for k in kids if mounts[k][2] == "nsfs"]
        if not nsfs:
            continue
        whole = parent in mounts and mounts[parent][1] != "/" and len(nsfs) == len(kids)
        out.extend([mounts[parent][1]] if whole else nsfs)
    return sorted(set(out), key=lambda p: (-len(p), p))


def _find_sleep() -> str | None:
    for path in ("/usr/bin/sleep", "/bin/sleep"):
        if os.access(path, os.X_OK):
            return path
    return None


IDLE_EXIT_SECONDS = 30.0  # no client and nothing running: the server goes away
MAX_BUFFERED_EXITS = 10000


class Zygote:
    def __init__(self, listener: socket.socket, sock_path: str) -> None:
        self.listener = listener
        self.sock_path = sock_path
        self.sock_ino = os.stat(sock_path).st_ino
        self.client: socket.socket | None = None
        self.procs: dict[int, tuple[str, bool]] = {}  # pid -> (id, is sandbox)
        self.by_id: dict[str, int] = {}
        self.records: dict[str, dict[str, Any]] = {}  # id -> what a reconnecting client is told
        self.buffered: list[dict[str, Any]] = []  # exits while no client was connected
        self.quiet: set[int] = set()  # failed starts: reaped without an exit event
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.sleep = _find_sleep()
        self.poller = select.poll()

    # -- main loop ---------------------------------------------------------------------------

    def serve(self) -> None:
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)
        poller = self.poller
        poller.register(self.listener, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        idle_since = time.monotonic()
        while True:
            events = poller.poll(1000)
            for fd, _ in events:
                if fd == self.wake_r:
                    os.read(self.wake_r, 4096)
                    self.reap()
                elif fd == self.listener.fileno():
                    self.accept()
                elif self.client is not None and fd == self.client.fileno():
                    try:
                        data = self.client.recv(1 << 20)
                    except OSError:
                        data = b""
                    if not data:
                        self.drop_client()
                        continue
                    req = json.loads(data)
                    if req.get("op") == "shutdown":
                        self.kill_all()
                        self.send({"seq": req["seq"], "ok": True})
                        self.close()
                        return
                    self.send(self.dispatch(req))
            self.reap()
            if self.client is not None or self.procs:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > IDLE_EXIT_SECONDS:
                self.close()
                return

    def accept(self) -> None:
        conn, _ = self.listener.accept()
        if self.client is not None and not self.client_gone():
            # One client at a time: a second daemon (or a stray tool) must not steal the pods.
            with contextlib.suppress(OSError):
                conn.send(json.dumps({"event": "busy", "pid": os.getpid()}).encode())
            conn.close()
            return
        self.drop_client()
        self.reap()  # what ended before this moment is reported as ended (buffered), not as running
        self.client = conn
        try:
            for rec in sorted(self.records.values(), key=lambda r: not r["sandbox"]):
                conn.send(json.dumps({"event": "sandbox" if rec["sandbox"] else "container", **rec}).encode())
            for ev in self.buffered:
                conn.send(json.dumps(ev).encode())
            conn.send(json.dumps({"event": "ready", "pid": os.getpid()}).encode())
        except OSError:
            self.client = None
            conn.close()
            return
        self.buffered.clear()
        self.poller.register(conn, select.POLLIN)

    def client_gone(self) -> bool:
        """The connected client hung up (its end may close in the same instant a new one comes)."""
        assert self.client is not None
        probe = select.poll()
        probe.register(self.client, select.POLLIN)
        return any(mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, mask in probe.poll(0))

    def drop_client(self) -> None:
        if self.client is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.poller.unregister(self.client)
            self.client.close()
            self.client = None

    def close(self) -> None:
        # Only our own socket file: a newer server may have replaced it.
        with contextlib.suppress(OSError):
            if os.stat(self.sock_path).st_ino == self.sock_ino:
                os.unlink(self.sock_path)
        self.listener.close()
        if self.client is not None:
            self.client.close()

    def send(self, msg: dict[str, Any]) -> None:
        if self.client is not None:
            try:
                self.client.send(json.dumps(msg).encode())
                return
            except OSError:
                self.drop_client()
        if msg.get("event") == "exit":
            self.buffered.append(msg)
            del self.buffered[:-MAX_BUFFERED_EXITS]

    def dispatch(self, req: dict[str, Any]) -> dict[str, Any]:
        seq = req.get("seq")
        op = req.get("op")
        try:
            if op == "sandbox":
                pid = self.start_sandbox(req)
                rec = self.remember(req["id"], pid, True, req)
                return {"seq": seq, "ok": True, "pid": pid, "start_time": rec["start_time"]}
            if op == "start":
                pid, app = self.start_container(req)
                rec = self.remember(req["id"], pid, False, req, app=app, sandbox_id=req["sandbox"])
                return {"seq": seq, "ok": True, "pid": pid, "app": app, "start_time": rec["start_time"]}
            if op == "kill":
                return {"seq": seq, "ok": True, "alive": self.kill(req["id"], int(req["signal"]))}
            if op == "modules":
                return {"seq": seq, "ok": True, "modules": sorted(sys.modules)}
            return {"seq": seq, "ok": False, "kind": "protocol", "error": f"unknown op {op!r}"}
        except StartFailed as exc:
            return {"seq": seq, "ok": False, "kind": exc.kind, "error": str(exc)}
        except Exception as exc:
            return {"seq": seq, "ok": False, "kind": "internal", "error": f"{type(exc).__name__}: {exc}"}

    def remember(self, id_: str, pid: int, sandbox: bool, req: dict[str, Any], **extra: Any) -> dict[str, Any]:
        rec = {
            "id": id_,
            "pid": pid,
            "sandbox": sandbox,
            "start_time": linux.process_start_time(pid) or 0,
            "meta": req.get("meta") or {},
            **extra,
        }
        self.records[id_] = rec
        return rec

    # -- children ----------------------------------------------------------------------------

    def _fork(self, id_: str, sandbox: bool, child: Any, *args: Any) -> int:
        """Fork ``child(report_fd, *args)``; wait until it reports ready (EOF) or an error."""
        if id_ in self.by_id:
            raise StartFailed("conflict", f"{id_} is already running")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 127
            try:
                os.close(r)
                self._child_setup()
                child(w, *args)
                code = 0
            except BaseException as exc:
                message = exc.args[1] if isinstance(exc, OSError) and len(exc.args) > 1 else str(exc)
                detail = f"{type(exc).__name__}: {message}" if not isinstance(exc, StartFailed) else message
                try:
                    os.write(w, detail.encode()[:4000])
                except OSError:
                    traceback.print_exc()
            finally:
                os._exit(code)
        os.close(w)
        try:
            error = _read_all(r).decode(errors="replace")
        finally:
            os.close(r)
        if error:
            self.quiet.add(pid)
            self.procs[pid] = (id_, sandbox)
            raise StartFailed("start", error)
        self.procs[pid] = (id_, sandbox)
        self.by_id[id_] = pid
        return pid

    def _child_setup(self) -> None:
        """Undo the server's own state in a fresh child."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        # A pod must not hold the server's sockets: clients would never see them close.
        self.listener.close()
        if self.client is not None:
            self.client.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        os.setsid()
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the server died between fork and prctl
            os._exit(1)

    def start_sandbox(self, req: dict[str, Any]) -> int:
        return self._fork(req["id"], True, self._holder, req)

    def _holder(self, report: int, req: dict[str, Any]) -> None:
        linux.set_comm("kins-pause")
        fd = os.open(req["netns"], os.O_RDONLY | os.O_CLOEXEC)
        syscalls.setns(fd, syscalls.CLONE_NEWNET)
        os.close(fd)
        syscalls.unshare(syscalls.CLONE_NEWUTS | syscalls.CLONE_NEWNS)
        socket.sethostname(req["hostname"])
        # Private, so nothing mounted here reaches the host (and the host's mounts stay out).
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
        # The copied mount table pins every other network namespace bound under /run/netns;
        # drop those copies so deleting a namespace on the host really frees it.
        # iproute2's /run/netns is a mount point of its own: detaching it first makes the table
        # small before it is read for any other namespace file.
        with contextlib.suppress(OSError):
            syscalls.umount2("/run/netns", syscalls.MNT_DETACH)
        with open("/proc/self/mountinfo") as f:
            points = nsfs_mounts_to_detach(f.read())
        for point in points:
            with contextlib.suppress(OSError):
                syscalls.umount2(point, syscalls.MNT_DETACH)
        # The pod's resolv.conf and hosts are held open first: a volume mounted over a directory
        # above them (an emptyDir at /tmp, with the state directory below /tmp) would hide them.
        files = [
            (os.open(source, os.O_PATH | os.O_CLOEXEC), target)
            for source, target in ((req["resolv_conf"], "/etc/resolv.conf"), (req["hosts"], "/etc/hosts"))
            if source
        ]
        mounts = [(m[0], m[1], bool(m[2])) for m in req.get("mounts") or []]
        if mounts:
            try:
                MountSetup(req["scratch"]).apply(mounts)
            except (OSError, ValueError) as exc:
                message = exc.args[1] if isinstance(exc, OSError) and len(exc.args) > 1 else str(exc)
                raise StartFailed("start", f"volume mounts: {message}") from None
        for fd, target in files:
            syscalls.mount(f"/proc/self/fd/{fd}", target, None, syscalls.MS_BIND)
            os.close(fd)
        # /sys showing the pod's own interfaces, as `ip netns exec` arranges it.
        try:
            syscalls.umount2("/sys", syscalls.MNT_DETACH)
            syscalls.mount("sysfs", "/sys", "sysfs", 0)
        except OSError:
            pass
        for std in (0, 1, 2):
            os.dup2(self.devnull, std)
        if self.sleep:
            # From here on the holder only holds: a small C program does that with a tenth of
            # the private memory a forked interpreter keeps. Closing ``report`` on exec = ready.
            with contextlib.suppress(OSError):
                os.execve(self.sleep, ["kins-pause", "infinity"], {})  # no locale to load
        os.close(report)
        while True:
            signal.pause()

    def start_container(self, req: dict[str, Any]) -> tuple[int, str | None]:
        holder = self.by_id.get(req["sandbox"])
        if holder is None or not self.procs.get(holder, ("", False))[1]:
            raise StartFailed("sandbox", f"sandbox {req['sandbox']} is not running")
        command, args = list(req.get("command") or []), list(req.get("args") or [])
        try:
            app = apps.resolve(req["image"], command, args)
        except apps.AppError as exc:
            raise StartFailed("image", str(exc)) from None
        if app is None and not command and args and _shell_image(req["image"]):
            command, args = args, []  # no ENTRYPOINT: the arguments are the command (Docker's rule)
        elif app is None and not command and _shell_image(req["image"]):
            command = ["sh"]  # their CMD
        if app is None and not command:
            raise StartFailed(
                "image",
                f"image {req['image']} is not built into kins and the container has no command;"
                f" kins runs built-in images ({', '.join(('agnhost', 'pause', 'business-manager', 'data-product'))})"
                " or a container command found on the host",
            )
        pid = self._fork(req["id"], False, self._container, req, holder, app, command + args)
        return pid, app.name if app else None

    def _container(self, report: int, req: dict[str, Any], holder: int, app: apps.App | None, argv: list[str]) -> None:
        fds = [os.open(f"/proc/{holder}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC) for ns in NAMESPACES]
        log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        for fd in fds:
            syscalls.setns(fd)
            os.close(fd)
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": socket.gethostname(), **req.get("env", {})}
        workdir = req.get("workdir") or "/"
        try:
            os.chdir(workdir)
        except OSError as exc:
            raise StartFailed("start", f"working directory {workdir}: {exc.strerror}") from None
        if req.get("stdin") or req.get("tty"):
            stdio.set_up(req, log, [report])
        else:
            os.dup2(self.devnull, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
        os.close(log)
        if app is None:
            # On success exec closes ``report`` (close-on-exec): the server reads EOF.
            try:
                os.execvpe(argv[0], argv, env)
            except OSError as exc:
                raise StartFailed("start", f"exec {argv[0]}: {exc.strerror}") from None
        assert app is not None
        linux.set_comm(app.name)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [app.name, *app.argv]
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        os.close(report)
        try:
            code = app.run()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def kill(self, id_: str, sig: int) -> bool:
        pid = self.by_id.get(id_)
        if pid is None:
            return False
        try:
            if self.procs[pid][1]:
                os.kill(pid, sig)
            else:
                os.killpg(pid, sig)  # the container's whole session (it called setsid)
        except ProcessLookupError:
            return False
        return True

    def reap(self) -> None:
        while True:
            try:
                # Peek first (WNOWAIT): while the process is unreaped its pid cannot be reused,
                # so signalling its session below cannot hit a stranger.
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            pid = info.si_pid
            entry = self.procs.pop(pid, None)
            if entry is not None and not entry[1]:
                # As with a container's PID 1: when the main process ends, its session goes too.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            if entry is None:
                continue  # an orphan re-parented to us (subreaper)
            id_, sandbox = entry
            if self.by_id.get(id_) == pid:
                del self.by_id[id_]
                self.records.pop(id_, None)
            if pid in self.quiet:
                self.quiet.discard(pid)
                continue
            self.send({"event": "exit", "id": id_, "pid": pid, "status": status, "sandbox": sandbox})

    def kill_all(self) -> None:
        """SIGKILL every pod process, then reap until no child is left.

        Killing a container can orphan its own children (re-parented to us, the subreaper) after
        a sweep has looked, so sweep and reap in rounds."""
        for pid, (_, sandbox) in list(self.procs.items()):
            with contextlib.suppress(ProcessLookupError):
                if sandbox:
                    os.kill(pid, signal.SIGKILL)
                else:
                    os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for pid in _children_of(os.getpid()):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            except ChildProcessError:
                break
            time.sleep(0.01)
        self.procs.clear()
        self.by_id.clear()
        self.records.clear()


def _children_of(parent: int) -> list[int]:
    me = str(parent)
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if stat[stat.rindex(")") + 2 :].split()[1] == me:
                out.append(int(entry))
    return out


def _warm_up() -> None:
    """Run an event loop once, so lazy imports and caches are filled before the first fork."""
    import asyncio

    async def noop() -> None:
        await asyncio.sleep(0)

    asyncio.run(noop())


def listen(sock_path: str) -> socket.socket:
    """Bind ``sock_path`` (0600); a stale file left by a dead server is replaced."""
    directory, name = os.path.split(sock_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # Bound by a name relative to the directory: state dirs can be longer than sun_path allows.
    old = os.open(".", os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.chdir(directory)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        umask = os.umask(0o177)
        try:
            listener.bind(name)
        finally:
            os.umask(umask)
    finally:
        os.fchdir(old)
        os.close(old)
    listener.listen(8)
    return listener


def main(sock_path: str) -> None:
    os.chdir("/")
    # Both end the server like a shutdown would: its pods die with it (PDEATHSIG).
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(0))
    listener = listen(sock_path)
    listener.set_inheritable(False)
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    linux.set_comm("kins-zygote")
    _warm_up()
    # Objects made so far (modules, the apps) go to a permanent generation: a forked child's
    # garbage collector then never writes to them, so their pages stay shared.
    gc.collect()
    gc.freeze()
    zygote = Zygote(listener, sock_path)
    try:
        zygote.serve()
    except SystemExit:
        zygote.kill_all()
        zygote.close()


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1])
