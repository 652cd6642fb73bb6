"""``pods/NAME/exec`` over WebSocket: the ``v5.channel.k8s.io`` / ``v4.channel.k8s.io`` protocols.

Every binary message starts with its channel: 0 stdin, 1 stdout, 2 stderr, 3 the final status
(a ``Status`` object, with the exit code as cause ``ExitCode`` when it is not 0), 4 terminal
resizes (``{"Width": W, "Height": H}``). v5 adds channel 255: ``[255, N]`` closes channel N
(the client's end of stdin). The command runs inside the pod: in the pod's network, UTS and
mount namespaces (nsenter), with a terminal when ``tty`` is set. ``handler`` serves the same
protocol for other targets (the daemon's node and outside host exec).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import shutil
import signal
import struct
import termios
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import WSMsgType, web

from .._errors import KinsError
from ..runtime.exec import pod_command, pod_env
from .errors import ApiError
from .pods import container_name, get_pod, running_sandbox

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
READ_CHUNK = 1 << 15

# The host command line and environment of a session's process (given whether it gets a
# terminal); what it raises (OSError, KinsError ...) becomes the session's error status.
Launch = Callable[[bool], tuple[list[str], dict[str, str]]]
Find = Callable[[web.Request, list[str]], Launch]


def offered_protocols(request: web.Request) -> list[str]:
    return [p.strip() for h in request.headers.getall("Sec-WebSocket-Protocol", []) for p in h.split(",") if p.strip()]


def frame(channel: int, data: bytes) -> bytes:
    return bytes([channel]) + data


def exit_status(argv: Sequence[str], code: int) -> dict[str, Any]:
    """What the error channel carries when the command ends (``Status``, as the kubelet sends it)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            f"command terminated with non-zero exit code: error executing command [{' '.join(argv)}], exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def error_status(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message}


def window_size(data: bytes) -> tuple[int, int] | None:
    """(rows, columns) of a resize message, None when it is not one."""
    try:
        size = json.loads(data)
        return int(size["Height"]), int(size["Width"])
    except (ValueError, KeyError, TypeError):
        return None


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("1", "true", "yes")


def exec_query(request: web.Request) -> tuple[list[str], dict[str, bool]]:
    """The command and the streams (stdin, stdout, stderr, tty) a request asks for (400 when none)."""
    q = request.query
    argv = q.getall("command", [])
    if not argv:
        raise ApiError(400, "BadRequest", "you must specify at least 1 command")
    want = {name: _flag(q, name) for name in ("stdin", "stdout", "stderr", "tty")}
    if not (want["stdin"] or want["stdout"] or want["stderr"]):
        raise ApiError(400, "BadRequest", "you must specify at least 1 of stdin, stdout, stderr")
    return argv, want


def upgrade(request: web.Request) -> web.WebSocketResponse:
    """The WebSocket to answer on, or 400 when the request is no upgrade to a channel protocol."""
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0, autoping=True)
    if not ws.can_prepare(request).ok or not set(offered_protocols(request)) & set(PROTOCOLS):
        raise ApiError(
            400,
            "BadRequest",
            f"exec needs a WebSocket upgrade with one of the subprotocols {', '.join(PROTOCOLS)}",
        )
    return ws


async def serve(
    request: web.Request, ws: web.WebSocketResponse, argv: list[str], want: dict[str, bool], launch: Launch
) -> web.WebSocketResponse:
    await ws.prepare(request)
    try:
        await Session(ws, argv, launch, **want).run()
    finally:
        await ws.close()
    return ws


async def handle(request: web.Request) -> web.StreamResponse:
    pod = get_pod(request)
    argv, want = exec_query(request)
    container = container_name(pod, request.query.get("container"))
    ws = upgrade(request)
    sandbox = running_sandbox(request, pod, container)

    def launch(tty: bool) -> tuple[list[str], dict[str, str]]:
        return pod_command(sandbox, argv), pod_env(sandbox, {"TERM": "xterm"} if tty else None)

    return await serve(request, ws, argv, want, launch)


