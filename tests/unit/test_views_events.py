"""Events in the views: ``get events`` tables and the describe pages' Events sections (golden)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kins.api.apps import Deployment, ReplicaSet
from kins.api.core import Node, Pod
from kins.api.load import load_text
from kins.api.meta import Object
from kins.views import describe_deployment, describe_node, describe_pod, events_for, format_table

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "views"
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

OBJECTS = load_text(
    """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default, uid: d-1, creationTimestamp: "2024-05-01T11:50:00Z", generation: 1,
  labels: {app: web}, annotations: {deployment.kubernetes.io/revision: "1"}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.39
        args: [netexec, --http-port=8080]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {port: 8080, path: /}}
status:
  observedGeneration: 1
  replicas: 2
  updatedReplicas: 2
  readyReplicas: 2
  availableReplicas: 2
  conditions:
  - {type: Available, status: "True", reason: MinimumReplicasAvailable, message: Deployment has minimum availability.}
  - {type: Progressing, status: "True", reason: NewReplicaSetAvailable,
     message: ReplicaSet "web-7cc6866dcf" has successfully progressed.}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-7cc6866dcf
  namespace: default
  labels: {app: web, pod-template-hash: 7cc6866dcf}
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: d-1, controller: true}]
spec:
  replicas: 2
  selector: {matchLabels: {app: web, pod-template-hash: 7cc6866dcf}}
  template:
    metadata: {labels: {app: web, pod-template-hash: 7cc6866dcf}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.39
        args: [netexec, --http-port=8080]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {port: 8080, path: /}}
status: {replicas: 2, readyReplicas: 2, availableReplicas: 2}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-5d4f8c9b7
  namespace: default
  labels: {app: web, pod-template-hash: 5d4f8c9b7}
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: d-1, controller: true}]
spec:
  replicas: 1
  selector: {matchLabels: {app: web, pod-template-hash: 5d4f8c9b7}}
  template:
    metadata: {labels: {app: web, pod-template-hash: 5d4f8c9b7}}
    spec: {containers: [{name: web, image: "agnhost:2.38"}]}
status: {replicas: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: web-7cc6866dcf-mt56v, namespace: default, uid: p-1, labels: {app: web}}
spec: {nodeName: node1, containers: [{name: web, image: registry.k8s.io/e2e-test-images/agnhost:2.39}]}
status: {phase: Running, hostIP: 192.168.0.21, podIP: 172.30.76.2}
---
apiVersion: v1
kind: Node
metadata: {name: node1, uid: n-1, creationTimestamp: "2024-05-01T11:40:00Z"}
spec: {podCIDR: 172.30.76.0/24}
status: {addresses: [{type: InternalIP, address: 192.168.0.21}]}
"""
    + "".join(
        f"""---
