"""``kins policy matrix`` offline, ``kins trace``'s POLICY steps, and the policy log's account
of a denied packet, over the article's cluster with its appendix B policies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kins.agents.policylog import PolicyView, explain
from kins.api.config import default_cluster
from kins.kernel.nflog import NflogRecord
from kins.offline import open_offline
from kins.render.cluster import policy_state
from kins.sim.format import trace_to_json
from kins.sim.policy import annotate
from kins.sim.trace import run_trace

ROOT = Path(__file__).resolve().parent.parent.parent
ARTICLE = str(ROOT / "examples" / "article")
APPENDIX_B = str(ROOT / "examples" / "policy" / "appendix-b.yaml")
KINS = [sys.executable, "-c", "from kins.cli import main; main()"]


def kins(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KINS, *args], capture_output=True, text=True, timeout=120)


def test_matrix_offline_json() -> None:
    res = kins("policy", "matrix", "default", "-f", ARTICLE, "-f", APPENDIX_B, "--port", "50051", "-o", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["port"], doc["protocol"], doc["wrong"]) == (50051, "TCP", [])
    pods = doc["pods"]
    bms = [p for p in pods if "business-manager" in p]
    dps = [p for p in pods if "data-product" in p]
    assert len(bms) == 3 and len(dps) == 3 and len(pods) == 6
    for src in pods:
        for dst in dps:
            want = "allowed" if src in bms or src == dst else "denied"
            assert doc["verdicts"][src][dst] == want, (src, dst)
        for dst in bms:  # nothing isolates business-manager for ingress
            assert doc["verdicts"][src][dst] == "allowed"


def test_matrix_offline_text_and_errors() -> None:
    res = kins("policy", "matrix", "-f", ARTICLE, "-f", APPENDIX_B, "--port", "50051")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("TCP/50051: rows from, columns to")
    assert " X " in res.stdout or res.stdout.rstrip().endswith("X")
    bad = kins("policy", "matrix", "nope", "-f", ARTICLE)
    assert bad.returncode != 0 and "no namespace 'nope'" in bad.stderr
    probe = kins("policy", "matrix", "-f", ARTICLE, "--probe")
    assert probe.returncode != 0 and "live cluster" in probe.stderr
    port = kins("policy", "matrix", "-f", ARTICLE, "--port", "70000")
    assert port.returncode != 0 and "--port" in port.stderr


@pytest.fixture(scope="module")
def offline():  # type: ignore[no-untyped-def]
    return open_offline([ARTICLE, APPENDIX_B])


def _trace(oc, src: str, dst: str, port: int):  # type: ignore[no-untyped-def]
    t = run_trace(oc.cfg, oc.store, src, dst, port=port, proto="tcp", node=None)
    return annotate(t, policy_state(oc.store), oc.cfg)


def test_trace_names_the_denying_policy(offline) -> None:  # type: ignore[no-untyped-def]
    t = _trace(offline, "business-manager", "192.168.0.103", 3306)
    assert t.disposition == "rejected"
    steps = [s for h in t.hops for s in h.steps if s.action == "policy"]
    assert len(steps) == 1
    assert steps[0].detail.startswith("denied (egress): default/business-manager-")
    why = "isolated by NetworkPolicy default/mysql-only-from-data-product; no rule admits 192.168.0.103 on tcp/3306"
    assert why in steps[0].detail
    (v,) = trace_to_json(t)["policy"]
    assert v["verdict"] == "denied" and v["direction"] == "egress"
    assert v["policies"] == ["default/mysql-only-from-data-product"] and "rule" not in v


def test_trace_names_the_admitting_rule_on_both_ends(offline) -> None:  # type: ignore[no-untyped-def]
    t = _trace(offline, "business-manager", "data-product", 50051)
    assert t.disposition == "delivered"
    verdicts = trace_to_json(t)["policy"]
    assert [(v["direction"], v["verdict"]) for v in verdicts] == [("egress", "allowed"), ("ingress", "allowed")]
    rule = {"policy": "default/data-product-from-business-manager", "direction": "ingress", "index": 0}
    assert verdicts[1]["rule"] == rule
    texts = [s.detail for h in t.hops for s in h.steps if s.action == "policy"]
    assert texts[1] == "allowed (ingress) by NetworkPolicy default/data-product-from-business-manager rule 1"


def test_trace_without_policies_has_no_policy_step() -> None:
    oc = open_offline([ARTICLE])
    t = _trace(oc, "business-manager", "data-product", 50051)
    assert not t.policy and "policy" not in trace_to_json(t)


def test_log_record_explained(offline) -> None:  # type: ignore[no-untyped-def]
    state = policy_state(offline.store)
    view = PolicyView()
    view.update(state.cluster.pods, state.policies, state.cnps)
    bm = next(p for p in state.cluster.pods if p.name.startswith("business-manager"))
    dps = [p for p in state.cluster.pods if p.name.startswith("data-product")]
    out = explain(view, bm.node, NflogRecord(1.5, bm.ip, "192.168.0.103", "TCP", 40000, 3306, "", 0, 0, 0, 0, 0))
    assert out["direction"] == "egress" and out["policies"] == ["default/mysql-only-from-data-product"]
    assert out["source"] == {"ip": bm.ip, "namespace": "default", "pod": bm.name}
    assert out["destination"] == {"ip": "192.168.0.103", "port": 3306}
    assert out["time"] == "1970-01-01T00:00:01.500000Z"
    src, dst = dps[0], dps[1]
    out = explain(view, dst.node, NflogRecord(2.0, src.ip, dst.ip, "TCP", 40000, 50051, "", 0, 0, 0, 0, 0))
    assert out["direction"] == "ingress" and out["policies"] == ["default/data-product-from-business-manager"]
    assert default_cluster().policy_provider == "kube-router"


CNP = """
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: admin-pass}
spec:
  tier: Admin
  priority: 5
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: default}}}
  ingress:
  - name: pass-from-default
    action: Pass
    from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: default}}}]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: admin-deny-db}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: default}}}
  egress:
  - name: no-mysql
    action: Deny
    to: [{networks: [192.168.0.103/32]}]
