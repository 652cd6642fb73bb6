"""The Metrics API (metrics.k8s.io/v1beta1) as ``kubectl top`` reads it, fed as a kubelet feeds it."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubectl_bin import NEWEST, OLDEST, TlsApi, tls_api

from kins._errors import KinsError
from kins.agents.kubelet.metrics import ensure_capacity, machine_capacity
from kins.api.core import Container, Node, Pod, PodSpec
from kins.api.meta import Object, ObjectMeta
from kins.apiserver.auth import CERT_FILE
from kins.apiserver.metrics import (
    STALE_SECONDS,
    ContainerSample,
    MetricsCache,
    NodeSample,
    PodSample,
    cpu_quantity,
    go_duration,
    memory_quantity,
)
from kins.client import Client
from kins.store.memory import MemoryStore

VERSIONS = [OLDEST, NEWEST]
MI = 1 << 20


def _pod(ns: str, name: str, node: str, labels: dict[str, str], containers: list[str]) -> Pod:
    return Pod(
        metadata=ObjectMeta(name=name, namespace=ns, labels=labels),
        spec=PodSpec(nodeName=node, containers=[Container(name=c, image="busybox") for c in containers]),
    )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TlsApi]:
    store = MemoryStore(history=1000)
    store.create(Node(metadata=ObjectMeta(name="n1", labels={"zone": "a"})))
    store.create(Node(metadata=ObjectMeta(name="n2", labels={"zone": "b"})))
    store.create(_pod("default", "web-1", "n1", {"app": "web"}, ["nginx", "sidecar"]))
    store.create(_pod("default", "db", "n1", {"app": "db"}, ["postgres"]))
    store.create(_pod("kube-system", "dns", "n2", {"app": "dns"}, ["coredns"]))
    store.create(_pod("default", "fresh", "n2", {"app": "web"}, ["c"]))  # no sample yet
    with tls_api(store, tmp_path / "api") as a:
        yield a


def _client(api: TlsApi) -> Client:
    return Client(api.url, api.token, ca_file=api.kubeconfig.parent / CERT_FILE)


def _uid(api: TlsApi, ns: str, name: str) -> str:
    return api.store.get("Pod", ns, name).metadata.uid or ""


def _report(api: TlsApi) -> list[dict[str, Any]]:
    """What the kubelets of n1 and n2 post: CPU in nanocores, memory in bytes."""
    ts = "2026-12-07T12:00:00Z"

    def pod(ns: str, name: str, containers: list[tuple[str, int, int]]) -> dict[str, Any]:
        return {
            "namespace": ns,
            "name": name,
            "uid": _uid(api, ns, name),
            "timestamp": ts,
            "window": 15.003,
            "containers": [{"name": c, "cpu": cpu, "memory": mem} for c, cpu, mem in containers],
        }

    return [
        {
            "node": "n1",
            "timestamp": ts,
            "window": 15.003,
            "cpu": 250_000_000,
            "memory": 300 * MI,
            "pods": [
                pod("default", "web-1", [("nginx", 12_000_000, 20 * MI), ("sidecar", 3_000_000, 4 * MI)]),
                pod("default", "db", [("postgres", 120_000_000, 100 * MI)]),
            ],
        },
        {
            "node": "n2",
            "timestamp": ts,
            "window": 14.5,
            "cpu": 40_000_000,
            "memory": 90 * MI,
            "pods": [pod("kube-system", "dns", [("coredns", 7_000_000, 30 * MI)])],
        },
    ]


def _rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()]


def test_quantities_and_durations_read_as_kubernetes_writes_them() -> None:
    assert [cpu_quantity(n) for n in (0, 12_000_000, 1_500_000_000, 2_000_000_000, 12_345_678, 5000)] == [
        "0",
        "12m",
        "1500m",
        "2",
        "12345678n",
        "5u",
    ]
    assert [memory_quantity(b) for b in (0, 1024, 1536 * 1024, 2 * MI, 1000, 3 << 30)] == [
        "0",
        "1Ki",
        "1536Ki",
        "2Mi",
        "1000",
        "3Gi",
    ]
    assert [go_duration(s) for s in (15.003, 15.0, 0.5, 60.5, 3725.0, 0)] == [
        "15.003s",
        "15s",
        "500ms",
        "1m0.5s",
        "1h2m5s",
        "0s",
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_discovery_lists_the_metrics_group_read_only(api: TlsApi, version: str) -> None:
    k = api.kubectl(version)
    groups = json.loads(k("get", "--raw", "/apis"))
    (group,) = [g for g in groups["groups"] if g["name"] == "metrics.k8s.io"]
    assert group["preferredVersion"] == {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}
    resources = json.loads(k("get", "--raw", "/apis/metrics.k8s.io/v1beta1"))["resources"]
    assert {(r["name"], r["kind"], r["namespaced"], tuple(r["verbs"])) for r in resources} == {
        ("nodes", "NodeMetrics", False, ("get", "list")),
        ("pods", "PodMetrics", True, ("get", "list")),
    }
    names = k("api-resources", "--api-group=metrics.k8s.io", "-o", "name").split()
    assert sorted(names) == ["nodes.metrics.k8s.io", "pods.metrics.k8s.io"]


@pytest.mark.parametrize("version", VERSIONS)
def test_top_before_any_sample_says_metrics_are_not_available(api: TlsApi, version: str) -> None:
    k = api.kubectl(version)
    p = k.run("top", "nodes", check=False)
    assert p.returncode != 0 and "metrics not available yet" in p.stderr
    p = k.run("top", "pods", check=False)
    assert p.returncode != 0 and "metrics not available yet" in p.stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_top_nodes(api: TlsApi, version: str) -> None:
    _client(api).post_metrics(_report(api))
    k = api.kubectl(version)
    rows = _rows(k("top", "nodes"))
    assert rows[0][:3] == ["NAME", "CPU(cores)", "CPU(%)"] or rows[0][:3] == ["NAME", "CPU(cores)", "CPU%"]
    by_name = {r[0]: r for r in rows[1:]}
    assert set(by_name) == {"n1", "n2"}
    assert by_name["n1"][1] == "250m" and "300Mi" in by_name["n1"]
    assert by_name["n2"][1] == "40m" and "90Mi" in by_name["n2"]
    assert [r[0] for r in _rows(k("top", "node", "n2", "--no-headers"))] == ["n2"]
    assert [r[0] for r in _rows(k("top", "nodes", "-l", "zone=a", "--no-headers"))] == ["n1"]
    p = k.run("top", "node", "n9", check=False)
    assert p.returncode != 0 and 'nodes "n9" not found' in p.stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_top_pods(api: TlsApi, version: str) -> None:
    _client(api).post_metrics(_report(api))
    k = api.kubectl(version)
    rows = _rows(k("top", "pods"))
    assert rows[0] == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    # A pod of two containers shows their sum; "fresh" has no sample and is left out.
    assert sorted(rows[1:]) == [["db", "120m", "100Mi"], ["web-1", "15m", "24Mi"]]
    rows = _rows(k("top", "pods", "-A", "--no-headers"))
    assert sorted(rows) == [
        ["default", "db", "120m", "100Mi"],
        ["default", "web-1", "15m", "24Mi"],
        ["kube-system", "dns", "7m", "30Mi"],
    ]
    rows = _rows(k("top", "pods", "--containers", "--no-headers"))
    assert sorted(rows) == [
        ["db", "postgres", "120m", "100Mi"],
        ["web-1", "nginx", "12m", "20Mi"],
        ["web-1", "sidecar", "3m", "4Mi"],
    ]
    assert _rows(k("top", "pods", "-A", "-l", "app=web", "--no-headers")) == [["default", "web-1", "15m", "24Mi"]]
    assert _rows(k("top", "pod", "dns", "-n", "kube-system", "--no-headers")) == [["dns", "7m", "30Mi"]]
    p = k.run("top", "pod", "nosuch", check=False)
    assert p.returncode != 0 and 'pods "nosuch" not found' in p.stderr
    # A pod that exists but has no metrics yet: as metrics-server answers it.
    p = k.run("top", "pod", "fresh", check=False)
    assert p.returncode != 0 and "not found" in p.stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_metrics_objects_as_the_api_serves_them(api: TlsApi, version: str) -> None:
    _client(api).post_metrics(_report(api))
    k = api.kubectl(version)
    doc = json.loads(k("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1"))
    assert doc["kind"] == "PodMetrics" and doc["apiVersion"] == "metrics.k8s.io/v1beta1"
    assert doc["metadata"]["labels"] == {"app": "web"} and doc["metadata"]["namespace"] == "default"
    assert doc["timestamp"] == "2026-12-07T12:00:00Z" and doc["window"] == "15.003s"
    assert doc["containers"] == [
        {"name": "nginx", "usage": {"cpu": "12m", "memory": "20Mi"}},
        {"name": "sidecar", "usage": {"cpu": "3m", "memory": "4Mi"}},
    ]
    node = json.loads(k("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/n2"))
    assert node["kind"] == "NodeMetrics" and node["usage"] == {"cpu": "40m", "memory": "90Mi"}
    assert node["window"] == "14.5s" and node["metadata"]["labels"] == {"zone": "b"}
    listed = json.loads(k("get", "--raw", "/apis/metrics.k8s.io/v1beta1/pods"))
    assert listed["kind"] == "PodMetricsList"
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed["items"]] == [
        ("default", "db"),
        ("default", "web-1"),
        ("kube-system", "dns"),
    ]
    p = k.run("get", "--raw", "/apis/metrics.k8s.io/v1beta1/pods?watch=true", check=False)
    assert p.returncode != 0


class _ThroughApi:
    """The store-shaped reads and writes the kubelet's view makes, over the API."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def list(self, kind: str) -> tuple[list[Object], int]:
        return self.client.list_with_rv(kind, None, None, all_namespaces=True)

    def get(self, kind: str, namespace: str | None, name: str) -> Object:
        return self.client.get(kind, namespace, name)

    def update_status(self, obj: Object, *, check_rv: bool = True) -> Object:
        return self.client.update_status(obj)


