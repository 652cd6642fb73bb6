"""The server's side of SPDY/3.1: the session's stream states (against an in-memory carrier), and
the HTTP upgrade over a real socket, the test playing kubectl's SPDY client frame by frame."""

from __future__ import annotations

import asyncio
import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from kins.api.config import default_cluster
from kins.api.core import Container, Pod, PodSpec, PodStatus
from kins.api.meta import ObjectMeta
from kins.apiserver import spdy
from kins.apiserver.keys import STATE_DIR_KEY
from kins.apiserver.server import make_app
from kins.runtime.linux import process_start_time
from kins.runtime.types import Sandbox
from kins.store.memory import MemoryStore

TOKEN = "t0k"


class MemoryCarrier:
    """A carrier that keeps what the session writes (the client's side decodes it)."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.paused = False
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.out += data

    async def drain(self) -> None:
        return None

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def close(self) -> None:
        self.closed = True

    def take(self, codec: spdy.Codec) -> list[spdy.Frame]:
        frames = codec.feed(bytes(self.out))
        self.out.clear()
        return frames


def test_streams_replies_data_fin_and_close() -> None:
    async def main() -> None:
        carrier = MemoryCarrier()
        session = spdy.Session(carrier)
        client = spdy.Codec()  # the client's codec: compresses what it sends, inflates replies
        session.feed(client.syn_stream(1, {"streamtype": "error"}) + client.syn_stream(3, {"streamtype": "stdin"}))
        replies = carrier.take(client)
        assert [(f.kind, f.stream_id) for f in replies] == [(spdy.SYN_REPLY, 1), (spdy.SYN_REPLY, 3)]
        error, stdin = await session.accept(), await session.accept()
        assert error is not None and stdin is not None and (error.type, stdin.type) == ("error", "stdin")
        # Data split across feeds arrives whole; FIN ends the client's side.
        raw = client.data(3, b"hello ") + client.data(3, b"world", fin=True)
        session.feed(raw[:5])
        session.feed(raw[5:])
        assert await stdin.read() == b"hello "
        assert await stdin.read() == b"world"
        assert await stdin.read() == b"" and await stdin.read() == b""
        assert stdin.remote_closed and 3 in session.streams
        await stdin.close()  # both sides ended: the stream is gone
        assert 3 not in session.streams
        await error.write(b"oops")
        await error.close()
        await error.close()  # once only
        frames = carrier.take(client)
        assert [(f.kind, f.stream_id, f.data, f.fin) for f in frames] == [
            (0, 3, b"", True),
            (0, 1, b"oops", False),
            (0, 1, b"", True),
        ]
        # Pings from the client (odd ids) are echoed; even ids would be replies to ours.
        session.feed(client.ping(7) + client.ping(8))
        assert [(f.kind, f.ping_id) for f in carrier.take(client)] == [(spdy.PING, 7)]
        session.close()
        assert [(f.kind, f.stream_id, f.status) for f in carrier.take(client)] == [(spdy.GOAWAY, 3, 0)]
        assert carrier.closed
        await error.write(b"late")  # nothing goes out after GOAWAY
        assert carrier.out == b""

    asyncio.run(main())


def test_protocol_errors_resets_and_refusals() -> None:
    async def main() -> None:
        carrier = MemoryCarrier()
        session = spdy.Session(carrier, check=lambda h: None if h.get("port") else "no port")
        client = spdy.Codec()
        session.feed(client.syn_stream(2, {"port": "1"}))  # even: a server's id
        session.feed(client.syn_stream(5, {"streamtype": "data"}))  # refused by the check
        session.feed(client.data(9, b"x"))  # a stream never opened
        got = carrier.take(client)
        assert [(f.kind, f.stream_id, f.status) for f in got] == [
            (spdy.RST_STREAM, 2, spdy.RST_PROTOCOL_ERROR),
            (spdy.RST_STREAM, 5, spdy.RST_REFUSED_STREAM),
            (spdy.RST_STREAM, 9, spdy.RST_INVALID_STREAM),
        ]
        assert session.refused == [(5, "no port")]
        session.feed(client.syn_stream(3, {"port": "1"}))  # lower than 5: ids only grow
        assert [(f.kind, f.stream_id) for f in carrier.take(client)] == [(spdy.RST_STREAM, 3)]
        session.feed(client.syn_stream(7, {"port": "1"}, fin=True) + client.syn_stream(11, {"port": "2"}))
        half, open_ = await session.accept(), await session.accept()
        assert half is not None and open_ is not None
        assert await half.read() == b""  # opened with FIN: nothing will come
        # The client resets a stream: its reads end.
        session.feed(client.rst_stream(11))
        assert await open_.read() == b"" and open_.was_reset and 11 not in session.streams
        carrier.take(client)
        # A frame of an unknown SPDY version: GOAWAY with PROTOCOL_ERROR, the session ends.
        session.feed(struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\0\0\0\1")
        assert [(f.kind, f.status) for f in carrier.take(client)] == [(spdy.GOAWAY, spdy.GOAWAY_PROTOCOL_ERROR)]
        assert session.ended.is_set() and carrier.closed and await session.accept() is None

    asyncio.run(main())


def test_backpressure_and_goaway_from_the_client() -> None:
    async def main() -> None:
        carrier = MemoryCarrier()
        session = spdy.Session(carrier)
        client = spdy.Codec()
        session.feed(client.syn_stream(1, {"streamtype": "stdin"}))
        s = await session.accept()
        assert s is not None
        chunk = b"z" * (1 << 20)
        for _ in range(5):
            session.feed(client.data(1, chunk))
        assert carrier.paused  # more than the high-water mark waits unread
        for _ in range(4):
            assert await s.read() == chunk
        assert not carrier.paused
        session.feed(client.goaway(0))
        assert session.ended.is_set()
        assert await s.read() == chunk and await s.read() == b""
        assert await session.accept() is None

    asyncio.run(main())


# --- the upgrade, over a socket ----------------------------------------------------------------


def self_sandbox(root: Path, name: str) -> None:
    pid = os.getpid()
    start = process_start_time(pid)
    assert start is not None
    d = root / "pods" / f"default_{name}"
    d.mkdir(parents=True, exist_ok=True)
    sb = Sandbox(f"default_{name}", f"default/{name}", name, f"/proc/{pid}/ns/net", pid, start, str(d))
    sb.record_path.write_text(sb.to_json())


async def upgrade(port: int, path: str, protocols: list[str]) -> tuple[int, dict[str, str], Any, Any]:
    """Sends a SPDY upgrade request; the status, headers, and the connection's two ends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Authorization: Bearer {TOKEN}",
        "Content-Length: 0",
        "Connection: Upgrade",
        "Upgrade: SPDY/3.1",
        *[f"X-Stream-Protocol-Version: {p}" for p in protocols],
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
    status = int(head.split()[1])
    headers = {}
    for line in head.split("\r\n")[1:]:
        if ":" in line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    return status, headers, reader, writer


