"""``pods/NAME/exec`` over WebSocket (``v5.channel.k8s.io`` / ``v4.channel.k8s.io``) or SPDY/3.1.

Every binary message starts with its channel: 0 stdin, 1 stdout, 2 stderr, 3 the final status
(a ``Status`` object, with the exit code as cause ``ExitCode`` when it is not 0), 4 terminal
resizes (``{"Width": W, "Height": H}``). v5 adds channel 255: ``[255, N]`` closes channel N
(the client's end of stdin). The command runs inside the pod: in the pod's network, UTS and
mount namespaces (nsenter), with a terminal when ``tty`` is set. ``handler`` serves the same
protocol for other targets (the daemon's node and outside host exec).

Over SPDY (kubectl before 1.30, ``kubectl cp`` of those, any kubectl with WebSockets turned off)
each channel is a stream of its own (``SpdyLink``); ``Session`` sees either through a ``Link``.
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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from .._errors import KinsError
from ..runtime.exec import pod_command, pod_env
from . import spdy, spdyupgrade
from .errors import ApiError
from .pods import container_name, get_pod, running_sandbox

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V3 = "v3.channel.k8s.io"
PROTOCOLS = (V5, V4)
# Over SPDY, most preferred first (kubectl offers all four; "channel.k8s.io" is version 1).
SPDY_PROTOCOLS = (V4, V3, "v2.channel.k8s.io", "channel.k8s.io")
STREAM_WAIT = 30.0  # for the client to open the streams it asked for, as the kubelet waits
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
READ_CHUNK = 1 << 15

# The host command line and environment of a session's process (given whether it gets a
# terminal); what it raises (OSError, KinsError ...) becomes the session's error status.
Launch = Callable[[bool], tuple[list[str], dict[str, str]]]
Find = Callable[[web.Request, list[str]], Launch]


class Link(Protocol):
    """A session's connection to the client, whatever carries it (WebSocket or SPDY)."""

    async def send(self, channel: int, data: bytes) -> None:
        """Output on STDOUT or STDERR."""

    async def finish(self, status: dict[str, Any]) -> None:
        """The final Status; the output channels end with it."""

    def incoming(self) -> AsyncIterator[tuple[int, bytes | None]]:
        """(STDIN, data), (STDIN, None) at the end of stdin, (RESIZE, JSON) until the client leaves."""
        ...


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