def handler(find: Find) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An exec endpoint for another kind of target (a node, an outside host): ``find(request,
    argv)`` checks the target (raising ApiError before the upgrade) and says how to launch."""

    async def handle_target(request: web.Request) -> web.StreamResponse:
        argv, want = exec_query(request)
        launch = find(request, argv)
        ws = upgrade(request)
        return await serve(request, ws, argv, want, launch)

    return handle_target


class Session:
    """One exec: the process, and the pumps between it and the WebSocket."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        argv: list[str],
        launch: Launch,
        *,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        tty: bool,
    ) -> None:
        self.ws = ws
        self.argv = argv
        self.launch = launch
        self.stdin, self.stdout, self.stderr, self.tty = stdin, stdout, stderr, tty
        self.v5 = ws.ws_protocol == V5
        self.proc: asyncio.subprocess.Process | None = None
        self.master: int | None = None  # the terminal's master side, with tty

    async def _send(self, channel: int, data: bytes) -> None:
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await self.ws.send_bytes(frame(channel, data))

    async def _start(self) -> asyncio.subprocess.Process:
        cmd, env = self.launch(self.tty)
        if not self.tty:
            pipe, null = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
            return await asyncio.create_subprocess_exec(
                *cmd,
                stdin=pipe if self.stdin else null,
                stdout=pipe if self.stdout else null,
                stderr=pipe if self.stderr else null,
                env=env,
                start_new_session=True,
            )
        setsid = shutil.which("setsid")
        if setsid is None:
            raise RuntimeError("a terminal needs setsid (util-linux) on the host")
        master, slave = pty.openpty()
        try:
            # setsid -c: a new session whose controlling terminal is the pty (so ^C reaches it).
            proc = await asyncio.create_subprocess_exec(
                setsid, "-c", *cmd, stdin=slave, stdout=slave, stderr=slave, env=env
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        self.master = master
        return proc

    async def run(self) -> None:
        try:
            self.proc = await self._start()
        except (OSError, RuntimeError, LookupError, KinsError) as e:
            await self._send(ERROR, json.dumps(error_status(f"failed to run the command: {e}")).encode())
            return
        outputs = []
        if self.master is not None:
            outputs.append(asyncio.create_task(self._pump_tty()))
        else:
            if self.proc.stdout is not None:
                outputs.append(asyncio.create_task(self._pump(self.proc.stdout, STDOUT)))
            if self.proc.stderr is not None:
                outputs.append(asyncio.create_task(self._pump(self.proc.stderr, STDERR)))
        reader = asyncio.create_task(self._read_client())
        waiter = asyncio.create_task(self.proc.wait())
        try:
            done, _ = await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                # The client went away first: the command goes with it, as with the kubelet.
                self._kill()
            code = await waiter
            await asyncio.gather(*outputs, return_exceptions=True)
            if not reader.done():
                await self._send(ERROR, json.dumps(exit_status(self.argv, code)).encode())
        finally:
            reader.cancel()
            for t in outputs:
                t.cancel()
            self._kill()
            if self.master is not None:
                os.close(self.master)
                self.master = None

    def _kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    async def _pump(self, stream: asyncio.StreamReader, channel: int) -> None:
        while True:
            data = await stream.read(READ_CHUNK)
            if not data:
                return
            await self._send(channel, data)

    async def _pump_tty(self) -> None:
        """The terminal's output to stdout until the last holder of the terminal ends (EIO)."""
        assert self.master is not None
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        loop.add_reader(self.master, ready.set)
        try:
            while True:
                await ready.wait()
                ready.clear()
                try:
                    data = os.read(self.master, READ_CHUNK)
                except BlockingIOError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                await self._send(STDOUT, data)
        finally:
            loop.remove_reader(self.master)

    async def _write_stdin(self, data: bytes) -> None:
        if self.master is not None:
            while data:
                try:
                    n = os.write(self.master, data)
                except BlockingIOError:
                    await asyncio.sleep(0.01)
                    continue
                except OSError:
                    return
                data = data[n:]
            return
        assert self.proc is not None
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                self.proc.stdin.write(data)
                await self.proc.stdin.drain()

    def _close_stdin(self) -> None:
        if self.master is not None:
            # A terminal has no end of file of its own: send the EOF character, as a shell would.
            with contextlib.suppress(OSError):
                os.write(self.master, b"\x04")
            return
        assert self.proc is not None
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    def _resize(self, data: bytes) -> None:
        size = window_size(data)
        if size is not None and self.master is not None:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))

    async def _read_client(self) -> None:
        """Client messages until it closes the WebSocket: stdin, resizes, v5 channel closes."""
        async for msg in self.ws:
            if msg.type == WSMsgType.BINARY:
                data: bytes = msg.data
            elif msg.type == WSMsgType.TEXT:
                data = msg.data.encode()
            else:
                break
            if not data:
                continue
            channel, payload = data[0], data[1:]
            if channel == STDIN and self.stdin:
                if payload:
                    await self._write_stdin(payload)
            elif channel == RESIZE:
                self._resize(payload)
            elif channel == CLOSE and self.v5 and payload[:1] == bytes([STDIN]):
                self._close_stdin()
