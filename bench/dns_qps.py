"""Queries per second of the cluster DNS server next to dnsmasq, measured with dnsperf on loopback.

Both servers get the same names (ClusterIP services ``svc<i>.bench.svc.<zone>``: kins from its
index, dnsmasq from a hosts file), are pinned to one CPU, and dnsperf runs on another CPU. For
each: the maximum rate (queries/s, p50 and p99 latency) and p99 at a fixed 1,000 queries/s.

    python bench/dns_qps.py [--services 500] [--seconds 10] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ZONE = "cluster.local"


def names(n: int, net: int = 96) -> list[tuple[str, str]]:
    """``n`` (name, ClusterIP) pairs; ``net`` picks 10.<net>.x.y (10.254.100.1 on in a cluster)."""
    first = 100 if net == 254 else 0
    return [(f"svc{i}.bench.svc.{ZONE}", f"10.{net}.{first + i // 250}.{i % 250 + 1}") for i in range(n)]


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


def dnsperf(
    port: int,
    datafile: Path,
    seconds: int,
    cpu: int,
    qps: int | None = None,
    *,
    server: str = "127.0.0.1",
    prefix: Sequence[str] = (),
) -> dict[str, float]:
    """dnsperf's rate and its per-query latencies (p50, p99); ``prefix`` runs it elsewhere
    (``ip netns exec POD-NS``)."""
    cmd = [*prefix, "taskset", "-c", str(cpu), "dnsperf", "-s", server, "-p", str(port), "-d", str(datafile)]
    cmd += ["-l", str(seconds), "-c", "8", "-T", "1", "-q", "64", "-t", "2", "-v"]
    if qps:
        cmd += ["-Q", str(qps)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    lat = sorted(float(m[1]) for m in re.finditer(r"^> NOERROR \S+ \S+ ([0-9.]+)$", out, re.M))
    rate = re.search(r"Queries per second:\s+([0-9.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    done = re.search(r"Queries completed:\s+(\d+)", out)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

    return {
        "qps": float(rate[1]) if rate else 0.0,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "lost": float(lost[1]) if lost else 0.0,
        "completed": float(done[1]) if done else 0.0,
    }


# --- in a live cluster: the DNS pods behind their Service IP, from a client pod ----------------------

DNSMASQ_IP = "10.254.0.3"
KUBE_DNS_IP = "10.254.0.2"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"


def pod_manifests(table: list[tuple[str, str]]) -> str:
    """The bench Services (selector-less, fixed ClusterIPs), a client pod on node1, and two
    pods on node1 and node2 behind ``DNSMASQ_IP`` where dnsmasq will run: the same spread and
    the same Service DNAT as kube-dns's two replicas."""
    docs = ["apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}"]
    for name, ip in table:
        svc = name.split(".")[0]
        docs.append(
            f"apiVersion: v1\nkind: Service\nmetadata: {{name: {svc}, namespace: bench}}\n"
            f"spec: {{clusterIP: {ip}, ports: [{{name: http, port: 80}}]}}"
        )
    for pod, node, labels in (
        ("dnsperf-client", "node1", "{app: dnsperf}"),
        ("dnsmasq-0", "node1", "{app: dnsmasq}"),
        ("dnsmasq-1", "node2", "{app: dnsmasq}"),
    ):
        docs.append(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {pod}, namespace: default, labels: {labels}}}\n"
            f"spec: {{nodeName: {node}, containers: [{{name: pause, image: '{AGNHOST}', args: [pause]}}]}}"
        )
    docs.append(
        "apiVersion: v1\nkind: Service\nmetadata: {name: dnsmasq, namespace: default}\n"
        f"spec: {{clusterIP: {DNSMASQ_IP}, selector: {{app: dnsmasq}}, ports: "
        "[{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]}"
    )
    return "\n---\n".join(docs) + "\n"


def netns_of(cluster: str, namespace: str, pod_prefix: str) -> list[str]:
    want = f"kins-{cluster}-pod-{namespace}-{pod_prefix}"
    return sorted(p.name for p in Path("/run/netns").iterdir() if p.name.startswith(want))


