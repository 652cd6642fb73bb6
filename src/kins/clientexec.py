"""Exec through the API, as kubectl does it: a WebSocket speaking ``v5.channel.k8s.io`` (or
``v4.channel.k8s.io``) to ``pods/NAME/exec``, or to kins' own node and outside host exec
endpoints (``/kins/v1/nodes/NAME/exec``, ``/kins/v1/hosts/NAME/exec``).

Every binary message starts with its channel: 0 stdin, 1 stdout, 2 stderr, 3 the final status
(exit code as cause ``ExitCode``), 4 terminal resizes; v5's ``[255, 0]`` ends stdin. The
WebSocket is spoken here directly over asyncio streams (one small handshake and frame codec):
it starts fast, is full duplex on TLS, and a refused upgrade's ``Status`` body is at hand.

``run`` captures a command's output, ``run_many`` runs several at once, ``attach`` wires one
to this process's own stdin, stdout and stderr (a raw terminal with ``tty``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import secrets
import signal
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

from ._errors import KinsError, error_from_status

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_HEADER = 1 << 16
READ_CHUNK = 1 << 15
CONCURRENCY = 8  # run_many: commands in flight at once


class Api(Protocol):
    """Where the API is and the token it takes: a ``kins.client.Client``, or an ``Endpoint``
    (which spares a one-shot command loading the HTTP client)."""

    @property
    def base_url(self) -> str: ...
    @property
    def token(self) -> str: ...
    @property
    def ca_file(self) -> str | None: ...
    @property
    def uds(self) -> str | None: ...


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    token: str
    ca_file: str | None = None
    uds: str | None = None


class ExecError(KinsError):
    """The command could not be run, or the session broke off before it ended."""


def pod_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(name, safe='')}/exec"


def node_path(name: str) -> str:
    return f"/kins/v1/nodes/{quote(name, safe='')}/exec"


def host_path(name: str) -> str:
    return f"/kins/v1/hosts/{quote(name, safe='')}/exec"


@dataclass(frozen=True)
class Command:
    """One exec: where (an exec path), what, and the input it reads (none: no stdin)."""

    path: str
    argv: Sequence[str]
    container: str | None = None
    input: bytes | None = None


@dataclass
class Result:
    code: int
    stdout: bytes = b""
    stderr: bytes = b""
    ended: float = 0.0  # time.monotonic() when it ended


@dataclass
class _Io:
    """Where a session's output goes and where its stdin and resizes come from."""

    output: Callable[[int, bytes], None]
    stdin: asyncio.Queue[bytes] | None = None  # b"" ends it
    tty: bool = False
    resizes: asyncio.Queue[tuple[int, int]] | None = None
    sent_stdin: list[bool] = field(default_factory=list)


# --- the WebSocket ------------------------------------------------------------------------------


def _mask(key: bytes, data: bytes) -> bytes:
    if not data:
        return data
    n = len(data)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ k).to_bytes(n, "big")


def encode_frame(opcode: int, payload: bytes, key: bytes | None = None) -> bytes:
    """A final, masked (client to server) frame."""
    key = key if key is not None else secrets.token_bytes(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + key + _mask(key, payload)


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, protocol: str) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = protocol
        self.closed = False

    async def send(self, data: bytes, opcode: int = OP_BINARY) -> None:
        if self.closed:
            return
        self.writer.write(encode_frame(opcode, data))
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def _frame(self) -> tuple[bool, int, bytes]:
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        key = await self.reader.readexactly(4) if b1 & 0x80 else None
        payload = await self.reader.readexactly(n)
        return bool(b0 & 0x80), b0 & 0x0F, _mask(key, payload) if key else payload

    async def receive(self) -> bytes | None:
        """The next data message; None once the server closed (or the connection went)."""
        parts: list[bytes] = []
        while True:
            try:
                fin, op, payload = await self._frame()
            except (asyncio.IncompleteReadError, ConnectionError):
                self.closed = True
                return None
            if op == OP_PING:
                await self.send(payload, OP_PONG)
            elif op == OP_CLOSE:
                await self.send(payload[:2], OP_CLOSE)
                self.closed = True
                return None
            elif op in (OP_TEXT, OP_BINARY, OP_CONT):
                parts.append(payload)
                if fin:
                    return b"".join(parts)

    async def close(self) -> None:
        if not self.closed:
            await self.send(struct.pack("!H", 1000), OP_CLOSE)
            self.closed = True
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def _ssl_context(client: Api) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=client.ca_file) if client.ca_file else ssl.create_default_context()


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return body
            body += await reader.readexactly(size)
            await reader.readline()
    return await reader.read()