async def frames_until(reader: Any, codec: spdy.Codec, done: Any) -> list[spdy.Frame]:
    got: list[spdy.Frame] = []
    while not done(got):
        data = await asyncio.wait_for(reader.read(65536), 10)
        if not data:
            break
        got += codec.feed(data)
    return got


@pytest.mark.root
def test_exec_over_an_upgraded_connection(tmp_path: Path) -> None:
    async def main() -> None:
        store = MemoryStore(history=100)
        store.create(
            Pod(
                metadata=ObjectMeta(name="one", namespace="default"),
                spec=PodSpec(containers=[Container(name="c", image="busybox")]),
                status=PodStatus(phase="Running"),
            )
        )
        app = make_app(store, default_cluster(), token=TOKEN)
        app[STATE_DIR_KEY] = tmp_path
        self_sandbox(tmp_path, "one")
        async with TestServer(app) as server:
            assert server.port is not None
            base = "/api/v1/namespaces/default/pods/one/exec?command=sh&command=-c"
            # No protocol both speak: 403 before anything runs.
            status, _, _, w = await upgrade(server.port, base + "&command=true&stdout=1", ["v9.example"])
            assert status == 403
            w.close()
            q = "&command=cat%3B%20echo%20err%20%3E%262%3B%20exit%205&stdin=1&stdout=1&stderr=1"
            status, headers, reader, writer = await upgrade(
                server.port, base + q, ["v4.channel.k8s.io", "v3.channel.k8s.io", "channel.k8s.io"]
            )
            assert status == 101 and headers["upgrade"] == "SPDY/3.1"
            assert headers["x-stream-protocol-version"] == "v4.channel.k8s.io"
            c = spdy.Codec()
            for sid, kind in ((1, "error"), (3, "stdin"), (5, "stdout"), (7, "stderr")):
                writer.write(c.syn_stream(sid, {"streamtype": kind}))
            writer.write(c.ping(1))
            replies = await frames_until(reader, c, lambda g: len(g) >= 5)
            assert sorted((f.kind, f.stream_id) for f in replies if f.kind == spdy.SYN_REPLY) == [
                (spdy.SYN_REPLY, 1),
                (spdy.SYN_REPLY, 3),
                (spdy.SYN_REPLY, 5),
                (spdy.SYN_REPLY, 7),
            ]
            assert any(f.kind == spdy.PING and f.ping_id == 1 for f in replies)
            writer.write(c.data(3, b"to cat\n") + c.data(3, b"", fin=True))
            got = await frames_until(reader, c, lambda g: any(f.kind == spdy.GOAWAY for f in g))

            def on(sid: int) -> bytes:
                return b"".join(f.data for f in got if f.kind == 0 and f.stream_id == sid)

            assert on(5) == b"to cat\n" and on(7) == b"err\n"
            status_obj = json.loads(on(1))
            assert status_obj["reason"] == "NonZeroExitCode"
            assert status_obj["details"]["causes"] == [{"reason": "ExitCode", "message": "5"}]
            assert {f.stream_id for f in got if f.kind == 0 and f.fin} == {1, 5, 7}
            assert await asyncio.wait_for(reader.read(), 10) == b""  # and the connection closes
            writer.close()
            # aiohttp let go of the connection it handed over (no handler left behind per session).
            assert server.runner is not None and server.runner.server is not None
            for _ in range(100):
                if not server.runner.server.connections:
                    break
                await asyncio.sleep(0.02)
            assert server.runner.server.connections == []

    asyncio.run(main())