def pids_in(netns: list[str], needle: bytes) -> list[int]:
    """Processes inside any of ``netns`` whose command line contains ``needle``."""
    inodes = {os.stat(f"/run/netns/{ns}").st_ino for ns in netns}
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if (
                os.stat(f"/proc/{entry}/ns/net").st_ino in inodes
                and needle in Path(f"/proc/{entry}/cmdline").read_bytes()
            ):
                out.append(int(entry))
        except OSError:
            continue
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes (all their threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


def wait_answer(client_ns: str, server: str, name: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(
            ["ip", "netns", "exec", client_ns, "dig", "+short", "+tries=1", "+time=1", f"@{server}", name],
            capture_output=True,
            text=True,
        )
        if r.stdout.strip():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{server} does not answer {name} from the client pod")


def measure(
    prefix: list[str], server: str, data: Path, seconds: int, cpu: int, pids: list[int]
) -> dict[str, dict[str, float]]:
    """The maximum rate (with the servers' CPU time over it) and p99 at 1,000 queries/s."""
    before = cpu_seconds(pids)
    top = dnsperf(53, data, seconds, cpu, server=server, prefix=prefix)
    top["cpu_s"] = cpu_seconds(pids) - before
    fixed = dnsperf(53, data, seconds, cpu, 1000, server=server, prefix=prefix)
    return {"max": top, "1000qps": fixed}


def bench_pods(args: argparse.Namespace) -> int:
    """Both servers in pods of a live cluster (``kins up`` under a scratch name), asked by dnsperf
    in a client pod through their Service IPs: the path every pod's lookups take (veth, bridge,
    kube-proxy's DNAT to one of two pods, VXLAN to the other node)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from up import Live

    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = cpus[0], cpus[-1]
    table = names(args.services, net=254)
    live = Live("q")
    dnsmasq: list[subprocess.Popen[bytes]] = []
    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        live.kins("up", "--name", live.name, "--bare", "-q", "--timeout", "90")
        article = Path(__file__).resolve().parent.parent / "src/kins/data/article"
        live.kins("apply", "-f", str(article / "kube-dns.yaml"), "-f", str(article / "kube-dns-service.yaml"))
        live.kins("apply", "-f", "-", stdin=pod_manifests(table))
        tmp = live.root  # visible from the pods (they share the host's file system)
        data = tmp / "queries.txt"
        data.write_text("".join(f"{name} A\n" for name, _ in table))
        hosts = tmp / "hosts"
        hosts.write_text("".join(f"{ip} {name}\n" for name, ip in table))

        deadline = time.monotonic() + 60
        while not (
            netns_of(live.name, "default", "dnsperf-client") and len(netns_of(live.name, "default", "dnsmasq-")) == 2
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the bench pods did not start")
            time.sleep(0.2)
        client = ["ip", "netns", "exec", netns_of(live.name, "default", "dnsperf-client")[0]]
        wait_answer(client[-1], KUBE_DNS_IP, table[-1][0], 60)

        kube_dns = pids_in(netns_of(live.name, "kube-system", "kube-dns"), b"kins.dns")
        for pid in kube_dns:  # every thread, so the informers share the core too
            subprocess.run(["taskset", "-a", "-p", "-c", str(server_cpu), str(pid)], capture_output=True, check=True)
        results["kins"] = measure(client, KUBE_DNS_IP, data, args.seconds, client_cpu, kube_dns)

        for ns in netns_of(live.name, "default", "dnsmasq-"):
            cmd = ["ip", "netns", "exec", ns, "taskset", "-c", str(server_cpu), "dnsmasq", "-k", "--no-resolv"]
            cmd += ["--no-hosts", f"--addn-hosts={hosts}", "--port=53", "--local-ttl=5", "--cache-size=10000"]
            cmd += ["--log-facility=-", "--pid-file=", "--user=root"]
            dnsmasq.append(subprocess.Popen(cmd, stderr=subprocess.DEVNULL))
        wait_answer(client[-1], DNSMASQ_IP, table[-1][0])
        results["dnsmasq"] = measure(client, DNSMASQ_IP, data, args.seconds, client_cpu, [p.pid for p in dnsmasq])
        kube_dns_nodes = live.kins("get", "pods", "-n", "kube-system", "-o", "wide")
    finally:
        for proc in dnsmasq:
            proc.terminate()
            proc.wait(10)
        live.close()

    print(f"{args.services} names, {args.seconds}s per run; both servers: 2 pods (node1, node2) behind a ClusterIP,")
    print(f"all server processes on CPU {server_cpu}; dnsperf in a pod on node1, CPU {client_cpu}")
    print(kube_dns_nodes.rstrip())
    report(results, per_core=True)
    return 0


def report(results: dict[str, dict[str, dict[str, float]]], *, per_core: bool = False) -> None:
    head = f"{'server':<10} {'queries/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'lost':>6} {'p99 ms @1000 q/s':>18}"
    print(head + (f" {'q/s per CPU-s':>14}" if per_core else ""))
    for name, r in results.items():
        m, f = r["max"], r["1000qps"]
        row = f"{name:<10} {m['qps']:>10.0f} {m['p50_ms']:>8.3f} {m['p99_ms']:>8.3f} {m['lost']:>6.0f}"
        row += f" {f['p99_ms']:>18.3f}"
        if per_core:
            row += f" {m['completed'] / m['cpu_s'] if m.get('cpu_s') else float('nan'):>14.0f}"
        print(row)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--services", type=int, default=500)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--workers", type=int, default=1, help="kins processes sharing the port (SO_REUSEPORT)")
    p.add_argument("--pods", action="store_true", help="both servers in pods of a live cluster (needs root)")
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
    if args.pods:
        return bench_pods(args)
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
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
