"""NetworkPolicy and ClusterNetworkPolicy through the real API server: validation as the API
server words it, the cluster-wide kind served like any other, and the Namespace name label."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_helpers import api_server

from kins.api.config import default_cluster
from kins.api.core import Namespace, NamespaceStatus
from kins.api.defaulting import NAMESPACE_NAME_LABEL
from kins.api.load import load_text
from kins.api.meta import ObjectMeta
from kins.api.policy import ClusterNetworkPolicy
from kins.api.validation import validate
from kins.client import Client
from kins.control.offline import build_offline_state
from kins.store.memory import MemoryStore

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
NETPOLS = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"
CNPS = "/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies"


class Api:
    def __init__(self, url: str, token: str, store: MemoryStore) -> None:
        self.store = store
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        self.client = Client(url, token, timeout=10)

    def causes(self, path: str, doc: dict[str, Any]) -> list[tuple[str, str, str]]:
        """(field, reason, message) of the 422 the API answers ``doc`` with."""
        r = self.http.post(path, json=doc)
        assert r.status_code == 422, r.text
        status = r.json()
        assert status["kind"] == "Status" and status["reason"] == "Invalid"
        return [(c["field"], c["reason"], c["message"]) for c in status["details"]["causes"]]


@pytest.fixture
def api() -> Iterator[Api]:
    store = MemoryStore(history=1000)
    with api_server(store) as (url, token):
        a = Api(url, token, store)
        try:
            yield a
        finally:
            a.http.close()
            a.client.close()


# --- Namespace name label -----------------------------------------------------------------------


def _ns_labels(api: Api, name: str) -> dict[str, str]:
    r = api.http.get(f"/api/v1/namespaces/{name}")
    assert r.status_code == 200
    return dict(r.json()["metadata"].get("labels") or {})


def test_namespace_gets_its_name_label_and_keeps_it(api: Api) -> None:
    r = api.http.post("/api/v1/namespaces", json={"metadata": {"name": "prod", "labels": {"team": "a"}}})
    assert r.status_code == 201
    assert r.json()["metadata"]["labels"] == {"team": "a", NAMESPACE_NAME_LABEL: "prod"}
    # A replace without it, or with another value: the server puts it back.
    body = r.json()
    body["metadata"]["labels"] = {NAMESPACE_NAME_LABEL: "other"}
    r = api.http.put("/api/v1/namespaces/prod", json=body)
    assert r.status_code == 200, r.text
    assert _ns_labels(api, "prod") == {NAMESPACE_NAME_LABEL: "prod"}
    # A patch removing it.
    r = api.http.patch(
        "/api/v1/namespaces/prod",
        json={"metadata": {"labels": {NAMESPACE_NAME_LABEL: None, "env": "x"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert _ns_labels(api, "prod") == {"env": "x", NAMESPACE_NAME_LABEL: "prod"}
    # Through the client's apply (kubectl apply's strategic merge patch) too.
    api.client.apply(Namespace(metadata=ObjectMeta(name="prod", labels={"env": "y"})))
    assert _ns_labels(api, "prod")[NAMESPACE_NAME_LABEL] == "prod"


def test_namespace_is_active_once_created(api: Api) -> None:
    """kubectl create namespace sends no status: the server makes the namespace Active."""
    r = api.http.post("/api/v1/namespaces", json={"metadata": {"name": "t1"}})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == {"phase": "Active"}
    body = r.json()
    del body["status"]
    r = api.http.put("/api/v1/namespaces/t1", json=body)
    assert r.status_code == 200 and r.json()["status"] == {"phase": "Active"}
    offline = build_offline_state(
        default_cluster(), load_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: t2}\n")
    )
    assert offline.get("Namespace", None, "t2").status == NamespaceStatus(phase="Active")  # type: ignore[attr-defined]


def test_generated_namespace_name_is_labelled(api: Api) -> None:
    r = api.http.post("/api/v1/namespaces", json={"metadata": {"generateName": "tmp-"}})
    assert r.status_code == 201, r.text
    meta = r.json()["metadata"]
    assert meta["name"].startswith("tmp-") and len(meta["name"]) == 9
    assert meta["labels"] == {NAMESPACE_NAME_LABEL: meta["name"]}


def test_offline_namespaces_carry_the_name_label() -> None:
    objs = load_text(
        """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {kubernetes.io/metadata.name: wrong, team: a}}
