"""10 nodes x 100 pods: `kins up` of a 10-node cluster, then a Deployment of N agnhost pods,
until every pod is ready; prints the time and the peak memory (PSS) of the daemon and the pods.

    sudo python bench/scale_pods.py [--nodes 10] [--pods 100]
"""

from __future__ import annotations

import argparse
import json
import threading
import time

from up import Live, cluster_pids, poll, pss_kib

from kins.api.config import default_cluster
from kins.api.core import Pod


def cluster_file(live: Live, nodes: int, agents: str | None = None) -> str:
    import msgspec

    data = msgspec.to_builtins(default_cluster())
    data["name"] = live.name
    if agents is not None:
        data["agents"] = {"mode": agents}
    data["nodes"] = [{"name": f"node{i}", "ip": f"192.168.0.{20 + i}"} for i in range(1, nodes + 1)]
    path = live.root / "cluster.json"
    path.write_text(json.dumps(data))
    return str(path)


def deployment(pods: int) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: scale, namespace: default}}
spec:
  replicas: {pods}
  selector: {{matchLabels: {{app: scale}}}}
  template:
    metadata: {{labels: {{app: scale}}}}
    spec:
      containers:
      - name: agnhost
        image: registry.k8s.io/e2e-test-images/agnhost:2.47
        args: [netexec, --http-port=8080, --udp-port=8081]
        readinessProbe:
          tcpSocket: {{port: 8080}}
          periodSeconds: 1
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--pods", type=int, default=100)
    a = ap.parse_args()
    live = Live("s")
    peak = [0, 0]  # KiB, processes at that moment
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            pids = cluster_pids(live)
            kib = pss_kib(pids)
            if kib > peak[0]:
                peak[:] = [kib, len(pids)]
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        cfile = cluster_file(live, a.nodes)
        t0 = time.monotonic()
        sampler.start()
        live.kins("up", "--name", live.name, "--cluster", cfile, "--bare", "-q")
        t_up = time.monotonic() - t0
        live.kins("apply", "-f", "-", stdin=deployment(a.pods))
        client = live.client()

        def all_ready() -> tuple[int, int] | None:
            pods = [p for p in client.list("Pod", "default") if isinstance(p, Pod)]
            ready = sum(1 for p in pods if p.ready)
            nodes = len({p.spec.nodeName for p in pods})
            return (ready, nodes) if len(pods) == a.pods and ready == a.pods else None

        _, nodes_used = poll(all_ready, 300, f"{a.pods} ready pods", interval=0.1)
        t_ready = time.monotonic() - t0
        stop.wait(1.0)  # one more memory sample with everything running
        settled = pss_kib(cluster_pids(live))
        client.close()
    finally:
        stop.set()
        live.close()
    print(f"{a.nodes} nodes up (daemon ready): {t_up:.2f}s")
    print(f"{a.pods} pods ready on {nodes_used} nodes: {t_ready:.2f}s after `kins up` started")
    print(f"peak PSS of daemon + pod processes: {peak[0] / 1024:.0f} MiB ({peak[1]} processes)")
    print(f"PSS once all were ready: {settled / 1024:.0f} MiB, {settled / 1024 / a.pods:.2f} MiB per pod")


if __name__ == "__main__":
    main()
