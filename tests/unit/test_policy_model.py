"""The upstream NetworkPolicy e2e model (kins.policy.model), ``kins policy model``, agnhost's
``connect`` and the prober's in-pod script, against servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from kins.api.core import Namespace, Pod, PodStatus, Service
from kins.api.load import load_text
from kins.api.validation import validate_all
from kins.apps import AppError, resolve
from kins.apps.agnhost import connect_main, split_host_port
from kins.cli import app
from kins.policy.model import (
    Peer,
    Reachability,
    comparison_table,
    model_objects,
    pod_strings,
    to_manifests,
    verdict_table,
)
from kins.policy.probe import SCRIPT, grid_pairs

# --- the model ------------------------------------------------------------------------------------


def test_model_objects_are_upstreams() -> None:
    objs = model_objects()
    nss = [o for o in objs if isinstance(o, Namespace)]
    pods = [o for o in objs if isinstance(o, Pod)]
    svcs = [o for o in objs if isinstance(o, Service)]
    assert [n.name for n in nss] == ["x", "y", "z"]
    assert all(n.labels == {"ns": n.name} for n in nss)
    assert [p.key for p in pods] == pod_strings()
    a = pods[0]
    assert a.labels == {"pod": "a"} and a.spec.terminationGracePeriodSeconds == 0
    assert [c.name for c in a.spec.containers] == ["cont-80-tcp", "cont-80-udp", "cont-81-tcp", "cont-81-udp"]
    c = a.spec.containers[1]
    assert c.command == ["/agnhost", "serve-hostname", "--udp", "--http=false", "--port", "80"]
    assert [(p.name, p.containerPort, p.protocol) for p in c.ports or []] == [("serve-80-udp", 80, "UDP")]
    s = svcs[0]
    assert s.key == "x/s-x-a" and s.spec.selector == {"pod": "a"}
    assert [(p.name, p.port, p.protocol) for p in s.spec.ports or []] == [
        ("service-port-tcp-80", 80, "TCP"),
        ("service-port-udp-80", 80, "UDP"),
        ("service-port-tcp-81", 81, "TCP"),
        ("service-port-udp-81", 81, "UDP"),
    ]


def test_model_options() -> None:
    objs = model_objects(["x"], ["a"], [80], ["sctp"], node_for=lambda ns, pod: "node2", base="np")
    ns, pod, svc = objs
    assert ns.name == "np-x" and ns.labels == {"ns": "np-x"}
    assert isinstance(pod, Pod) and pod.namespace == "np-x" and pod.spec.nodeName == "node2"
    assert svc.name == "s-np-x-a"
    c = pod.spec.containers[0]
    assert (c.name, c.command, [e.name for e in c.env or []]) == (
        "cont-80-sctp",
        ["/agnhost", "porter"],
        ["SERVE_SCTP_PORT_80"],
    )
    with pytest.raises(ValueError, match="invalid protocol"):
        model_objects(protocols=["icmp"])


def test_manifests_load_validate_and_run_as_builtin_agnhost() -> None:
    objs = load_text(to_manifests(model_objects()), "model.yaml")
    assert len(objs) == 3 + 9 + 9
    validate_all(objs, None)
    pod = next(o for o in objs if isinstance(o, Pod))
    for c in pod.spec.containers:
        app_ = resolve(c.image or "", c.command or [], c.args or [])
        assert app_ is not None and app_.name == "serve-hostname"
    sctp = model_objects(["x"], ["a"], [80], ["SCTP"])[1]
    assert isinstance(sctp, Pod)
    c = sctp.spec.containers[0]
    with pytest.raises(AppError, match="porter"):  # declared for offline use only
        resolve(c.image or "", c.command or [], c.args or [])


def test_cli_prints_the_model() -> None:
    res = CliRunner().invoke(app, ["policy", "model", "--namespaces", "x,y", "--pods", "a", "--ports", "81"])
    assert res.exit_code == 0, res.output
    objs = load_text(res.stdout, "-")
    assert [o.key for o in objs] == ["x", "y", "x/a", "x/s-x-a", "y/a", "y/s-y-a"]
    assert res.stdout == to_manifests(model_objects(["x", "y"], ["a"], [81]))
    bad = CliRunner().invoke(app, ["policy", "model", "--protocols", "icmp"])
    assert bad.exit_code == 2


# --- expectations -------------------------------------------------------------------------------


def test_reachability_upstream_calls() -> None:
    r = Reachability(pod_strings())
    assert r.denied() == 0 and len(r.pairs()) == 72
    r.expect_peer(Peer(), Peer("x"), False)  # default-deny-ingress in x
    assert r.denied() == 24
    r = Reachability(pod_strings()).expect_all_ingress("x/a", False).expect("x/b", "x/a", True)
    assert r.denied() == 7
    r = Reachability(pod_strings()).expect_all_egress("x/a", False).expect_peer(Peer("x", "a"), Peer("y", "b"), True)
    assert r.denied() == 7 and r.expected[("x/a", "y/b")]
    with pytest.raises(KeyError):
        r.expect("x/a", "w/a", True)


def test_wrong_pairs_and_tables() -> None:
    pods = ["x/a", "x/b"]
    r = Reachability(pods).expect("x/b", "x/a", False)
    observed = {("x/a", "x/b"): True, ("x/b", "x/a"): True}
    assert r.wrong(observed) == [("x/b", "x/a")]
    assert r.wrong({("x/a", "x/b"): True}) == [("x/b", "x/a")]  # a missing pair is wrong
    assert verdict_table(pods, observed) == "-\tx/a\tx/b\nx/a\t?\t.\nx/b\t.\t?\n"
    table = comparison_table(r, observed)
    assert table.endswith("Comparison:\n-\tx/a\tx/b\nx/a\t.\t.\nx/b\tX\t.\n")


def test_grid_pairs() -> None:
    pods = [o for o in model_objects(["x"], ["a", "b", "c"]) if isinstance(o, Pod)]
    for i, p in enumerate(pods):
        p.status = PodStatus(podIP=f"10.244.0.{i + 1}")
    pairs, names = grid_pairs(pods, 80)
    assert len(pairs) == 6 and names["10.244.0.1"] == "x/a"
    assert ("x/a", "10.244.0.1") not in {(p.key, a) for p, a, _ in pairs}
    pairs, names = grid_pairs(pods, 81, {"x/a": "10.96.0.10", "x/b": "10.96.0.11"})
    assert sorted({a for _, a, _ in pairs}) == ["10.96.0.10", "10.96.0.11"] and len(pairs) == 4


# --- agnhost connect and the prober's script against local servers ---------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, int]]:
    """serve-hostname on a TCP and a UDP port, as the model's containers run it."""
    ports = {"tcp": _free_port(), "udp": _free_port()}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from kins.apps.agnhost import serve_hostname_main as m; m(sys.argv[1:])",
                f"--{proto}",
                "--http=false",
                "--port",
                str(port),
            ],
            stderr=subprocess.DEVNULL,
        )
        for proto, port in ports.items()
    ]
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", ports["tcp"]), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "serve-hostname did not start"
                time.sleep(0.05)
        time.sleep(0.1)  # the UDP endpoint comes up in the same loop, right after
        yield ports
    finally:
        for p in procs:
            p.terminate()
            p.wait(5)


