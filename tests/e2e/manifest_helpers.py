"""Upstream install manifests (tests/data/manifests, unmodified) applied with kubectl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import yaml_rs
from e2e_helpers import Cluster
from kubectl_bin import NEWEST, Kubectl, kubectl_for

DATA = Path(__file__).parents[1] / "data" / "manifests"
IDENTITY_KINDS = ("ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


def kubectl(c: Cluster, version: str = NEWEST) -> Kubectl:
    return kubectl_for(version, c.state / "kubeconfig")


def apply_manifest(c: Cluster, name: str, tmp: Path, version: str = NEWEST) -> list[str]:
    """``kubectl apply -f`` the manifest as it is. An API that serves no ServiceAccounts or RBAC
    yet gets the manifest without those documents (the others are applied unchanged). The kinds
    left out."""
    k = kubectl(c, version)
    served = set(k("api-resources", "-o", "name").split())
    if {"serviceaccounts", "clusterroles.rbac.authorization.k8s.io"} <= served:
        k("apply", "-f", str(DATA / name))
        return []
    loaded = cast(list[dict[str, Any]], yaml_rs.loads((DATA / name).read_text(), parse_datetime=False))
    docs = [d for d in loaded if d]
    kept = [d for d in docs if d["kind"] not in IDENTITY_KINDS]
    path = tmp / f"{name}.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": kept}))
    k("apply", "-f", str(path))
    return sorted({d["kind"] for d in docs} - {d["kind"] for d in kept})
