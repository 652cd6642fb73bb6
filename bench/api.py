"""The API's answers in JSON next to protobuf: a GET, a list of 1,000 pods, a watch fanned out,
a server-side apply.

    python bench/api.py [--pods 1000] [--gets 1000] [--lists 20] [--watchers 100] [--events 100]
                        [--applies 300] [--rounds 3]

The API (``make_app`` over a memory store holding --pods realistic pods, with status) runs in a
child process on 127.0.0.1; this process is the client, over keep-alive connections, and reads
whole bodies without decoding them (the server's cost is what is measured). Each case runs once
with ``Accept: application/json`` and once with ``Accept: application/vnd.kubernetes.protobuf``.
The watch case opens --watchers watches on one pod, then patches it --events times, each patch
sent once every watcher has the previous event; latency runs from sending a patch to a watcher
receiving its event, over every watcher and event. The apply case sends a Deployment's
configuration as ``application/apply-patch+yaml`` (field manager ``bench``), its replica count
changing with every request, and reads the answer in either format.

Each case runs --rounds times, the two formats alternating; figures pool all rounds. All cases
run twice: against the API as it runs (a stored object's encoding is reused until its
resourceVersion changes) and with that reuse off, so every read pays for encoding. No root and
no network namespaces needed.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing as mp
import os
import selectors
import socket
import struct
import threading
import time
from typing import Any

TOKEN = "bench-token"
JSON = "application/json"
PROTO = "application/vnd.kubernetes.protobuf"


def pod(i: int) -> dict[str, Any]:
    """A pod as a Deployment's ReplicaSet makes it, running on a node."""
    name = f"web-5d9c7b8f4-{i:05d}"
    started = "2026-12-07T10:00:00Z"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"app": "web", "pod-template-hash": "5d9c7b8f4"},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9c7b8f4", "uid": "0f3a1c"}
            ],
        },
        "spec": {
            "nodeName": f"node{i % 10}",
            "containers": [
                {
                    "name": "web",
                    "image": "registry.k8s.io/e2e-test-images/agnhost:2.47",
                    "args": ["netexec", "--http-port=8080"],
                    "ports": [{"containerPort": 8080, "protocol": "TCP", "name": "http"}],
                    "env": [{"name": "MODE", "value": "bench"}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5},
                }
            ],
        },
        "status": {
            "phase": "Running",
            "podIP": f"10.244.{i // 250}.{i % 250 + 2}",
            "podIPs": [{"ip": f"10.244.{i // 250}.{i % 250 + 2}"}],
            "hostIP": f"192.168.0.{i % 10 + 2}",
            "startTime": started,
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": started}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "containerStatuses": [
                {
                    "name": "web",
                    "ready": True,
                    "restartCount": 0,
                    "image": "registry.k8s.io/e2e-test-images/agnhost:2.47",
                    "imageID": "",
                    "state": {"running": {"startedAt": started}},
                }
            ],
        },
    }


def serve(pods: int, port_out: Any, reuse: bool) -> None:
    """The child process: the API over a memory store holding ``pods`` pods."""
    import msgspec

    from kins.apiserver import response

    if not reuse:
        response.ENCODED_OBJECTS = 0  # each object evicted as soon as it is encoded

    from kins.api.config import default_cluster
    from kins.api.core import Pod
    from kins.apiserver.server import make_app, start
    from kins.store.memory import MemoryStore

    store = MemoryStore()
    store.bulk_create([msgspec.convert(pod(i), Pod) for i in range(pods)])

    async def run() -> None:
        runner, port = await start(make_app(store, default_cluster(), token=TOKEN))
        port_out.send(port)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    asyncio.run(run())


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))] * 1000


def timed_gets(port: int, path: str, accept: str, n: int) -> tuple[list[float], int]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": accept}
    times = []
    size = 0
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        times.append(time.perf_counter() - t0)
        assert resp.status == 200, body[:200]
        assert resp.getheader("Content-Type", "").startswith(accept), resp.getheader("Content-Type")
        size = len(body)
    conn.close()
    return times, size