apiVersion: v1
kind: Event
metadata: {{name: {name}, namespace: {ns}, resourceVersion: "{rv}"}}
involvedObject: {{kind: {kind}, namespace: {ins}, name: {obj}, uid: {uid}{field}}}
reason: {reason}
message: '{message}'
source: {{component: {component}{host}}}
firstTimestamp: "{first}"
lastTimestamp: "{last}"
count: {count}
type: {type}
reportingComponent: {component}
"""
        for (name, ns, rv, kind, ins, obj, uid, field, reason, message, component, host, first, last, count, type) in [
            (
                "node1.17cbd1",
                "default",
                1,
                "Node",
                "''",
                "node1",
                "n-1",
                "",
                "RegisteredNode",
                "Node node1 event: Registered Node node1 in Controller",
                "node-controller",
                "",
                "2024-05-01T11:40:02Z",
                "2024-05-01T11:40:02Z",
                1,
                "Normal",
            ),
            (
                "web.17cbd2",
                "default",
                2,
                "Deployment",
                "default",
                "web",
                "d-1",
                "",
                "ScalingReplicaSet",
                "Scaled up replica set web-7cc6866dcf from 0 to 2",
                "deployment-controller",
                "",
                "2024-05-01T11:50:00Z",
                "2024-05-01T11:50:00Z",
                1,
                "Normal",
            ),
            (
                "web-7cc6866dcf.17cbd3",
                "default",
                3,
                "ReplicaSet",
                "default",
                "web-7cc6866dcf",
                "r-1",
                "",
                "SuccessfulCreate",
                "Created pod: web-7cc6866dcf-mt56v",
                "replicaset-controller",
                "",
                "2024-05-01T11:50:00Z",
                "2024-05-01T11:50:00Z",
                1,
                "Normal",
            ),
            (
                "web-7cc6866dcf-mt56v.17cbd4",
                "default",
                4,
                "Pod",
                "default",
                "web-7cc6866dcf-mt56v",
                "p-1",
                "",
                "Scheduled",
                "Successfully assigned default/web-7cc6866dcf-mt56v to node1",
                "default-scheduler",
                "",
                "2024-05-01T11:50:01Z",
                "2024-05-01T11:50:01Z",
                1,
                "Normal",
            ),
            (
                "web-7cc6866dcf-mt56v.17cbd6",
                "default",
                6,
                "Pod",
                "default",
                "web-7cc6866dcf-mt56v",
                "p-1",
                ", fieldPath: 'spec.containers{web}'",
                "Unhealthy",
                'Readiness probe failed: Get "http://172.30.76.2:8080/": dial tcp 172.30.76.2:8080: connect: '
                "connection refused",
                "kubelet",
                ", host: node1",
                "2024-05-01T11:50:02Z",
                "2024-05-01T11:58:30Z",
                7,
                "Warning",
            ),
            (
                "web-7cc6866dcf-mt56v.17cbd5",
                "default",
                5,
                "Pod",
                "default",
                "web-7cc6866dcf-mt56v",
                "p-1",
                ", fieldPath: 'spec.containers{web}'",
                "Started",
                "Started container web",
                "kubelet",
                ", host: node1",
                "2024-05-01T11:50:02Z",
                "2024-05-01T11:50:02Z",
                1,
                "Normal",
            ),
            (
                "old-pod.17cbd7",
                "default",
                7,
                "Pod",
                "default",
                "web-7cc6866dcf-mt56v",
                "p-0",
                "",
                "Killing",
                "Stopping container web",
                "kubelet",
                ", host: node2",
                "2024-05-01T11:45:00Z",
                "2024-05-01T11:45:00Z",
                1,
                "Normal",
            ),
            (
                "bad.17cbd8",
                "prod",
                8,
                "Pod",
                "prod",
                "bad",
                "p-9",
                ", fieldPath: 'spec.containers{bad}'",
                "Failed",
                "Error: ErrImagePull",
                "kubelet",
                ", host: node2",
                "2024-05-01T11:59:00Z",
                "2024-05-01T11:59:00Z",
                1,
                "Warning",
            ),
        ]
    )
)


def of(kind: str, namespace: str | None = "default") -> list[Object]:
    objs = [o for o in OBJECTS if o.kind == kind and (namespace is None or o.namespace == namespace)]
    return sorted(objs, key=lambda o: (o.namespace, o.name))


def one(cls: type, name: str) -> Object:
    return next(o for o in OBJECTS if isinstance(o, cls) and o.name == name)


def _deployment() -> str:
    d = one(Deployment, "web")
    assert isinstance(d, Deployment)
    sets = [o for o in OBJECTS if isinstance(o, ReplicaSet)]
    return describe_deployment(d, sets, events_for(d, of("Event", None)), now=NOW)


def _pod() -> str:
    p = one(Pod, "web-7cc6866dcf-mt56v")
    assert isinstance(p, Pod)
    return describe_pod(p, events_for(p, of("Event", None)), now=NOW)


def _node() -> str:
    n = one(Node, "node1")
    assert isinstance(n, Node)
    return describe_node(n, events_for(n, of("Event", None)), now=NOW)


CASES: dict[str, Callable[[], str]] = {
    "get-events.txt": lambda: format_table("Event", of("Event"), wide=False, all_namespaces=False, now=NOW),
    "get-events-A-wide.txt": lambda: format_table("Event", of("Event", None), wide=True, all_namespaces=True, now=NOW),
    "describe-deploy-web.txt": _deployment,
    "describe-po-with-events.txt": _pod,
    "describe-node-with-events.txt": _node,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    got = CASES[name]()
    path = GOLDEN / name
    if os.environ.get("KINS_UPDATE_GOLDEN") == "1":
        path.write_text(got)
    assert got == path.read_text()


def test_get_events_columns_and_cells() -> None:
    text = format_table("Event", of("Event"), wide=False, all_namespaces=False, now=NOW)
    lines = text.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    unhealthy = next(line for line in lines if "Unhealthy" in line)
    assert unhealthy.split()[:4] == ["90s", "Warning", "Unhealthy", "pod/web-7cc6866dcf-mt56v"]
    assert "bad" not in text  # another namespace


def test_get_events_empty_is_kubectls_note() -> None:
    assert format_table("Event", [], wide=False, all_namespaces=False, now=NOW) == (
        "No resources found in default namespace."
    )


def test_events_for_matches_the_object_and_sorts_by_last_seen() -> None:
    p = one(Pod, "web-7cc6866dcf-mt56v")
    rows = events_for(p, OBJECTS)
    # The Killing event is about an earlier pod of the same name (another uid): not this one's.
    assert [r.reason for r in rows] == ["Scheduled", "Started", "Unhealthy"]
    unhealthy = rows[-1]
    assert unhealthy.count == 7 and unhealthy.source == "kubelet"


def test_describe_pod_without_events_says_none() -> None:
    p = one(Pod, "web-7cc6866dcf-mt56v")
    assert isinstance(p, Pod)
    assert describe_pod(p, [], now=NOW).splitlines()[-1].split() == ["Events:", "<none>"]
