"""Pod subresources served in-process: log (options, errors, follow), exec's and port
forwarding's framing, SPDY. The exec and port-forward sessions run against the test's own
process as the "pod" (its namespaces are the host's), which needs root for nsenter/setns."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from kins.api.config import default_cluster
from kins.api.core import (
    Container,
    ContainerState,
    ContainerStateTerminated,
    ContainerStatus,
    Pod,
    PodSpec,
    PodStatus,
)
from kins.api.meta import ObjectMeta
from kins.apiserver import spdy as api_spdy
from kins.apiserver.exec import error_status, exit_status, frame, window_size
from kins.apiserver.keys import STATE_DIR_KEY
from kins.apiserver.logs import LogClock, LogOptions, format_time, render, split_lines
from kins.apiserver.portforward import parse_ports, port_prefix
from kins.apiserver.server import ApiError, make_app
from kins.runtime.linux import process_start_time
from kins.runtime.types import Sandbox
from kins.store.memory import MemoryStore

TOKEN = "t0k"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOG = "/api/v1/namespaces/default/pods/{}/log"


def pod(name: str, *containers: str, state: str = "running", uid: str = "") -> Pod:
    return Pod(
        metadata=ObjectMeta(name=name, namespace="default", uid=uid or None),
        spec=PodSpec(containers=[Container(name=c, image="busybox") for c in containers]),
        status=PodStatus(
            phase="Running",
            containerStatuses=[
                ContainerStatus(name=c, state=msgspec.convert({state: {}}, ContainerState)) for c in containers
            ],
        ),
    )


def write_log(root: Path, pod_name: str, container: str, run: int, text: str) -> Path:
    path = root / "pods" / f"default_{pod_name}" / container / f"{run}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


Body = Callable[[TestClient[Any, Any], MemoryStore, Path], Awaitable[None]]


def serve(tmp_path: Path, body: Body, *pods: Pod) -> None:
    async def main() -> None:
        store = MemoryStore(history=100)
        for p in pods:
            store.create(p)
        app = make_app(store, default_cluster(), token=TOKEN)
        app[STATE_DIR_KEY] = tmp_path
        async with TestClient(TestServer(app)) as client:
            await body(client, store, tmp_path)

    asyncio.run(main())


# --- log options, pure ------------------------------------------------------------------------


def test_render_since_tail_timestamps_limit() -> None:
    data = b"a\nbb\nccc\npartial"
    lines = split_lines(data)
    assert lines == [(0, b"a\n"), (2, b"bb\n"), (5, b"ccc\n"), (9, b"partial")]
    # Line i was written at second 100 + i.
    times = {0: 100, 2: 101, 5: 102, 9: 103}

    def written(off: int) -> int:
        return times[off] * 1_000_000_000

    now = 104.0
    assert render(lines, LogOptions(), written, now) == data
    assert render(lines, LogOptions(tail_lines=2), written, now) == b"ccc\npartial"
    assert render(lines, LogOptions(tail_lines=0), written, now) == b""
    assert render(lines, LogOptions(since_seconds=3), written, now) == b"bb\nccc\npartial"
    assert render(lines, LogOptions(since_seconds=3, tail_lines=1), written, now) == b"partial"
    assert render(lines, LogOptions(limit_bytes=4), written, now) == b"a\nbb"
    stamped = render(lines, LogOptions(timestamps=True, tail_lines=1), written, now)
    assert stamped == b"1970-01-01T00:01:43.000000000Z partial"
    assert format_time(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"


def test_log_clock_dates_lines_by_the_note_that_first_covered_them(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(b"one\n")
    os.utime(path, ns=(0, 5_000_000_000))
    clock = LogClock()
    clock.observe(str(path))
    with path.open("ab") as f:
        f.write(b"two\n")
    os.utime(path, ns=(0, 9_000_000_000))
    clock.observe(str(path))
    assert clock.written(str(path), 0) == 5_000_000_000
    assert clock.written(str(path), 3) == 5_000_000_000
    assert clock.written(str(path), 4) == 9_000_000_000
    # Beyond the last note: written just now.
    assert abs(clock.written(str(path), 8) - time.time_ns()) < 5_000_000_000
    path.write_bytes(b"")  # truncated: the notes start over
    clock.observe(str(path))
    assert clock.written(str(path), 0) > 9_000_000_000


# --- log over HTTP ----------------------------------------------------------------------------


def test_log_options_and_errors_as_the_api_server_words_them(tmp_path: Path) -> None:
    async def body(client: TestClient[Any, Any], store: MemoryStore, root: Path) -> None:
        write_log(root, "two", "a", 0, "first run\n")
        write_log(root, "two", "a", 1, "x1\nx2\nx3\n")
        write_log(root, "one", "c", 0, "only\n")

        async def get(name: str, **q: str) -> tuple[int, str]:
            resp = await client.get(LOG.format(name), params=q, headers=AUTH)
            return resp.status, await resp.text()

        assert await get("one") == (200, "only\n")
        status, text = await get("two")
        assert status == 400
        assert json.loads(text)["message"] == "a container name must be specified for pod two, choose one of: [a b]"
        assert json.loads(text)["reason"] == "BadRequest"
        assert await get("two", container="a") == (200, "x1\nx2\nx3\n")
        assert await get("two", container="a", previous="true") == (200, "first run\n")
        assert await get("two", container="a", tailLines="2") == (200, "x2\nx3\n")
        assert await get("two", container="a", limitBytes="4") == (200, "x1\nx")
        status, text = await get("two", container="a", timestamps="true", tailLines="1")
        stamp, _, line = text.partition(" ")
        assert status == 200 and line == "x3\n" and stamp.endswith("Z") and len(stamp) == 30
        status, text = await get("two", container="zz")
        assert (status, json.loads(text)["message"]) == (400, "container zz is not valid for pod two")
        status, text = await get("two", container="b")
        assert status == 400
        assert json.loads(text)["message"] == 'container "b" in pod "two" is waiting to start: ContainerCreating'
        status, text = await get("one", previous="true")
        assert (status, json.loads(text)["message"]) == (
            400,
            'previous terminated container "c" in pod "one" not found',
        )
        status, text = await get("one", tailLines="-1")
        assert status == 422
        assert json.loads(text)["message"] == (
            'PodLogOptions "one" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0'
        )
        status, text = await get("one", sinceSeconds="5", sinceTime="2024-01-01T00:00:00Z")
        assert status == 422 and "at most one of `sinceTime` or `sinceSeconds`" in json.loads(text)["message"]
        status, text = await get("gone")
        assert (status, json.loads(text)["message"]) == (404, 'pods "gone" not found')
        # sinceSeconds keeps only what was written since: an old file has nothing that recent.
        old = write_log(root, "one", "c", 0, "old\n")
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        assert await get("one", sinceSeconds="60") == (200, "")
        assert (await get("one", sinceSeconds="7200"))[1] == "old\n"

    serve(tmp_path, body, pod("one", "c"), pod("two", "a", "b"))


def test_log_follow_streams_until_the_container_stops(tmp_path: Path) -> None:
    async def body(client: TestClient[Any, Any], store: MemoryStore, root: Path) -> None:
        path = write_log(root, "one", "c", 0, "l1\n")
        resp = await client.get(LOG.format("one"), params={"follow": "true"}, headers=AUTH)
        assert resp.status == 200
        assert await resp.content.readline() == b"l1\n"
        with path.open("a") as f:
            f.write("l2\n")
        assert await asyncio.wait_for(resp.content.readline(), 5) == b"l2\n"
        # The container ends: the stream ends too, after what it wrote last.
        with path.open("a") as f:
            f.write("last\n")
        cur = store.get("Pod", "default", "one")
        assert isinstance(cur, Pod) and cur.status is not None
        cur.status.containerStatuses = [
            ContainerStatus(name="c", state=ContainerState(terminated=ContainerStateTerminated(exitCode=0)))
        ]
        store.update(cur)
        started = time.monotonic()
        rest = await asyncio.wait_for(resp.content.read(), 10)
        assert rest == b"last\n" and time.monotonic() - started < 5

    serve(tmp_path, body, pod("one", "c"))


# --- framing, pure ----------------------------------------------------------------------------


def test_exec_status_and_frames() -> None:
    assert frame(2, b"x") == b"\x02x"
    assert exit_status(["sh", "-c", "exit 3"], 0) == {"metadata": {}, "status": "Success"}
    failed = exit_status(["sh", "-c", "exit 3"], 3)
    assert failed["reason"] == "NonZeroExitCode"
    assert failed["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert failed["message"].endswith("error executing command [sh -c exit 3], exit code 3")
    assert error_status("boom")["status"] == "Failure"
    assert window_size(b'{"Width":120,"Height":40}') == (40, 120)
    assert window_size(b"nonsense") is None


def test_portforward_ports_and_prefix() -> None:
    assert parse_ports(["8080,9090", "53"]) == [8080, 9090, 53]
    assert port_prefix(3, 8080) == bytes([3]) + struct.pack("<H", 8080) == b"\x03\x90\x1f"
    with pytest.raises(ApiError, match="unable to parse"):
        parse_ports(["http"])
    with pytest.raises(ApiError, match="must be > 0 and < 65536"):
        parse_ports(["70000"])


def test_spdy_codec_round_trip() -> None:
    assert len(api_spdy.DICTIONARY) == 1423  # the SPDY/3 specification's dictionary
    client, server = api_spdy.Codec(), api_spdy.Codec()
    wire = client.syn_stream(1, {"streamType": "error", "port": "8080", "requestID": "0"})
    wire += client.syn_stream(3, {"streamType": "data", "port": "8080", "requestID": "0"})
    wire += client.data(3, b"hello", fin=True) + client.ping(7)
    # Fed in two halves that split a frame: the first part waits for the rest.
    first = server.feed(wire[:13])
    frames = first + server.feed(wire[13:])
    assert [f.kind for f in frames] == [api_spdy.SYN_STREAM, api_spdy.SYN_STREAM, 0, api_spdy.PING]
    assert frames[0].headers == {"streamtype": "error", "port": "8080", "requestid": "0"}
    assert frames[1].stream_id == 3 and frames[1].headers["streamtype"] == "data"
    assert frames[2].data == b"hello" and frames[2].fin and frames[3].ping_id == 7
    back = client.feed(server.syn_reply(1) + server.syn_reply(3) + server.rst_stream(5) + server.goaway(3))
    assert [(f.kind, f.stream_id) for f in back] == [
        (api_spdy.SYN_REPLY, 1),
        (api_spdy.SYN_REPLY, 3),
        (api_spdy.RST_STREAM, 5),
        (api_spdy.GOAWAY, 3),
    ]
    assert back[0].headers == {} and back[2].status == api_spdy.RST_CANCEL
    with pytest.raises(api_spdy.SpdyError):
        api_spdy.Codec().feed(struct.pack(">HHI", 0x8002, api_spdy.PING, 4) + b"\0\0\0\1")


# --- exec and port forwarding against this process (root) -------------------------------------


def self_sandbox(root: Path, name: str) -> None:
    """A sandbox record whose "pod" is this test process (its namespaces are the host's)."""
    pid = os.getpid()
    start = process_start_time(pid)
    assert start is not None
    d = root / "pods" / f"default_{name}"
    d.mkdir(parents=True, exist_ok=True)
    sb = Sandbox(f"default_{name}", f"default/{name}", name, f"/proc/{pid}/ns/net", pid, start, str(d))
    sb.record_path.write_text(sb.to_json())


async def exec_frames(client: TestClient[Any, Any], query: list[tuple[str, str]], send: list[bytes]) -> list[bytes]:
    url = "/api/v1/namespaces/default/pods/one/exec"
    async with client.ws_connect(url, params=query, headers=AUTH, protocols=("v5.channel.k8s.io",)) as ws:
        assert ws.protocol == "v5.channel.k8s.io"
        for m in send:
            await ws.send_bytes(m)
        out = []
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                break
            out.append(msg.data)
        return out


def joined(frames: list[bytes], channel: int) -> bytes:
    return b"".join(f[1:] for f in frames if f[0] == channel)


@pytest.mark.root
def test_exec_channels_exit_code_stdin_and_tty(tmp_path: Path) -> None:
    async def body(client: TestClient[Any, Any], store: MemoryStore, root: Path) -> None:
        self_sandbox(root, "one")
        cmd = [("command", "sh"), ("command", "-c"), ("command", "echo out; echo err >&2; exit 3")]
        got = await exec_frames(client, [*cmd, ("stdout", "true"), ("stderr", "true")], [])
        assert joined(got, 1) == b"out\n" and joined(got, 2) == b"err\n"
        status = json.loads(joined(got, 3))
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
        # stdin, ended by v5's close signal for channel 0.
        q = [("command", "cat"), ("stdin", "true"), ("stdout", "true")]
        got = await exec_frames(client, q, [b"\x00hello ", b"\x00world", bytes([255, 0])])
        assert joined(got, 1) == b"hello world"
        assert json.loads(joined(got, 3)) == {"metadata": {}, "status": "Success"}
        # A terminal, sized by the client.
        q = [("command", "sh"), ("command", "-c"), ("command", "sleep 0.5; stty size; tty"), ("tty", "true")]
        q += [("stdout", "true"), ("stdin", "true")]
        got = await exec_frames(client, q, [b'\x04{"Width":91,"Height":27}'])
        lines = joined(got, 1).decode().split()
        assert lines[:2] == ["27", "91"] and lines[2].startswith("/dev/pts/")
        # No command, no stream: refused before the upgrade.
        resp = await client.get("/api/v1/namespaces/default/pods/one/exec", params={"stdout": "1"}, headers=AUTH)
        assert resp.status == 400 and (await resp.json())["message"] == "you must specify at least 1 command"

    serve(tmp_path, body, pod("one", "c"))


async def echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def frames_until(ws: Any, codec: api_spdy.Codec, done: Callable[[list[api_spdy.Frame]], bool]) -> list[Any]:
    got: list[api_spdy.Frame] = []
    while not done(got):
        msg = await asyncio.wait_for(ws.receive(), 10)
        assert msg.type == WSMsgType.BINARY, msg
        got += codec.feed(msg.data)
    return got


@pytest.mark.root
def test_portforward_spdy_over_websocket_as_kubectl_speaks_it(tmp_path: Path) -> None:
    async def body(client: TestClient[Any, Any], store: MemoryStore, root: Path) -> None:
        self_sandbox(root, "one")
        server, port = await echo_server()
        url = "/api/v1/namespaces/default/pods/one/portforward"
        codec = api_spdy.Codec()
        async with server, client.ws_connect(url, headers=AUTH, protocols=("SPDY/3.1+portforward.k8s.io",)) as ws:
            assert ws.protocol == "SPDY/3.1+portforward.k8s.io"
            await ws.send_bytes(codec.syn_stream(1, {"streamtype": "error", "port": str(port), "requestid": "0"}))
            await ws.send_bytes(codec.syn_stream(3, {"streamtype": "data", "port": str(port), "requestid": "0"}))
            replies = await frames_until(ws, codec, lambda g: len(g) >= 2)
            assert [(f.kind, f.stream_id) for f in replies] == [(api_spdy.SYN_REPLY, 1), (api_spdy.SYN_REPLY, 3)]
            await ws.send_bytes(codec.data(3, b"ping " * 20000) + codec.data(3, b"end", fin=True) + codec.ping(9))

            def finished(g: list[api_spdy.Frame]) -> bool:
                return sum(1 for f in g if f.kind == 0 and f.fin) == 2

            got = await frames_until(ws, codec, finished)
            assert b"".join(f.data for f in got if f.kind == 0 and f.stream_id == 3) == b"ping " * 20000 + b"end"
            assert b"".join(f.data for f in got if f.kind == 0 and f.stream_id == 1) == b""
            assert any(f.kind == api_spdy.PING and f.ping_id == 9 for f in got)
            # A port nothing listens on: the error stream says so.
            await ws.send_bytes(codec.syn_stream(5, {"streamtype": "error", "port": "1", "requestid": "1"}))
            await ws.send_bytes(codec.syn_stream(7, {"streamtype": "data", "port": "1", "requestid": "1"}))
            got = await frames_until(ws, codec, finished)
            error = b"".join(f.data for f in got if f.kind == 0 and f.stream_id == 5).decode()
            assert error.startswith("error forwarding port 1 to pod default_one") and "connection refused" in error

    serve(tmp_path, body, pod("one", "c"))


@pytest.mark.root
def test_portforward_channels_as_the_python_client_speaks_them(tmp_path: Path) -> None:
    async def body(client: TestClient[Any, Any], store: MemoryStore, root: Path) -> None:
        self_sandbox(root, "one")
        server, port = await echo_server()
        url = "/api/v1/namespaces/default/pods/one/portforward"
        protocols = ("v4.channel.k8s.io",)
        async with server, client.ws_connect(url, params={"ports": str(port)}, headers=AUTH, protocols=protocols) as ws:
            first = [(await ws.receive_bytes(timeout=5)) for _ in range(2)]
            assert first == [port_prefix(0, port), port_prefix(1, port)]
            await ws.send_bytes(b"\x00hello")
            assert await ws.receive_bytes(timeout=5) == b"\x00hello"
        resp = await client.get(url, headers={**AUTH, "Connection": "Upgrade", "Upgrade": "websocket"})
        assert resp.status == 400

    serve(tmp_path, body, pod("one", "c"))
