"""kubectl get tables: durations, pod status reasons, cell formats and alignment."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kins.api.core import (
    ContainerState,
    ContainerStateTerminated,
    ContainerStatus,
    EndpointAddress,
    EndpointPort,
    Endpoints,
    EndpointSubset,
    LoadBalancerIngress,
    LoadBalancerStatus,
    Node,
    Pod,
    PodReadinessGate,
    PodStatus,
    Service,
    ServiceStatus,
)
from kins.api.discovery import EndpointSlice
from kins.api.load import load_text
from kins.api.meta import Condition, ObjectMeta
from kins.views import NoResources, format_table, human_duration
from kins.views.common import tabwrite
from kins.views.table import format_endpoints, pod_status, service_external_ip

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
DONE = {"exitCode": 0, "reason": "Completed"}


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=-5), "<invalid>"),
        (timedelta(seconds=-1), "0s"),
        (timedelta(milliseconds=-1500), "0s"),
        (timedelta(0), "0s"),
        (timedelta(seconds=59), "59s"),
        (timedelta(seconds=119), "119s"),
        (timedelta(seconds=120), "2m"),
        (timedelta(minutes=5, seconds=39), "5m39s"),
        (timedelta(minutes=9, seconds=59), "9m59s"),
        (timedelta(minutes=10, seconds=30), "10m"),
        (timedelta(minutes=153), "153m"),
        (timedelta(minutes=179, seconds=59), "179m"),
        (timedelta(hours=3), "3h"),
        (timedelta(hours=3, minutes=28), "3h28m"),
        (timedelta(hours=5, minutes=8), "5h8m"),
        (timedelta(hours=6), "6h"),
        (timedelta(hours=7, minutes=59), "7h59m"),
        (timedelta(hours=8, minutes=30), "8h"),
        (timedelta(hours=47), "47h"),
        (timedelta(hours=48), "2d"),
        (timedelta(days=3, hours=5), "3d5h"),
        (timedelta(days=7, hours=23), "7d23h"),
        (timedelta(days=8), "8d"),
        (timedelta(days=729), "729d"),
        (timedelta(days=730), "2y"),
        (timedelta(days=800), "2y70d"),
        (timedelta(days=365 * 8 + 3), "8y"),
    ],
)
def test_human_duration_buckets(delta: timedelta, text: str) -> None:
    assert human_duration(delta) == text


def _pod(
    *,
    phase: str = "Running",
    statuses: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    n_init: int = 0,
    conditions: tuple[tuple[str, str], ...] = (),
    deleted: bool = False,
    reason: str | None = None,
    containers: int = 1,
) -> Pod:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {
            "containers": [{"name": f"c{i}", "image": "x"} for i in range(containers)],
            "initContainers": [{"name": f"i{i}", "image": "x"} for i in range(n_init)] or None,
        },
        "status": {
            "phase": phase,
            "reason": reason,
            "conditions": [{"type": t, "status": s} for t, s in conditions] or None,
            "containerStatuses": statuses,
            "initContainerStatuses": init,
        },
    }
    if deleted:
        doc["metadata"]["deletionTimestamp"] = "2024-05-01T11:59:00Z"
    (pod,) = load_text(json.dumps(doc))
    assert isinstance(pod, Pod)
    return pod


def _cs(name: str = "c0", *, ready: bool = False, restarts: int = 0, **state: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "ready": ready, "restartCount": restarts, "state": state}
    return out


@pytest.mark.parametrize(
    ("pod", "ready", "status"),
    [
        (_pod(statuses=[_cs(ready=True, running={})], conditions=(("Ready", "True"),)), "1/1", "Running"),
        (_pod(phase="Pending"), "0/1", "Pending"),
        (_pod(phase="Pending", statuses=[_cs(waiting={"reason": "ContainerCreating"})]), "0/1", "ContainerCreating"),
        (_pod(statuses=[_cs(restarts=4, waiting={"reason": "CrashLoopBackOff"})]), "0/1", "CrashLoopBackOff"),
        (_pod(phase="Pending", statuses=[_cs(waiting={"reason": "ErrImagePull"})]), "0/1", "ErrImagePull"),
        (_pod(phase="Pending", statuses=[_cs(waiting={"reason": "ImagePullBackOff"})]), "0/1", "ImagePullBackOff"),
        (_pod(statuses=[_cs(ready=True, running={})], deleted=True), "1/1", "Terminating"),
        (
            _pod(phase="Succeeded", statuses=[_cs(terminated=DONE)]),
            "0/1",
            "Completed",
        ),
        (_pod(phase="Failed", statuses=[_cs(terminated={"exitCode": 1, "reason": "Error"})]), "0/1", "Error"),
        (_pod(phase="Failed", statuses=[_cs(terminated={"exitCode": 137})]), "0/1", "ExitCode:137"),
        (_pod(phase="Failed", statuses=[_cs(terminated={"exitCode": 0, "signal": 9})]), "0/1", "Signal:9"),
        (_pod(statuses=[_cs(terminated={"exitCode": 1, "reason": "OOMKilled"})]), "0/1", "OOMKilled"),
        (_pod(phase="Failed", reason="Evicted"), "0/1", "Evicted"),
        (_pod(phase="Running", reason="NodeLost", deleted=True), "0/1", "Unknown"),
        (
            _pod(phase="Succeeded", statuses=[_cs(terminated=DONE)], deleted=True),
            "0/1",
            "Completed",
        ),
        (
            _pod(
                containers=2,
                statuses=[
                    _cs("c0", ready=True, running={}),
                    _cs("c1", terminated=DONE),
                ],
                conditions=(("Ready", "True"),),
            ),
            "1/2",
            "Running",
        ),
        (
            _pod(
                containers=2,
                statuses=[
                    _cs("c0", ready=True, running={}),
                    _cs("c1", terminated=DONE),
                ],
            ),
            "1/2",
            "NotReady",
        ),
        (_pod(phase="Pending", n_init=2, init=[_cs("i0", running={})]), "0/1", "Init:0/2"),
        (
            _pod(phase="Pending", n_init=2, init=[_cs("i0", terminated={"exitCode": 0}), _cs("i1", running={})]),
            "0/1",
            "Init:1/2",
        ),
        (
            _pod(phase="Pending", n_init=1, init=[_cs("i0", waiting={"reason": "CrashLoopBackOff"})]),
            "0/1",
            "Init:CrashLoopBackOff",
        ),
        (_pod(phase="Pending", n_init=1, init=[_cs("i0", terminated={"exitCode": 2})]), "0/1", "Init:ExitCode:2"),
        (
            _pod(phase="Pending", n_init=1, init=[_cs("i0", terminated={"exitCode": 1, "reason": "Error"})]),
            "0/1",
            "Init:Error",
        ),
        (_pod(phase="Pending", n_init=1, init=[_cs("i0", waiting={"reason": "PodInitializing"})]), "0/1", "Init:0/1"),
    ],
)
def test_pod_ready_and_status(pod: Pod, ready: str, status: str) -> None:
    r, s, _ = pod_status(pod, NOW)
    assert (r, s) == (ready, status)


def test_pod_restarts_with_last_termination_age() -> None:
    pod = _pod(statuses=[_cs(restarts=5, running={})])
    assert pod.status is not None and pod.status.containerStatuses is not None
    pod.status.containerStatuses[0].lastState = ContainerState(
        terminated=ContainerStateTerminated(exitCode=1, finishedAt="2024-05-01T11:55:00Z")
    )
    assert pod_status(pod, NOW)[2] == "5 (5m ago)"
    pod.status.containerStatuses[0].lastState = None
    assert pod_status(pod, NOW)[2] == "5"


def test_pod_wide_fillers_and_readiness_gates() -> None:
    pod = Pod(
        metadata=ObjectMeta(name="web", creationTimestamp="2024-05-01T11:58:00Z"),
        status=PodStatus(phase="Pending", conditions=[Condition(type="example.com/gate", status="True")]),
    )
    pod.spec.readinessGates = [
        PodReadinessGate(conditionType="example.com/gate"),
        PodReadinessGate(conditionType="other"),
    ]
    out = format_table("Pod", [pod], wide=True, all_namespaces=False, now=NOW)
    assert out.splitlines()[1].split() == ["web", "0/0", "Pending", "0", "2m", "<none>", "<none>", "<none>", "1/2"]


def test_column_alignment_three_spaces_and_no_trailing_padding() -> None:
    out = format_table("Pod", [_pod(statuses=[_cs(ready=True, running={})])], wide=False, all_namespaces=True, now=NOW)
    header, row = out.splitlines()
    assert header == "NAMESPACE   NAME   READY   STATUS    RESTARTS   AGE"
    assert row == "default     p      1/1     Running   0          60m"
    assert out.endswith("60m\n")


def test_tabwriter_minimum_width_and_blocks() -> None:
    assert tabwrite("a\tb\nccc\td\n", minwidth=6, padding=3) == "a     b\nccc   d\n"
    # A line without a tab ends the column block: the next block is aligned on its own.
    assert tabwrite("a:\tx\nlonger:\ty\nplain\nb:\tz\n", minwidth=0, padding=2) == (
        "a:       x\nlonger:  y\nplain\nb:  z\n"
    )


def test_empty_list_messages() -> None:
    msg = format_table("Service", [], wide=False, all_namespaces=False, now=NOW, namespace="prod")
    assert isinstance(msg, NoResources)
    assert msg == "No resources found in prod namespace."
    assert format_table("Pod", [], wide=False, all_namespaces=True, now=NOW) == "No resources found"
    assert format_table("Node", [], wide=False, all_namespaces=False, now=NOW) == "No resources found"
    assert not isinstance(
        format_table("Node", [Node(metadata=ObjectMeta(name="n"))], wide=False, all_namespaces=False, now=NOW),
        NoResources,
    )


def _svc(type_: str, **spec: Any) -> Service:
    s = Service(metadata=ObjectMeta(name="s"))
    s.spec.type = type_
    for k, v in spec.items():
        setattr(s.spec, k, v)
    return s


def test_service_external_ip_variants() -> None:
    assert service_external_ip(_svc("ClusterIP")) == "<none>"
    assert service_external_ip(_svc("NodePort", externalIPs=["1.2.3.4", "5.6.7.8"])) == "1.2.3.4,5.6.7.8"
    assert service_external_ip(_svc("LoadBalancer")) == "<pending>"
    lb = _svc("LoadBalancer")
    lb.status = ServiceStatus(
        loadBalancer=LoadBalancerStatus(
            ingress=[LoadBalancerIngress(ip="203.0.113.7"), LoadBalancerIngress(hostname="lb.example.com")]
        )
    )
    assert service_external_ip(lb) == "203.0.113.7,lb.example.com"
    lb.spec.externalIPs = ["10.0.0.9"]
    assert service_external_ip(lb) == "203.0.113.7,lb.example.com,10.0.0.9"
    assert service_external_ip(_svc("ExternalName", externalName="db.example.com")) == "db.example.com"


def test_service_row_cells() -> None:
    (svc,) = load_text(
        """