@pytest.mark.parametrize("version", VERSIONS)
def test_top_nodes_shows_shares_of_the_capacity_the_kubelet_registers(api: TlsApi, version: str) -> None:
    c = _client(api)
    view = _ThroughApi(c)
    cap = {"cpu": "2", "memory": f"{1000 * 1024}Ki", "pods": "110"}
    for node in ("n1", "n2"):
        ensure_capacity(view, node, cap)
    ensure_capacity(view, "n1", {"cpu": "64", "memory": "1Ki", "pods": "1"})  # kept as first recorded
    n1 = api.store.get("Node", None, "n1")
    assert isinstance(n1, Node) and n1.status is not None
    assert n1.status.capacity == cap and n1.status.allocatable == cap
    c.post_metrics(_report(api))
    rows = {r[0]: r[1:] for r in _rows(api.kubectl(version)("top", "nodes", "--no-headers"))}
    # 250m of 2 CPUs, 300Mi of 1000Mi.
    assert rows["n1"] == ["250m", "12%", "300Mi", "30%"]
    assert rows["n2"] == ["40m", "2%", "90Mi", "9%"]


def test_machine_capacity_is_this_machines() -> None:
    cap = machine_capacity()
    assert int(cap["cpu"]) >= 1 and cap["memory"].endswith("Ki") and int(cap["memory"][:-2]) > 0
    assert cap["pods"] == "110"


