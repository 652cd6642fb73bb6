"""Costs of field ownership in the API server, measured over real HTTP on loopback.

- ``status_updates``: a kubelet-shaped Pod status write (``PUT .../pods/<name>/status``, a
  container's state and a condition changing each time) with managedFields kept, with their
  bookkeeping switched off, and to a Pod a controller wrote (untracked, as upstream leaves an
  object that never had managedFields), plus the bookkeeping alone (thread CPU per write).
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "unit"))

from api_helpers import api_server

from kins.api.load import to_object
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
def _client(store: MemoryStore | None = None) -> Iterator[httpx.Client]:
    with api_server(store or MemoryStore(history=100)) as (url, token):
        headers = {"Authorization": f"Bearer {token}", "User-Agent": "kubelet/v1.33.0 (linux/amd64)"}
        with httpx.Client(base_url=url, headers=headers) as c:
            yield c


@dataclass
class Run:
    times: list[float]  # wall seconds per request
    cpu: float  # CPU seconds of the whole process (client and server threads) per request


def _timed(n: int, send: Callable[[int], httpx.Response]) -> Run:
    out = []
    cpu0 = time.process_time()
    for i in range(n):
        t0 = time.perf_counter()
        r = send(i)
        out.append(time.perf_counter() - t0)
        if r.status_code >= 300:
            raise RuntimeError(f"{r.status_code}: {r.text}")
    return Run(out, (time.process_time() - cpu0) / n)


def _figures(name: str, run: Run) -> str:
    q = statistics.quantiles(run.times, n=100)
    rate = len(run.times) / sum(run.times)
    return (
        f"{name:<38} {rate:6.0f} req/s   p50 {q[49] * 1e3:5.2f} ms   p99 {q[98] * 1e3:6.2f} ms"
        f"   cpu {run.cpu * 1e3:5.2f} ms/req"
    )


def _status_writes(n: int, tracked: bool = True) -> Run:
    """A kubelet's loop: PUT the status, keep the answer for the next write. ``tracked``: the
    Pod was created through the API (with managedFields), else straight in the store, as the
    ReplicaSet controller creates its Pods."""
    store = MemoryStore(history=100)
    with _client(store) as c:
        if tracked:
            r = c.post("/api/v1/namespaces/default/pods", json=POD)
            r.raise_for_status()
            doc = r.json()
        else:
            store.create(to_object(POD, "bench"))
            doc = c.get("/api/v1/namespaces/default/pods/p").json()
        url = "/api/v1/namespaces/default/pods/p/status"

        def send(i: int) -> httpx.Response:
            nonlocal doc
            doc["status"] = _status(i)
            r = c.put(url, json=doc)
            doc = r.json()
            return r

        return _timed(n, send)


def status_updates(n: int) -> None:
    """Pod status PUTs with managedFields kept and without, and the bookkeeping alone."""
    print(_figures("pod status PUT, managedFields", _status_writes(n)))
    kept = verbs.record_write
    verbs.record_write = lambda request, t, old, new: new
    try:
        print(_figures("pod status PUT, no managedFields", _status_writes(n)))
    finally:
        verbs.record_write = kept
    print(_figures("pod status PUT, pod a controller made", _status_writes(n, tracked=False)))
    cost: list[float] = []
    real = managed.record_write

    def measured(request: Any, t: Any, old: Any, new: Any) -> Any:
        t0 = time.thread_time()  # CPU of the server's thread: what other load does not inflate
        out = real(request, t, old, new)
        cost.append(time.thread_time() - t0)
        return out

    verbs.record_write = measured
    try:
        _status_writes(n)
    finally:
        verbs.record_write = kept
    mean = statistics.mean(cost)
    print(f"{'  bookkeeping alone (thread CPU)':<38} mean {mean * 1e6:5.0f} us per status write")


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
