"""Costs of field ownership in the API server, measured over real HTTP on loopback.

- ``status_updates``: a kubelet-shaped Pod status write (``PUT .../pods/<name>/status``, a
  container's state and a condition changing each time) with managedFields kept, and with their
  bookkeeping switched off, plus the bookkeeping alone (microseconds per write).
- ``apply_rate``: server-side apply of a Deployment (the replica count changing each time)
  next to the same change as a JSON merge patch: requests/s and p50/p99 latency.

Requests are sent one at a time by one client, so the figures are the server's per-request cost.

    python bench/api_apply.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "unit"))

from api_helpers import api_server

from kins.apiserver import managed, verbs
from kins.store.memory import MemoryStore

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web", "tier": "front"}},
    "spec": {
        "nodeName": "node-1",
        "containers": [
            {
                "name": "web",
                "image": "nginx",
                "ports": [{"containerPort": 80}, {"containerPort": 443}],
                "env": [{"name": f"V{i}", "value": str(i)} for i in range(6)],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            },
            {"name": "sidecar", "image": "busybox", "command": ["sleep", "3600"]},
        ],
        "volumes": [{"name": "data", "emptyDir": {}}],
    },
}

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  replicas: %d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        ports: [{containerPort: 80}]
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
        resources: {limits: {cpu: 100m, memory: 64Mi}}
      - name: sidecar
        image: busybox
"""


def _status(i: int) -> dict[str, Any]:
    state = {"running": {"startedAt": f"2026-01-01T00:00:{i % 60:02d}Z"}}
    return {
        "phase": "Running",
        "hostIP": "10.0.0.1",
        "podIP": "10.244.1.5",
        "podIPs": [{"ip": "10.244.1.5"}],
        "startTime": "2026-01-01T00:00:00Z",
        "conditions": [
            {"type": "Ready", "status": "True" if i % 2 else "False", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "PodScheduled", "status": "True"},
        ],
        "containerStatuses": [
            {"name": "web", "ready": bool(i % 2), "restartCount": i, "image": "nginx", "state": state},
            {"name": "sidecar", "ready": True, "restartCount": 0, "image": "busybox", "state": state},
        ],
    }


@contextmanager
def _client() -> Iterator[httpx.Client]:
    with api_server(MemoryStore(history=100)) as (url, token):
        headers = {"Authorization": f"Bearer {token}", "User-Agent": "kubelet/v1.33.0 (linux/amd64)"}
        with httpx.Client(base_url=url, headers=headers) as c:
            yield c


def _timed(n: int, send: Callable[[int], httpx.Response]) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        r = send(i)
        out.append(time.perf_counter() - t0)
        if r.status_code >= 300:
            raise RuntimeError(f"{r.status_code}: {r.text}")
    return out


def _figures(name: str, times: list[float]) -> str:
    q = statistics.quantiles(times, n=100)
    return f"{name:<34} {len(times) / sum(times):8.0f} req/s   p50 {q[49] * 1e3:6.2f} ms   p99 {q[98] * 1e3:6.2f} ms"


def _status_writes(n: int) -> list[float]:
    with _client() as c:
        c.post("/api/v1/namespaces/default/pods", json=POD).raise_for_status()
        url = "/api/v1/namespaces/default/pods/p/status"

        def send(i: int) -> httpx.Response:
            doc = c.get("/api/v1/namespaces/default/pods/p").json()
            doc["status"] = _status(i)
            t0 = time.perf_counter()
            r = c.put(url, json=doc)
            send.put_time = time.perf_counter() - t0  # type: ignore[attr-defined]
            return r

        times = []
        for i in range(n):
            r = send(i)
            r.raise_for_status()
            times.append(send.put_time)  # type: ignore[attr-defined]
        return times


def status_updates(n: int) -> None:
    """Pod status PUTs with managedFields kept and without, and the bookkeeping alone."""
    print(_figures("pod status PUT, managedFields", _status_writes(n)))
    kept = verbs.record_write
    verbs.record_write = lambda request, t, old, new: new
    try:
        print(_figures("pod status PUT, no managedFields", _status_writes(n)))
    finally:
        verbs.record_write = kept
    cost: list[float] = []
    real = managed.record_write

    def measured(request: Any, t: Any, old: Any, new: Any) -> Any:
        t0 = time.perf_counter()
        out = real(request, t, old, new)
        cost.append(time.perf_counter() - t0)
        return out

    verbs.record_write = measured
    try:
        _status_writes(n)
    finally:
        verbs.record_write = kept
    q = statistics.quantiles(cost, n=100)
    mean = statistics.mean(cost)
    print(f"{'  managedFields bookkeeping alone':<34} mean {mean * 1e6:6.0f} us   p99 {q[98] * 1e6:6.0f} us")


def apply_rate(n: int) -> None:
    """Server-side apply of a Deployment next to a merge patch making the same change."""
    with _client() as c:
        url = "/apis/apps/v1/namespaces/default/deployments/web"
        apply_headers = {"Content-Type": "application/apply-patch+yaml"}
        c.patch(url, params={"fieldManager": "bench"}, content=DEPLOYMENT % 1, headers=apply_headers).raise_for_status()

        def apply(i: int) -> httpx.Response:
            return c.patch(
                url, params={"fieldManager": "bench"}, content=DEPLOYMENT % (i % 5 + 1), headers=apply_headers
            )

        def merge(i: int) -> httpx.Response:
            body = {"spec": {"replicas": i % 5 + 1}}
            return c.patch(url, json=body, headers={"Content-Type": "application/merge-patch+json"})

        print(_figures("deployment server-side apply", _timed(n, apply)))
        print(_figures("deployment merge patch", _timed(n, merge)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    status_updates(args.requests)
    apply_rate(args.requests)


if __name__ == "__main__":
    main()
