"""Root helpers: a scratch network namespace, threads that live in it (sockets a thread opens
belong to its namespace), echo backends and an HTTP(S) client running there."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import http.client
import json
import os
import secrets
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography import x509

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def _enter(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
    finally:
        os.close(fd)


@contextmanager
def scratch_netns() -> Iterator[str]:
    name = f"kins-t{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


class NsPool:
    """Worker threads inside a namespace."""

    def __init__(self, name: str, workers: int = 4) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(workers, initializer=_enter, initargs=(name,))

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        return self.pool.submit(fn, *args).result()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class Backends:
    """HTTP servers on (ip, port) pairs in the namespace; each answers JSON naming the endpoint
    that served it and what it saw (path, Host, headers), like the conformance echoserver."""

    def __init__(self, ns: str, endpoints: list[tuple[str, int]]) -> None:
        self.ns = ns
        self.endpoints = endpoints
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        _enter(self.ns)
        asyncio.set_event_loop(self.loop)
        try:
            for ip, port in self.endpoints:
                self.loop.run_until_complete(asyncio.start_server(self._handle(ip, port), ip, port, reuse_address=True))
        except BaseException as e:  # reported to the constructor
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    def _handle(self, ip: str, port: int) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    lines = head.decode("latin-1").split("\r\n")
                    method, path, _ = lines[0].split(" ", 2)
                    headers = {
                        k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
                    }
                    if int(headers.get("content-length", "0")):
                        await reader.readexactly(int(headers["content-length"]))
                    body = json.dumps(
                        {
                            "endpoint": f"{ip}:{port}",
                            "method": method,
                            "path": path,
                            "host": headers.get("host"),
                            "headers": headers,
                        }
                    ).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                    await writer.drain()
                    if headers.get("connection", "").lower() == "close":
                        break
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        return handle

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None
    location: str | None
    cert_names: list[str]


def request(host: str | None, path: str, *, https: bool = False, port: int | None = None, method: str = "GET") -> Reply:
    """One request to nginx at 127.0.0.1 with ``Host: host`` (and SNI = host for HTTPS); call it
    in a thread inside the namespace."""
    port = port or (443 if https else 80)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    names: list[str] = []
    if https:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname=host)
        der = sock.getpeercert(binary_form=True)
        assert der is not None
        cert = x509.load_der_x509_certificate(der)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = list(san.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            names = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.sock = sock
    headers = {"Connection": "close", "User-Agent": "kins-test"}
    if host is not None:
        headers["Host"] = host
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    body = None
    if resp.getheader("Content-Type") == "application/json":
        body = json.loads(raw)
    return Reply(resp.status, body, resp.getheader("Location"), names)
