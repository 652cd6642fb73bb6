"""NetworkPolicy at scale: 100 and 1,000 policies over 1,000 pods on 10 nodes, side by side.

    python bench/netpol.py --offline              # no root: render and matrix times
    sudo python bench/netpol.py                   # also the live cluster's figures

Offline: the policy layer of every node rendered from the objects (PolicyState + render), and
``kins policy matrix`` over all 1,000 x 1,000 pod pairs (target <= 10 s).

Live (10 nodes, 1,000 agnhost pods in 10 namespaces): a policy change to enforced on every node
(GET /kins/v1/status?waitApplied, p50/p99; target p99 <= 200 ms), the cost of starting pods
with and without policies, and the first packet's latency (TCP connect from a pod, p50/p99)
to a pod no policy selects and to one that policies select.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import msgspec

from kins.api.config import default_cluster
from kins.api.load import load_documents
from kins.api.meta import Object

NAMESPACES = 10
APPS = 10  # Deployments per namespace
NODES = 10


def cluster_nodes() -> list[dict[str, str]]:
    return [{"name": f"node{i}", "ip": f"192.168.0.{20 + i}"} for i in range(1, NODES + 1)]


def namespaces() -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns{n}", "labels": {"team": f"t{n % 3}"}}}
        for n in range(NAMESPACES)
    ]


def deployments(replicas: int) -> list[dict[str, Any]]:
    out = []
    for n in range(NAMESPACES):
        for a in range(APPS):
            labels = {"app": f"app{a}", "role": f"r{a % 4}"}
            out.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": f"app{a}", "namespace": f"ns{n}"},
                    "spec": {
                        "replicas": replicas,
                        "selector": {"matchLabels": {"app": f"app{a}"}},
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {
                                "containers": [
                                    {
                                        "name": "agnhost",
                                        "image": "registry.k8s.io/e2e-test-images/agnhost:2.47",
                                        "args": ["netexec", "--http-port=8080", "--udp-port=8081"],
                                        "ports": [{"name": "http", "containerPort": 8080}],
                                    }
                                ]
                            },
                        },
                    },
                }
            )
    return out


def roles(i: int) -> dict[str, Any]:
    return {"key": "role", "operator": "In", "values": [f"r{i % 4}", f"r{(i + 1) % 4}"]}


def policy(i: int, version: int = 0) -> dict[str, Any]:
    """Policy ``i``: selects one app of one namespace, admits some roles of one team on its named
    port and on port 9000 + ``version`` (a change moves that port)."""
    ns, app = i % NAMESPACES, (i // NAMESPACES) % APPS
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"p{i}", "namespace": f"ns{ns}"},
        "spec": {
            "podSelector": {"matchLabels": {"app": f"app{app}"}},
            "policyTypes": ["Ingress"] if i % 5 else ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"team": f"t{i % 3}"}},
                            "podSelector": {
                                "matchExpressions": [
                                    {"key": "role", "operator": "In", "values": [f"r{i % 4}", f"r{(i + 1) % 4}"]}
                                ]
                            },
                        }
                    ],
                    "ports": [{"port": "http"}, {"protocol": "TCP", "port": 9000 + version}],
                }
            ],
            "egress": [{"to": [{"namespaceSelector": {}}]}, {"ports": [{"protocol": "UDP", "port": 53}]}],
        },
    }


def offline(policies: int) -> dict[str, float]:
    from kins.control.offline import build_offline_state
    from kins.policy.matrix import NodeRules, compute
    from kins.policy.sources import node_addresses
    from kins.render.cluster import nodes_config, policy_state

    cfg = default_cluster()
    data = msgspec.to_builtins(cfg)
    data["nodes"] = cluster_nodes()
    cfg = msgspec.convert(data, type(cfg))
    docs = namespaces() + deployments(1000 // (NAMESPACES * APPS)) + [policy(i) for i in range(policies)]
    objs: list[Object] = load_documents(docs, "<bench>")
    store = build_offline_state(cfg, objs)
    nodes = nodes_config(cfg, [n for n in store.list("Node")[0]])  # type: ignore[misc]
    t0 = time.perf_counter()
    state = policy_state(store)
    t1 = time.perf_counter()
    renders = {n.name: state.render(nodes, n.name) for n in nodes.nodes}
    t2 = time.perf_counter()
    rules = NodeRules.shared(
        {
            n.name: (renders[n.name].restore, renders[n.name].ipsets, node_addresses(n.ip, n.podCIDR))
            for n in nodes.nodes
        }
    )
    t3 = time.perf_counter()
    m = compute(state.cluster.pods, rules, 8080, "tcp")
    t4 = time.perf_counter()
    cli = _cli_matrix(docs)
    lines = sum(r.restore.count("\n") for r in renders.values()) / len(renders)
    sets = sum(len(r.ipsets) for r in renders.values()) / len(renders)
    denied = sum(v == "denied" for row in m.verdicts.values() for v in row.values())
    return {
        "pods": len(state.cluster.pods),
        "resolve_s": t1 - t0,
        "render_s": t2 - t1,
        "rules_per_node": lines,
        "sets_per_node": sets,
        "compile_s": t3 - t2,
        "matrix_s": t4 - t3,
        "matrix_total_s": t4 - t0,
        "walks": m.walks,
        "denied_pairs": denied,
        "cli_s": cli,
    }


def _cli_matrix(docs: list[dict[str, Any]]) -> float:
    """Wall time of ``kins policy matrix -f`` over the same objects, from a fresh process:
    loading and converging the manifests included."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = f"{d}/objects.json"
        with open(path, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "List", "items": docs}, f)
        cluster = f"{d}/cluster.json"
        data = msgspec.to_builtins(default_cluster())
        data["nodes"] = cluster_nodes()
        with open(cluster, "w") as f:
            json.dump(data, f)
        argv = [sys.executable, "-c", "from kins.cli import main; main()", "policy", "matrix"]
        argv += ["-f", path, "--cluster", cluster, "--port", "8080", "-o", "json"]
        t0 = time.perf_counter()
        res = subprocess.run(argv, capture_output=True, text=True, check=False)
        took = time.perf_counter() - t0
        if res.returncode != 0:
            raise SystemExit(f"kins policy matrix failed: {res.stderr}")
        assert len(json.loads(res.stdout)["pods"]) >= 1000
        return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--offline", action="store_true", help="only the offline figures (no root)")
    ap.add_argument("--policies", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--changes", type=int, default=50, help="policy changes timed per policy count (live)")
    ap.add_argument("--pods", type=int, default=1000, help="pods of the live cluster (a multiple of 100)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    results: dict[str, Any] = {"offline": {}}
    for n in a.policies:
        results["offline"][n] = offline(n)
    if not a.offline:
        from netpol_live import live

        results["live"] = live(a.policies, a.changes, a.pods)
    if a.json:
        print(json.dumps(results, indent=2))
        return
    print("offline, 1,000 pods on 10 nodes (CLI: `kins policy matrix -f` end to end, loading included):")
    head = ("policies", "resolve", "render", "rules/node", "sets/node", "matrix 1000x1000", "walks", "CLI")
    print("  " + "  ".join(f"{h:>{w}}" for h, w in zip(head, (8, 8, 8, 10, 9, 16, 7, 8), strict=True)))
    for n, r in results["offline"].items():
        print(
            f"  {n:>8}  {r['resolve_s']:>7.2f}s  {r['render_s']:>7.2f}s  {r['rules_per_node']:>10.0f}"
            f"  {r['sets_per_node']:>9.0f}  {r['matrix_total_s']:>15.2f}s  {r['walks']:>7}  {r['cli_s']:>7.2f}s"
        )
    if "live" in results:
        live_rows = results["live"]
        print(f"live, 10 nodes, {a.pods} pods:")
        for k, v in live_rows.items():
            print(f"  {k}: {v}")
    _ = statistics


if __name__ == "__main__":
    main()
