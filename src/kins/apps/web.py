"""A very small HTTP/1.1 server and client on asyncio streams, for the built-in images.

Hundreds of pods run these apps, each in its own forked process, so the code stays on the
standard library: a heavier framework would be copied into every pod's private memory as soon
as it touches its objects.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

MAX_HEAD = 64 * 1024


@dataclass
class Request:
    method: str
    target: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: bytes = b""
    client: tuple[str, int] = ("", 0)
    local: tuple[str, int] = ("", 0)

    def arg(self, name: str, default: str = "") -> str:
        return self.query.get(name, default)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode())

    @classmethod
    def json(cls, obj: object, status: int = 200) -> Response:
        return cls(status, json.dumps(obj, separators=(",", ":")).encode(), "application/json")


Handler = Callable[[Request], Awaitable[Response]]


def host_port(host: str, port: int) -> str:
    """``ip:port`` as Go's net.JoinHostPort writes it (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def log(message: str) -> None:
    """One log line in the style of Go's log package (agnhost's logs look the same)."""
    sys.stderr.write(time.strftime("%Y/%m/%d %H:%M:%S ") + message + "\n")


def parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """Request line and headers of an HTTP/1.x request; ValueError when malformed."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(f"unsupported version {version}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"bad header line {line!r}")
        headers[name.strip().lower()] = value.strip()
    return method, target, version, headers


def make_request(
    method: str, target: str, headers: dict[str, str], client: tuple[str, int], local: tuple[str, int]
) -> Request:
    parts = urlsplit(target)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return Request(method, target, parts.path or "/", query, headers, b"", client, local)


def _addr(info: object) -> tuple[str, int]:
    if isinstance(info, tuple) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return "", 0


def encode_response(resp: Response, *, keep_alive: bool, head_only: bool = False) -> bytes:
    try:
        reason = HTTPStatus(resp.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {resp.status} {reason}", f"Content-Type: {resp.content_type}"]
    lines.append(f"Content-Length: {len(resp.body)}")
    lines.extend(f"{k}: {v}" for k, v in resp.headers.items())
    if not keep_alive:
        lines.append("Connection: close")
    out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return out if head_only else out + resp.body


async def serve_http(handler: Handler, port: int, host: str | None = None) -> asyncio.Server:
    """Listen on ``host:port`` (all addresses when host is None) and answer with ``handler``."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _addr(writer.get_extra_info("peername"))
        local = _addr(writer.get_extra_info("sockname"))
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                try:
                    method, target, version, headers = parse_head(head[:-4])
                    length = int(headers.get("content-length", "0"))
                except ValueError:
                    writer.write(encode_response(Response.text("bad request", 400), keep_alive=False))
                    await writer.drain()
                    return
                req = make_request(method, target, headers, client, local)
                if length:
                    req.body = await reader.readexactly(length)
                try:
                    resp = await handler(req)
                except Exception as exc:  # a broken handler answers 500 and the server lives on
                    log(f"handler error: {exc!r}")
                    resp = Response.text(f"internal error: {exc}", 500)
                conn = headers.get("connection", "").lower()
                keep = conn != "close" if version == "HTTP/1.1" else conn == "keep-alive"
                keep = keep and resp.headers.get("Connection", "").lower() != "close"
                writer.write(encode_response(resp, keep_alive=keep, head_only=method == "HEAD"))
                await writer.drain()
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    return await asyncio.start_server(connection, host, port, limit=MAX_HEAD, reuse_address=True)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def text(self) -> str:
        return self.body.decode(errors="replace")


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)


async def http_get(host: str, port: int, path: str = "/", *, timeout: float = 5.0) -> Reply:
    """GET ``http://host:port/path``; raises OSError/TimeoutError/ValueError on failure.

    Names are resolved by the loop's getaddrinfo, i.e. through the pod's /etc/resolv.conf and
    /etc/hosts.
    """
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEAD)
        try:
            hdr_host = host_port(host, port) if port != 80 else host
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {hdr_host}\r\nUser-Agent: kins\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head[:-4].decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                body = await _read_chunked(reader)
            elif "content-length" in headers:
                body = await reader.readexactly(int(headers["content-length"]))
            else:
                body = await reader.read()
            return Reply(status, headers, body)
        finally:
            writer.close()


class _OneDatagram(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def udp_request(host: str, port: int, payload: bytes, *, timeout: float = 5.0) -> bytes:
    """Send one datagram and wait for the first answer."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_OneDatagram, remote_addr=(host, port))
    try:
        transport.sendto(payload)
        async with asyncio.timeout(timeout):
            return await proto.answer
    finally:
        transport.close()
