"""Upstream install manifests (tests/data/manifests, unmodified) applied with kubectl."""

from __future__ import annotations

from pathlib import Path

from e2e_helpers import Cluster
from kubectl_bin import NEWEST, Kubectl, kubectl_for

DATA = Path(__file__).parents[1] / "data" / "manifests"


def kubectl(c: Cluster, version: str = NEWEST) -> Kubectl:
    return kubectl_for(version, c.state / "kubeconfig")


def apply_manifest(c: Cluster, name: str, version: str = NEWEST) -> str:
    """``kubectl apply -f`` the manifest file as it is (ServiceAccounts, RBAC and all); kubectl's
    output."""
    return kubectl(c, version)("apply", "-f", str(DATA / name))