async def connect(client: Api, path: str, query: list[tuple[str, str]], timeout: float = 30.0) -> WebSocket:
    """The upgraded WebSocket, or the API's refusal raised as the client raises it (NotFound ...)."""
    url = urlsplit(client.base_url)
    async with asyncio.timeout(timeout):
        if client.uds is not None:
            reader, writer = await asyncio.open_unix_connection(client.uds, limit=MAX_HEADER)
        elif url.scheme == "https":
            reader, writer = await asyncio.open_connection(
                url.hostname, url.port or 443, ssl=_ssl_context(client), limit=MAX_HEADER
            )
        else:
            reader, writer = await asyncio.open_connection(url.hostname, url.port or 80, limit=MAX_HEADER)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        target = url.path.rstrip("/") + path + "?" + urlencode(query)
        request = (
            f"GET {target} HTTP/1.1\r\nHost: {url.netloc or 'kins'}\r\n"
            f"Authorization: Bearer {client.token}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: {V5}, {V4}\r\n\r\n"
        )
        writer.write(request.encode())
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            status_line, *lines = head.split("\r\n")
            code = int(status_line.split()[1])
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}
            if code != 101:
                raw = await _read_body(reader, headers)
                writer.close()
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                raise error_from_status(code, body)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as e:
            writer.close()
            raise ExecError(f"the API answered the exec upgrade with no valid HTTP response: {e}") from None
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        protocol = headers.get("sec-websocket-protocol", "")
        if headers.get("sec-websocket-accept") != accept or protocol not in (V5, V4):
            writer.close()
            raise ExecError("the API's WebSocket handshake did not match the request")
        return WebSocket(reader, writer, protocol)


# --- a session ----------------------------------------------------------------------------------


def exit_code(status: dict[str, Any]) -> int:
    """The remote command's exit code from the final status (ExecError when it did not run)."""
    if status.get("status") == "Success":
        return 0
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                with contextlib.suppress(ValueError):
                    code = int(cause.get("message"))
                    # A signal's death (the process's -N) as a shell reports it.
                    return 128 - code if code < 0 else code
    raise ExecError(str(status.get("message") or "exec failed"))


def _query(cmd: Command, *, stdin: bool, tty: bool) -> list[tuple[str, str]]:
    q = [("command", a) for a in cmd.argv]
    q += [("stdout", "true")] + ([] if tty else [("stderr", "true")])
    if stdin:
        q.append(("stdin", "true"))
    if tty:
        q.append(("tty", "true"))
    if cmd.container:
        q.append(("container", cmd.container))
    return q


async def _session(client: Api, cmd: Command, io: _Io) -> int:
    ws = await connect(client, cmd.path, _query(cmd, stdin=io.stdin is not None, tty=io.tty))
    pumps: list[asyncio.Task[None]] = []
    try:
        if io.stdin is not None:
            pumps.append(asyncio.create_task(_pump_stdin(ws, io.stdin)))
        if io.resizes is not None:
            pumps.append(asyncio.create_task(_pump_resizes(ws, io.resizes)))
        status: dict[str, Any] | None = None
        while (msg := await ws.receive()) is not None:
            if not msg:
                continue
            channel, payload = msg[0], msg[1:]
            if channel in (STDOUT, STDERR):
                io.output(channel, payload)
            elif channel == ERROR:
                try:
                    status = json.loads(payload)
                except ValueError:
                    status = {"status": "Failure", "message": payload.decode(errors="replace")}
        if status is None:
            raise ExecError("the exec session ended without the command's status")
        return exit_code(status)
    finally:
        for t in pumps:
            t.cancel()
        await ws.close()


