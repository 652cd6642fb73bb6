"""metrics-server's own install manifest (components.yaml, v0.9.0), applied unmodified with
kubectl to a bare cluster: the Deployment becomes Ready (its HTTPS /readyz and /livez probes on
--secure-port, the emptyDir at /tmp), the APIService v1beta1.metrics.k8s.io reports Available
once its Service has a ready endpoint, and `kubectl top` works."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from e2e_helpers import Cluster, poll, running_cluster
from manifest_helpers import apply_manifest, kubectl

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def installed() -> Iterator[Cluster]:
    with running_cluster(apps=False) as c:
        out = apply_manifest(c, "metrics-server-components.yaml")
        assert "clusterrole.rbac.authorization.k8s.io/system:metrics-server created" in out
        yield c


def test_deployment_ready_apiservice_available_and_top_works(installed: Cluster) -> None:
    c = installed
    k = kubectl(c)
    # readinessProbe: initialDelaySeconds 20, then every 10 s.
    (pod,) = c.wait_ready("metrics-server", 1, timeout=120, ns="kube-system")

    def available() -> dict[str, str]:
        svc = json.loads(k("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "json"))
        (cond,) = [x for x in svc["status"]["conditions"] if x["type"] == "Available"]
        assert cond["status"] == "True", cond
        return cond

    cond = poll(available, 30, "the APIService Available", interval=0.5)
    assert (cond["reason"], cond["message"]) == ("Passed", "all checks passed")
    row = k("get", "apiservice", "v1beta1.metrics.k8s.io", "--no-headers").split()
    assert row[:3] == ["v1beta1.metrics.k8s.io", "kube-system/metrics-server", "True"]

    def top() -> list[str]:
        out = k("top", "pods", "-A", "--no-headers")
        rows = [line.split() for line in out.splitlines()]
        mine = [r for r in rows if r[:2] == ["kube-system", pod.name]]
        assert mine and mine[0][3].endswith("Mi"), out
        return mine[0]

    poll(top, 60, "metrics-server's own pod in kubectl top pods -A", interval=1.0)
    assert "NAME" in k("top", "nodes")
    # Deleting the Deployment takes the endpoints away: the APIService says so.
    k("delete", "deployment", "-n", "kube-system", "metrics-server")

    def unavailable() -> bool:
        svc = json.loads(k("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "json"))
        (cond,) = [x for x in svc["status"]["conditions"] if x["type"] == "Available"]
        assert (cond["status"], cond["reason"]) == ("False", "MissingEndpoints"), cond
        return True

    poll(unavailable, 60, "the APIService unavailable without endpoints", interval=0.5)
