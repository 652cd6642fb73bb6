"""Golden views of the reference article's cluster (tests/golden/views/cluster.yaml).

Set KINS_UPDATE_GOLDEN=1 to rewrite the expected files after an intended change.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kins.api.core import Endpoints, Node, Pod, Service
from kins.api.load import load_paths
from kins.api.meta import Object
from kins.views import describe_node, describe_pod, describe_service, format_table, to_json, to_yaml

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "views"
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
OBJECTS = load_paths([str(GOLDEN / "cluster.yaml")])


def of(kind: str, namespace: str | None = "default") -> list[Object]:
    """Objects of a kind in API order (namespace, then name), like a list call returns them."""
    objs = [o for o in OBJECTS if o.kind == kind and (namespace is None or o.namespace == namespace)]
    return sorted(objs, key=lambda o: (o.namespace, o.name))


def one(kind: str, name: str) -> Object:
    return next(o for o in OBJECTS if o.kind == kind and o.name == name)


def endpoints_for(svc: Object) -> Endpoints | None:
    for o in OBJECTS:
        if isinstance(o, Endpoints) and o.key == svc.key:
            return o
    return None


def _svc(name: str) -> Service:
    s = one("Service", name)
    assert isinstance(s, Service)
    return s


def _pod(name: str) -> Pod:
    p = one("Pod", name)
    assert isinstance(p, Pod)
    return p


def _node(name: str) -> Node:
    n = one("Node", name)
    assert isinstance(n, Node)
    return n


CASES: dict[str, Callable[[], str]] = {
    "get-po-wide.txt": lambda: format_table("Pod", of("Pod"), wide=True, all_namespaces=False, now=NOW),
    "get-po.txt": lambda: format_table("Pod", of("Pod"), wide=False, all_namespaces=False, now=NOW),
    "get-po-A.txt": lambda: format_table("Pod", of("Pod", None), wide=False, all_namespaces=True, now=NOW),
    "get-po-n-kube-system.txt": lambda: format_table(
        "Pod", of("Pod", "kube-system"), wide=False, all_namespaces=False, now=NOW
    ),
    "get-svc.txt": lambda: format_table("Service", of("Service"), wide=False, all_namespaces=False, now=NOW),
    "get-svc-A-wide.txt": lambda: format_table("Service", of("Service", None), wide=True, all_namespaces=True, now=NOW),
    "get-ep.txt": lambda: format_table("Endpoints", of("Endpoints"), wide=False, all_namespaces=False, now=NOW),
    "get-nodes-wide.txt": lambda: format_table("Node", of("Node", None), wide=True, all_namespaces=False, now=NOW),
    "get-deploy-wide.txt": lambda: format_table(
        "Deployment", of("Deployment"), wide=True, all_namespaces=False, now=NOW
    ),
    "get-ing.txt": lambda: format_table("Ingress", of("Ingress"), wide=False, all_namespaces=False, now=NOW),
    "describe-svc-ingress-nginx.txt": lambda: describe_service(
        _svc("ingress-nginx"), endpoints_for(_svc("ingress-nginx")), now=NOW
    ),
    "describe-svc-mysql.txt": lambda: describe_service(_svc("mysql"), endpoints_for(_svc("mysql")), now=NOW),
    "describe-po-data-product-6664c6dcb9-7sxnz.txt": lambda: describe_pod(
        _pod("data-product-6664c6dcb9-7sxnz"), now=NOW
    ),
    "describe-node-node1.txt": lambda: describe_node(_node("node1"), now=NOW),
    "get-svc-ingress-nginx.yaml": lambda: to_yaml([_svc("ingress-nginx")]),
    "get-svc-ingress-nginx.json": lambda: to_json([_svc("ingress-nginx")]),
    "get-ep-default.yaml": lambda: to_yaml(of("Endpoints")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    got = CASES[name]()
    path = GOLDEN / name
    if os.environ.get("KINS_UPDATE_GOLDEN") == "1":
        path.write_text(got)
    assert got == path.read_text()