def deployment(replicas: int) -> dict[str, Any]:
    """The configuration the apply case sends: a Deployment as a manifest holds it."""
    labels = {"app": "api-bench"}
    container = {"name": "web", "image": "registry.k8s.io/e2e-test-images/agnhost:2.47", "args": ["netexec"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api-bench", "namespace": "default", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def timed_applies(port: int, accept: str, n: int) -> tuple[list[float], int]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": accept, "Content-Type": "application/apply-patch+yaml"}
    path = "/apis/apps/v1/namespaces/default/deployments/api-bench?fieldManager=bench"
    times = []
    size = 0
    for i in range(n):
        body = json.dumps(deployment(1 + i % 5)).encode()
        t0 = time.perf_counter()
        conn.request("PATCH", path, body=body, headers=headers)
        resp = conn.getresponse()
        answer = resp.read()
        times.append(time.perf_counter() - t0)
        assert resp.status in (200, 201), answer[:300]
        size = len(answer)
    conn.close()
    return times, size


class Watcher:
    """One watch over a raw socket: HTTP/1.1 chunked framing undone here, events counted by
    newline (JSON) or by length prefix (protobuf)."""

    def __init__(self, port: int, path: str, accept: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        req = f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nAccept: {accept}\r\n\r\n"
        self.sock.sendall(req.encode())
        self.sock.setblocking(False)
        self.proto = accept.startswith(PROTO)
        self.raw = b""
        self.headers_done = False
        self.body = b""
        self.received: list[float] = []

    def feed(self, data: bytes, now: float) -> None:
        self.raw += data
        if not self.headers_done:
            head, sep, rest = self.raw.partition(b"\r\n\r\n")
            if not sep:
                return
            assert head.startswith(b"HTTP/1.1 200"), head
            self.headers_done, self.raw = True, rest
        while True:  # chunked transfer encoding
            line, sep, rest = self.raw.partition(b"\r\n")
            if not sep:
                break
            size = int(line.split(b";")[0], 16)
            if len(rest) < size + 2:
                break
            self.body += rest[:size]
            self.raw = rest[size + 2 :]
        while True:
            if self.proto:
                if len(self.body) < 4:
                    break
                (n,) = struct.unpack(">I", self.body[:4])
                if len(self.body) < 4 + n:
                    break
                self.body = self.body[4 + n :]
            else:
                line, sep, rest = self.body.partition(b"\n")
                if not sep:
                    break
                self.body = rest
            self.received.append(now)


def watch_fanout(port: int, accept: str, watchers: int, events: int) -> tuple[list[float], float]:
    """Latencies of every event at every watcher (from sending its patch), and the seconds
    until all arrived."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    conn.request("GET", "/api/v1/namespaces/default/pods?limit=1", headers={**auth, "Accept": JSON})
    rv = json.loads(conn.getresponse().read())["metadata"]["resourceVersion"]
    target = pod(0)["metadata"]["name"]
    path = f"/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3D{target}"
    ws = [Watcher(port, path, accept + (";stream=watch" if accept == PROTO else "")) for _ in range(watchers)]
    sel = selectors.DefaultSelector()
    for w in ws:
        sel.register(w.sock, selectors.EVENT_READ, w)
    sent: list[float] = []
    # Closed loop: the next write waits until every watcher has the previous event, so that
    # latency is the fan-out's, not a queue of writes.
    arrived = [threading.Event() for _ in range(events)]

    def write() -> None:
        for i in range(events):
            if i and not arrived[i - 1].wait(30):
                return
            body = json.dumps({"metadata": {"labels": {"rev": str(i)}}})
            sent.append(time.perf_counter())
            conn.request(
                "PATCH",
                f"/api/v1/namespaces/default/pods/{target}",
                body=body,
                headers={**auth, "Accept": accept, "Content-Type": "application/merge-patch+json"},
            )
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200

    time.sleep(0.5)  # every watch registered before the first write
    t0 = time.perf_counter()
    writer = threading.Thread(target=write)
    writer.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all(len(w.received) >= events for w in ws):
            break
        for key, _ in sel.select(timeout=0.5):
            w = key.data
            try:
                data = w.sock.recv(1 << 20)
            except BlockingIOError:
                continue
            w.feed(data, time.perf_counter())
        n = min(len(w.received) for w in ws)
        if n:
            arrived[n - 1].set()
    elapsed = time.perf_counter() - t0
    writer.join()
    conn.close()
    for w in ws:
        sel.unregister(w.sock)
        w.sock.close()
    missing = sum(events - len(w.received) for w in ws)
    assert missing == 0, f"{missing} events never arrived"
    latencies = [w.received[i] - sent[i] for w in ws for i in range(events)]
    return latencies, elapsed


def _p50_p99(xs: list[float]) -> tuple[float, float]:
    return pct(xs, 0.5), pct(xs, 0.99)


Row = tuple[str, str, float, float, float, int]


def run_cases(a: argparse.Namespace, reuse: bool) -> list[Row]:
    """Every case, JSON and protobuf, against one API process (``reuse``: encoded objects kept
    by resourceVersion, as the API runs; without: every read encodes its objects anew)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=serve, args=(a.pods, child, reuse), daemon=True)
    server.start()
    try:
        if not parent.poll(120):
            raise SystemExit("the API did not start")
        port = parent.recv()
        one = f"/api/v1/namespaces/default/pods/{pod(0)['metadata']['name']}"
        for accept in (JSON, PROTO):  # warm up (and, with reuse, encode each object once)
            timed_gets(port, one, accept, 200)
            timed_gets(port, "/api/v1/namespaces/default/pods", accept, 1)
        # Rounds alternate the formats, so that load from elsewhere falls on both alike.
        samples: dict[tuple[str, str], list[float]] = {}
        seconds: dict[tuple[str, str], float] = {}
        sizes: dict[tuple[str, str], int] = {}
        counts: dict[tuple[str, str], int] = {}
        list_label, watch_label = f"list {a.pods} pods", f"watch x{a.watchers}"
        for accept in (JSON, PROTO):
            timed_applies(port, accept, 10)
        for _ in range(a.rounds):
            for accept in (JSON, PROTO):
                for label, path, n in (
                    ("get one pod", one, a.gets),
                    (list_label, "/api/v1/namespaces/default/pods", a.lists),
                ):
                    times, size = timed_gets(port, path, accept, n)
                    samples.setdefault((label, accept), []).extend(times)
                    seconds[label, accept] = seconds.get((label, accept), 0.0) + sum(times)
                    counts[label, accept] = counts.get((label, accept), 0) + len(times)
                    sizes[label, accept] = size
                times, size = timed_applies(port, accept, a.applies)
                samples.setdefault(("server-side apply", accept), []).extend(times)
                seconds["server-side apply", accept] = seconds.get(("server-side apply", accept), 0.0) + sum(times)
                counts["server-side apply", accept] = counts.get(("server-side apply", accept), 0) + len(times)
                sizes["server-side apply", accept] = size
                lat, elapsed = watch_fanout(port, accept, a.watchers, a.events)
                samples.setdefault((watch_label, accept), []).extend(lat)
                seconds[watch_label, accept] = seconds.get((watch_label, accept), 0.0) + elapsed
                counts[watch_label, accept] = counts.get((watch_label, accept), 0) + a.watchers * a.events
        return [
            (label, accept, counts[label, accept] / seconds[label, accept], *_p50_p99(samples[label, accept]),
             sizes.get((label, accept), 0))
            for label in ("get one pod", list_label, "server-side apply", watch_label)
            for accept in (JSON, PROTO)
        ]  # fmt: skip
    finally:
        server.kill()
        server.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--gets", type=int, default=1000)
    ap.add_argument("--lists", type=int, default=20)
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--events", type=int, default=100)
    ap.add_argument("--applies", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    for reuse in (True, False):
        rows = run_cases(a, reuse)
        load = os.getloadavg()[0]
        how = "encoded objects reused" if reuse else "every read encodes anew"
        print(f"{how}; {a.rounds} rounds, one client connection per case (load average {load:.1f})")
        print(f"  {'case':<18} {'format':<9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'bytes':>9}")
        for label, accept, rate, p50, p99, size in rows:
            fmt = "protobuf" if accept == PROTO else "JSON"
            unit = f"{rate:9.0f}" if not label.startswith("watch") else f"{rate:7.0f}ev"
            print(f"  {label:<18} {fmt:<9} {unit:>9} {p50:>8.2f} {p99:>8.2f} {size or '':>9}")
    print("(watch: events delivered per second over all watchers; latency from sending a patch to its event)")


if __name__ == "__main__":
    main()
