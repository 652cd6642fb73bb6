"""The policy log: agents' batches posted to the real API, read back and followed through
kins.client, and printed by ``kins policy log``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from api_helpers import api_server
from typer.testing import CliRunner

from kins._errors import ApiRequestError, Unauthorized
from kins.apiserver.auth import write_token
from kins.apiserver.policylog import PolicyLog, PolicyLogRecord
from kins.cli import app
from kins.client import Client
from kins.daemon.state import DaemonInfo
from kins.store.memory import MemoryStore


def record(src_ns: str | None, dst_ns: str | None, *, port: int | None = 80, proto: str = "TCP") -> dict[str, Any]:
    source: dict[str, Any] = {"ip": "10.244.1.5"}
    if src_ns:
        source |= {"namespace": src_ns, "pod": "b"}
    dest: dict[str, Any] = {"ip": "10.244.2.7"}
    if dst_ns:
        dest |= {"namespace": dst_ns, "pod": "a"}
    if port is not None:
        dest["port"] = port
    return {
        "time": "2024-05-01T10:41:07.123456Z",
        "source": source,
        "destination": dest,
        "protocol": proto,
        "direction": "ingress",
        "policies": [f"{dst_ns}/deny-ingress", f"{dst_ns}/allow-from-y"] if dst_ns else [],
    }


@pytest.fixture
def served() -> Iterator[Client]:
    with api_server(MemoryStore()) as (url, token), Client(url, token, timeout=10) as c:
        yield c


def test_post_then_list_since_and_namespace(served: Client) -> None:
    assert served.policy_log() == ([], 0)
    assert served.post_policy_log("node1", [record("x", "x"), record("y", "z"), record(None, None, port=None)]) == 3
    assert served.post_policy_log("node2", [{**record("y", "x"), "node": "other"}]) == 4
    items, last = served.policy_log()
    assert last == 4
    assert [(i["seq"], i["node"]) for i in items] == [(1, "node1"), (2, "node1"), (3, "node1"), (4, "other")]
    assert items[0] == {"seq": 1, "node": "node1", **record("x", "x")}
    assert "port" not in items[2]["destination"] and "pod" not in items[2]["source"]
    # Either end's namespace counts.
    assert [i["seq"] for i in served.policy_log("x")[0]] == [1, 4]
    assert [i["seq"] for i in served.policy_log("z")[0]] == [2]
    assert [i["seq"] for i in served.policy_log("y", since=2)[0]] == [4]
    assert served.policy_log(since=4) == ([], 4)
    assert served.policy_log("nowhere") == ([], 4)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"protocol": "GRE"}, "protocol"),
        ({"direction": "sideways"}, "direction"),
        ({"time": "yesterday"}, "records[1].time"),
        ({"source": {"ip": "10.244.1"}}, "records[1].source.ip"),
        ({"destination": {"ip": "10.0.0.1", "port": 70000}}, "records[1].destination.port"),
        ({"policies": "x/a"}, "policies"),
    ],
)
def test_invalid_records_are_refused_whole(served: Client, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiRequestError, match=message.replace("[", r"\[")) as e:
        served.post_policy_log("node1", [record("x", "x"), {**record("x", "x"), **change}])
    assert e.value.code == 400
    assert served.policy_log() == ([], 0)


def test_batch_shape_and_auth(served: Client) -> None:
    with pytest.raises(ApiRequestError, match="node is required"):
        served.post_policy_log("", [record("x", "x")])
    with pytest.raises(ApiRequestError) as e:
        served.raw_post("/kins/v1/policylog", {"records": []})
    assert e.value.code == 400
    with Client(served.base_url, "wrong", timeout=10) as intruder:
        with pytest.raises(Unauthorized):
            intruder.post_policy_log("node1", [record("x", "x")])
        with pytest.raises(Unauthorized):
            intruder.policy_log()
        with pytest.raises(Unauthorized):
            next(intruder.follow_policy_log())


def test_ring_keeps_the_newest() -> None:
    log = PolicyLog(size=3)
    rec = msgspec.convert(record("x", "x"), PolicyLogRecord)
    assert log.add("n", [rec] * 5) == 5
    seqs = [json.loads(line)["seq"] for line in log.after(0, None)]
    assert seqs == [3, 4, 5]
    assert [json.loads(line)["seq"] for line in log.after(3, None)] == [4, 5]
    assert log.after(5, None) == [] and log.after(9, None) == []
    assert log.after(0, "nowhere") == []


def test_follow_streams_the_backlog_then_new_records(served: Client) -> None:
    served.post_policy_log("node1", [record("x", "x"), record("y", "y")])
    got: list[dict[str, Any]] = []
    stream = served.follow_policy_log("x")
    got.append(next(stream))  # the backlog, filtered
    served.post_policy_log("node2", [record("y", "y"), record("y", "x")])
    got.append(next(stream))
    stream.close()
    assert [(r["seq"], r["node"]) for r in got] == [(1, "node1"), (4, "node2")]
    # Following from a sequence number skips what came before it.
    since = served.follow_policy_log(since=3)
    assert next(since)["seq"] == 4
    since.close()


def test_shutdown_ends_followers() -> None:
    got: list[dict[str, Any]] = []
    with api_server(MemoryStore()) as (url, token):
        c = Client(url, token, timeout=10)
        c.post_policy_log("node1", [record("x", "x")])
        t = threading.Thread(target=lambda: got.extend(c.follow_policy_log()))
        t.start()
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
    t.join(5)
    assert not t.is_alive()
    assert [r["seq"] for r in got] == [1]
    c.close()


# --- the CLI -------------------------------------------------------------------------------------


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def cli(served: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, utc: None) -> Iterator[list[str | None]]:
    """The CLI pointed at the served API as if it were the running cluster ``demo``; yields the
    names the CLI asked for."""
    write_token(tmp_path, served.token)
    asked: list[str | None] = []

    def pick(name: str | None) -> DaemonInfo:
        asked.append(name)
        return DaemonInfo("demo", 1, served.base_url, "", "", str(tmp_path), 0.0)

    monkeypatch.setattr("kins.daemon.state.pick_cluster", pick)
    yield asked


def _run(*args: str) -> str:
    res = CliRunner().invoke(app, ["policy", "log", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.stdout


def test_cli_text_and_json(served: Client, cli: list[str | None]) -> None:
    served.post_policy_log("node1", [record("x", "x"), record(None, None, port=None, proto="ICMP")])
    assert _run("--name", "demo").splitlines() == [
        "10:41:07.123  x/b (10.244.1.5)  x/a (10.244.2.7):80/TCP  ingress  x/deny-ingress,x/allow-from-y",
        "10:41:07.123  10.244.1.5  10.244.2.7/ICMP  ingress  -",
    ]
    assert cli == ["demo"]
    lines = _run("-n", "x", "-o", "json").splitlines()
    assert [json.loads(line) for line in lines] == [{"seq": 1, "node": "node1", **record("x", "x")}]
    assert _run("-n", "nowhere") == ""


def test_cli_follow(served: Client, cli: list[str | None], monkeypatch: pytest.MonkeyPatch) -> None:
    served.post_policy_log("node1", [record("x", "x")])
    real = Client.follow_policy_log

    def two_then_stop(self: Client, namespace: str | None = None, since: int = 0) -> Iterator[dict[str, Any]]:
        """The real stream, with a new record posted once the backlog came, ended after it."""
        stream = real(self, namespace, since)
        yield next(stream)
        served.post_policy_log("node2", [record(None, "y", port=53, proto="UDP")])
        yield next(stream)
        stream.close()

    monkeypatch.setattr(Client, "follow_policy_log", two_then_stop)
    assert _run("-f").splitlines() == [
        "10:41:07.123  x/b (10.244.1.5)  x/a (10.244.2.7):80/TCP  ingress  x/deny-ingress,x/allow-from-y",
        "10:41:07.123  10.244.1.5  y/a (10.244.2.7):53/UDP  ingress  y/deny-ingress,y/allow-from-y",
    ]


def test_cli_refuses_an_unknown_output(cli: list[str | None]) -> None:
    res = CliRunner().invoke(app, ["policy", "log", "-o", "yaml"])
    assert res.exit_code != 0


def test_record_struct_is_what_the_api_takes() -> None:
    # The agents may post structs instead of dicts: they encode to the same JSON.
    rec = msgspec.convert(record("x", "x"), PolicyLogRecord)
    assert msgspec.to_builtins(rec) == record("x", "x")