"""


def test_trace_names_cluster_network_policies(tmp_path: Path) -> None:
    (tmp_path / "cnp.yaml").write_text(CNP)
    oc = open_offline([ARTICLE, APPENDIX_B, str(tmp_path / "cnp.yaml")])
    denied = _trace(oc, "data-product", "192.168.0.103", 3306)  # data-product's own policies allow it
    (v,) = trace_to_json(denied)["policy"]
    assert (v["verdict"], v["tier"], v["policies"]) == ("denied", "Admin", ["admin-deny-db"])
    text = next(s.detail for h in denied.hops for s in h.steps if s.action == "policy")
    assert text == "denied (egress) by ClusterNetworkPolicy admin-deny-db rule no-mysql (Admin tier)"
    passed = _trace(oc, "data-product", "data-product", 50051)  # passed on, then NetworkPolicy refuses
    last = [s.detail for h in passed.hops for s in h.steps if s.action == "policy"][-1]
    assert last.startswith("passed by ClusterNetworkPolicy admin-pass, then denied (ingress): default/data-product-")
    assert trace_to_json(passed)["policy"][-1]["passed"] == ["admin-pass"]


def test_bad_network_policy_config_is_refused(tmp_path: Path) -> None:
    """A wrong provider or log limit is refused with its field path, before anything is made."""
    import msgspec

    data = msgspec.to_builtins(default_cluster())
    data["networkPolicy"] = {"provider": "calico", "logLimit": "often"}
    bad = tmp_path / "cluster.json"
    bad.write_text(json.dumps(data))
    res = kins("render", "-f", ARTICLE, "--cluster", str(bad), "--what", "ipsets")
    assert res.returncode != 0 and res.stdout == ""
    assert "networkPolicy.provider" in res.stderr and "'calico'" in res.stderr
    assert "networkPolicy.logLimit" in res.stderr
