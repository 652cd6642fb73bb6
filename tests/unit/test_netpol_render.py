"""kube-router's layout for a set of policies over the upstream model (golden), and the policy
records the layout is written from.

Regenerate the golden files with ``KINS_UPDATE_GOLDEN=1 pytest tests/unit/test_netpol_render.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from netpol_fixtures import build, model_namespaces, model_pods, render_node

from kins.api.config import NetworkPolicyConfig, default_cluster
from kins.model.ipset import save_text
from kins.render.netpol import names
from kins.render.netpol.iptables import PolicyRender, render_policy, top_jumps

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "netpol"

DENY_INGRESS = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"""

CNP_TIERS = """
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: admin-pass}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {ns: x}}}
  ingress:
  - {name: pass-from-y, action: Pass, from: [{namespaces: {matchLabels: {ns: y}}}]}
  - name: deny-z-udp
    action: Deny
    from: [{namespaces: {matchLabels: {ns: z}}}]
    protocols: [{udp: {destinationPort: {number: 80}}}]
  egress:
  - name: accept-dns
    action: Accept
    to: [{networks: [10.254.0.10/32]}]
    protocols: [{udp: {destinationPort: {number: 53}}}]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: baseline-deny}
spec:
  tier: Baseline
  priority: 50
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}}
  ingress:
  - {name: deny-all, action: Deny, from: [{namespaces: {}}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: b}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: y}}}]
"""

CASES = {
    "cluster-network-policy-tiers": CNP_TIERS,
    "default-deny-ingress": DENY_INGRESS,
    "default-deny-all": """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
""",
    "pod-and-namespace-selectors": """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-a-via-ns-selector, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions: [{key: ns, operator: NotIn, values: [x]}]
      podSelector:
        matchExpressions: [{key: pod, operator: In, values: [b, c]}]
    - podSelector: {matchLabels: {pod: b}}
""",
    "named-ports-and-ranges": """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ports, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress:
  - ports:
    - {port: serve-81-tcp}
    - {protocol: UDP, port: serve-80-udp}
    - {protocol: TCP, port: 53, endPort: 80}
  egress:
  - to:
    - namespaceSelector: {matchLabels: {ns: y}}
    ports:
    - {protocol: TCP, port: serve-80-tcp}
  - ports:
    - {protocol: UDP, port: 53}
    - {protocol: SCTP}
""",
    "ipblocks": """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: cidrs, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress, Ingress]
  egress:
  - to:
    - ipBlock: {cidr: 160.0.0.0/4, except: [172.30.9.11/32]}
    - ipBlock: {cidr: 172.30.9.0/24, except: [172.30.9.0/28]}
  ingress:
  - from:
    - ipBlock: {cidr: 0.0.0.0/0, except: [172.30.76.0/24]}
    ports:
    - {port: 80}
""",
}


def golden_text(case: str, node: str) -> str:
    r = render_node(CASES[case], node)
    refs = "\n".join(
        f"{chain} {num}: {ref.policy} {ref.direction} rule {ref.rule}"
        for chain, by_num in sorted(r.refs.items())
        for num, ref in sorted(by_num.items())
    )
    jumps = "\n".join(f"{t} {c} {' '.join(a)}" for t, c, a in r.jumps)
    sets = save_text(r.ipsets.values())
    return f"# jumps\n{jumps}\n# iptables-restore\n{r.restore}# ipset save\n{sets}# rules\n{refs}\n"


