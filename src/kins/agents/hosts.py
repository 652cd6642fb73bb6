"""Services outside the cluster: small TCP servers on the underlay's outside hosts.

A host of the cluster file with ``serve: [3306]`` (the ``mysql`` host of the article's appendix
A) gets a server on each of those ports, listening in the host's network namespace and run by
the daemon on one event loop. On connect it greets with a line naming the host, like a database
announcing itself, then answers each line with the host's name; a client that speaks HTTP first
(``curl http://mysql:3306/``) gets the same facts as a JSON response, which makes "which replica
answered" easy to see from a pod. ``python -m kins.agents.hosts NETNS PORT NAME`` runs one on
its own (a read replica started by hand).

The sockets are created inside the namespace by a thread that entered it and are then served
by one event loop: a socket stays in the namespace it was created in. ``HostServices`` is the
outside hosts' agent: it makes each host's namespace (its eth0 on the underlay) and serves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from ..api.config import ClusterConfig
from ..kernel import netns as kns
from ..kernel.apply import apply_host, host_plan
from ..store.base import WatchEvent
from .loop import Reconciler

log = logging.getLogger("kins.hostsvc")

FIRST_BYTES_WAIT = 0.15  # seconds a client has to speak first (HTTP) before the greeting goes out


def listen_in(netns: str, port: int, host: str = "0.0.0.0") -> socket.socket:
    """A listening TCP socket bound inside ``netns`` (non-blocking, ready for asyncio)."""

    def make() -> socket.socket:
        s = socket.create_server((host, port), backlog=1024, reuse_port=False)
        s.setblocking(False)
        return s

    return kns.run_in(netns, make)


def greeting(name: str, ip: str, port: int) -> dict[str, object]:
    return {"server": "kins-db", "host": name, "ip": ip, "port": port}


async def serve_client(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str, ip: str, port: int
) -> None:
    peer = writer.get_extra_info("peername") or ("?", 0)
    facts = {**greeting(name, ip, port), "client": f"{peer[0]}:{peer[1]}"}
    try:
        try:
            first = await asyncio.wait_for(reader.readline(), FIRST_BYTES_WAIT)
        except TimeoutError:
            first = b""
        if first.split(b" ", 1)[0] in (b"GET", b"HEAD", b"POST"):
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            body = (json.dumps(facts) + "\n").encode()
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            writer.write(head + (b"" if first.startswith(b"HEAD") else body))
            await writer.drain()
            return
        writer.write(f"{name} ({ip}:{port}) ready\n".encode())
        line = first
        while True:
            if line:
                writer.write(f"{name}: {line.decode(errors='replace').strip()}\n".encode())
                await writer.drain()
            line = await reader.readline()
            if not line:
                break
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class LoopThread:
    """One asyncio loop in a daemon thread; servers are added from other threads."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def start_server(self, sock: socket.socket, handler: Handler) -> asyncio.Server:
        async def start() -> asyncio.Server:
            return await asyncio.start_server(handler, sock=sock)

        return asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def close_server(self, server: asyncio.Server) -> None:
        async def close() -> None:
            server.close()
            await server.wait_closed()

        with contextlib.suppress(Exception):  # a server that is already gone
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class HostServices(Reconciler):
    """The outside hosts of one cluster: their namespaces and their servers."""

    name = "hosts"
    resync = 60.0
    after = ("overlay", "kubelet")  # nothing in the cluster waits for them: nodes and pods first

    def __init__(self, cfg: ClusterConfig, state_dir: Path, kernel_lock: threading.Lock) -> None:
        self.cfg = cfg
        self.state_dir = state_dir
        self.lock = kernel_lock
        self.loop: LoopThread | None = None
        self.servers: list[asyncio.Server] = []

    def sync(self, changes: Sequence[WatchEvent] = ()) -> None:
        with self.lock:
            for h in self.cfg.hosts:
                apply_host(self.cfg.name, host_plan(self.cfg, h.name), self.state_dir)
        if self.loop is None:
            self.start()

    def start(self) -> None:
        wanted = [(h, p) for h in self.cfg.hosts for p in h.serve or []]
        if not wanted:
            return
        self.loop = LoopThread("kins-hostsvc")
        for h, port in wanted:
            netns = kns.host_ns(self.cfg.name, h.name)
            try:
                sock = listen_in(netns, port)
            except OSError as e:
                log.warning("host %s: cannot listen on %d: %s", h.name, port, e)
                continue

            async def handler(
                r: asyncio.StreamReader, w: asyncio.StreamWriter, n: str = h.name, ip: str = h.ip, p: int = port
            ) -> None:
                await serve_client(r, w, n, ip, p)

            self.servers.append(self.loop.start_server(sock, handler))
            log.info("host %s (%s) serves TCP %d", h.name, h.ip, port)

    def close(self) -> None:
        if self.loop is None:
            return
        for s in self.servers:
            self.loop.close_server(s)
        self.loop.stop()
        self.loop = None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kins-hostsvc", description="Run one outside TCP service in a namespace.")
    ap.add_argument("netns")
    ap.add_argument("port", type=int)
    ap.add_argument("name")
    ap.add_argument("--ip", default="")
    a = ap.parse_args(argv)
    sock = listen_in(a.netns, a.port)

    async def run() -> None:
        srv = await asyncio.start_server(lambda r, w: serve_client(r, w, a.name, a.ip, a.port), sock=sock)
        async with srv:
            await srv.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
