"""What `kins up` starts a new cluster with: workloads and add-ons, add-ons only, or nothing."""

from __future__ import annotations

from typer.testing import CliRunner

from kins.cli import app
from kins.cli.up import startup_objects


def _names(**kw: bool) -> set[tuple[str, str, str]]:
    return {(o.kind, o.namespace or "", o.name) for o in startup_objects(**kw)}


ADDONS = {
    ("Deployment", "kube-system", "kube-dns"),
    ("Service", "kube-system", "kube-dns"),
    ("Namespace", "", "ingress-nginx"),
    ("Deployment", "ingress-nginx", "nginx-ingress-controller"),
    ("Service", "ingress-nginx", "ingress-nginx"),
    # Their ServiceAccounts and RBAC (CoreDNS' and ingress-nginx's).
    ("ServiceAccount", "kube-system", "coredns"),
    ("ClusterRole", "", "system:coredns"),
    ("ClusterRoleBinding", "", "system:coredns"),
    ("ServiceAccount", "ingress-nginx", "ingress-nginx"),
    ("ClusterRole", "", "ingress-nginx"),
    ("ClusterRoleBinding", "", "ingress-nginx"),
    ("Role", "ingress-nginx", "ingress-nginx"),
    ("RoleBinding", "ingress-nginx", "ingress-nginx"),
}


def test_a_full_cluster_has_the_add_ons_and_the_articles_workloads() -> None:
    full = _names(no_workloads=False, bare=False)
    assert full >= ADDONS
    assert {("Deployment", "default", "business-manager"), ("Ingress", "default", "business-manager")} <= full


def test_no_workloads_keeps_the_add_ons_as_kind_keeps_coredns() -> None:
    # The article's Ingress routes to business-manager, a workload: it goes with it.
    assert _names(no_workloads=True, bare=False) == ADDONS


def test_bare_starts_nothing() -> None:
    assert _names(no_workloads=False, bare=True) == set()
    assert _names(no_workloads=True, bare=True) == set()


def test_up_documents_both_flags() -> None:
    res = CliRunner().invoke(app, ["up", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "--no-workloads" in res.output and "--bare" in res.output
    assert "cluster DNS" in res.output
