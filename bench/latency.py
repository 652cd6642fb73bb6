"""Request latency from a pod through data-product's ClusterIP next to straight to a pod IP.

    sudo python bench/latency.py [--requests 2000]

A small Python client runs inside a business-manager pod (`kins exec`) and alternates the two
targets request by request, one new TCP connection each (so every request goes through
kube-proxy's DNAT and conntrack), then prints p50/p90/p99 for both side by side. The direct
target is a data-product pod on the other node, as about 2 of 3 ClusterIP requests are.
"""

from __future__ import annotations

import argparse
import json

from up import ARTICLE_APPS_ARGS, DATA_PRODUCT_URL, Live, poll

from kins.api.core import Pod

CLIENT = r"""
import json, socket, sys, time
targets = json.loads(sys.argv[1]); n = int(sys.argv[2])
req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
out = {name: [] for name in targets}
for i in range(n):
    for name, (host, port) in targets.items():
        t0 = time.perf_counter()
        s = socket.create_connection((host, port), timeout=2)
        s.sendall(req)
        while s.recv(65536):
            pass
        s.close()
        out[name].append(time.perf_counter() - t0)
print(json.dumps(out))
"""


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    a = ap.parse_args()
    live = Live("l")
    try:
        live.kins("up", "--name", live.name, "--bare", "-q")
        live.kins("apply", *ARTICLE_APPS_ARGS)
        client = live.client()

        def ready() -> list[Pod] | None:
            pods = [p for p in client.list("Pod", "default") if isinstance(p, Pod)]
            return pods if len(pods) == 6 and all(p.ready for p in pods) else None

        pods = poll(ready, 60, "the article's pods", interval=0.1)
        src = next(p for p in pods if p.name.startswith("business-manager"))
        dst = next(p for p in pods if p.name.startswith("data-product") and p.spec.nodeName != src.spec.nodeName)
        assert dst.status is not None and dst.status.podIP
        targets = {"ClusterIP": ["10.254.116.224", 50051], "pod IP": [dst.status.podIP, 50051]}
        live.kins("exec", src.name, "--", "curl", "-sf", "-m", "2", DATA_PRODUCT_URL)  # rules in place
        raw = live.kins("exec", src.name, "--", "python3", "-c", CLIENT, json.dumps(targets), str(a.requests))
        client.close()
    finally:
        live.close()
    res = json.loads(raw)
    print(f"{a.requests} requests each from {src.name} ({src.spec.nodeName}), a new connection per request:")
    print(f"  {'target':<28} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
    for name, (host, port) in targets.items():
        xs = res[name]
        label = f"{name} {host}:{port}"
        print(f"  {label:<28} {pct(xs, 0.5):>8.3f} {pct(xs, 0.9):>8.3f} {pct(xs, 0.99):>8.3f}")


if __name__ == "__main__":
    main()
