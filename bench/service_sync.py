"""Service change -> kube-proxy rules applied on every node: p50 and p99 over many changes.

    sudo python bench/service_sync.py [--nodes 10] [--changes 200] [--agents process] [--baseline SRC_DIR]

A 10-node cluster runs a Deployment behind a few Services; each change moves one Service to a
new port. The clock starts when the write is sent and stops when the daemon's status
(GET /kins/v1/status) shows every node's appliedResourceVersion at or past the write's
resourceVersion. Every 20th change is checked against the node's real iptables-save.
``--agents process`` runs one ``kins agent`` process per node; ``--baseline`` measures another
tree's sources (``PYTHONPATH=SRC_DIR``) first, then this one, in the same invocation.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from scale_pods import cluster_file
from up import Live, in_netns, poll

from kins.api.core import Pod, Service

SERVICES = 10


def workload(pods: int) -> str:
    svcs = "".join(
        f"""---
apiVersion: v1
kind: Service
metadata: {{name: sync-{i}, namespace: default}}
spec:
  selector: {{app: sync}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
"""
        for i in range(SERVICES)
    )
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: sync, namespace: default}}
spec:
  replicas: {pods}
  selector: {{matchLabels: {{app: sync}}}}
  template:
    metadata: {{labels: {{app: sync}}}}
    spec:
      containers:
      - name: agnhost
        image: registry.k8s.io/e2e-test-images/agnhost:2.47
        args: [netexec, --http-port=8080, --udp-port=8081]
{svcs}"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--pods", type=int, default=20)
    ap.add_argument("--agents", choices=["in-process", "process"], help="the cluster file's agents.mode")
    ap.add_argument("--baseline", metavar="SRC_DIR", help="measure this tree's sources first")
    a = ap.parse_args()
    if a.baseline:
        measure(a, str(Path(a.baseline).resolve()), "baseline")
    measure(a, None, "this tree")


def measure(a: argparse.Namespace, src: str | None, label: str) -> None:
    live = Live("y", src=src)
    rng = random.Random(1)
    times: list[float] = []
    checked = 0
    try:
        live.kins("up", "--name", live.name, "--cluster", cluster_file(live, a.nodes, a.agents), "--bare", "-q")
        live.kins("apply", "-f", "-", stdin=workload(a.pods))
        client = live.client()

        def ready() -> bool:
            pods = [p for p in client.list("Pod", "default") if isinstance(p, Pod)]
            return len(pods) == a.pods and all(p.ready for p in pods)

        poll(ready, 120, "the workload's pods", interval=0.1)

        def applied(rv: int) -> bool:
            nodes = client.raw("GET", "/kins/v1/status")["network"]["nodes"]
            return len(nodes) == a.nodes and all(int(n["appliedResourceVersion"]) >= rv for n in nodes.values())

        poll(lambda: applied(int(client.raw("GET", "/kins/v1/status")["resourceVersion"])), 30, "the first sync")
        for k in range(a.changes):
            name = f"sync-{k % SERVICES}"
            port = 20000 + k
            t0 = time.perf_counter()
            svc = client.patch("Service", "default", name, {"spec": {"ports": [{"name": "http", "port": port}]}})
            assert isinstance(svc, Service)
            rv = int(svc.metadata.resourceVersion or 0)
            # The daemon answers once every node applied this resourceVersion: no polling load.
            client.raw("GET", "/kins/v1/status", waitApplied=str(rv), timeoutSeconds="10")
            if not applied(rv):
                raise SystemExit(f"rules of change {k} were not applied within 10 s")
            times.append(time.perf_counter() - t0)
            if k % 20 == 0:
                node = f"node{rng.randint(1, a.nodes)}"
                save = in_netns(live.netns("node", node), "iptables-save", "-t", "nat").stdout
                want = f'-d {svc.spec.clusterIP}/32 -p tcp -m comment --comment "default/{name}:http cluster IP"'
                rule = next((line for line in save.splitlines() if want in line), "")
                assert f"--dport {port} " in rule, f"{node}: no rule for {name} port {port}:\n{rule}"
                checked += 1
        client.close()
    finally:
        live.close()
    ms = sorted(t * 1000 for t in times)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    mode = f", agents {a.agents}" if a.agents else ""
    print(f"{label}: {len(ms)} Service changes on {a.nodes} nodes ({a.pods} pods, {SERVICES} Services{mode}):")
    p50 = statistics.median(ms)
    print(f"  write -> rules applied on every node: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms")
    print(f"  {checked} samples matched the nodes' iptables-save")


if __name__ == "__main__":
    main()
