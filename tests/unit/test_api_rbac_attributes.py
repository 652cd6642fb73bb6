"""What a request asks to do, resolved from its URL as the API server's request-info resolver does,
and how RBAC rules match it (wildcards, ``*/subresource``, resourceNames, URL prefixes)."""

from __future__ import annotations

import pytest

from kins.api.rbac import PolicyRule
from kins.apiserver.authn import UserInfo
from kins.apiserver.authz import Attributes, forbidden_message, request_attributes, rule_allows

NS = "/api/v1/namespaces/default"


@pytest.mark.parametrize(
    ("method", "path", "query", "want"),
    [
        ("GET", f"{NS}/pods", {}, ("list", "", "pods", "", "default", "")),
        ("GET", f"{NS}/pods", {"watch": "true"}, ("watch", "", "pods", "", "default", "")),
        ("GET", "/api/v1/watch/namespaces/default/pods/p", {}, ("watch", "", "pods", "", "default", "p")),
        ("GET", f"{NS}/pods/p", {}, ("get", "", "pods", "", "default", "p")),
        ("GET", f"{NS}/pods/p/log", {}, ("get", "", "pods", "log", "default", "p")),
        ("GET", f"{NS}/pods/p/exec", {"command": "sh"}, ("create", "", "pods", "exec", "default", "p")),
        ("POST", f"{NS}/pods/p/portforward", {}, ("create", "", "pods", "portforward", "default", "p")),
        ("POST", f"{NS}/serviceaccounts/bot/token", {}, ("create", "", "serviceaccounts", "token", "default", "bot")),
        ("DELETE", f"{NS}/pods", {}, ("deletecollection", "", "pods", "", "default", "")),
        ("DELETE", f"{NS}/pods/p", {}, ("delete", "", "pods", "", "default", "p")),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/x/deployments/d/scale",
            {},
            ("patch", "apps", "deployments", "scale", "x", "d"),
        ),
        (
            "PUT",
            "/apis/apps/v1/namespaces/x/deployments/d/status",
            {},
            ("update", "apps", "deployments", "status", "x", "d"),
        ),
        ("GET", "/api/v1/namespaces", {}, ("list", "", "namespaces", "", "", "")),
        ("GET", "/api/v1/namespaces/team", {}, ("get", "", "namespaces", "", "team", "team")),
        ("PUT", "/api/v1/namespaces/team/status", {}, ("update", "", "namespaces", "status", "team", "team")),
        ("GET", "/api/v1/nodes/n1", {}, ("get", "", "nodes", "", "", "n1")),
        (
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            {},
            ("list", "rbac.authorization.k8s.io", "clusterroles", "", "", ""),
        ),
    ],
)
def test_resource_requests(method: str, path: str, query: dict[str, str], want: tuple[str, ...]) -> None:
    a = request_attributes(method, path, query)
    assert a.resource_request
    assert (a.verb, a.api_group, a.resource, a.subresource, a.namespace, a.name) == want


@pytest.mark.parametrize(
    ("method", "path", "verb"),
    [
        ("GET", "/api", "get"),
        ("GET", "/apis/apps/v1", "get"),
        ("GET", "/version", "get"),
        ("POST", "/kins/v1/x", "post"),
    ],
)
def test_non_resource_requests(method: str, path: str, verb: str) -> None:
    a = request_attributes(method, path, {})
    assert not a.resource_request and a.verb == verb and a.path == path


def _attrs(verb: str, resource: str, sub: str = "", name: str = "", group: str = "") -> Attributes:
    return Attributes(verb, True, "", group, "v1", resource, sub, "default", name)


def test_rule_matching() -> None:
    pods = PolicyRule(verbs=["get", "list"], apiGroups=[""], resources=["pods"])
    assert rule_allows(pods, _attrs("list", "pods"))
    assert not rule_allows(pods, _attrs("delete", "pods"))
    assert not rule_allows(pods, _attrs("get", "pods", "log"))  # a subresource is named on its own
    assert not rule_allows(pods, _attrs("list", "pods", group="apps"))
    logs = PolicyRule(verbs=["get"], apiGroups=[""], resources=["*/log"])
    assert rule_allows(logs, _attrs("get", "pods", "log")) and not rule_allows(logs, _attrs("get", "pods"))
    anything = PolicyRule(verbs=["*"], apiGroups=["*"], resources=["*"])
    assert rule_allows(anything, _attrs("deletecollection", "widgets", group="example.com"))
    assert rule_allows(anything, _attrs("get", "pods", "exec"))
    named = PolicyRule(verbs=["get", "list"], apiGroups=[""], resources=["configmaps"], resourceNames=["cfg"])
    assert rule_allows(named, _attrs("get", "configmaps", name="cfg"))
    assert not rule_allows(named, _attrs("get", "configmaps", name="other"))
    assert not rule_allows(named, _attrs("list", "configmaps"))  # a list names nothing
    urls = PolicyRule(verbs=["get"], nonResourceURLs=["/apis/*", "/version"])
    assert rule_allows(urls, Attributes("get", False, "/apis/apps/v1"))
    assert rule_allows(urls, Attributes("get", False, "/version"))
    assert not rule_allows(urls, Attributes("get", False, "/version/x"))
    assert not rule_allows(urls, Attributes("post", False, "/version"))
    assert not rule_allows(urls, _attrs("get", "pods"))


def test_forbidden_messages() -> None:
    u = UserInfo("jane")
    assert forbidden_message(u, _attrs("list", "pods")) == (
        'pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default"'
    )
    assert forbidden_message(u, _attrs("get", "pods", "log", name="p")) == (
        'pods "p" is forbidden: User "jane" cannot get resource "pods/log" in API group "" in the namespace "default"'
    )
    cluster = Attributes("list", True, "", "rbac.authorization.k8s.io", "v1", "clusterroles")
    assert forbidden_message(u, cluster) == (
        'clusterroles.rbac.authorization.k8s.io is forbidden: User "jane" cannot list resource "clusterroles" '
        'in API group "rbac.authorization.k8s.io" at the cluster scope'
    )
    assert forbidden_message(u, Attributes("get", False, "/metrics")) == (
        'forbidden: User "jane" cannot get path "/metrics"'
    )