async def _pump_stdin(ws: WebSocket, queue: asyncio.Queue[bytes]) -> None:
    while data := await queue.get():
        for i in range(0, len(data), READ_CHUNK):
            await ws.send(bytes([STDIN]) + data[i : i + READ_CHUNK])
    if ws.protocol == V5:
        await ws.send(bytes([CLOSE, STDIN]))


async def _pump_resizes(ws: WebSocket, queue: asyncio.Queue[tuple[int, int]]) -> None:
    while True:
        rows, cols = await queue.get()
        await ws.send(bytes([RESIZE]) + json.dumps({"Width": cols, "Height": rows}).encode())


async def _captured(client: Api, cmd: Command, timeout: float | None) -> Result:
    out: dict[int, bytearray] = {STDOUT: bytearray(), STDERR: bytearray()}
    stdin: asyncio.Queue[bytes] | None = None
    if cmd.input is not None:
        stdin = asyncio.Queue()
        stdin.put_nowait(cmd.input)
        stdin.put_nowait(b"")
    io = _Io(output=lambda ch, data: out[ch].extend(data), stdin=stdin)
    async with asyncio.timeout(timeout):
        code = await _session(client, cmd, io)
    return Result(code, bytes(out[STDOUT]), bytes(out[STDERR]), time.monotonic())


def run(client: Api, cmd: Command, timeout: float | None = None) -> Result:
    """Run a command, its output captured."""
    return asyncio.run(_captured(client, cmd, timeout))


def run_many(
    client: Api, cmds: Sequence[Command], timeout: float | None = None, concurrency: int = CONCURRENCY
) -> list[Result | BaseException]:
    """Run several commands at once (``concurrency`` at a time); each one's Result or error."""

    async def all_of() -> list[Result | BaseException]:
        gate = asyncio.Semaphore(concurrency)

        async def one(cmd: Command) -> Result:
            async with gate:
                return await _captured(client, cmd, timeout)

        return await asyncio.gather(*(one(c) for c in cmds), return_exceptions=True)

    return asyncio.run(all_of())


# --- attached to this process's terminal --------------------------------------------------------


def _write_all(fd: int, data: bytes) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


def _read_stdin(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes], fd: int) -> None:
    """Runs in a daemon thread: blocking reads work for any stdin (terminal, pipe, file)."""
    while True:
        try:
            data = os.read(fd, READ_CHUNK)
        except OSError:
            data = b""
        with contextlib.suppress(RuntimeError):  # the loop is gone: the session is over
            loop.call_soon_threadsafe(queue.put_nowait, data)
        if not data:
            return


def _window(fd: int) -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


async def _attached(client: Api, cmd: Command, stdin: bool, tty: bool) -> int:
    loop = asyncio.get_running_loop()
    io = _Io(output=lambda ch, data: _write_all(ch, data), tty=tty)
    if stdin:
        io.stdin = asyncio.Queue()
        threading.Thread(target=_read_stdin, args=(loop, io.stdin, 0), name="stdin", daemon=True).start()
    if tty:
        resizes: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        io.resizes = resizes

        def resized() -> None:
            if (size := _window(0)) is not None:
                resizes.put_nowait(size)

        resized()
        loop.add_signal_handler(signal.SIGWINCH, resized)
    try:
        return await _session(client, cmd, io)
    except BrokenPipeError:
        # Nobody reads the output any more: the session (and so the command) ends, with the
        # status a local command killed by SIGPIPE would have.
        return 128 + signal.SIGPIPE
    finally:
        if tty:
            loop.remove_signal_handler(signal.SIGWINCH)


def attach(client: Api, cmd: Command, *, stdin: bool = False, tty: bool = False) -> int:
    """Run a command with this process's stdout and stderr (and stdin with ``stdin``; a terminal
    in raw mode with ``tty``, when stdin is one); the remote exit code."""
    import termios
    import tty as ttymod

    sys.stdout.flush()
    sys.stderr.flush()
    tty = tty and os.isatty(0)
    saved = termios.tcgetattr(0) if tty else None
    try:
        if tty:
            ttymod.setraw(0)
        return asyncio.run(_attached(client, cmd, stdin, tty))
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
