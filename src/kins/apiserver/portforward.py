"""``pods/NAME/portforward``: connections to a pod's ports, from inside its network namespace.

Three ways in are served:

- SPDY/3.1 itself (kubectl before 1.31): the request is upgraded (``spdyupgrade``) with the
  stream protocol ``portforward.k8s.io``, then streams as below.
- ``SPDY/3.1+portforward.k8s.io`` (kubectl 1.31+): SPDY tunnelled through the WebSocket. For each
  local connection kubectl opens an ``error`` and a ``data`` stream with the same ``requestID``
  and the target ``port``; once both are there the port is dialled, bytes flow on the data
  stream, and a failure is reported as text on the error stream.
- ``v4.channel.k8s.io`` (and v5, ``portforward.k8s.io``; the official Python client): one
  connection per port of the ``ports`` query, on channels 2i (data) and 2i+1 (error); the first
  message of each channel is its port, two bytes little-endian.

Like the kubelet, the connection is made to 127.0.0.1:PORT inside the pod's network namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from ..runtime.linux import socket_in_netns
from ..runtime.types import Sandbox
from . import spdy, spdyupgrade
from .errors import ApiError
from .exec import offered_protocols
from .pods import get_pod, running_sandbox

PORTFORWARD_V1 = "portforward.k8s.io"
SPDY_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CHANNEL_PROTOCOLS = ("v4.channel.k8s.io", "v5.channel.k8s.io", "portforward.k8s.io")
PROTOCOLS = (SPDY_PROTOCOL, *CHANNEL_PROTOCOLS)
DIAL_TIMEOUT = 5.0
READ_CHUNK = 1 << 15


def parse_ports(values: list[str]) -> list[int]:
    """The ``ports`` query (repeated or comma-separated), checked as the kubelet checks it."""
    out = []
    for raw in (p.strip() for v in values for p in v.split(",")):
        if not raw:
            continue
        try:
            port = int(raw)
        except ValueError:
            raise ApiError(400, "BadRequest", f'unable to parse "{raw}" as a port') from None
        if not 0 < port < 65536:
            raise ApiError(400, "BadRequest", f"port {port} must be > 0 and < 65536")
        out.append(port)
    return out


def port_prefix(channel: int, port: int) -> bytes:
    """The first message of a channel in the channel protocol: the channel, then the port (LE)."""
    return bytes([channel]) + struct.pack("<H", port)


async def dial(sandbox: Sandbox, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to 127.0.0.1:port inside the pod's network namespace."""
    sock = await asyncio.to_thread(socket_in_netns, sandbox.netns_path)
    try:
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), DIAL_TIMEOUT)
        return await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise


def dial_error(sandbox: Sandbox, port: int, e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        why = "i/o timeout"
    elif isinstance(e, OSError) and e.errno:
        why = os.strerror(e.errno)  # asyncio words it "Connect call failed": Go's words are the C library's
    else:
        why = str(e)
    return (
        f"error forwarding port {port} to pod {sandbox.id}, uid : failed to connect to localhost:{port} "
        f'inside namespace "{sandbox.netns_path}", IPv4: dial tcp4 127.0.0.1:{port}: connect: {why.lower()}'
    )


def check_stream(headers: Mapping[str, str]) -> str | None:
    """Why a port-forward stream is refused (None: it is accepted), as the kubelet checks it."""
    if headers.get("streamtype", "") not in ("data", "error"):
        return f"invalid stream type {headers.get('streamtype', '')!r}"
    raw = headers.get("port", "")
    if not raw:
        return '"port" header is required'
    try:
        port = int(raw)
    except ValueError:
        return f'unable to parse "{raw}" as a port'
    if not 0 < port < 65536:
        return f"port {port} must be > 0 and < 65536"
    return None


async def handle(request: web.Request) -> web.StreamResponse:
    pod = get_pod(request)
    if spdyupgrade.wants_spdy(request):
        protocol = spdyupgrade.negotiate(request, (PORTFORWARD_V1,))
        sandbox = running_sandbox(request, pod, pod.spec.containers[0].name if pod.spec.containers else "")
        session, resp = await spdyupgrade.accept(request, protocol or PORTFORWARD_V1, check_stream)
        try:
            await SpdyForward(session, sandbox).run()
        finally:
            await session.drain()
            session.close()
        return resp
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0)
    offered = set(offered_protocols(request))
    if not ws.can_prepare(request).ok or not offered & set(PROTOCOLS):
        raise ApiError(
            400,
            "BadRequest",
            f"port forwarding needs a WebSocket upgrade with one of the subprotocols {', '.join(PROTOCOLS)}"
            " or a SPDY/3.1 upgrade",
        )
    ports: list[int] = []
    if SPDY_PROTOCOL not in offered:
        ports = parse_ports(request.query.getall("ports", []) + request.query.getall("port", []))
        if not ports:
            raise ApiError(400, "BadRequest", 'query parameter "port" is required')
    sandbox = running_sandbox(request, pod, pod.spec.containers[0].name if pod.spec.containers else "")
    await ws.prepare(request)
    try:
        if ws.ws_protocol == SPDY_PROTOCOL:
            carrier = WsCarrier(ws)
            session = spdy.Session(carrier, check_stream)
            reader = asyncio.create_task(carrier.run(session))
            try:
                await SpdyForward(session, sandbox).run()
            finally:
                await session.drain()
                session.close()
                reader.cancel()
                await carrier.closed()
        else:
            await channel_forward(ws, sandbox, ports)
    finally:
        await ws.close()
    return ws