def test_a_new_report_replaces_the_nodes_pods_and_old_uids_are_not_inherited(api: TlsApi) -> None:
    c = _client(api)
    report = _report(api)
    report[0]["pods"][1]["uid"] = "an-older-pod-of-the-same-name"
    c.post_metrics(report)
    k = api.kubectl(NEWEST)
    assert sorted(r[0] for r in _rows(k("top", "pods", "--no-headers"))) == ["web-1"]
    # n1's next report no longer has web-1 (its pod stopped): it is gone from the API.
    report = _report(api)
    report[0]["pods"] = report[0]["pods"][1:]
    c.post_metrics(report[:1])
    assert sorted(r[0] for r in _rows(k("top", "pods", "--no-headers"))) == ["db"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r[0].update(node=""), "items[0].node: required"),
        (lambda r: r[0].update(timestamp="yesterday"), "items[0].timestamp: not an RFC 3339 time"),
        (lambda r: r[1]["pods"][0]["containers"][0].update(cpu=-1), "items[1].pods[0].containers[0].cpu"),
        (lambda r: r[0].update(memory="lots"), "items[0].memory"),
    ],
)
def test_a_bad_report_is_refused_whole(api: TlsApi, mutate: Any, message: str) -> None:
    c = _client(api)
    report = _report(api)
    mutate(report)
    with pytest.raises(KinsError) as e:
        c.post_metrics(report)
    assert message in str(e.value)
    # Nothing of it was kept.
    p = api.kubectl(NEWEST).run("top", "nodes", check=False)
    assert p.returncode != 0 and "metrics not available yet" in p.stderr