apiVersion: v1
kind: Service
metadata: {name: ingress-nginx, namespace: ingress-nginx, creationTimestamp: "2024-05-01T10:00:00Z"}
spec:
  type: NodePort
  clusterIP: 10.254.189.164
  ports: [{port: 80, nodePort: 30799}, {port: 443, nodePort: 31522}, {port: 53, protocol: UDP}]
"""
    )
    out = format_table("Service", [svc], wide=True, all_namespaces=False, now=NOW)
    assert out.splitlines()[1].split() == [
        "ingress-nginx",
        "NodePort",
        "10.254.189.164",
        "<none>",
        "80:30799/TCP,443:31522/TCP,53/UDP",
        "120m",
        "<none>",
    ]
    headless = _svc("ClusterIP", clusterIP="None")
    row = format_table("Service", [headless], wide=False, all_namespaces=False, now=NOW).splitlines()[1]
    assert row.split() == ["s", "ClusterIP", "None", "<none>", "<none>", "<unknown>"]


def test_endpoints_abbreviation() -> None:
    ep = Endpoints(
        metadata=ObjectMeta(name="web"),
        subsets=[
            EndpointSubset(
                addresses=[EndpointAddress(ip=f"10.0.0.{i}") for i in range(1, 6)],
                ports=[EndpointPort(port=80, name="http"), EndpointPort(port=443, name="https")],
            )
        ],
    )
    assert format_endpoints(ep) == "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 7 more..."
    assert format_endpoints(ep, {"https"}) == "10.0.0.1:443,10.0.0.2:443,10.0.0.3:443 + 2 more..."
    assert format_endpoints(Endpoints(metadata=ObjectMeta(name="e"))) == "<none>"
    headless = Endpoints(subsets=[EndpointSubset(addresses=[EndpointAddress(ip="fd00::1")])])
    assert format_endpoints(headless) == "fd00::1"
    v6 = Endpoints(subsets=[EndpointSubset(addresses=[EndpointAddress(ip="fd00::1")], ports=[EndpointPort(port=80)])])
    assert format_endpoints(v6) == "[fd00::1]:80"


def test_endpointslice_table() -> None:
    (eps,) = load_text(
        """
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc12, creationTimestamp: "2024-05-01T11:00:00Z"}
addressType: IPv4
ports: [{name: http, port: 80}, {name: a, port: 81}, {name: b, port: 82}, {name: c, port: 83}]
endpoints:
- addresses: [10.0.0.1]
- addresses: [10.0.0.2]
"""
    )
    out = format_table("EndpointSlice", [eps], wide=False, all_namespaces=False, now=NOW)
    assert out.splitlines() == [
        "NAME        ADDRESSTYPE   PORTS                  ENDPOINTS           AGE",
        "web-abc12   IPv4          80,81,82 + 1 more...   10.0.0.1,10.0.0.2   60m",
    ]
    empty = EndpointSlice(metadata=ObjectMeta(name="e"))
    row = format_table("EndpointSlice", [empty], wide=False, all_namespaces=False, now=NOW).splitlines()[1]
    assert row.split() == ["e", "IPv4", "<unset>", "<unset>", "<unknown>"]


def test_node_status_roles_and_unschedulable() -> None:
    (node,) = load_text(
        """
