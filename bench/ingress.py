"""Throughput and latency through the ingress next to straight to a pod, and how soon an Ingress
change is served, on a live cluster (needs root; brings a cluster up and down on its own).

With wrk (same threads, connections and duration for each target):
  1. outside host ``client`` -> node1:30799 (NodePort) -> nginx pod -> backend pod  (the way in)
  2. node1 -> nginx pod IP:80 -> backend pod                                       (nginx alone)
  3. node1 -> backend pod IP straight                                             (the baseline)
Then, N times: a new Ingress (a new host) is created through the API, and a client polling from
the outside host every millisecond reports when it first gets the backend's answer.

    python bench/ingress.py [--seconds 10] [--connections 32] [--threads 2] [--changes 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

KINS = [sys.executable, "-c", "from kins.cli import main; main()"]
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"
NODE1 = "192.168.0.21"

BACKEND = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: bench, namespace: default}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: bench}}}}
  template:
    metadata: {{labels: {{app: bench}}}}
    spec:
      nodeSelector: {{kubernetes.io/hostname: node2}}
      containers:
      - name: netexec
        image: {AGNHOST}
        args: [netexec, --http-port=3000, --http-override=/hostname]
        readinessProbe:
          tcpSocket: {{port: 3000}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: bench, namespace: default}}
spec:
  selector: {{app: bench}}
  ports: [{{port: 8080, targetPort: 3000}}]
"""


def ingress(name: str, host: str) -> str:
    return f"""
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: {name}, namespace: default}}
spec:
  ingressClassName: nginx
  rules:
  - host: {host}
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: bench, port: {{number: 8080}}}}}}}}
"""


# Polls until the first 200 for Host argv[1]; prints the wall-clock time it came.
_POLL = textwrap.dedent(
    """
    import http.client, sys, time
    host, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    end = time.time() + 30
    while time.time() < end:
        try:
            c = http.client.HTTPConnection(addr, port, timeout=2)
            c.request("GET", "/", headers={"Host": host})
            r = c.getresponse(); r.read(); c.close()
            if r.status == 200:
                print(time.time()); break
        except OSError:
            pass
        time.sleep(0.001)
    """
)


class Bench:
    def __init__(self) -> None:
        self.name = f"b{secrets.token_hex(3)}"
        self.root = Path(tempfile.mkdtemp(prefix="kins-bench-"))
        self.env = {**os.environ, "KINS_STATE_DIR": str(self.root), "KINS_CLUSTER": self.name}

    def kins(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        r = subprocess.run([*KINS, *args], env=self.env, capture_output=True, text=True, input=stdin, timeout=timeout)
        if r.returncode != 0:
            raise SystemExit(f"kins {' '.join(args)}: {r.stderr or r.stdout}")
        return r.stdout

    def pod_ip(self, ns: str, prefix: str) -> str:
        for _ in range(600):
            out = self.kins("get", "pods", "-n", ns, "-o", "json")
            for p in json.loads(out).get("items", []):
                if p["metadata"]["name"].startswith(prefix) and p.get("status", {}).get("podIP"):
                    conds = {c["type"]: c["status"] for c in p["status"].get("conditions", [])}
                    if conds.get("Ready") == "True":
                        return str(p["status"]["podIP"])
            time.sleep(0.1)
        raise SystemExit(f"no ready {prefix} pod in {ns}")

    def wait_served(self, host: str) -> None:
        self.kins("host", "exec", "client", "--", sys.executable, "-c", _POLL, host, NODE1, "30799", timeout=40)


def wrk(cmd_prefix: list[str], url: str, host: str | None, a: argparse.Namespace) -> dict[str, float]:
    argv = [*cmd_prefix, "wrk", f"-t{a.threads}", f"-c{a.connections}", f"-d{a.seconds}s", "--latency"]
    if host:
        argv += ["-H", f"Host: {host}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    return {"rps": rps, "p50_ms": pct("50"), "p99_ms": pct("99"), "non2xx": float(errors.group(1)) if errors else 0.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--changes", type=int, default=5)
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench/ingress.py builds a live cluster: run it as root")
    b = Bench()
    data = Path(__file__).resolve().parents[1] / "src/kins/data/article"
    try:
        b.kins("up", "--name", b.name, "--bare", "-q")
        for f in ("kube-dns.yaml", "kube-dns-service.yaml", "ingress-nginx.yaml"):
            b.kins("apply", "-f", str(data / f))
        b.kins("apply", "-f", "-", stdin=BACKEND + "---" + ingress("bench", "bench.example"))
        backend = b.pod_ip("default", "bench")
        nginx = b.pod_ip("ingress-nginx", "nginx-ingress-controller")
        b.wait_served("bench.example")
        from kins.kernel.netns import host_ns, node_ns

        host = ["ip", "netns", "exec", host_ns(b.name, "client")]
        node = ["ip", "netns", "exec", node_ns(b.name, "node1")]
        rows = [
            ("client -> node1:30799 -> nginx -> pod", wrk(host, f"http://{NODE1}:30799/", "bench.example", a)),
            ("node1 -> nginx pod -> pod", wrk(node, f"http://{nginx}:80/", "bench.example", a)),
            ("node1 -> pod (no ingress)", wrk(node, f"http://{backend}:3000/", None, a)),
        ]
        from kins.api.load import load_text
        from kins.apiserver.auth import read_token
        from kins.client import Client
        from kins.daemon.state import DaemonInfo

        state = b.root / b.name
        info = DaemonInfo.read(state)
        assert info is not None
        client = Client(info.url, read_token(state), ca_file=info.ca_file)
        delays = []
        for i in range(a.changes):
            h = f"change-{i}.example"
            poller = subprocess.Popen(
                [*KINS, "host", "exec", "client", "--", sys.executable, "-c", _POLL, h, NODE1, "30799"],
                env=b.env,
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(0.5)  # the poller is running (and getting 404s)
            t0 = time.time()
            client.apply(load_text(ingress(f"change-{i}", h))[0])  # t0 .. the API's answer is the write
            out, _ = poller.communicate(timeout=40)
            delays.append((float(out.strip()) - t0) * 1000)
        print(f"wrk -t{a.threads} -c{a.connections} -d{a.seconds}s, backend: agnhost netexec on node2, nginx on node1")
        print(f"{'path':<42} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
        for label, r in rows:
            print(f"{label:<42} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['non2xx']:>8.0f}")
        print(
            f"Ingress created -> served from outside, {a.changes} changes: median {statistics.median(delays):.0f} ms, "
            f"min {min(delays):.0f} ms, max {max(delays):.0f} ms"
        )
    finally:
        subprocess.run([*KINS, "down", "--name", b.name], env=b.env, capture_output=True, timeout=120)
        subprocess.run(["rm", "-rf", str(b.root)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
