"""ServiceAccounts on a live cluster: a pod's projected token (``kube-api-access-*``) lets its
process do what its Role allows and nothing more, and the cluster's DNS and ingress controller
pods serve with their own ServiceAccounts instead of the admin token."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from e2e_helpers import Cluster, poll
from outside_helpers import HTTP_NODEPORT, NODE1, full_cluster, http_batch

from kins.api.core import ConfigMap, Event, Pod

pytestmark = pytest.mark.root

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
ZONE = "cluster.local"

READER = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader-reads-pods}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {kind: ServiceAccount, name: reader}
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  serviceAccountName: reader
  containers:
  - name: main
    image: busybox
    command: [sleep, "3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: no-token}
spec:
  automountServiceAccountToken: false
  containers:
  - name: main
    image: busybox
    command: [sleep, "3600"]
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with full_cluster() as c:
        c.apply_text(READER)
        c.wait_ready("reader", 1, timeout=60)
        c.wait_ready("no-token", 1, timeout=60)
        yield c


def _api(c: Cluster, pod: str, path: str) -> tuple[int, dict[str, object]]:
    """GET ``path`` from inside ``pod`` on the API's socket, with the pod's projected token."""
    sock = c.state / "api.sock"
    script = (
        f'curl -sS -m 5 --unix-socket {sock} -H "Authorization: Bearer $(cat {SA_DIR}/token)" '
        f'-w "\\n%{{http_code}}" http://kins{path}'
    )
    out = c.exec(pod, "sh", "-c", script).stdout
    body, _, code = out.rpartition("\n")
    return int(code), json.loads(body)


def test_the_pod_gets_the_api_access_volume(cluster: Cluster) -> None:
    pod = cluster.client.get("Pod", "default", "reader")
    assert isinstance(pod, Pod)
    assert pod.spec.serviceAccountName == "reader" and pod.spec.serviceAccount == "reader"
    (vol,) = [v for v in pod.spec.volumes or [] if v.name.startswith("kube-api-access-")]
    assert vol.projected is not None
    mounts = pod.spec.containers[0].volumeMounts or []
    assert [(m.name, m.mountPath, m.readOnly) for m in mounts] == [(vol.name, SA_DIR, True)]
    # The files: the namespace, the API's certificate (kube-root-ca.crt) and a JWT naming the pod.
    assert cluster.exec("reader", "cat", f"{SA_DIR}/namespace").stdout == "default"
    root_ca = cluster.client.get("ConfigMap", "default", "kube-root-ca.crt")
    assert isinstance(root_ca, ConfigMap)
    ca = cluster.exec("reader", "cat", f"{SA_DIR}/ca.crt").stdout
    assert ca == (cluster.state / "apiserver.crt").read_text() == (root_ca.data or {})["ca.crt"]
    token = cluster.exec("reader", "cat", f"{SA_DIR}/token").stdout
    claims = json.loads(_b64decode(token.split(".")[1]))
    assert claims["sub"] == "system:serviceaccount:default:reader"
    assert claims["kubernetes.io"]["pod"] == {"name": "reader", "uid": pod.metadata.uid}
    assert claims["exp"] - claims["iat"] == 3607
    # A pod that opts out has neither the volume nor the files.
    other = cluster.client.get("Pod", "default", "no-token")
    assert isinstance(other, Pod) and not other.spec.volumes
    assert cluster.exec("no-token", "ls", SA_DIR, check=False).returncode != 0


def _b64decode(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_the_token_allows_what_the_role_allows_and_nothing_else(cluster: Cluster) -> None:
    code, pods = _api(cluster, "reader", "/api/v1/namespaces/default/pods")
    assert code == 200 and pods["kind"] == "PodList"
    assert "reader" in {p["metadata"]["name"] for p in pods["items"]}  # type: ignore[attr-defined]
    code, status = _api(cluster, "reader", "/api/v1/namespaces/default/services")
    assert code == 403 and status["reason"] == "Forbidden"
    assert status["message"] == (
        'services is forbidden: User "system:serviceaccount:default:reader" cannot list resource "services" '
        'in API group "" in the namespace "default"'
    )
    code, status = _api(cluster, "reader", "/api/v1/namespaces/kube-system/pods")
    assert code == 403
    # Deleting the pod's binding takes the right away at once.
    cluster.kins("delete", "rolebinding", "reader-reads-pods")
    code, _ = _api(cluster, "reader", "/api/v1/namespaces/default/pods")
    assert code == 403


def test_a_pod_waits_for_its_service_account(cluster: Cluster) -> None:
    cluster.apply_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: early}\nspec:\n  serviceAccountName: late-sa\n"
        "  containers: [{name: main, image: busybox, command: [sleep, '3600']}]\n"
    )

    def failed_mount() -> Event | None:
        evs = [e for e in cluster.client.list("Event", "default") if isinstance(e, Event)]
        return next((e for e in evs if e.involvedObject.name == "early" and e.reason == "FailedMount"), None)

    ev = poll(failed_mount, 20, "a FailedMount event of pod early")
    assert ev.type == "Warning"
    assert re.fullmatch(
        r"Unable to attach or mount volumes: "
        r'MountVolume\.SetUp failed for volume "kube-api-access-\w{5}" : failed to fetch token: .*'
        r'serviceaccounts "late-sa" not found',
        ev.message or "",
    ), ev.message
    pod = cluster.client.get("Pod", "default", "early")
    assert isinstance(pod, Pod) and (pod.status is None or pod.status.phase == "Pending")
    # Once the ServiceAccount exists, the kubelet's next try mounts the token and starts the pod.
    cluster.apply_text("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: late-sa}\n")
    cluster.wait_ready("early", 1, timeout=30)
    token = cluster.exec("early", "cat", f"{SA_DIR}/token").stdout
    assert json.loads(_b64decode(token.split(".")[1]))["sub"] == "system:serviceaccount:default:late-sa"


def test_dns_and_ingress_run_as_their_service_accounts(cluster: Cluster) -> None:
    dns = cluster.ready_pods("kube-dns", "kube-system")
    assert len(dns) == 2 and {p.spec.serviceAccountName for p in dns} == {"coredns"}
    (ing,) = cluster.ready_pods("nginx-ingress-controller", "ingress-nginx")
    assert ing.spec.serviceAccountName == "ingress-nginx"
    # DNS answers from what its ServiceAccount may list and watch.
    client = cluster.ready_pods("business-manager")[0].name
    out = cluster.exec(client, "dig", "+short", "@10.254.0.2", f"data-product.default.svc.{ZONE}").stdout
    assert out.strip() == "10.254.116.224"
    # The ingress controller reads Ingresses and Services and routes: the article's Ingress.
    poll(
        lambda: (
            http_batch(cluster, "client", [(NODE1, HTTP_NODEPORT, "business-manager.default", "GET", "/")])[0][0] == 200
        ),
        30,
        "business-manager.default through the ingress",
        interval=0.2,
    )
    # A Service created now reaches DNS through the coredns ServiceAccount's watch.
    cluster.apply_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: late}\nspec:\n  ports: [{port: 80}]\n"
        "  selector: {app: nothing}\n"
    )
    late_ip = cluster.service("late").spec.clusterIP

    def resolved() -> bool:
        got = cluster.exec(client, "dig", "+short", "@10.254.0.2", f"late.default.svc.{ZONE}").stdout.strip()
        return got == late_ip

    poll(resolved, 15, "late.default resolved", interval=0.3)