---
apiVersion: v1
kind: Namespace
metadata: {name: bare}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: implicit}
"""
    )
    store = build_offline_state(default_cluster(), objs)
    labels = {o.name: o.labels for o in store.list("Namespace")[0]}
    assert labels["shop"] == {"kubernetes.io/metadata.name": "shop", "team": "a"}
    assert labels["bare"] == {"kubernetes.io/metadata.name": "bare"}
    assert labels["implicit"] == {"kubernetes.io/metadata.name": "implicit"}
    assert labels["kube-system"] == {"kubernetes.io/metadata.name": "kube-system"}


# --- NetworkPolicy validation -------------------------------------------------------------------


def _netpol(spec: dict[str, Any], name: str = "np") -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name}, "spec": spec}


def _refused(api: Api, spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    causes = api.causes(NETPOLS, _netpol(spec))
    assert api.http.get(f"{NETPOLS}/np").status_code == 404  # nothing stored
    return causes


def test_netpol_ip_blocks(api: Api) -> None:
    spec = {
        "podSelector": {},
        "ingress": [
            {
                "from": [
                    {"ipBlock": {"cidr": "10.0.0.0/33"}},
                    {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "11.0.0.0/16", "10.0.0.0/8", "x"]}},
                    {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["fd00::/64"]}, "podSelector": {}},
                    {},
                ]
            }
        ],
        "egress": [{"to": [{"ipBlock": {"cidr": ""}}]}],
    }
    cidr = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
    assert _refused(api, spec) == [
        ("spec.ingress[0].from[0].ipBlock.cidr", "FieldValueInvalid", f'Invalid value: "10.0.0.0/33": {cidr}'),
        (
            "spec.ingress[0].from[1].ipBlock.except[1]",
            "FieldValueInvalid",
            'Invalid value: "11.0.0.0/16": must be a strict subset of `cidr`',
        ),
        (
            "spec.ingress[0].from[1].ipBlock.except[2]",
            "FieldValueInvalid",
            'Invalid value: "10.0.0.0/8": must be a strict subset of `cidr`',
        ),
        ("spec.ingress[0].from[1].ipBlock.except[3]", "FieldValueInvalid", f'Invalid value: "x": {cidr}'),
        (
            "spec.ingress[0].from[2].ipBlock.except[0]",
            "FieldValueInvalid",
            'Invalid value: "fd00::/64": must be a strict subset of `cidr`',
        ),
        ("spec.ingress[0].from[2]", "FieldValueForbidden", "Forbidden: may not specify both ipBlock and another peer"),
        ("spec.ingress[0].from[3]", "FieldValueRequired", "Required value: must specify a peer"),
        ("spec.egress[0].to[0].ipBlock.cidr", "FieldValueRequired", "Required value"),
    ]


def test_netpol_ports(api: Api) -> None:
    spec = {
        "podSelector": {},
        "egress": [
            {
                "ports": [
                    {"endPort": 90},
                    {"port": 100, "endPort": 90},
                    {"port": "http", "endPort": 90},
                    {"protocol": "ICMP", "port": 0},
                    {"port": 80, "endPort": 70000},
                    {"port": "Not_A_Name"},
                ]
            }
        ],
    }
    causes = _refused(api, spec)
    p = "spec.egress[0].ports"
    assert causes[:5] == [
        (
            f"{p}[0].endPort",
            "FieldValueInvalid",
            "Invalid value: 90: may not be specified when `port` is not specified",
        ),
        (f"{p}[1].endPort", "FieldValueInvalid", "Invalid value: 90: must be greater than or equal to `port`"),
        (f"{p}[2].endPort", "FieldValueInvalid", "Invalid value: 90: may not be specified when `port` is non-numeric"),
        (
            f"{p}[3].protocol",
            "FieldValueNotSupported",
            'Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"',
        ),
        (f"{p}[3].port", "FieldValueInvalid", "Invalid value: 0: must be between 1 and 65535, inclusive"),
    ]
    assert causes[5] == (
        f"{p}[4].endPort",
        "FieldValueInvalid",
        "Invalid value: 70000: must be between 1 and 65535, inclusive",
    )
    assert [c[0] for c in causes[6:]] == [f"{p}[5].port"] * (len(causes) - 6) and len(causes) > 6


def test_netpol_policy_types_and_selectors(api: Api) -> None:
    assert _refused(api, {"podSelector": {}, "policyTypes": ["Ingress", "Inbound"]}) == [
        (
            "spec.policyTypes[1]",
            "FieldValueNotSupported",
            'Unsupported value: "Inbound": supported values: "Ingress", "Egress"',
        )
    ]
    # More than two: refused as a whole, the values not looked at.
    assert _refused(api, {"podSelector": {}, "policyTypes": ["Ingress", "Egress", "Bad"]}) == [
        (
            "spec.policyTypes",
            "FieldValueInvalid",
            'Invalid value: ["Ingress","Egress","Bad"]: may not specify more than two policyTypes',
        )
    ]
    selector = {
        "matchExpressions": [{"key": "app", "operator": "In"}, {"key": "x", "operator": "Near", "values": ["a"]}]
    }
    causes = _refused(
        api, {"podSelector": selector, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"a": "b c"}}}]}]}
    )
    assert [(f, r) for f, r, _ in causes] == [
        ("spec.podSelector.matchExpressions[0].values", "FieldValueRequired"),
        ("spec.podSelector.matchExpressions[1].operator", "FieldValueInvalid"),
        ("spec.ingress[0].from[0].namespaceSelector.matchLabels", "FieldValueInvalid"),
    ]
    # Two equal types are within the limit, and accepted as the API server accepts them.
    r = api.http.post(NETPOLS, json=_netpol({"podSelector": {}, "policyTypes": ["Ingress", "Ingress"]}))
    assert r.status_code == 201, r.text


def test_netpol_update_is_validated_too(api: Api) -> None:
    r = api.http.post(NETPOLS, json=_netpol({"podSelector": {}}))
    assert r.status_code == 201
    body = r.json()
    body["spec"]["ingress"] = [{"ports": [{"endPort": 9}]}]
    r = api.http.put(f"{NETPOLS}/np", json=body)
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "spec.ingress[0].ports[0].endPort"
    assert "ingress" not in api.http.get(f"{NETPOLS}/np").json()["spec"]


def test_netpol_table_as_kubectl_prints_it(api: Api) -> None:
    spec = {"podSelector": {"matchLabels": {"tier": "db"}, "matchExpressions": [{"key": "env", "operator": "Exists"}]}}
    assert api.http.post(NETPOLS, json=_netpol(spec, "db")).status_code == 201
    table = api.http.get(NETPOLS, headers={"Accept": TABLE}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["NAME", "POD-SELECTOR", "AGE"]
    assert table["rows"][0]["cells"][:2] == ["db", "env,tier=db"]


# --- ClusterNetworkPolicy -----------------------------------------------------------------------

CNP = """
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: isolate-tenants}
spec:
  tier: Admin
  priority: 10
  subject:
    namespaces: {matchLabels: {tenant: a}}
  ingress:
  - name: from-monitoring
    action: Accept
    from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
    protocols: [{tcp: {destinationPort: {number: 9100}}}, {destinationNamedPort: metrics}]
  - action: Deny
    from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: scanner}}}}]
  egress:
  - name: dns
    action: Pass
    to: [{networks: [10.96.0.10/32, "fd00::/64"]}]
    protocols: [{udp: {destinationPort: {range: {start: 53, end: 54}}}}]