# --- the channel protocol ---------------------------------------------------------------------


async def channel_forward(ws: web.WebSocketResponse, sandbox: Sandbox, ports: list[int]) -> None:
    send_lock = asyncio.Lock()

    async def send(data: bytes) -> None:
        async with send_lock:
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await ws.send_bytes(data)

    for i, port in enumerate(ports):
        await send(port_prefix(2 * i, port))
        await send(port_prefix(2 * i + 1, port))
    writers: dict[int, asyncio.StreamWriter] = {}
    pumps = []

    async def pump(i: int, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(READ_CHUNK):
            await send(bytes([2 * i]) + data)

    for i, port in enumerate(ports):
        try:
            reader, writer = await dial(sandbox, port)
        except (OSError, TimeoutError) as e:
            await send(bytes([2 * i + 1]) + dial_error(sandbox, port, e).encode())
            continue
        writers[i] = writer
        pumps.append(asyncio.create_task(pump(i, reader)))

    async def from_client() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    return
                continue
            channel, payload = msg.data[0], msg.data[1:]
            writer = writers.get(channel // 2) if channel % 2 == 0 else None
            if writer is not None and payload and not writer.is_closing():
                writer.write(payload)
                with contextlib.suppress(ConnectionResetError):
                    await writer.drain()

    client = asyncio.create_task(from_client())
    try:
        # Over when the client leaves or every pod connection has ended.
        waiting = {client, *pumps} if pumps else {client}
        while waiting:
            done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if client in done or not any(t in waiting for t in pumps):
                break
    finally:
        client.cancel()
        for t in pumps:
            t.cancel()
        for w in writers.values():
            w.close()


# --- SPDY -------------------------------------------------------------------------------------


class WsCarrier:
    """A SPDY session inside a WebSocket: each binary message carries the next bytes."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self._out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._sent = asyncio.Event()
        self._sent.set()
        self._readable = asyncio.Event()
        self._readable.set()
        self._writer = asyncio.create_task(self._write_loop())

    async def _write_loop(self) -> None:
        while (data := await self._out.get()) is not None:
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await self.ws.send_bytes(data)
            if self._out.empty():
                self._sent.set()
        await self.ws.close()

    async def run(self, session: spdy.Session) -> None:
        """Feeds the session what the client sends, until it closes the WebSocket."""
        try:
            while True:
                await self._readable.wait()
                msg = await self.ws.receive()
                if msg.type == WSMsgType.BINARY:
                    session.feed(msg.data)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
        finally:
            session.lost()

    def write(self, data: bytes) -> None:
        self._sent.clear()
        self._out.put_nowait(data)

    async def drain(self) -> None:
        await self._sent.wait()

    def pause_reading(self) -> None:
        self._readable.clear()

    def resume_reading(self) -> None:
        self._readable.set()

    def close(self) -> None:
        self._out.put_nowait(None)

    async def closed(self) -> None:
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await self._writer


@dataclass
class Pair:
    """One forwarded connection: its data and error streams, paired by ``requestID``."""

    port: int
    data: spdy.Stream | None = None
    error: spdy.Stream | None = None
    task: asyncio.Task[None] | None = None


class SpdyForward:
    """Port forwarding over a SPDY session: for each local connection kubectl opens an error and
    a data stream with the same ``requestID``; once both are there the port is dialled."""

    def __init__(self, session: spdy.Session, sandbox: Sandbox) -> None:
        self.session = session
        self.sandbox = sandbox
        self.pairs: dict[str, Pair] = {}

    async def run(self) -> None:
        try:
            while (stream := await self.session.accept()) is not None:
                request_id = stream.headers.get("requestid", "")
                pair = self.pairs.setdefault(request_id, Pair(int(stream.headers["port"])))
                if stream.type == "data":
                    pair.data = stream
                else:
                    pair.error = stream
                if pair.data is not None and pair.error is not None and pair.task is None:
                    pair.task = asyncio.create_task(self._forward(request_id, pair))
        finally:
            for pair in self.pairs.values():
                if pair.task is not None:
                    pair.task.cancel()

    async def _forward(self, request_id: str, pair: Pair) -> None:
        assert pair.data is not None and pair.error is not None
        data, error = pair.data, pair.error
        writer: asyncio.StreamWriter | None = None
        try:
            try:
                reader, writer = await dial(self.sandbox, pair.port)
            except (OSError, TimeoutError) as e:
                await error.write(dial_error(self.sandbox, pair.port, e).encode())
                await error.close()
                await data.close()
                return
            up = asyncio.create_task(self._to_pod(data, writer))
            try:
                while chunk := await reader.read(READ_CHUNK):
                    await data.write(chunk)
                # The pod closed its side: so does the data stream, and the error stream ends empty.
                await data.close()
                await error.close()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(up), DIAL_TIMEOUT)
            finally:
                up.cancel()
        finally:
            if writer is not None:
                writer.close()
            self.pairs.pop(request_id, None)

    @staticmethod
    async def _to_pod(stream: spdy.Stream, writer: asyncio.StreamWriter) -> None:
        while data := await stream.read():
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof() and not stream.was_reset:
            writer.write_eof()  # the client is done sending: half-close, the reply may still come
