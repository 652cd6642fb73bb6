"""Root tests: agnhost netexec and the article's apps, two pods joined by a veth pair."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from runtime_helpers import Netns, ip

from kins.runtime import ContainerSpec, Runtime, Sandbox, exec_in_pod, socket_in_netns

pytestmark = pytest.mark.root

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"
IP_A, IP_B = "192.0.2.1", "192.0.2.2"


@dataclass
class TwoPods:
    rt: Runtime
    a: Sandbox
    b: Sandbox
    ns_a: str
    ns_b: str


def curl(sb: Sandbox, url: str) -> tuple[int, str]:
    res = exec_in_pod(sb, ["curl", "-s", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", url])
    body, _, code = res.stdout.decode().rpartition("\n")
    return int(code or 0), body


def wait_ready(sb: Sandbox, url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while curl(sb, url)[0] != 200:
        assert time.monotonic() < deadline, f"{url} not ready in pod {sb.hostname}"
        time.sleep(0.05)


@pytest.fixture
def pods(runtime: Runtime, netns: Netns, tmp_path: Path) -> Iterator[TwoPods]:
    ns_a, ns_b = netns.make(2)
    ip("-n", ns_a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", ns_b)
    for ns, addr in ((ns_a, IP_A), (ns_b, IP_B)):
        ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.53\n")
    # The pods' hosts files name each other: name lookups go through the pod's own /etc/hosts.
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1\tlocalhost\n{IP_A}\tpod-a\n{IP_B}\tpod-b data-product\n")
    a = runtime.create_sandbox("default/pod-a", netns.path(ns_a), "pod-a", str(resolv), str(hosts))
    b = runtime.create_sandbox("default/pod-b", netns.path(ns_b), "pod-b", str(resolv), str(hosts))
    yield TwoPods(runtime, a, b, ns_a, ns_b)


def start_netexec(p: TwoPods) -> None:
    args = ("netexec", "--http-port=8080", "--udp-port=8081")
    for sb in (p.a, p.b):
        p.rt.start_container(sb, ContainerSpec("netexec", AGNHOST, args=args))
    wait_ready(p.a, "http://127.0.0.1:8080/healthz")
    wait_ready(p.a, f"http://{IP_B}:8080/healthz")


def udp_ask(netns: str, addr: tuple[str, int], text: bytes) -> tuple[bytes, tuple[str, int]]:
    with socket_in_netns(netns, socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(text, addr)
        data = s.recv(2048)
        return data, s.getsockname()


def test_netexec_http_across_pods(pods: TwoPods) -> None:
    start_netexec(pods)
    a, b = pods.a, pods.b
    assert curl(a, f"http://{IP_B}:8080/hostname") == (200, "pod-b")
    assert curl(a, "http://pod-b:8080/hostName") == (200, "pod-b")
    code, client = curl(a, f"http://{IP_B}:8080/clientip")
    assert code == 200 and client.startswith(f"{IP_A}:") and int(client.split(":")[1]) > 0
    assert curl(a, f"http://{IP_B}:8080/echo?msg=hello%20kins") == (200, "hello kins")
    assert curl(a, f"http://{IP_B}:8080/echo?msg=teapot&code=418") == (418, "teapot")
    assert curl(b, "http://127.0.0.1:8080/")[1].startswith("NOW: ")

    # /dial: pod A's netexec asks pod B's, over HTTP and over UDP.
    code, body = curl(a, f"http://127.0.0.1:8080/dial?request=hostname&protocol=http&host={IP_B}&port=8080&tries=3")
    assert (code, json.loads(body)) == (200, {"responses": ["pod-b"] * 3})
    code, body = curl(a, "http://127.0.0.1:8080/dial?request=hostname&protocol=udp&host=pod-b&port=8081&tries=2")
    assert (code, json.loads(body)) == (200, {"responses": ["pod-b"] * 2})
    code, body = curl(a, f"http://127.0.0.1:8080/dial?request=clientip&protocol=udp&host={IP_B}&port=8081")
    assert code == 200 and json.loads(body)["responses"][0].startswith(f"{IP_A}:")
    code, body = curl(a, f"http://127.0.0.1:8080/dial?request=hostname&host={IP_B}&port=9999&tries=2")
    errors = json.loads(body)["errors"]
    assert (
        code == 417
        and len(errors) == 2
        and errors[0] == (f'Get "http://{IP_B}:9999/hostname": dial tcp {IP_B}:9999: connect: connection refused')
    )
    assert curl(a, "http://127.0.0.1:8080/dial?host=pod-b&port=8080")[0] == 400
    out = json.loads(curl(b, "http://127.0.0.1:8080/shell?cmd=hostname")[1])
    assert out == {"output": "pod-b\n"}


def test_netexec_udp_across_pods(pods: TwoPods) -> None:
    start_netexec(pods)
    path_a = pods.a.netns_path
    assert udp_ask(path_a, (IP_B, 8081), b"hostname")[0] == b"pod-b"
    assert udp_ask(path_a, (IP_B, 8081), b"echo Hello UDP\n")[0] == b"hello udp"  # agnhost lower-cases
    data, (_, src_port) = udp_ask(path_a, (IP_B, 8081), b"clientip")
    assert data.decode() == f"{IP_A}:{src_port}"


def test_business_manager_calls_data_product(pods: TwoPods) -> None:
    rt = pods.rt
    rt.start_container(pods.b, ContainerSpec("data-product", "example.com/shop/data-product:1.0"))
    rt.start_container(
        pods.a,
        ContainerSpec(
            "business-manager",
            "example.com/shop/business-manager:1.0",
            env={"DATA_PRODUCT_URL": "http://data-product:50051/"},
        ),
    )
    wait_ready(pods.a, f"http://{IP_B}:50051/healthz")
    wait_ready(pods.b, f"http://{IP_A}:8080/healthz")
    code, body = curl(pods.b, f"http://{IP_A}:8080/api/v1/product/list")
    assert code == 200
    answer = json.loads(body)
    assert answer["businessManager"] == {"pod": "pod-a", "podIP": IP_A}
    assert answer["dataProduct"] == {"pod": "pod-b", "podIP": IP_B}
    assert [p["name"] for p in answer["products"]]
    code, body = curl(pods.a, f"http://{IP_B}:50051/")
    assert code == 200 and json.loads(body)["pod"] == "pod-b"
