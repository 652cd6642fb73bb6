"""Random policies and labels: the truth table the simulator reads off the rendered rules and
sets equals a direct reading of the policies as the API defines them (``reading.connection``).

Policies mix pod and namespace selectors (labels and expressions), ipBlocks with excepts over the
pods' own addresses, numbered, named and ranged ports over TCP and UDP, both policy types, and
ClusterNetworkPolicies of both tiers with Accept, Deny and Pass rules.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netpol_fixtures import NAMESPACES, PODS, model_namespaces, model_pods, pod_ip

from kins._errors import NotFound
from kins.api.config import default_cluster
from kins.api.load import load_documents
from kins.api.networking import NetworkPolicy
from kins.api.policy import ClusterNetworkPolicy
from kins.policy.matrix import NodeRules, compute
from kins.render.netpol.iptables import render_policy
from kins.render.netpol.model import Cluster, build_cnps, build_policies
from kins.render.netpol.reading import connection

LABEL_VALUES = ("a", "b", "c")

labels = st.dictionaries(st.sampled_from(("pod", "tier", "env")), st.sampled_from(LABEL_VALUES), max_size=2)


@st.composite
def selectors(draw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["matchLabels"] = draw(labels)
    if draw(st.booleans()):
        op = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")))
        expr: dict[str, Any] = {"key": draw(st.sampled_from(("pod", "tier", "env", "ns"))), "operator": op}
        if op in ("In", "NotIn"):
            expr["values"] = draw(st.lists(st.sampled_from(("a", "b", "c", "x", "y")), min_size=1, max_size=2))
        out["matchExpressions"] = [expr]
    return out


@st.composite
def ipblocks(draw: Any) -> dict[str, Any]:
    ip = pod_ip(draw(st.sampled_from(NAMESPACES)), draw(st.sampled_from(PODS)))
    net = ipaddress.IPv4Network(f"{ip}/{draw(st.sampled_from((0, 8, 16, 24, 32)))}", strict=False)
    block: dict[str, Any] = {"cidr": str(net)}
    other = ipaddress.IPv4Address(pod_ip(draw(st.sampled_from(NAMESPACES)), draw(st.sampled_from(PODS))))
    if net.prefixlen < 32 and other in net and draw(st.booleans()):
        block["except"] = [f"{other}/32"]
    return block


@st.composite
def peers(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(("pod", "ns", "both", "ip")))
    if kind == "ip":
        return {"ipBlock": draw(ipblocks())}
    out: dict[str, Any] = {}
    if kind in ("pod", "both"):
        out["podSelector"] = draw(selectors())
    if kind in ("ns", "both"):
        out["namespaceSelector"] = draw(selectors())
    return out


@st.composite
def ports(draw: Any) -> dict[str, Any]:
    proto = draw(st.sampled_from(("TCP", "UDP", None)))
    kind = draw(st.sampled_from(("num", "name", "range", "none")))
    out: dict[str, Any] = {}
    if proto:
        out["protocol"] = proto
    if kind == "num":
        out["port"] = draw(st.sampled_from((80, 81)))
    elif kind == "name":
        p = draw(st.sampled_from((80, 81)))
        named_proto = draw(st.sampled_from(("tcp", "udp")))
        out["port"] = f"serve-{p}-{named_proto}"
    elif kind == "range":
        out["port"] = 70
        out["endPort"] = draw(st.sampled_from((80, 90)))
    return out


@st.composite
def rules(draw: Any, to: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.booleans()):
        rule[to] = draw(st.lists(peers(), min_size=1, max_size=2))
    if draw(st.booleans()):
        rule["ports"] = draw(st.lists(ports(), min_size=1, max_size=2))
    return rule


@st.composite
def network_policies(draw: Any, i: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": draw(selectors())}
    types = draw(st.sampled_from(([], ["Ingress"], ["Egress"], ["Ingress", "Egress"])))
    if types:
        spec["policyTypes"] = types
    if draw(st.booleans()):
        spec["ingress"] = draw(st.lists(rules("from"), max_size=2))
    if draw(st.booleans()):
        spec["egress"] = draw(st.lists(rules("to"), max_size=2))
    ns = draw(st.sampled_from(NAMESPACES))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"p{i}", "namespace": ns},
        "spec": spec,
    }


@st.composite
def cnp_rules(draw: Any, to: str, tier: str) -> dict[str, Any]:
    actions = ("Accept", "Deny", "Pass") if tier == "Admin" else ("Accept", "Deny")
    peer_kind = draw(st.sampled_from(("namespaces", "pods")))
    peer: dict[str, Any] = (
        {"namespaces": draw(selectors())}
        if peer_kind == "namespaces"
        else {"pods": {"namespaceSelector": draw(selectors()), "podSelector": draw(selectors())}}
    )
    rule: dict[str, Any] = {"action": draw(st.sampled_from(actions)), to: [peer]}
    if draw(st.booleans()):
        proto = draw(st.sampled_from(("tcp", "udp")))
        rule["protocols"] = [{proto: {"destinationPort": {"number": draw(st.sampled_from((80, 81)))}}}]
    return rule


@st.composite
def cluster_policies(draw: Any, i: int) -> dict[str, Any]:
    tier = draw(st.sampled_from(("Admin", "Baseline")))
    spec: dict[str, Any] = {
        "tier": tier,
        "priority": draw(st.integers(0, 3)),
        "subject": {"namespaces": draw(selectors())},
    }
    if draw(st.booleans()):
        spec["ingress"] = draw(st.lists(cnp_rules("from", tier), min_size=1, max_size=2))
    if draw(st.booleans()):
        spec["egress"] = draw(st.lists(cnp_rules("to", tier), min_size=1, max_size=2))
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha2",
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": f"c{i}"},
        "spec": spec,
    }


@st.composite
def worlds(draw: Any) -> tuple[list[dict[str, Any]], list[dict[str, str]], dict[str, dict[str, str]]]:
    n = draw(st.integers(1, 4))
    docs = [draw(network_policies(i)) for i in range(n)]
    docs += [draw(cluster_policies(i)) for i in range(draw(st.integers(0, 2)))]
    pod_labels = [draw(labels) for _ in range(len(NAMESPACES) * len(PODS))]
    ns_label = st.dictionaries(st.sampled_from(("env", "tier")), st.sampled_from(LABEL_VALUES), max_size=1)
    ns_labels = {ns: draw(ns_label) for ns in NAMESPACES}
    return docs, pod_labels, ns_labels


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.sampled_from((80, 81)), st.sampled_from(("tcp", "udp")))
def test_rules_agree_with_the_api_definition(world: Any, port: int, proto: str) -> None:
    docs, pod_labels, ns_labels = world
    pods = model_pods(("TCP", "UDP"))
    for p, extra in zip(pods, pod_labels, strict=True):
        p.metadata.labels = {**(p.metadata.labels or {}), **extra}
    objs = load_documents(docs, "<generated>")
    nps = [o for o in objs if isinstance(o, NetworkPolicy)]
    cnps_objs = [o for o in objs if isinstance(o, ClusterNetworkPolicy)]
    cluster = Cluster(pods, model_namespaces(ns_labels))
    policies = build_policies(nps, cluster)
    cnps = build_cnps(cnps_objs, cluster)
    cfg = default_cluster()
    rules = {}
    for node in ("node1", "node2"):
        r = render_policy(cfg, node, policies, [p for p in cluster.pods if p.node == node], cnps)
        rules[node] = NodeRules.from_text(r.restore, r.ipsets)
    m = compute(cluster.pods, rules, port, proto)
    by_key = {p.key: p for p in cluster.pods}
    for s in m.pods:
        for d in m.pods:
            src, dst = by_key[s], by_key[d]
            want = connection(policies, src, src.ip, dst, dst.ip, proto, port, cnps)
            assert m.allowed(s, d) == want, (s, d, docs)


@st.composite
def pod_changes(draw: Any) -> list[tuple[int, dict[str, str] | None]]:
    """Pods (by index in the model) relabelled, or removed (None)."""
    n = len(NAMESPACES) * len(PODS)
    return draw(st.lists(st.tuples(st.integers(0, n - 1), st.one_of(st.none(), labels)), min_size=1, max_size=3))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), pod_changes())
def test_incremental_resolution_equals_a_fresh_one(world: Any, changes: Any) -> None:
    """The agent's incremental path (an unchanged policy no changed pod concerns keeps its
    resolution and chains) renders what resolving everything again renders."""
    from kins.render.cluster import policy_state
    from kins.store.memory import MemoryStore

    docs, pod_labels, ns_labels = world
    objs = load_documents(docs, "<generated>")
    pods = model_pods(("TCP", "UDP"))
    for p, extra in zip(pods, pod_labels, strict=True):
        p.metadata.labels = {**(p.metadata.labels or {}), **extra}
    store = MemoryStore()
    store.bulk_create([*model_namespaces(ns_labels), *pods, *objs])
    before = policy_state(store)
    for node in ("node1", "node2"):
        before.render(default_cluster(), node)  # sections written, as a sync would
    for i, new in changes:
        pod = pods[i]
        try:
            cur = store.get("Pod", pod.metadata.namespace, pod.name)
        except NotFound:
            continue  # removed already
        if new is None:
            store.delete("Pod", pod.metadata.namespace, pod.name)
        else:
            relabelled = msgspec.structs.replace(cur.metadata, labels={"pod": pod.name, **new})
            store.update(msgspec.structs.replace(cur, metadata=relabelled), check_rv=False)
    after = policy_state(store, before)
    fresh = policy_state(store)
    for node in ("node1", "node2"):
        a, f = after.render(default_cluster(), node), fresh.render(default_cluster(), node)
        assert a.chains == f.chains
        assert a.ipsets == f.ipsets
