"""The upstream Kubernetes NetworkPolicy e2e tests (``test/e2e/network/netpol``) against a live
cluster: the model's 9 pods and 9 Services applied once (``kins policy model | kins apply``),
then each case's policies applied, its truth tables checked by real connections over the 72
non-self pairs (``kins.policy.probe``), and its policies and labels undone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest
from e2e_helpers import Cluster, poll, running_cluster
from netpol_cases import (
    ALL_PODS,
    CASES,
    Case,
    Create,
    DeleteAll,
    LabelNamespace,
    LabelPod,
    Probe,
    Update,
    reach,
)

from kins.api.core import Pod
from kins.api.networking import NetworkPolicy
from kins.policy.matrix import compute
from kins.policy.model import NAMESPACES, comparison_table, service_name, to_manifests
from kins.policy.probe import grid_pairs, probe_outcomes
from kins.policy.sources import live_rules

pytestmark = pytest.mark.root

PROBE_TIMEOUT = 1.0


@dataclass
class Grid:
    cluster: Cluster
    pods: list[Pod]  # in ALL_PODS order
    ips: dict[str, str]  # "ns/pod" -> pod IP
    service_ips: dict[str, str]  # "ns/pod" -> its Service's ClusterIP
    timings: dict[str, float] = field(default_factory=dict)

    def wait_applied(self) -> None:
        """Every node's agents (the policy agent among them) applied the store as it is now."""
        c = self.cluster
        rv = int(c.status()["resourceVersion"])
        st = c.client.raw("GET", "/kins/v1/status", waitApplied=str(rv), timeoutSeconds="30")
        nodes = st["network"]["nodes"]
        late = {n: s["appliedResourceVersion"] for n, s in nodes.items() if int(s["appliedResourceVersion"]) < rv}
        assert nodes and not late, f"rules of resourceVersion {rv} not applied: {late}"

    def predict(self, port: int, protocol: str) -> dict[tuple[str, str], bool]:
        """``kins policy matrix``'s verdicts, read from the live nodes' rules and sets."""
        pods, nodes, _ = live_rules(self.cluster.client)
        m = compute([p for p in pods if p.key in ALL_PODS], nodes, port, protocol)
        return {(s, d): m.allowed(s, d) for s in m.pods for d in m.pods if s != d}

    def observe(
        self, port: int, protocol: str, via_service: bool = False
    ) -> tuple[dict[tuple[str, str], bool], dict[tuple[str, str], str]]:
        pairs, names = grid_pairs(self.pods, port, self.service_ips if via_service else None)
        outcomes = probe_outcomes(self.cluster.client, pairs, protocol, PROBE_TIMEOUT, names)
        return {k: o.ok for k, o in outcomes.items()}, {k: o.error for k, o in outcomes.items() if o.error}


@pytest.fixture(scope="module")
def grid() -> Iterator[Grid]:
    with running_cluster(apps=False) as c:
        t0 = time.monotonic()
        model = c.kins("policy", "model").stdout
        c.apply_text(model)
        for ns in NAMESPACES:
            c.wait_ready("", 3, timeout=120, ns=ns)
        pods = [c.client.get("Pod", *p.split("/")) for p in ALL_PODS]
        assert all(isinstance(p, Pod) and p.status and p.status.podIP for p in pods)
        typed = [p for p in pods if isinstance(p, Pod)]
        ips = {p.key: str(p.status.podIP) for p in typed if p.status}
        for p in typed:
            poll(lambda p=p: c.endpoint_ips(service_name(p.namespace, p.name), p.namespace), 30, f"{p.key}'s endpoints")
        svc = {p.key: str(c.service(service_name(p.namespace, p.name), p.namespace).spec.clusterIP) for p in typed}
        g = Grid(c, typed, ips, svc)
        g.wait_applied()

        # upstream waitForHTTPServers: every server answers before any case is judged
        def all_up() -> bool:
            for proto in ("TCP", "UDP"):
                for port in (80, 81):
                    ok, errors = g.observe(port, proto)
                    assert all(ok.values()), f"{proto}/{port} not up yet: {sorted(errors.items())[:3]}"
            return True

        poll(all_up, 60, "every model server reachable", interval=0.5)
        g.timings["setup"] = time.monotonic() - t0
        yield g
        print("\ntimings: " + ", ".join(f"{k} {v:.1f}s" for k, v in g.timings.items()))


def _apply(c: Cluster, policy: NetworkPolicy) -> None:
    c.apply_text(to_manifests([policy]))


@dataclass
class Undo:
    policies: set[tuple[str, str]] = field(default_factory=set)
    ns_labels: dict[str, dict[str, str | None]] = field(default_factory=dict)
    pod_labels: dict[tuple[str, str], dict[str, str | None]] = field(default_factory=dict)