def test_posting_needs_the_token(api: TlsApi) -> None:
    r = httpx.post(
        api.url + "/kins/v1/metrics",
        json={"items": []},
        verify=ssl.create_default_context(cafile=str(api.kubeconfig.parent / CERT_FILE)),
    )
    assert r.status_code == 401


@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_get_shows_metrics_server_columns(api: TlsApi, version: str) -> None:
    _client(api).post_metrics(_report(api))
    k = api.kubectl(version)
    rows = _rows(k("get", "podmetrics", "-A"))
    assert rows[0] == ["NAMESPACE", "NAME", "CPU", "MEMORY", "WINDOW"]
    assert sorted(rows[1:]) == [
        ["default", "db", "120m", "100Mi", "15.003s"],
        ["default", "web-1", "15m", "24Mi", "15.003s"],  # the containers added up
        ["kube-system", "dns", "7m", "30Mi", "15.003s"],
    ]
    assert _rows(k("get", "nodemetrics", "n2", "--no-headers")) == [["n2", "40m", "90Mi", "14.5s"]]
    assert _rows(k("get", "podmetrics", "-l", "app=db", "--no-headers")) == [["db", "120m", "100Mi", "15.003s"]]
    # -o yaml still gets the objects.
    assert "kind: PodMetrics" in k("get", "podmetrics", "db", "-o", "yaml")


def _sample(node: str, pods: list[str]) -> NodeSample:
    ts = "2026-12-07T12:00:00Z"
    return NodeSample(
        node=node,
        timestamp=ts,
        window=15.0,
        cpu=1,
        memory=1,
        pods=[PodSample("default", p, ts, 15.0, [ContainerSample("c", 1, 1)], uid=f"uid-{p}") for p in pods],
    )


def test_the_cache_keeps_each_nodes_latest_report_while_it_is_fresh() -> None:
    cache = MetricsCache()
    cache.add([_sample("n1", ["a", "b"])], now=0.0)
    assert cache.pod("default", "a", "uid-a", now=1.0) is not None
    assert cache.pod("default", "a", "another-uid", now=1.0) is None  # a new pod of that name
    # "b" moved to n2; n1's next report no longer has it: n2's report still answers for it.
    cache.add([_sample("n2", ["b"])], now=2.0)
    cache.add([_sample("n1", ["a"])], now=3.0)
    assert cache.pod("default", "b", "uid-b", now=4.0) is not None
    # A node whose agent stopped reporting has no metrics once its last report is stale.
    assert cache.node("n1", now=3.0 + STALE_SECONDS - 1) is not None
    assert cache.node("n1", now=3.0 + STALE_SECONDS + 1) is None
    assert cache.pod("default", "a", "uid-a", now=3.0 + STALE_SECONDS + 1) is None
