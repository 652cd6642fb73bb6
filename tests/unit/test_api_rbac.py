"""RBAC through real kubectl (1.27 and 1.33): Roles and bindings made with ``kubectl create``,
what they allow (``kubectl auth can-i``, ``--list``, ``--as``, a ServiceAccount's own kubeconfig),
the API's refusals in its words, validation, the bootstrap policy and ClusterRole aggregation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from identity_kit import IdentityApi, apply, identity_api
from kubectl_bin import Kubectl, all_versions

from kins.api.rbac import ClusterRole

BOT = 'User "system:serviceaccount:default:bot"'


@pytest.fixture
def ida(tmp_path: Path) -> Iterator[IdentityApi]:
    with identity_api(tmp_path) as a:
        apply(a.admin("1.33"), "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: bot}\n")
        yield a


def _bot(ida: IdentityApi, version: str) -> Kubectl:
    return ida.as_token(version, ida.admin(version)("create", "token", "bot").strip(), name="bot")


def _can(k: Kubectl, *args: str) -> str:
    return k.run("auth", "can-i", *args, check=False).stdout.strip()


def _get(ida: IdentityApi, token: str, path: str, **headers: str) -> httpx.Response:
    return httpx.get(
        f"{ida.api.url}{path}", headers={"Authorization": f"Bearer {token}", **headers}, verify=False, timeout=10
    )


@pytest.mark.parametrize("version", all_versions())
def test_a_role_and_binding_made_with_kubectl(ida: IdentityApi, version: str) -> None:
    admin, bot = ida.admin(version), _bot(ida, version)
    assert _can(admin, "list", "pods") == "yes"
    assert _can(bot, "list", "pods") == "no"
    assert _can(admin, "list", "pods", "--as=system:serviceaccount:default:bot") == "no"
    out = admin("create", "role", "pod-reader", "--verb=get,list,watch", "--resource=pods,pods/log")
    assert out == "role.rbac.authorization.k8s.io/pod-reader created\n"
    out = admin("create", "rolebinding", "bot-reads", "--role=pod-reader", "--serviceaccount=default:bot")
    assert out == "rolebinding.rbac.authorization.k8s.io/bot-reads created\n"
    for who in (bot, admin):
        extra = () if who is bot else ("--as=system:serviceaccount:default:bot",)
        assert _can(who, "list", "pods", *extra) == "yes"
        assert _can(who, "get", "pods/log", *extra) == "yes"
        assert _can(who, "watch", "pods", *extra) == "yes"
        assert _can(who, "delete", "pods", *extra) == "no"
        assert _can(who, "create", "pods/exec", *extra) == "no"
        assert _can(who, "list", "services", *extra) == "no"
        assert _can(who, "list", "pods", "-n", "kube-system", *extra) == "no"
    assert bot.run("get", "pods").returncode == 0
    denied = bot.run("get", "deployments", check=False)
    assert denied.stderr == (
        f'Error from server (Forbidden): deployments.apps is forbidden: {BOT} cannot list resource "deployments" '
        'in API group "apps" in the namespace "default"\n'
    )
    denied = bot.run("delete", "pod", "nothing", check=False)
    assert denied.stderr == (
        f'Error from server (Forbidden): pods "nothing" is forbidden: {BOT} cannot delete resource "pods" '
        'in API group "" in the namespace "default"\n'
    )
    denied = bot.run("get", "nodes", check=False)
    assert (
        f'nodes is forbidden: {BOT} cannot list resource "nodes" in API group "" at the cluster scope' in denied.stderr
    )
    wide = admin("get", "rolebinding", "bot-reads", "-o", "wide").split("\n")
    assert wide[0].split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert wide[1].split()[:2] == ["bot-reads", "Role/pod-reader"] and wide[1].split()[-1] == "default/bot"
    assert admin("get", "role").split("\n")[0].split() == ["NAME", "CREATED", "AT"]


@pytest.mark.parametrize("version", all_versions())
def test_can_i_list(ida: IdentityApi, version: str) -> None:
    bot = _bot(ida, version)
    apply(
        ida.admin(version),
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: bot-views}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\n"
        "subjects: [{kind: ServiceAccount, name: bot, namespace: default}]\n",
    )
    ida.converge()  # view aggregates system:aggregate-to-view's rules
    lines = bot("auth", "can-i", "--list").split("\n")
    assert lines[0].split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    rows = {line.split()[0]: line for line in lines[1:] if line and not line.startswith(" ")}
    assert rows["selfsubjectaccessreviews.authorization.k8s.io"].endswith("[create]")
    assert rows["pods"].endswith("[get list watch]")
    assert rows["deployments.apps"].endswith("[get list watch]")
    assert "secrets" not in rows  # view does not read secrets
    assert any(line.split()[:2] == ["[/version]", "[]"] for line in lines)
    # Another namespace: only what is bound cluster-wide.
    other = bot("auth", "can-i", "--list", "-n", "kube-system")
    assert "deployments.apps" not in other and "selfsubjectreviews.authentication.k8s.io" in other


def test_discovery_and_non_resource_urls(ida: IdentityApi) -> None:
    token = ida.admin("1.33")("create", "token", "bot").strip()
    for path in ("/version", "/api", "/apis", "/api/v1", "/apis/rbac.authorization.k8s.io/v1"):
        assert _get(ida, token, path).status_code == 200, path
    r = _get(ida, token, "/kins/v1/policylog")
    assert r.status_code == 403
    assert r.json()["message"] == f'forbidden: {BOT} cannot get path "/kins/v1/policylog"'
    core = _get(ida, token, "/api/v1").json()["resources"]
    token_sub = next(x for x in core if x["name"] == "serviceaccounts/token")
    assert token_sub["kind"] == "TokenRequest" and token_sub["verbs"] == ["create"]
    assert token_sub["group"] == "authentication.k8s.io"
    authz = _get(ida, token, "/apis/authorization.k8s.io/v1").json()["resources"]
    assert {x["name"]: x["verbs"] for x in authz} == {
        "selfsubjectaccessreviews": ["create"],
        "selfsubjectrulesreviews": ["create"],
    }
    groups = {g["name"] for g in _get(ida, token, "/apis").json()["groups"]}
    assert {"rbac.authorization.k8s.io", "authorization.k8s.io", "authentication.k8s.io"} <= groups
    names = ida.admin("1.33")("api-resources", "-o", "name").split()
    assert {
        "serviceaccounts",
        "roles.rbac.authorization.k8s.io",
        "clusterrolebindings.rbac.authorization.k8s.io",
    } <= set(names)
    assert "sa" in ida.admin("1.33")("api-resources", "--api-group=").split()


def test_impersonation_needs_the_impersonate_verb(ida: IdentityApi) -> None:
    token = ida.admin("1.33")("create", "token", "bot").strip()
    r = _get(ida, token, "/api/v1/namespaces/default/pods", **{"Impersonate-User": "bob"})
    assert r.status_code == 403
    assert r.json()["message"] == (
        f'users "bob" is forbidden: {BOT} cannot impersonate resource "users" in API group "" at the cluster scope'
    )
    apply(
        ida.admin("1.33"),
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: be-bob}\n"
        "rules: [{apiGroups: [''], resources: [users], verbs: [impersonate], resourceNames: [bob]}]\n---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: bot-is-bob}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: be-bob}\n"
        "subjects: [{kind: ServiceAccount, name: bot, namespace: default}]\n",
    )
    r = _get(ida, token, "/api/v1/namespaces/default/pods", **{"Impersonate-User": "bob"})
    assert r.status_code == 403
    assert r.json()["message"].startswith('pods is forbidden: User "bob" cannot list resource "pods"')
    who = httpx.post(
        f"{ida.api.url}/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers={"Authorization": f"Bearer {token}", "Impersonate-User": "bob"},
        verify=False,
    ).json()
    assert who["status"]["userInfo"] == {"username": "bob", "groups": ["system:authenticated"]}
    assert _get(ida, token, "/api", **{"Impersonate-User": "alice"}).status_code == 403
    assert _get(ida, token, "/api", **{"Impersonate-User": "bob", "Impersonate-Group": "x"}).status_code == 403


def test_validation_in_the_api_words(ida: IdentityApi) -> None:
    k = ida.admin("1.33")
    bad = k.run(
        "create",
        "-f",
        "-",
        input="apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\n"
        "rules: [{apiGroups: [''], resources: [pods]}, {nonResourceURLs: [/x], verbs: [get]}]\n",
        check=False,
    )
    assert bad.returncode != 0
    assert "rules[0].verbs: Required value: verbs must contain at least one value" in bad.stderr
    assert 'rules[1].nonResourceURLs: Invalid value: ["/x"]: namespaced rules cannot apply to non-resource URLs' in (
        bad.stderr
    )
    bad = k.run(
        "create",
        "-f",
        "-",
        input="apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: b}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\n"
        "subjects: [{kind: Robot, name: x}, {kind: ServiceAccount, name: why}]\n",
        check=False,
    )
    assert 'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"' in bad.stderr
    assert 'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"' in (
        bad.stderr
    )
    assert "subjects[1].namespace: Required value" in bad.stderr
    # roleRef cannot change: delete and create the binding instead.
    apply(
        k,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: rb}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\n"
        "subjects: [{kind: User, name: alice}]\n",
    )
    rb = json.loads(k("get", "rolebinding", "rb", "-o", "json"))
    assert rb["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]
    rb["roleRef"]["name"] = "edit"
    bad = k.run("replace", "-f", "-", input=json.dumps(rb), check=False)
    assert bad.returncode != 0
    assert (
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", '
        'Name:"edit"}: cannot change roleRef' in bad.stderr
    )


def test_bootstrap_policy_and_aggregation(ida: IdentityApi) -> None:
    k = ida.admin("1.33")
    roles = k("get", "clusterroles", "-o", "name").split()
    for name in ("cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user"):
        assert f"clusterrole.rbac.authorization.k8s.io/{name}" in roles
    binding = json.loads(k("get", "clusterrolebinding", "cluster-admin", "-o", "json"))
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]
    assert binding["metadata"]["annotations"] == {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    ida.converge()
    view = ida.store.get("ClusterRole", None, "view")
    edit = ida.store.get("ClusterRole", None, "edit")
    admin = ida.store.get("ClusterRole", None, "admin")
    assert isinstance(view, ClusterRole) and isinstance(edit, ClusterRole) and isinstance(admin, ClusterRole)
    view_rules, edit_rules = view.rules or [], edit.rules or []
    assert view_rules and all(r in edit_rules for r in view_rules) and all(r in (admin.rules or []) for r in edit_rules)
    # A ClusterRole labelled to aggregate into view adds its rules to view, edit and admin.
    apply(
        k,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: widgets-view\n"
        "  labels: {rbac.authorization.k8s.io/aggregate-to-view: 'true'}\n"
        "rules: [{apiGroups: [example.com], resources: [widgets], verbs: [get]}]\n",
    )
    ida.converge()
    for name in ("view", "edit", "admin"):
        got = json.loads(k("get", "clusterrole", name, "-o", "json"))["rules"]
        assert {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]} in got, name
    k("label", "clusterrole", "widgets-view", "rbac.authorization.k8s.io/aggregate-to-view-")
    ida.converge()
    got = json.loads(k("get", "clusterrole", "view", "-o", "json"))["rules"]
    assert all(r.get("apiGroups") != ["example.com"] for r in got)
    # A binding to a role that is not there is named in the refusal, as RBAC does.
    apply(
        k,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: dangling}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: missing}\n"
        "subjects: [{kind: ServiceAccount, name: bot, namespace: default}]\n",
    )
    token = k("create", "token", "bot").strip()
    r = _get(ida, token, "/api/v1/namespaces/default/secrets")
    assert r.status_code == 403
    assert r.json()["message"].endswith(': RBAC: role.rbac.authorization.k8s.io "missing" not found')