def _check(grid: Grid, case: Case, n: int, step: Probe, via_service: bool) -> None:
    """One ValidateOrFail: probe, compare, print upstream's tables on a mismatch. A mismatch is
    probed once more before failing (and reported either way)."""
    what = f"case {case.id} check {n} ({step.protocol}/{step.port}{' via Services' if via_service else ''})"
    for attempt in (1, 2):
        observed, errors = grid.observe(step.port, step.protocol, via_service)
        wrong = step.reachability.wrong(observed)
        if not wrong:
            if attempt > 1:
                print(f"\n{what}: right on the second probe")
            # the matrix read from the nodes' kernel rules predicts exactly what the probes saw
            predicted = grid.predict(step.port, step.protocol)
            assert step.reachability.wrong(predicted) == [], (
                f"{what}: kins policy matrix disagrees with the probes\n"
                + comparison_table(step.reachability, predicted)
            )
            return
        report = (
            f"{what}: {len(wrong)} wrong pair(s) {wrong}\n"
            + comparison_table(step.reachability, observed)
            + "errors: "
            + json.dumps({f"{k[0]}->{k[1]}": v for k, v in sorted(errors.items())})
        )
        print("\n" + report)
        if attempt == 1:
            time.sleep(1.0)
    raise AssertionError(report)


def run_case(grid: Grid, case: Case, via_service: bool = False) -> None:
    c = grid.cluster
    undo = Undo()
    n = 0
    try:
        for step in case.steps(grid.ips):
            if isinstance(step, Create | Update):
                _apply(c, step.policy)
                undo.policies.add((step.policy.namespace, step.policy.name))
            elif isinstance(step, DeleteAll):
                for ns, name in sorted(undo.policies):
                    c.client.delete("NetworkPolicy", ns, name)
                undo.policies.clear()
            elif isinstance(step, LabelNamespace):
                live = c.client.get("Namespace", None, step.namespace).labels
                undo.ns_labels.setdefault(step.namespace, {k: live.get(k) for k in step.labels})
                c.client.patch("Namespace", None, step.namespace, {"metadata": {"labels": step.labels}})
            elif isinstance(step, LabelPod):
                live = c.client.get("Pod", step.namespace, step.pod).labels
                undo.pod_labels.setdefault((step.namespace, step.pod), {k: live.get(k) for k in step.labels})
                c.client.patch("Pod", step.namespace, step.pod, {"metadata": {"labels": step.labels}})
            elif isinstance(step, Probe):
                n += 1
                grid.wait_applied()
                _check(grid, case, n, step, via_service)
    finally:
        for ns, name in sorted(undo.policies):
            c.client.delete("NetworkPolicy", ns, name)
        for ns, labels in undo.ns_labels.items():
            c.client.patch("Namespace", None, ns, {"metadata": {"labels": labels}})
        for (ns, pod), labels in undo.pod_labels.items():
            c.client.patch("Pod", ns, pod, {"metadata": {"labels": labels}})
        grid.wait_applied()


def _marks(c: Case) -> list[pytest.MarkDecorator]:
    if c.offline_only:
        return [pytest.mark.skip(reason=c.offline_only)]
    return []


def _params(cases: Sequence[Case]) -> list[object]:
    return [pytest.param(c, id=c.id, marks=_marks(c)) for c in cases]


@pytest.mark.parametrize("case", _params(CASES))
def test_upstream_case(grid: Grid, case: Case) -> None:
    t0 = time.monotonic()
    run_case(grid, case)
    grid.timings[case.id] = time.monotonic() - t0


def test_judged_after_service_dnat(grid: Grid) -> None:
    """Upstream's newer kubemanager dials each pod's Service: the policy must see the packet
    after kube-proxy's DNAT (destination = the pod, port = its targetPort)."""
    by_id = {c.id: c for c in CASES}
    for cid in ("03", "19", "45"):  # ingress by podSelector, egress by named port, UDP
        run_case(grid, by_id[cid], via_service=True)


def test_policy_matrix_probe_agrees(grid: Grid) -> None:
    """``kins policy matrix --probe`` judges the same grid by real connections: nothing wrong."""
    c = grid.cluster
    by_id = {cs.id: cs for cs in CASES}
    steps = by_id["03"].steps(grid.ips)
    pol = next(s.policy for s in steps if isinstance(s, Create))
    _apply(c, pol)
    try:
        grid.wait_applied()
        res = c.kins("policy", "matrix", "x", "y", "z", "--probe", "-o", "json", timeout=120)
        doc = json.loads(res.stdout)
        assert doc["wrong"] == [], res.stdout
        assert (doc["port"], doc["protocol"]) == (80, "TCP")
        assert set(doc["pods"]) == set(ALL_PODS)
        expected = reach().expect_all_ingress("x/a", False).expect("x/b", "x/a", True)
        for (src, dst), ok in expected.expected.items():
            if src != dst:
                assert doc["verdicts"][src][dst] == ("allowed" if ok else "denied"), (src, dst)
    finally:
        c.client.delete("NetworkPolicy", pol.namespace, pol.name)
        grid.wait_applied()
