"""``pods/NAME/portforward``: connections to a pod's ports, from inside its network namespace.

Two WebSocket protocols are served:

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
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from ..runtime.linux import socket_in_netns
from ..runtime.types import Sandbox
from . import spdy
from .errors import ApiError
from .exec import offered_protocols
from .pods import get_pod, running_sandbox

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


async def handle(request: web.Request) -> web.StreamResponse:
    pod = get_pod(request)
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0)
    offered = set(offered_protocols(request))
    if not ws.can_prepare(request).ok or not offered & set(PROTOCOLS):
        raise ApiError(
            400,
            "BadRequest",
            f"port forwarding needs a WebSocket upgrade with one of the subprotocols {', '.join(PROTOCOLS)}",
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
            await SpdyForward(ws, sandbox).run()
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


@dataclass
class Pair:
    """One forwarded connection: its two streams, and what the client sent before it was dialled."""

    port: int
    data_id: int = 0
    error_id: int = 0
    inbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class SpdyForward:
    def __init__(self, ws: web.WebSocketResponse, sandbox: Sandbox) -> None:
        self.ws = ws
        self.sandbox = sandbox
        self.codec = spdy.Codec()
        self.pairs: dict[str, Pair] = {}
        self.by_stream: dict[int, Pair] = {}
        self.lock = asyncio.Lock()

    async def _send(self, make: Callable[[], bytes]) -> None:
        """Sends what ``make()`` encodes, in order: header compression is stateful."""
        async with self.lock:
            data = make()
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await self.ws.send_bytes(data)

    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                        break
                    continue
                for frame in self.codec.feed(msg.data):
                    if not await self._on_frame(frame):
                        return
        except spdy.SpdyError:
            await self._send(lambda: self.codec.goaway(0, 1))
        finally:
            for pair in self.pairs.values():
                if pair.task is not None:
                    pair.task.cancel()

    async def _on_frame(self, f: spdy.Frame) -> bool:
        if f.kind == spdy.SYN_STREAM:
            await self._open(f)
        elif f.kind == 0:
            pair = self.by_stream.get(f.stream_id)
            if pair is not None and f.stream_id == pair.data_id:
                if f.data:
                    pair.inbox.put_nowait(f.data)
                if f.fin:
                    pair.inbox.put_nowait(None)
        elif f.kind == spdy.RST_STREAM:
            pair = self.by_stream.get(f.stream_id)
            if pair is not None and pair.task is not None:
                pair.task.cancel()
        elif f.kind == spdy.PING:
            await self._send(lambda: self.codec.ping(f.ping_id))
        elif f.kind == spdy.GOAWAY:
            return False
        return True

    async def _open(self, f: spdy.Frame) -> None:
        kind, request_id = f.headers.get("streamtype", ""), f.headers.get("requestid", "")
        try:
            port = int(f.headers.get("port", ""))
        except ValueError:
            port = 0
        if kind not in ("data", "error") or not 0 < port < 65536:
            await self._send(lambda: self.codec.rst_stream(f.stream_id, spdy.RST_PROTOCOL_ERROR))
            return
        await self._send(lambda: self.codec.syn_reply(f.stream_id))
        pair = self.pairs.setdefault(request_id, Pair(port))
        if kind == "data":
            pair.data_id = f.stream_id
            if f.fin:
                pair.inbox.put_nowait(None)
        else:
            pair.error_id = f.stream_id
        self.by_stream[f.stream_id] = pair
        if pair.data_id and pair.error_id and pair.task is None:
            pair.task = asyncio.create_task(self._forward(request_id, pair))

    async def _forward(self, request_id: str, pair: Pair) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            try:
                reader, writer = await dial(self.sandbox, pair.port)
            except (OSError, TimeoutError) as e:
                message = dial_error(self.sandbox, pair.port, e).encode()
                await self._send(lambda: self.codec.data(pair.error_id, message, fin=True))
                await self._send(lambda: self.codec.data(pair.data_id, b"", fin=True))
                return
            up = asyncio.create_task(self._to_pod(pair, writer))
            try:
                while data := await reader.read(READ_CHUNK):
                    await self._send(lambda d=data: self.codec.data(pair.data_id, d))  # type: ignore[misc]
                # The pod closed its side: so does the data stream, and the error stream ends empty.
                await self._send(lambda: self.codec.data(pair.data_id, b"", fin=True))
                await self._send(lambda: self.codec.data(pair.error_id, b"", fin=True))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(up), DIAL_TIMEOUT)
            finally:
                up.cancel()
        finally:
            if writer is not None:
                writer.close()
            self.pairs.pop(request_id, None)
            self.by_stream.pop(pair.data_id, None)
            self.by_stream.pop(pair.error_id, None)

    @staticmethod
    async def _to_pod(pair: Pair, writer: asyncio.StreamWriter) -> None:
        while (data := await pair.inbox.get()) is not None:
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # the client is done sending: half-close, the reply may still come
