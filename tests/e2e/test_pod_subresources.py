"""Pod logs, exec and port forwarding through kins' kubeconfig with the official Python client,
on a live cluster: what ``kubectl logs``, ``kubectl exec`` and ``kubectl port-forward`` use."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from e2e_helpers import Cluster, poll, running_cluster
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward, stream

pytestmark = pytest.mark.root

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"
TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(apps=False) as c:
        yield c


@pytest.fixture(scope="module")
def core(cluster: Cluster) -> client.CoreV1Api:
    api = config.new_client_from_config(config_file=str(cluster.state / "kubeconfig"))
    v1 = client.CoreV1Api(api)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="sub", labels={"app": "sub"}),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(name="web", image=AGNHOST, args=["netexec", "--http-port=8080"]),
                client.V1Container(name="ticker", image="busybox", command=["sh", "-c", TICKER]),
            ]
        ),
    )
    v1.create_namespaced_pod("default", pod)

    def running() -> bool:
        st = v1.read_namespaced_pod("sub", "default").status  # None until the kubelet writes it
        return st is not None and st.phase == "Running" and all(c.ready for c in st.container_statuses or [])

    poll(running, 60, "pod sub running")
    return v1


def test_logs_with_kubectl_options(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log("sub", "default")
    assert e.value.status == 400
    message = json.loads(e.value.body)["message"]
    assert message == "a container name must be specified for pod sub, choose one of: [web ticker]"
    poll(lambda: "tick 3" in core.read_namespaced_pod_log("sub", "default", container="ticker"), 10, "4 ticks")
    tail = core.read_namespaced_pod_log("sub", "default", container="ticker", tail_lines=2)
    assert len(tail.splitlines()) == 2 and all(line.startswith("tick ") for line in tail.splitlines())
    stamped = core.read_namespaced_pod_log("sub", "default", container="ticker", tail_lines=1, timestamps=True)
    stamp, _, line = stamped.strip().partition(" ")
    assert stamp.endswith("Z") and line.startswith("tick ")
    assert len(core.read_namespaced_pod_log("sub", "default", container="ticker", limit_bytes=5)) == 5
    # follow: new lines keep coming on the open stream.
    resp = core.read_namespaced_pod_log(
        "sub", "default", container="ticker", follow=True, tail_lines=1, _preload_content=False
    )
    try:
        seen = []
        for raw in resp.stream(64):
            seen += [ln for ln in raw.decode().splitlines() if ln]
            if len(seen) >= 4:
                break
        numbers = [int(s.split()[1]) for s in seen[:4]]
        assert numbers == sorted(numbers) and numbers[-1] > numbers[0]
    finally:
        resp.release_conn()
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log("sub", "default", container="ticker", previous=True)
    assert e.value.status == 400
    assert json.loads(e.value.body)["message"] == 'previous terminated container "ticker" in pod "sub" not found'


def test_exec_over_websocket(core: client.CoreV1Api) -> None:
    def run(*cmd: str, **kw: object) -> object:
        return stream(
            core.connect_get_namespaced_pod_exec,
            "sub",
            "default",
            container="web",
            command=list(cmd),
            stderr=True,
            stdout=True,
            stdin=False,
            tty=False,
            **kw,
        )

    assert run("hostname") == "sub\n"
    assert "\tsub" in str(run("cat", "/etc/hosts"))  # the pod's own hosts file
    ws = run("sh", "-c", "echo out; echo err >&2; exit 3", _preload_content=False)
    ws.run_forever(timeout=10)  # type: ignore[attr-defined]
    assert ws.read_stdout() == "out\n" and ws.read_stderr() == "err\n"  # type: ignore[attr-defined]
    assert ws.returncode == 3  # type: ignore[attr-defined]
    # stdin, closed with v5's close signal: cat ends and echoes everything.
    ws = stream(
        core.connect_get_namespaced_pod_exec,
        "sub",
        "default",
        container="web",
        command=["cat"],
        stdin=True,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    assert ws.subprotocol == "v5.channel.k8s.io"
    ws.write_stdin("over the ")
    ws.write_stdin("wire")
    ws.close_channel(0)
    ws.run_forever(timeout=10)
    assert ws.read_stdout() == "over the wire" and ws.returncode == 0


def test_port_forward(core: client.CoreV1Api) -> None:
    pf = portforward(core.connect_get_namespaced_pod_portforward, "sub", "default", ports="8080")
    sock = pf.socket(8080)
    sock.settimeout(10)
    sock.sendall(b"GET /hostname HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    reply = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not reply.endswith(b"sub"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    sock.close()
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"sub")
    assert pf.error(8080) is None
    # Nothing listens on 9: the error channel says so.
    pf = portforward(core.connect_get_namespaced_pod_portforward, "sub", "default", ports="9")
    poll(lambda: pf.error(9), 10, "the error of port 9")
    assert "connection refused" in pf.error(9)
