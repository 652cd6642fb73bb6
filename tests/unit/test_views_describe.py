"""kubectl describe pages: sections, alignment and the endpoint summaries."""

from __future__ import annotations

from datetime import UTC, datetime

from kins.api.core import Pod, Service
from kins.api.discovery import EndpointSlice
from kins.api.load import load_text
from kins.views import EventRow, describe_pod, describe_service

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def row(label: str, value: str, width: int) -> str:
    """A describe line: the label padded to the page's label column width."""
    return f"{label:<{width}}{value}"


LB = """
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: prod
  annotations: {team: net, kubectl.kubernetes.io/last-applied-configuration: "{}"}
spec:
  type: LoadBalancer
  selector: {app: web}
  clusterIP: 10.254.7.7
  externalTrafficPolicy: Local
  healthCheckNodePort: 31898
  loadBalancerSourceRanges: [10.0.0.0/8]
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080, appProtocol: http}]
status:
  loadBalancer:
    ingress: [{ip: 203.0.113.7, ipMode: VIP}, {hostname: lb.example.com}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: prod, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [172.30.76.2], conditions: {ready: true}}
- {addresses: [172.30.76.3], conditions: {ready: false}}
- {addresses: [172.30.9.2]}
"""


def test_describe_load_balancer_service_with_slices_and_events() -> None:
    svc, eps = load_text(LB)
    assert isinstance(svc, Service) and isinstance(eps, EndpointSlice)
    events = [
        EventRow("Normal", "EnsuringLoadBalancer", "Ensuring load balancer", "service-controller",
              "2024-05-01T11:58:48Z"),
        EventRow("Warning", "SyncFailed", "retrying ", "service-controller", "2024-05-01T10:00:00Z",
              "2024-05-01T11:55:00Z", count=3),
    ]  # fmt: skip
    text = describe_service(svc, [eps], events, now=NOW)
    lines = text.splitlines()
    assert lines[:4] == [
        row("Name:", "web", 29),
        row("Namespace:", "prod", 29),
        row("Labels:", "<none>", 29),
        row("Annotations:", "team: net", 29),
    ]
    assert row("IP Families:", "<none>", 29) in lines
    assert row("IPs:", "10.254.7.7", 29) in lines
    assert row("LoadBalancer Ingress:", "203.0.113.7 (VIP), lb.example.com", 29) in lines
    assert row("Port:", "http  80/TCP", 29) in lines
    assert row("TargetPort:", "http/TCP", 29) in lines
    assert row("AppProtocol:", "http", 29) in lines
    assert row("NodePort:", "http  30080/TCP", 29) in lines
    # The not-ready endpoint is left out.
    assert row("Endpoints:", "172.30.76.2:8080,172.30.9.2:8080", 29) in lines
    assert row("External Traffic Policy:", "Local", 29) in lines
    assert row("HealthCheck NodePort:", "31898", 29) in lines
    assert row("LoadBalancer Source Ranges:", "10.0.0.0/8", 29) in lines
    # The Events table is aligned on its own: "Events:" has no tab, so it starts a new block.
    assert lines[-5:] == [
        "Events:",
        "  Type     Reason                Age                From                Message",
        "  ----     ------                ----               ----                -------",
        "  Normal   EnsuringLoadBalancer  72s                service-controller  Ensuring load balancer",
        "  Warning  SyncFailed            5m (x3 over 120m)  service-controller  retrying",
    ]


def test_describe_service_without_endpoints_or_events() -> None:
    svc, _ = load_text(LB)
    assert isinstance(svc, Service)
    text = describe_service(svc, None, None, now=NOW)
    assert row("Endpoints:", "<none>", 29) in text.splitlines()
    assert "Events" not in text


def test_describe_pod_states_and_terminating() -> None:
    (pod,) = load_text(
        """
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: prod
  deletionTimestamp: "2024-05-01T11:59:30Z"
  deletionGracePeriodSeconds: 30
spec:
  containers:
  - name: web
    image: nginx
    ports: [{containerPort: 80, name: http}, {containerPort: 443, name: https}]
    env: [{name: MODE, value: prod}, {name: PASS, valueFrom: {secretKeyRef: {name: db, key: password}}}]
    readinessProbe: {httpGet: {path: /healthz, port: 80}, periodSeconds: 5}
status:
  phase: Running
  podIP: 172.30.76.9
  containerStatuses:
  - name: web
    ready: false
    restartCount: 2
    state: {waiting: {reason: CrashLoopBackOff}}
    lastState: {terminated: {exitCode: 1, reason: Error, startedAt: "2024-05-01T11:50:00Z",
                             finishedAt: "2024-05-01T11:51:00Z"}}
"""
    )
    assert isinstance(pod, Pod)
    lines = describe_pod(pod, now=NOW).splitlines()
    assert row("Node:", "<none>", 27) in lines
    assert row("Status:", "Terminating (lasts 30s)", 27) in lines
    assert row("Termination Grace Period:", "30s", 27) in lines
    text = "\n".join(lines)
    assert "    Ports:          80/TCP (http), 443/TCP (https)" in text
    assert "    State:          Waiting\n      Reason:       CrashLoopBackOff" in text
    assert "    Last State:     Terminated\n      Reason:       Error\n      Exit Code:    1" in text
    assert "      Finished:     Wed, 01 May 2024 11:51:00 +0000" in text
    assert "    Restart Count:  2" in text
    assert "    Readiness:      http-get http://:80/healthz delay=0s timeout=1s period=5s #success=1 #failure=3" in text
    assert "      MODE:      prod\n      PASS:      <set to the key 'password' in secret 'db'>  Optional: false" in text
    assert "QoS Class:" in text and "BestEffort" in text
