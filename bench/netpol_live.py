"""The live half of bench/netpol.py: a 10-node cluster with 1,000 agnhost pods, measured with
no policy, then with each policy count in turn (see netpol.py's docstring)."""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from netpol import APPS, NAMESPACES, deployments, namespaces, policy
from scale_pods import cluster_file
from up import Live, poll

from kins.api.core import Pod
from kins.api.networking import NetworkPolicy

CONNECTS = 300  # first packets timed per target and condition

# Connect time of new TCP connections from inside a pod: the first packet's SYN through the
# rules to the SYN-ACK back (every connection is new to conntrack: a fresh source port each).
CONNECT_SCRIPT = """
import json, socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = []
for _ in range(n):
    s = socket.socket()
    t = time.perf_counter()
    s.connect((host, port))
    out.append((time.perf_counter() - t) * 1e6)
    s.close()
print(json.dumps(out))
"""


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _apply(live: Live, docs: list[dict[str, Any]]) -> None:
    live.kins("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}), timeout=600)


def _applied(client: Any, timeout: float = 60) -> float:
    """Seconds until every node applied the store as it is now."""
    t0 = time.perf_counter()
    rv = int(client.raw("GET", "/kins/v1/status")["resourceVersion"])
    client.raw("GET", "/kins/v1/status", waitApplied=str(rv), timeoutSeconds=str(timeout))
    return time.perf_counter() - t0


def _ready(client: Any, count: int, timeout: float) -> None:
    def check() -> bool:
        pods = [
            p for p in client.list("Pod", all_namespaces=True) if isinstance(p, Pod) and p.namespace != "kube-system"
        ]
        return len(pods) >= count and all(p.ready for p in pods)

    poll(check, timeout, f"{count} ready pods", interval=0.5)


def _connect_times(live: Live, client: Any, src: Pod, dst_ip: str) -> list[float]:
    from kins.clientexec import Command, pod_path, run

    argv = ["python3", "-c", CONNECT_SCRIPT, dst_ip, "8080", str(CONNECTS)]
    res = run(client, Command(pod_path(src.namespace, src.name), argv), timeout=120)
    if res.code != 0:
        raise SystemExit(f"connect probe from {src.key} failed: {res.stderr.decode()}")
    return list(json.loads(res.stdout))


def _pod_start(live: Live, client: Any, extra: int, total: int) -> float:
    """Seconds for ``extra`` new pods (one more replica in as many Deployments) to be ready."""
    t0 = time.perf_counter()
    for k in range(extra):
        ns, app = f"ns{k % NAMESPACES}", f"app{(k // NAMESPACES) % APPS}"
        dep = client.get("Deployment", ns, app)
        client.patch("Deployment", ns, app, {"spec": {"replicas": dep.spec.replicas + 1}})
    _ready(client, total + extra, 300)
    return time.perf_counter() - t0


def live(counts: list[int], changes: int, pods: int = 1000, extra: int = 20) -> dict[str, Any]:
    lv = Live("np")
    out: dict[str, Any] = {}
    total = pods
    try:
        lv.kins("up", "--name", lv.name, "--cluster", cluster_file(lv, 10), "--bare", "-q")
        client = lv.client()
        _apply(lv, namespaces() + deployments(pods // (NAMESPACES * APPS)))
        t0 = time.perf_counter()
        _ready(client, pods, 1800)
        out[f"{pods} pods ready (s)"] = round(time.perf_counter() - t0, 1)
        allp = [
            p for p in client.list("Pod", all_namespaces=True) if isinstance(p, Pod) and p.namespace.startswith("ns")
        ]
        # a client in ns3 (team t0, role r1) and a server in ns0 that policies select and admit it to
        src = next(p for p in allp if p.namespace == "ns3" and p.labels.get("app") == "app1")
        dst = next(p for p in allp if p.namespace == "ns0" and p.labels.get("app") == "app0")

        def latency(label: str) -> None:
            times = _connect_times(lv, client, src, str(dst.status.podIP if dst.status else ""))
            out[f"first packet (TCP connect), {label} (us p50/p99)"] = (
                round(statistics.median(times)),
                round(pct(times, 0.99)),
            )

        latency("no policy")
        out[f"pod start, no policy (s for +{extra} pods)"] = round(_pod_start(lv, client, extra, total), 2)
        total += extra
        have = 0
        for n in counts:
            _apply(lv, [policy(i) for i in range(have, n)])
            have = n
            out[f"{n} policies applied on every node (s)"] = round(_applied(client, 120), 2)
            times = []
            phases: list[dict[str, float]] = []
            for k in range(changes):
                i = k % n
                t0 = time.perf_counter()
                obj = client.patch("NetworkPolicy", f"ns{i % NAMESPACES}", f"p{i}", {"spec": policy(i, k + 1)["spec"]})
                assert isinstance(obj, NetworkPolicy)
                rv = int(obj.metadata.resourceVersion or 0)
                st = client.raw("GET", "/kins/v1/status", waitApplied=str(rv), timeoutSeconds="30")
                times.append((time.perf_counter() - t0) * 1000)
                phases.append(st.get("network", {}).get("policyLastSyncSeconds") or {})
            out[f"{n} policies: change -> enforced on every node (ms p50/p99)"] = (
                round(statistics.median(times), 1),
                round(pct(times, 0.99), 1),
            )
            for phase in ("resolve", "render", "apply"):
                got = [p[phase] * 1000 for p in phases if phase in p]
                if got:
                    out[f"{n} policies: agent's {phase} (ms p50/p99)"] = (
                        round(statistics.median(got), 1),
                        round(pct(got, 0.99), 1),
                    )
            latency(f"{n} policies")
            out[f"pod start, {n} policies (s for +{extra} pods)"] = round(_pod_start(lv, client, extra, total), 2)
            total += extra
        client.close()
    finally:
        lv.close()
    return out