class WsLink:
    """The WebSocket channel protocol: one binary message per write, its first byte the channel."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.v5 = ws.ws_protocol == V5

    async def send(self, channel: int, data: bytes) -> None:
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await self.ws.send_bytes(frame(channel, data))

    async def finish(self, status: dict[str, Any]) -> None:
        await self.send(ERROR, json.dumps(status).encode())

    async def incoming(self) -> AsyncIterator[tuple[int, bytes | None]]:
        async for msg in self.ws:
            if msg.type == WSMsgType.BINARY:
                data: bytes = msg.data
            elif msg.type == WSMsgType.TEXT:
                data = msg.data.encode()
            else:
                return
            if not data:
                continue
            channel, payload = data[0], data[1:]
            if channel == CLOSE:
                if self.v5 and payload[:1] == bytes([STDIN]):
                    yield STDIN, None
            elif channel in (STDIN, RESIZE) and payload:
                yield channel, payload


class SpdyLink:
    """The SPDY protocols (``v4.channel.k8s.io`` down to ``channel.k8s.io``): one stream per
    channel, opened by the client and named by its ``streamType`` header. The error stream
    carries the final Status as JSON with v4, its message as text before; resize events are
    JSON objects, one a line (v3+)."""

    def __init__(self, session: spdy.Session, protocol: str, streams: dict[str, spdy.Stream]) -> None:
        self.session = session
        self.protocol = protocol
        self.streams = streams

    @classmethod
    async def open(cls, session: spdy.Session, protocol: str, want: Mapping[str, bool]) -> SpdyLink | None:
        """The link once the client has opened every stream the request asked for (None when
        it does not in time, or leaves)."""
        expected = {"error"} | {n for n in ("stdin", "stdout", "stderr") if want.get(n)}
        if want.get("tty"):
            expected.discard("stderr")  # a terminal has one output
            if protocol in (V4, V3):
                expected.add("resize")
        streams: dict[str, spdy.Stream] = {}

        async def collect() -> None:
            while not expected <= streams.keys():
                s = await session.accept()
                if s is None:
                    raise ConnectionResetError("the client left")
                if s.type not in expected or s.type in streams:
                    s.reset(spdy.RST_PROTOCOL_ERROR)
                    continue
                streams[s.type] = s

        try:
            await asyncio.wait_for(collect(), STREAM_WAIT)
        except (TimeoutError, ConnectionResetError):
            if "error" in streams and not session.ended.is_set():
                await streams["error"].write(b"timed out waiting for client to create streams")
            return None
        return cls(session, protocol, streams)

    async def send(self, channel: int, data: bytes) -> None:
        s = self.streams.get("stdout" if channel == STDOUT else "stderr")
        if s is not None:
            await s.write(data)

    async def finish(self, status: dict[str, Any]) -> None:
        for name in ("stdout", "stderr"):
            if name in self.streams:
                await self.streams[name].close()
        error = self.streams["error"]
        if self.protocol == V4:
            await error.write(json.dumps(status).encode())
        elif status.get("status") != "Success":
            await error.write(str(status.get("message", "")).encode())
        await error.close()

    async def incoming(self) -> AsyncIterator[tuple[int, bytes | None]]:
        queue: asyncio.Queue[tuple[int, bytes | None]] = asyncio.Queue()

        async def pump(stream: spdy.Stream, channel: int) -> None:
            pending = b""
            while data := await stream.read():
                if channel == STDIN:
                    queue.put_nowait((STDIN, data))
                    continue
                pending += data
                *events, pending = pending.split(b"\n")
                for event in events:
                    if event.strip():
                        queue.put_nowait((RESIZE, event))
            if channel == STDIN and not stream.was_reset:
                queue.put_nowait((STDIN, None))

        async def ended() -> None:
            await self.session.ended.wait()
            queue.put_nowait((-1, None))

        tasks = [asyncio.create_task(ended())]
        for name, channel in (("stdin", STDIN), ("resize", RESIZE)):
            if name in self.streams:
                tasks.append(asyncio.create_task(pump(self.streams[name], channel)))
        try:
            while True:
                channel, data = await queue.get()
                if channel < 0:
                    return
                yield channel, data
        finally:
            for t in tasks:
                t.cancel()


class Upgrade:
    """How a request for a streaming subresource is answered: a WebSocket with one of
    ``ws_protocols`` or SPDY with one of ``spdy_protocols``; 400 (403 for SPDY protocols that do
    not fit) before anything runs when the request asks for neither."""

    def __init__(
        self,
        request: web.Request,
        what: str,
        ws_protocols: Sequence[str] = PROTOCOLS,
        spdy_protocols: Sequence[str] = SPDY_PROTOCOLS,
    ) -> None:
        self.request = request
        self.ws: web.WebSocketResponse | None = None
        self.spdy_protocol: str | None = None
        self.session: spdy.Session | None = None
        self.response: web.StreamResponse | None = None
        if spdyupgrade.wants_spdy(request):
            self.spdy_protocol = spdyupgrade.negotiate(request, spdy_protocols) or spdy_protocols[-1]
            return
        ws = web.WebSocketResponse(protocols=ws_protocols, max_msg_size=0, autoping=True)
        if not ws.can_prepare(request).ok or not set(offered_protocols(request)) & set(ws_protocols):
            raise ApiError(
                400,
                "BadRequest",
                f"{what} needs a WebSocket upgrade with one of the subprotocols {', '.join(ws_protocols)}"
                f" or a SPDY/3.1 upgrade",
            )
        self.ws = ws

    async def open(self, want: Mapping[str, bool]) -> Link | None:
        if self.ws is not None:
            await self.ws.prepare(self.request)
            self.response = self.ws
            return WsLink(self.ws)
        assert self.spdy_protocol is not None
        self.session, self.response = await spdyupgrade.accept(self.request, self.spdy_protocol)
        return await SpdyLink.open(self.session, self.spdy_protocol, want)

    async def close(self) -> web.StreamResponse:
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.drain()
            self.session.close()
        if self.response is None:
            raise ConnectionResetError("the connection ended before it was upgraded")
        return self.response


async def serve(
    request: web.Request, up: Upgrade, argv: list[str], want: dict[str, bool], launch: Launch
) -> web.StreamResponse:
    try:
        link = await up.open(want)
        if link is not None:
            await Session(link, argv, launch, **want).run()
    finally:
        response = await up.close()
    return response


async def handle(request: web.Request) -> web.StreamResponse:
    pod = get_pod(request)
    argv, want = exec_query(request)
    container = container_name(pod, request.query.get("container"))
    up = Upgrade(request, "exec")
    sandbox = running_sandbox(request, pod, container)

    def launch(tty: bool) -> tuple[list[str], dict[str, str]]:
        return pod_command(sandbox, argv), pod_env(sandbox, {"TERM": "xterm"} if tty else None)

    return await serve(request, up, argv, want, launch)


def handler(find: Find) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An exec endpoint for another kind of target (a node, an outside host): ``find(request,
    argv)`` checks the target (raising ApiError before the upgrade) and says how to launch."""

    async def handle_target(request: web.Request) -> web.StreamResponse:
        argv, want = exec_query(request)
        launch = find(request, argv)
        up = Upgrade(request, "exec")
        return await serve(request, up, argv, want, launch)

    return handle_target


class Session:
    """One exec: the process, and the pumps between it and the WebSocket."""

    def __init__(
        self,
        link: Link,
        argv: list[str],
        launch: Launch,
        *,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        tty: bool,
    ) -> None:
        self.link = link
        self.argv = argv
        self.launch = launch
        self.stdin, self.stdout, self.stderr, self.tty = stdin, stdout, stderr, tty
        self.proc: asyncio.subprocess.Process | None = None
        self.master: int | None = None  # the terminal's master side, with tty

    async def _send(self, channel: int, data: bytes) -> None:
        await self.link.send(channel, data)

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
            await self.link.finish(error_status(f"failed to run the command: {e}"))
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
                await self.link.finish(exit_status(self.argv, code))
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
        """Client input until it leaves: stdin, its end, terminal resizes."""
        async for channel, payload in self.link.incoming():
            if channel == STDIN and self.stdin:
                if payload is None:
                    self._close_stdin()
                elif payload:
                    await self._write_stdin(payload)
            elif channel == RESIZE and payload:
                self._resize(payload)
