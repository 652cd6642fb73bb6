"""Every upstream NetworkPolicy e2e case, offline: the model's manifests (TCP, UDP and SCTP
servers) and the case's policies rendered into each node's rules, and ``kins policy matrix``'s
truth table from those rules compared with upstream's expectation. This kernel has no SCTP, so
the SCTP cases run only here; the live suite (tests/e2e/test_netpol_upstream.py) runs the rest
against real connections."""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
import pytest

from kins.api.config import default_cluster
from kins.api.core import Namespace, Pod
from kins.api.meta import Object
from kins.api.networking import NetworkPolicy
from kins.control.offline import build_offline_state
from kins.policy.matrix import NodeRules, compute
from kins.policy.model import ALL_PROTOCOLS, model_objects
from kins.policy.sources import node_addresses
from kins.render.cluster import nodes_config, policy_state

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
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
)


def _with_labels(obj: Object, labels: dict[str, str]) -> Object:
    meta = msgspec.structs.replace(obj.metadata, labels={**(obj.metadata.labels or {}), **labels})
    return msgspec.structs.replace(obj, metadata=meta)


def _predict(objs: list[Object], policies: dict[tuple[str, str], NetworkPolicy], port: int, proto: str) -> dict:
    cfg = default_cluster()
    store = build_offline_state(cfg, [*objs, *policies.values()])
    nodes = nodes_config(cfg, [n for n in store.list("Node")[0]])  # type: ignore[misc]
    state = policy_state(store)
    rules = {
        n.name: NodeRules.from_text((r := state.render(cfg, n.name)).restore, r.ipsets, node_addresses(n.ip, n.podCIDR))
        for n in nodes.nodes
    }
    m = compute([p for p in state.cluster.pods if p.key in ALL_PODS], rules, port, proto)
    return {(s, d): m.allowed(s, d) for s in m.pods for d in m.pods if s != d}


def _ips(objs: list[Object]) -> dict[str, str]:
    store = build_offline_state(default_cluster(), objs)
    return {p.key: str(p.status.podIP) for p in store.list("Pod")[0] if isinstance(p, Pod) and p.status}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_offline(case: Case) -> None:
    objs: list[Object] = list(model_objects(protocols=ALL_PROTOCOLS))
    ips = _ips(objs)
    policies: dict[tuple[str, str], NetworkPolicy] = {}
    n = 0
    for step in case.steps(ips):
        if isinstance(step, Create | Update):
            policies[(step.policy.namespace, step.policy.name)] = step.policy
        elif isinstance(step, DeleteAll):
            policies.clear()
        elif isinstance(step, LabelNamespace):
            objs = [
                _with_labels(o, step.labels) if isinstance(o, Namespace) and o.name == step.namespace else o
                for o in objs
            ]
        elif isinstance(step, LabelPod):
            objs = [
                _with_labels(o, step.labels)
                if isinstance(o, Pod) and (o.metadata.namespace, o.name) == (step.namespace, step.pod)
                else o
                for o in objs
            ]
        elif isinstance(step, Probe):
            n += 1
            predicted = _predict(objs, policies, step.port, step.protocol)
            wrong = step.reachability.wrong(predicted)
            assert wrong == [], f"case {case.id} check {n} ({step.protocol}/{step.port}): {wrong}"
    assert n, "a case checks something"