def test_connect_succeeds(servers: dict[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    assert connect_main([f"127.0.0.1:{servers['tcp']}", "--timeout=1s"]) == 0
    assert connect_main([f"127.0.0.1:{servers['udp']}", "--timeout=1s", "--protocol=udp"]) == 0
    assert capsys.readouterr().err == ""


def test_connect_failures(servers: dict[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    closed = _free_port()
    assert connect_main([f"127.0.0.1:{closed}", "--timeout=1s"]) == 1
    assert capsys.readouterr().err == "REFUSED\n"
    assert connect_main([f"127.0.0.1:{closed}", "--timeout=1s", "--protocol=udp"]) == 1
    assert capsys.readouterr().err.startswith("REFUSED: read udp 127.0.0.1:")
    assert connect_main(["127.0.0.1", "--timeout=1s"]) == 1
    assert capsys.readouterr().err == "UNKNOWN: address 127.0.0.1: missing port in address\n"
    assert connect_main([]) == 1
    assert capsys.readouterr().err == "Error: accepts 1 arg(s), received 0\n"
    assert connect_main([f"127.0.0.1:{closed}", "--protocol=icmp"]) == 1
    assert capsys.readouterr().err == "Unsupported protocol\nicmp"


def test_connect_udp_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    # a UDP socket that never answers: the read times out
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:
        mute.bind(("127.0.0.1", 0))
        port = mute.getsockname()[1]
        t0 = time.monotonic()
        assert connect_main([f"127.0.0.1:{port}", "--timeout=200ms", "--protocol=udp"]) == 1
    assert time.monotonic() - t0 < 2
    assert capsys.readouterr().err.startswith("TIMEOUT: read udp 127.0.0.1:")


def test_split_host_port() -> None:
    assert split_host_port("10.0.0.1:80") == ("10.0.0.1", 80)
    assert split_host_port("[fd00::1]:81") == ("fd00::1", 81)
    with pytest.raises(ValueError, match="too many colons"):
        split_host_port("fd00::1:81")


def test_probe_script_tries_targets_at_once(servers: dict[str, int]) -> None:
    closed = _free_port()
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind(("127.0.0.1", 0))
    try:
        targets = [["127.0.0.1", servers["udp"]], ["127.0.0.1", closed], ["127.0.0.1", mute.getsockname()[1]]] * 3
        t0 = time.monotonic()
        out = subprocess.run(
            ["python3", "-c", SCRIPT, json.dumps(targets), "udp", "0.5"], capture_output=True, text=True, check=True
        ).stdout
        assert time.monotonic() - t0 < 3  # concurrent: one timeout, not three
        assert json.loads(out) == ["", "REFUSED", "TIMEOUT"] * 3
        tcp = [["127.0.0.1", servers["tcp"]], ["127.0.0.1", closed]]
        out = subprocess.run(
            ["python3", "-c", SCRIPT, json.dumps(tcp), "tcp", "1"], capture_output=True, text=True, check=True
        ).stdout
        assert json.loads(out) == ["", "REFUSED"]
    finally:
        mute.close()
