"""`kins up --no-workloads` keeps the cluster's add-ons: pods resolve names through cluster DNS."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from e2e_helpers import Cluster, poll, running_cluster

pytestmark = pytest.mark.root

PROBE = """
apiVersion: v1
kind: Pod
metadata: {name: probe}
spec:
  containers:
  - {name: sleep, image: busybox, command: [sleep, "600"]}
"""


@pytest.fixture(scope="module")
def addons_cluster() -> Iterator[Cluster]:
    with running_cluster(apps=False, addons=True) as c:
        yield c


def test_no_workloads_runs_dns_and_the_ingress_controller_only(addons_cluster: Cluster) -> None:
    c = addons_cluster
    # `kins up` waited for every pod it started: they are ready now.
    assert len(c.ready_pods("kube-dns", "kube-system")) == 2
    assert len(c.ready_pods("nginx-ingress-controller", "ingress-nginx")) == 1
    assert c.pods() == []  # none of the article's workloads
    assert [i.name for i in c.client.list("Ingress", all_namespaces=True)] == []


def test_a_pod_resolves_names_through_cluster_dns(addons_cluster: Cluster) -> None:
    c = addons_cluster
    c.apply_text(PROBE)
    c.wait_ready("probe", 1)
    poll(lambda: len(c.endpoint_ips("kube-dns", "kube-system")) == 2, 15, "kube-dns's 2 endpoints")
    t0 = time.monotonic()
    res = c.exec("probe", "getent", "hosts", "kubernetes.default.svc.cluster.local", timeout=20)
    # A resolver that gets no answer retries for 5 s per try: an answer at once is the DNS's.
    assert time.monotonic() - t0 < 5
    assert res.stdout.split()[0] == c.service("kubernetes").spec.clusterIP
    short = c.exec("probe", "getent", "hosts", "kube-dns.kube-system").stdout.split()
    assert short[0] == c.service("kube-dns", "kube-system").spec.clusterIP
