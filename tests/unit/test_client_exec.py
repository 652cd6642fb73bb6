"""The exec client (kins.clientexec) against the real API served over HTTPS in a thread: pod exec
(output channels, exit codes, stdin, refusals as the API words them), several at once, attached
to this process's fds, and the daemon's node exec endpoint in a real namespace. The "pod" is
this test process (its namespaces are the host's), which needs root for nsenter."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from test_api_pods import pod, self_sandbox

from kins._errors import ApiRequestError, NotFound
from kins.api.config import default_cluster
from kins.api.core import Node
from kins.api.meta import ObjectMeta
from kins.apiserver import auth
from kins.apiserver.keys import STATE_DIR_KEY
from kins.apiserver.server import make_app, start
from kins.client import Client
from kins.clientexec import (
    Command,
    ExecError,
    Result,
    attach,
    encode_frame,
    exit_code,
    host_path,
    node_path,
    pod_path,
    run,
    run_many,
)
from kins.daemon import netexec
from kins.kernel import netns
from kins.store.memory import MemoryStore

TOKEN = "t0k"
ONE = pod_path("default", "one")


def test_exit_codes_from_the_status() -> None:
    assert exit_code({"status": "Success"}) == 0
    causes = {"causes": [{"reason": "ExitCode", "message": "7"}]}
    assert exit_code({"status": "Failure", "reason": "NonZeroExitCode", "details": causes}) == 7
    killed = {"causes": [{"reason": "ExitCode", "message": "-9"}]}
    assert exit_code({"status": "Failure", "reason": "NonZeroExitCode", "details": killed}) == 137
    with pytest.raises(ExecError, match="failed to run"):
        exit_code({"status": "Failure", "message": "failed to run the command: boom"})


def test_frames_are_masked_with_their_length() -> None:
    key = b"\x01\x02\x03\x04"
    assert encode_frame(2, b"", key) == b"\x82\x80" + key
    short = encode_frame(2, b"\x00\x00\x00\x00\x00", key)
    assert short[:2] == b"\x82\x85" and short[6:] == b"\x01\x02\x03\x04\x01"
    assert encode_frame(2, b"x" * 300, key)[:4] == b"\x82\xfe\x01\x2c"
    assert encode_frame(2, b"x" * 70000, key)[:10] == b"\x82\xff" + (70000).to_bytes(8, "big")


class Served:
    """The API app on a loopback HTTPS port, its loop in a thread of its own."""

    def __init__(self, app: web.Application, state: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        cert, key = auth.ensure_tls(state)
        ctx = auth.server_ssl_context(cert, key)
        self.runner, port = asyncio.run_coroutine_threadsafe(start(app, ssl_context=ctx), self.loop).result(10)
        self.client = Client(f"https://127.0.0.1:{port}", TOKEN, ca_file=cert)

    def close(self) -> None:
        self.client.close()
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Served]:
    store = MemoryStore(history=100)
    store.create(pod("one", "c"))
    store.create(pod("two", "a", "b"))
    app = make_app(store, default_cluster(), token=TOKEN)
    app[STATE_DIR_KEY] = tmp_path
    served = Served(app, tmp_path)
    try:
        yield served
    finally:
        served.close()


@pytest.mark.root
def test_pod_exec_keeps_stdout_stderr_and_the_exit_code(api: Served, tmp_path: Path) -> None:
    self_sandbox(tmp_path, "one")
    r = run(api.client, Command(ONE, ["sh", "-c", "echo out; echo err >&2; printf tail; exit 3"]))
    assert (r.code, r.stdout, r.stderr) == (3, b"out\ntail", b"err\n")
    assert run(api.client, Command(ONE, ["true"])).code == 0
    # stdin, ended by v5's close of channel 0; large enough to take several frames.
    data = b"0123456789" * 20000
    r = run(api.client, Command(ONE, ["sh", "-c", "cat; echo done >&2"], input=data))
    assert (r.code, r.stdout, r.stderr) == (0, data, b"done\n")
    # A missing program: nsenter's own message and exit code, as a local run shows them.
    r = run(api.client, Command(ONE, ["no-such-program-here"]))
    assert r.code == 127 and b"no-such-program-here" in r.stderr


@pytest.mark.root
def test_refusals_come_back_as_the_api_words_them(api: Served, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match='pods "ghost" not found'):
        run(api.client, Command(pod_path("default", "ghost"), ["true"]))
    with pytest.raises(ApiRequestError, match="a container name must be specified for pod two"):
        run(api.client, Command(pod_path("default", "two"), ["true"]))
    with pytest.raises(ApiRequestError, match='container "c" in pod "one" is not running'):
        run(api.client, Command(ONE, ["true"]))  # no sandbox yet
    self_sandbox(tmp_path, "one")
    with pytest.raises(ApiRequestError, match="container nope is not valid"):
        run(api.client, Command(ONE, ["true"], container="nope"))
    bad = Client(api.client.base_url, "wrong", ca_file=api.client.ca_file)
    with pytest.raises(Exception, match="token was refused"):
        run(bad, Command(ONE, ["true"]))


@pytest.mark.root
def test_many_at_once_each_with_its_own_result(api: Served, tmp_path: Path) -> None:
    self_sandbox(tmp_path, "one")
    cmds = [Command(ONE, ["sh", "-c", f"sleep 0.2; echo {i}; exit {i % 3}"]) for i in range(12)]
    got = run_many(api.client, [*cmds, Command(pod_path("default", "ghost"), ["true"])])
    results = [r for r in got if isinstance(r, Result)]
    assert [(r.code, r.stdout) for r in results] == [(i % 3, f"{i}\n".encode()) for i in range(12)]
    assert isinstance(got[-1], NotFound)


@pytest.mark.root
def test_attach_writes_to_this_process_fds(api: Served, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    self_sandbox(tmp_path, "one")
    code = attach(api.client, Command(ONE, ["sh", "-c", "echo to-out; echo to-err >&2; exit 5"]))
    assert code == 5
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("to-out\n", "to-err\n")


@pytest.mark.root
def test_node_and_host_exec_run_in_their_namespace_with_its_sysfs(tmp_path: Path) -> None:
    cluster = f"t{secrets.token_hex(3)}"
    store = MemoryStore(history=100)
    store.create(Node(metadata=ObjectMeta(name="n1")))
    store.create(Node(metadata=ObjectMeta(name="n2")))
    app = make_app(store, default_cluster(), token=TOKEN)
    netexec.add_routes(app, cluster, default_cluster())
    ns = netns.node_ns(cluster, "n1")
    netns.create(ns)
    served = Served(app, tmp_path)
    try:
        r = run(served.client, Command(node_path("n1"), ["sh", "-c", "ls /sys/class/net; ip -o link | wc -l"]))
        assert (r.code, r.stdout.split()) == (0, [b"lo", b"1"])
        r = run(served.client, Command(node_path("n1"), ["no-such-program-here"]))
        assert r.code == 255 and r.stderr == b'exec of "no-such-program-here" failed: No such file or directory\n'
        with pytest.raises(NotFound, match='nodes "n9" not found'):
            run(served.client, Command(node_path("n9"), ["true"]))
        with pytest.raises(ApiRequestError, match="node n2 has no network namespace"):
            run(served.client, Command(node_path("n2"), ["true"]))
        # Outside hosts: those of the cluster file.
        with pytest.raises(ApiRequestError, match="host client has no network namespace"):
            run(served.client, Command(host_path("client"), ["true"]))
        with pytest.raises(NotFound, match='hosts "nowhere" not found'):
            run(served.client, Command(host_path("nowhere"), ["true"]))
    finally:
        served.close()
        netns.remove(ns)