apiVersion: v1
kind: Node
metadata:
  name: cp
  creationTimestamp: "2024-04-28T12:00:00Z"
  labels: {node-role.kubernetes.io/control-plane: "", kubernetes.io/role: ingress}
spec: {unschedulable: true}
status:
  conditions: [{type: Ready, status: "False"}]
  nodeInfo: {kubeletVersion: v1.30.0}
"""
    )
    row = format_table("Node", [node], wide=False, all_namespaces=True, now=NOW).splitlines()[1]
    assert row.split() == ["cp", "NotReady,SchedulingDisabled", "control-plane,ingress", "3d", "v1.30.0"]
    bare = Node(metadata=ObjectMeta(name="n"))
    row = format_table("Node", [bare], wide=True, all_namespaces=False, now=NOW).splitlines()[1]
    assert row.split()[:2] == ["n", "Unknown"]
    # VERSION is empty here, so split() drops it.
    assert row.split()[4:] == ["<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"]


def test_other_kinds() -> None:
    objs = load_text(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, creationTimestamp: "2024-05-01T11:00:00Z"}
spec:
  podSelector:
    matchLabels: {tier: db}
    matchExpressions: [{key: env, operator: In, values: [prod, dev]}, {key: legacy, operator: DoesNotExist}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: all, creationTimestamp: "2024-05-01T11:00:00Z"}
spec: {podSelector: {}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, creationTimestamp: "2024-05-01T11:00:00Z"}
data: {a: "1", b: "2"}
binaryData: {c: AA==}
---
apiVersion: v1
kind: Secret
metadata: {name: db-pass, creationTimestamp: "2024-05-01T11:00:00Z"}
data: {password: cGFzcw==}
stringData: {user: root}
---
apiVersion: v1
kind: Namespace
metadata: {name: prod, creationTimestamp: "2024-05-01T11:00:00Z"}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web-5d8f, creationTimestamp: "2024-05-01T11:00:00Z"}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template: {spec: {containers: [{name: web, image: nginx}, {name: log, image: busybox}]}}
status: {replicas: 3, readyReplicas: 2}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: many, creationTimestamp: "2024-05-01T11:00:00Z"}
spec:
  ingressClassName: nginx
  tls: [{hosts: [a.example]}]
  rules: [{host: a.example}, {host: b.example}, {host: c.example}, {host: d.example}, {}]
status: {loadBalancer: {ingress: [{ip: 192.168.0.21}, {ip: 192.168.0.22}]}}
"""
    )
    rows = {o.name: format_table(o.kind, [o], wide=True, all_namespaces=False, now=NOW).splitlines() for o in objs}
    assert rows["db"][0].split() == ["NAME", "POD-SELECTOR", "AGE"]
    assert rows["db"][1].split("   ")[1].strip() == "env in (dev,prod),!legacy,tier=db"
    assert rows["all"][1].split() == ["all", "<none>", "60m"]
    assert rows["cfg"][1].split() == ["cfg", "3", "60m"]
    assert rows["db-pass"][1].split() == ["db-pass", "Opaque", "2", "60m"]
    assert rows["prod"][1].split() == ["prod", "Active", "60m"]
    assert rows["web-5d8f"][1].split() == ["web-5d8f", "3", "3", "2", "60m", "web,log", "nginx,busybox", "app=web"]
    assert rows["many"][0].split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert "a.example,b.example,c.example + 2 more..." in rows["many"][1]
    assert "192.168.0.21,192.168.0.22" in rows["many"][1]
    assert "80, 443" in rows["many"][1]


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(KeyError):
        format_table("PodTemplate", [Pod()], wide=False, all_namespaces=False, now=NOW)


def test_container_status_defaults_are_zero() -> None:
    assert ContainerStatus(name="x").restartCount == 0