"""


def _cnp_doc(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"tier": "Baseline", "priority": 5, "subject": {"namespaces": {}}}
    base.update(spec)
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha2",
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": "bad"},
        "spec": base,
    }


def test_cnp_is_loaded_and_valid() -> None:
    [cnp] = load_text(CNP)
    assert isinstance(cnp, ClusterNetworkPolicy)
    assert not cnp.NAMESPACED and cnp.key == "isolate-tenants"
    assert validate(cnp) == []
    rule = cnp.spec.ingress[0] if cnp.spec.ingress else None
    assert rule is not None and rule.action == "Accept" and rule.from_ and rule.from_[0].namespaces is not None
    egress = cnp.spec.egress[0] if cnp.spec.egress else None
    assert egress is not None and egress.to and egress.to[0].networks == ["10.96.0.10/32", "fd00::/64"]
    assert egress.protocols and egress.protocols[0].udp and egress.protocols[0].udp.destinationPort
    # The offline loader stores it, cluster-scoped.
    store = build_offline_state(default_cluster(), [cnp])
    assert store.get("ClusterNetworkPolicy", None, "isolate-tenants").name == "isolate-tenants"


def test_cnp_served_like_any_kind(api: Api) -> None:
    groups = api.http.get("/apis").json()["groups"]
    group = next(g for g in groups if g["name"] == "policy.networking.k8s.io")
    assert group["preferredVersion"]["groupVersion"] == "policy.networking.k8s.io/v1alpha2"
    resources = api.http.get("/apis/policy.networking.k8s.io/v1alpha2").json()["resources"]
    main = next(r for r in resources if r["name"] == "clusternetworkpolicies")
    assert main["kind"] == "ClusterNetworkPolicy" and main["namespaced"] is False
    assert main["shortNames"] == ["cnp"] and "watch" in main["verbs"]
    assert any(r["name"] == "clusternetworkpolicies/status" for r in resources)
    assert "apis/policy.networking.k8s.io/v1alpha2" in api.http.get("/openapi/v3").json()["paths"]

    [cnp] = load_text(CNP)
    created = api.client.create(cnp)
    assert isinstance(created, ClusterNetworkPolicy) and created.metadata.uid
    got = api.client.get("ClusterNetworkPolicy", None, "isolate-tenants")
    assert isinstance(got, ClusterNetworkPolicy) and got.spec == cnp.spec
    assert [o.name for o in api.client.list("ClusterNetworkPolicy")] == ["isolate-tenants"]
    assert api.http.get(f"{CNPS}/isolate-tenants").json()["spec"]["ingress"][0]["from"][0]["namespaces"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
    }
    patched = api.client.patch("ClusterNetworkPolicy", None, "isolate-tenants", {"spec": {"priority": 20}})
    assert isinstance(patched, ClusterNetworkPolicy) and patched.spec.priority == 20

    table = api.http.get(CNPS, headers={"Accept": TABLE}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["NAME", "TIER", "PRIORITY", "AGE"]
    assert table["rows"][0]["cells"][:3] == ["isolate-tenants", "Admin", "20"]

    api.client.delete("ClusterNetworkPolicy", None, "isolate-tenants")
    assert api.client.list("ClusterNetworkPolicy") == []


def test_cnp_spec_limits(api: Api) -> None:
    doc = _cnp_doc(tier="Middle", priority=1001, subject={"namespaces": {}, "pods": {"podSelector": {}}})
    assert api.causes(CNPS, doc) == [
        ("spec.tier", "FieldValueNotSupported", 'Unsupported value: "Middle": supported values: "Admin", "Baseline"'),
        (
            "spec.priority",
            "FieldValueInvalid",
            "Invalid value: 1001: spec.priority in body should be less than or equal to 1000",
        ),
        ("spec.subject", "FieldValueTooMany", "Too many: 2: must have at most 1 items"),
    ]
    doc = _cnp_doc()
    del doc["spec"]["tier"], doc["spec"]["priority"], doc["spec"]["subject"]
    assert [(f, r) for f, r, _ in api.causes(CNPS, doc)] == [
        ("spec.tier", "FieldValueRequired"),
        ("spec.priority", "FieldValueRequired"),
        ("spec.subject", "FieldValueRequired"),
    ]
    rule = {"action": "Deny", "from": [{"namespaces": {}}]}
    doc = _cnp_doc(priority=-1, subject={"pods": {"namespaceSelector": {}}}, ingress=[rule] * 26)
    assert [(f, m) for f, _, m in api.causes(CNPS, doc)] == [
        ("spec.priority", "Invalid value: -1: spec.priority in body should be greater than or equal to 0"),
        ("spec.subject.pods.podSelector", "Required value"),
        ("spec.ingress", "Too many: 26: must have at most 25 items"),
    ]
    assert api.http.get(f"{CNPS}/bad").status_code == 404


def test_cnp_rules(api: Api) -> None:
    doc = _cnp_doc(
        ingress=[
            {"name": "x" * 101, "action": "Allow", "from": []},
            {"from": [{}, {"namespaces": {}, "pods": {"podSelector": {}}}]},
            {
                "action": "Accept",
                "from": [{"namespaces": {}}],
                "protocols": [{"tcp": {}}, {"tcp": {"destinationPort": {"number": 0}}}],
            },
        ],
        egress=[
            {
                "action": "Deny",
                "to": [{"networks": ["10.0.0.0/8", "10.0.0.0/8", "10.0.0.0/33", "::ffff:10.0.0.1/128"]}],
                "protocols": [
                    {"sctp": {"destinationPort": {"range": {"start": 90, "end": 90}}}},
                    {"destinationNamedPort": "http"},
                ],
            },
            {"action": "Accept", "to": [{"domainNames": ["*.example.com", "bad domain"]}]},
        ],
    )
    causes = [(f, m) for f, _, m in api.causes(CNPS, doc)]
    assert causes == [
        ("spec.ingress[0].name", "Too long: may not be more than 100 bytes"),
        ("spec.ingress[0].action", 'Unsupported value: "Allow": supported values: "Accept", "Deny", "Pass"'),
        ("spec.ingress[0].from", "Invalid value: 0: spec.ingress[0].from in body should have at least 1 items"),
        ("spec.ingress[1].action", "Required value"),
        (
            "spec.ingress[1].from[0]",
            "Invalid value: 0: spec.ingress[1].from[0] in body should have at least 1 properties",
        ),
        ("spec.ingress[1].from[1]", "Too many: 2: must have at most 1 items"),
        (
            "spec.ingress[2].protocols[0].tcp",
            "Invalid value: 0: spec.ingress[2].protocols[0].tcp in body should have at least 1 properties",
        ),
        (
            "spec.ingress[2].protocols[1].tcp.destinationPort.number",
            "Invalid value: 0: spec.ingress[2].protocols[1].tcp.destinationPort.number in body should be greater than "
            "or equal to 1",
        ),
        ("spec.egress[0].to[0].networks[2]", 'Invalid value: "string": Invalid CIDR format provided'),
        ("spec.egress[0].to[0].networks[3]", 'Invalid value: "string": Invalid CIDR format provided'),
        ("spec.egress[0].to[0].networks[1]", 'Duplicate value: "10.0.0.0/8"'),
        (
            "spec.egress[0].protocols[0].sctp.destinationPort.range",
            'Invalid value: "object": Start port must be less than End port',
        ),
        (
            "spec.egress[0]",
            'Invalid value: "object": networks/nodes/domainNames peer cannot be set with namedPorts since there are '
            "no namedPorts for networks/nodes/domainNames",
        ),
        (
            "spec.egress[1].to[0].domainNames[1]",
            'Invalid value: "bad domain": spec.egress[1].to[0].domainNames[1] in body should match '
            "'^(\\*\\.)?([a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\\.)+[a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\\.?$'",
        ),
    ]
