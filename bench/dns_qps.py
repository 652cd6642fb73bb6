"""Queries per second of the cluster DNS server next to dnsmasq, measured with dnsperf on loopback.

Both servers get the same names (ClusterIP services ``svc<i>.bench.svc.<zone>``: kins from its
index, dnsmasq from a hosts file), are pinned to one CPU, and dnsperf runs on another CPU. For
each: the maximum rate (queries/s, p50 and p99 latency) and p99 at a fixed 1,000 queries/s.

    python bench/dns_qps.py [--services 500] [--seconds 10] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ZONE = "cluster.local"


def names(n: int) -> list[tuple[str, str]]:
    return [(f"svc{i}.bench.svc.{ZONE}", f"10.96.{i // 250}.{i % 250 + 1}") for i in range(n)]


def serve_kins(port: int, n: int, cpu: int) -> None:
    """The child: the kins server with ``n`` services, pinned to ``cpu``."""
    from kins.api.core import Namespace, Service, ServicePort, ServiceSpec
    from kins.api.meta import ObjectMeta
    from kins.dns.config import DnsConfig
    from kins.dns.index import MemoryDnsIndex
    from kins.dns.server import serve

    os.sched_setaffinity(0, {cpu})
    objs: list = [Namespace(metadata=ObjectMeta(name="bench"))]
    for i, (_, ip) in enumerate(names(n)):
        spec = ServiceSpec(clusterIP=ip, clusterIPs=[ip], ports=[ServicePort(port=80, name="http")])
        objs.append(Service(metadata=ObjectMeta(name=f"svc{i}", namespace="bench"), spec=spec))

    async def run() -> None:
        await serve("127.0.0.1", port, MemoryDnsIndex.from_objects(objs), DnsConfig(zone=ZONE), reuse_port=True)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_udp(port: int, name: str, timeout: float = 10) -> None:
    q = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    q += b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\x00\x00\x01\x00\x01"
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            s.sendto(q, ("127.0.0.1", port))
            try:
                if s.recv(512):
                    return
            except TimeoutError:
                continue
    raise RuntimeError(f"nothing answers on port {port}")


def dnsperf(port: int, datafile: Path, seconds: int, cpu: int, qps: int | None = None) -> dict[str, float]:
    cmd = ["taskset", "-c", str(cpu), "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(datafile)]
    cmd += ["-l", str(seconds), "-c", "8", "-T", "1", "-q", "64", "-t", "2", "-v"]
    if qps:
        cmd += ["-Q", str(qps)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    lat = sorted(float(m[1]) for m in re.finditer(r"^> NOERROR \S+ \S+ ([0-9.]+)$", out, re.M))
    rate = re.search(r"Queries per second:\s+([0-9.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

    return {
        "qps": float(rate[1]) if rate else 0.0,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "lost": float(lost[1]) if lost else 0.0,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--services", type=int, default=500)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--workers", type=int, default=1, help="kins processes sharing the port (SO_REUSEPORT)")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    p.add_argument("--cpu", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve_kins(args.serve, args.services, args.cpu)
        return 0
    for tool in ("dnsperf", "dnsmasq", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 1
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus, client_cpu = cpus[: max(1, len(cpus) - 1)], cpus[-1]
    table = names(args.services)
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="kins-dnsbench-") as tmp:
        data = Path(tmp, "queries.txt")
        data.write_text("".join(f"{name} A\n" for name, _ in table))
        hosts = Path(tmp, "hosts")
        hosts.write_text("".join(f"{ip} {name}\n" for name, ip in table))

        port = free_port()
        kins = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--serve",
                    str(port),
                    "--services",
                    str(args.services),
                    "--cpu",
                    str(server_cpus[i % len(server_cpus)]),
                ],
                stdout=subprocess.PIPE,
            )
            for i in range(args.workers)
        ]
        try:
            wait_udp(port, table[0][0])
            results["kins"] = {
                "max": dnsperf(port, data, args.seconds, client_cpu),
                "1000qps": dnsperf(port, data, args.seconds, client_cpu, 1000),
            }
        finally:
            for proc in kins:
                proc.terminate()
                proc.wait(10)

        port = free_port()
        dnsmasq = subprocess.Popen(
            [
                "taskset",
                "-c",
                str(server_cpus[0]),
                "dnsmasq",
                "-k",
                "--no-resolv",
                "--no-hosts",
                f"--addn-hosts={hosts}",
                f"--port={port}",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--local-ttl=5",
                "--cache-size=10000",
                "--log-facility=-",
                "--pid-file=" + str(Path(tmp, "pid")),
                "--user=root" if os.geteuid() == 0 else "--user=" + os.environ.get("USER", "nobody"),
            ],
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_udp(port, table[0][0])
            results["dnsmasq"] = {
                "max": dnsperf(port, data, args.seconds, client_cpu),
                "1000qps": dnsperf(port, data, args.seconds, client_cpu, 1000),
            }
        finally:
            dnsmasq.terminate()
            dnsmasq.wait(10)

    print(f"{args.services} names, {args.seconds}s per run, server on CPU {server_cpus}, dnsperf on CPU {client_cpu}")
    print(f"{'server':<10} {'queries/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'lost':>6} {'p99 ms @1000 q/s':>18}")
    for name, r in results.items():
        m, f = r["max"], r["1000qps"]
        row = f"{name:<10} {m['qps']:>10.0f} {m['p50_ms']:>8.3f} {m['p99_ms']:>8.3f} {m['lost']:>6.0f}"
        print(f"{row} {f['p99_ms']:>18.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