@pytest.mark.parametrize("node", ["node1", "node2"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str, node: str) -> None:
    path = GOLDEN / f"{case}.{node}.txt"
    got = golden_text(case, node)
    if os.environ.get("KINS_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got)
    assert got == path.read_text()


def test_names_are_kube_routers_hashes() -> None:
    # sha256 + base32, first 16 characters: the same text hashes the same way as in Go
    assert names.policy_chain("x", "deny-ingress").startswith("KUBE-NWPLCY-")
    assert len(names.policy_chain("x", "deny-ingress")) == len("KUBE-NWPLCY-") + 16
    assert names.target_src_set("x", "p")[len("KUBE-SRC-") :] == names.target_dst_set("x", "p")[len("KUBE-DST-") :]
    assert names.rule_pod_set("x", "p", "ingress", 0) != names.rule_pod_set("x", "p", "ingress", 1)
    assert [a[3] for _, _, a in top_jumps()] == [
        f"kube-router netpol - {names.rule_uuid(c, ['-m', 'comment', '--comment', 'kube-router netpol', '-j', t])}"
        for c, t in names.TOP_CHAINS.items()
    ]


def test_no_policies_no_layer() -> None:
    assert render_node("").empty
    cfg = default_cluster()
    cfg.networkPolicy = NetworkPolicyConfig(provider="none")
    assert render_node(DENY_INGRESS, cfg=cfg).empty


def test_pod_chains_only_for_selected_local_pods() -> None:
    r = render_node(CASES["pod-and-namespace-selectors"], "node1")
    pod_chains = {c for c in r.owners if c.startswith(names.POD_FW_PREFIX)}
    assert {r.owners[c] for c in pod_chains} == {"x/a"}  # x/a runs on node1
    assert not any(
        c.startswith(names.POD_FW_PREFIX) for c in render_node(CASES["pod-and-namespace-selectors"], "node2").owners
    )


def test_policy_types_default_as_the_api_server() -> None:
    text = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {}
  egress: [{}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: q, namespace: x}
spec:
  podSelector: {}
  egress: []
"""
    _, (p, q) = build(text)
    assert p.type == "both"  # egress rules present: Ingress and Egress
    assert q.type == "ingress"  # an empty egress list is no egress rule


def test_selectors_and_named_ports_resolve_on_pods() -> None:
    _, (p,) = build(CASES["pod-and-namespace-selectors"])
    assert [t.key for t in p.targets] == ["x/a"]
    assert [q.key for q in p.ingress[0].peer_pods] == ["y/b", "y/c", "z/b", "z/c", "x/b"]  # type: ignore[index]
    _, (ports,) = build(CASES["named-ports-and-ranges"])
    ing = ports.ingress[0]  # type: ignore[index]
    assert [(e.protocol, e.port) for e in ing.named] == [("tcp", "81"), ("udp", "80")]
    assert [(s.protocol, s.port, s.end) for s in ing.ports] == [("tcp", "53", "80")]
    assert set(ing.named[0].ips) == {t.ip for t in ports.targets}


def test_namespace_label_change_moves_members_not_rules() -> None:
    text = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-updated, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns2: updated}}}]
"""

    def render(ns_extra: dict[str, dict[str, str]]) -> PolicyRender:
        cluster, infos = build(text, model_pods(), model_namespaces(ns_extra))
        return render_policy(default_cluster(), "node1", infos, [p for p in cluster.pods if p.node == "node1"])

    before, after = render({}), render({"y": {"ns2": "updated"}})
    assert after.restore == before.restore  # the rules stay; only a set's members move
    changed = {n for n in after.ipsets if after.ipsets[n] != before.ipsets.get(n)}
    assert len(changed) == 1
    assert before.ipsets[next(iter(changed))].members == ()
    assert {m for n in changed for m in after.ipsets[n].members} == {"172.30.9.13", "172.30.76.14", "172.30.9.15"}


def test_ipblocks_with_excepts_get_a_set_each() -> None:
    r = render_node(CASES["ipblocks"], "node1")
    nets = [s for s in r.ipsets.values() if s.type == "hash:net"]
    egress = [s for s in nets if s.name.startswith("KUBE-DST-")]
    assert len(egress) == 2  # two blocks with except: one set each
    assert any(s.members == ("0.0.0.0/1", "128.0.0.0/1") for s in nets)  # /0 split as kube-router does
