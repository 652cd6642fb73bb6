"""A service-backed APIService's Available condition follows its Service's endpoints (the
aggregator's availability controller), from metrics-server's own manifest."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, cast

import yaml_rs
from kubectl_bin import NEWEST, tls_api

from kins.api.apiregistration import APIService
from kins.api.core import EndpointAddress, EndpointPort, Endpoints, EndpointSubset
from kins.api.load import to_object
from kins.api.meta import ObjectMeta
from kins.control.apiservice import APIServiceAvailability
from kins.control.base import run_until_stable
from kins.control.endpoints import EndpointsController
from kins.store.memory import MemoryStore

MANIFEST = Path(__file__).parents[1] / "data" / "manifests" / "metrics-server-components.yaml"


def _doc(kind: str) -> dict[str, Any]:
    docs = cast(list[dict[str, Any]], yaml_rs.loads(MANIFEST.read_text(), parse_datetime=False))
    return next(d for d in docs if d and d["kind"] == kind)


def _available(store: MemoryStore) -> tuple[str, str, str]:
    svc = store.get("APIService", None, "v1beta1.metrics.k8s.io")
    assert isinstance(svc, APIService) and svc.status is not None
    (c,) = [c for c in svc.status.conditions or [] if c.type == "Available"]
    return c.status, c.reason or "", c.message or ""


def _endpoints(ready: bool) -> Endpoints:
    addr = [EndpointAddress(ip="10.244.1.5")]
    subset = EndpointSubset(
        addresses=addr if ready else None,
        notReadyAddresses=None if ready else addr,
        ports=[EndpointPort(port=10250, name="https")],
    )
    return Endpoints(metadata=ObjectMeta(name="metrics-server", namespace="kube-system"), subsets=[subset])


def test_available_follows_the_services_ready_endpoints() -> None:
    store = MemoryStore(history=100)
    ctl = APIServiceAvailability(store)
    svc = to_object(_doc("APIService"), "test")
    store.create(svc)
    run_until_stable(store, [ctl])
    assert _available(store) == ("False", "ServiceNotFound", 'service/metrics-server in "kube-system" is not present')
    store.create(to_object(_doc("Service"), "test"))
    run_until_stable(store, [ctl])
    assert _available(store)[:2] == ("False", "MissingEndpoints")
    store.create(_endpoints(ready=False))
    run_until_stable(store, [ctl])
    status, reason, message = _available(store)
    assert (status, reason) == ("False", "MissingEndpoints")
    assert "have no addresses with port name 'https'" in message
    cur = store.get("Endpoints", "kube-system", "metrics-server")
    store.update(_endpoints(ready=True), check_rv=False) if cur else None
    run_until_stable(store, [ctl])
    assert _available(store) == ("True", "Passed", "all checks passed")
    store.delete("Service", "kube-system", "metrics-server")
    run_until_stable(store, [ctl])
    assert _available(store)[:2] == ("False", "ServiceNotFound")


def test_a_group_kins_does_not_serve_stays_unavailable() -> None:
    store = MemoryStore(history=100)
    doc = _doc("APIService")
    doc = {**doc, "metadata": {"name": "v1.custom.example.com"}, "spec": {**doc["spec"], "group": "custom.example.com"}}
    store.create(to_object(doc, "test"))
    store.create(to_object(_doc("Service"), "test"))
    store.create(_endpoints(ready=True))
    ctl = APIServiceAvailability(store)
    run_until_stable(store, [ctl])
    svc = store.get("APIService", None, "v1.custom.example.com")
    assert isinstance(svc, APIService) and svc.status is not None
    (c,) = svc.status.conditions or []
    assert (c.status, c.reason) == ("False", "ServiceNotProxied")


def test_kubectl_sees_the_condition_the_controllers_keep(tmp_path: Path) -> None:
    """Applied through the API (defaulting gives the first condition); the cluster's controllers
    (endpoints, then availability) turn it True once a ready pod backs the Service."""
    store = MemoryStore(history=100)
    with tls_api(store, tmp_path / "state") as api:
        k = api.kubectl(NEWEST)
        docs = [_doc("Service"), _doc("APIService")]
        k("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs))
        row = k("get", "apiservice", "v1beta1.metrics.k8s.io", "--no-headers").split()
        assert row[1:3] == ["kube-system/metrics-server", "False"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "metrics-server-1",
                "namespace": "kube-system",
                "labels": {"k8s-app": "metrics-server"},
            },
            "spec": {**_doc("Deployment")["spec"]["template"]["spec"], "nodeName": "node1"},
            "status": {"phase": "Running", "podIP": "10.244.1.5", "conditions": [{"type": "Ready", "status": "True"}]},
        }
        store.create(to_object(pod, "test"))
        run_until_stable(store, [EndpointsController(store, random.Random(1)), APIServiceAvailability(store)])
        row = k("get", "apiservice", "v1beta1.metrics.k8s.io", "--no-headers").split()
        assert row[1:3] == ["kube-system/metrics-server", "True"]
        # Re-applying the manifest keeps the controller's condition.
        k("apply", "-f", "-", input=json.dumps(_doc("APIService")))
        assert k("get", "apiservice", "v1beta1.metrics.k8s.io", "--no-headers").split()[2] == "True"
