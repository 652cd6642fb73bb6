"""kubectl describe networkpolicy: the page for every kind of rule, peer and port."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kins.api.load import load_text
from kins.api.networking import NetworkPolicy
from kins.views.describe_network import describe_network_policy, policy_types


def one(text: str) -> NetworkPolicy:
    (np,) = load_text(text)
    assert isinstance(np, NetworkPolicy)
    return np


DB_ONLY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db-only-from-data
  namespace: default
  creationTimestamp: "2024-05-01T11:59:00Z"
  labels: {tier: db}
spec:
  podSelector: {matchLabels: {app: mysql}}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: data-product}}
    ports:
    - {protocol: TCP, port: 3306}
"""


def test_ingress_only_policy_with_defaulted_types() -> None:
    assert describe_network_policy(one(DB_ONLY)) == (
        "Name:         db-only-from-data\n"
        "Namespace:    default\n"
        "Created on:   2024-05-01 11:59:00 +0000 UTC\n"
        "Labels:       tier=db\n"
        "Annotations:  <none>\n"
        "Spec:\n"
        "  PodSelector:     app=mysql\n"
        "  Allowing ingress traffic:\n"
        "    To Port: 3306/TCP\n"
        "    From:\n"
        "      PodSelector: app=data-product\n"
        "  Not affecting egress traffic\n"
        "  Policy Types: Ingress\n"
    )


EVERYTHING = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: mixed, namespace: x, creationTimestamp: "2024-05-01T11:59:00Z"}
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
      podSelector: {matchExpressions: [{key: pod, operator: In, values: [a, b]}]}
    - ipBlock: {cidr: 10.0.0.0/16, except: [10.0.1.0/24, 10.0.2.0/24]}
  - ports:
    - {port: serve-80-tcp}
    - {protocol: UDP, port: 81, endPort: 90}
    - {protocol: SCTP}
  egress:
  - to:
    - namespaceSelector: {}
  - {}
"""


def test_all_peers_ports_and_rules_and_both_directions() -> None:
    text = describe_network_policy(one(EVERYTHING))
    spec = text[text.index("Spec:") :]
    assert spec == (
        "Spec:\n"
        "  PodSelector:     <none> (Allowing the specific traffic to all pods in this namespace)\n"
        "  Allowing ingress traffic:\n"
        "    To Port: <any> (traffic allowed to all ports)\n"
        "    From:\n"
        "      NamespaceSelector: kubernetes.io/metadata.name=y\n"
        "      PodSelector: pod in (a,b)\n"
        "    From:\n"
        "      IPBlock:\n"
        "        CIDR: 10.0.0.0/16\n"
        "        Except: 10.0.1.0/24, 10.0.2.0/24\n"
        "    ----------\n"
        "    To Port: serve-80-tcp/TCP\n"
        "    To Port Range: 81-90/UDP\n"
        "    To Port: <nil>/SCTP\n"
        "    From: <any> (traffic not restricted by source)\n"
        "  Allowing egress traffic:\n"
        "    To Port: <any> (traffic allowed to all ports)\n"
        "    To:\n"
        "      NamespaceSelector: <none>\n"
        "    ----------\n"
        "    To Port: <any> (traffic allowed to all ports)\n"
        "    To: <any> (traffic not restricted by destination)\n"
        "  Policy Types: Ingress, Egress\n"
    )


def test_default_deny_both_ways() -> None:
    np = one(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
"""
    )
    text = describe_network_policy(np)
    assert "Created on:   0001-01-01 00:00:00 +0000 UTC\n" in text
    assert text.endswith(
        "  Allowing ingress traffic:\n"
        "    <none> (Selected pods are isolated for ingress connectivity)\n"
        "  Allowing egress traffic:\n"
        "    <none> (Selected pods are isolated for egress connectivity)\n"
        "  Policy Types: Ingress, Egress\n"
    )


def test_policy_types_default_as_the_api_server_sets_them() -> None:
    assert policy_types(one(DB_ONLY).spec) == ["Ingress"]
    assert policy_types(one(EVERYTHING).spec) == ["Ingress", "Egress"]
    egress_only = one(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: e, namespace: x}
spec: {podSelector: {}, policyTypes: [Egress]}
"""
    )
    assert describe_network_policy(egress_only).endswith(
        "  Not affecting ingress traffic\n"
        "  Allowing egress traffic:\n"
        "    <none> (Selected pods are isolated for egress connectivity)\n"
        "  Policy Types: Egress\n"
    )


def test_kins_describe_netpol_offline(tmp_path: Path) -> None:
    manifest = tmp_path / "np.yaml"
    manifest.write_text(DB_ONLY)
    done = subprocess.run(
        [sys.executable, "-c", "from kins.cli import main; main()", "describe", "netpol", "db-only-from-data",
         "-f", str(manifest)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "  PodSelector:     app=mysql\n" in done.stdout
    assert "      PodSelector: app=data-product\n" in done.stdout
