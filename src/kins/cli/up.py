"""``kins up``: start (or restart) a cluster's daemon, wait for it, show the request flow."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import TYPE_CHECKING

import msgspec
from rich.console import Console

from .._errors import KinsError
from ..api.config import ClusterConfig, load_cluster, parse_cluster
from ..api.core import Pod, Service
from ..api.load import load_paths
from ..api.meta import Object
from ..api.networking import Ingress
from .common import apply_all, article_manifests, out, spawn_daemon

if TYPE_CHECKING:
    from ..client import Client
    from ..clientexec import Command, Result


def _wait(what: str, check, timeout: float, console: Console, quiet: bool):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: object = None
    with console.status(what) as st:
        while True:
            ok, note = check()
            if ok:
                return ok
            if note != last and not quiet:
                st.update(f"{what} {note}")
                last = note
            if time.monotonic() > deadline:
                raise KinsError(f"timed out after {timeout:.0f}s: {what} {note}")
            time.sleep(0.02)


def _config(cluster: str | None, name: str | None) -> ClusterConfig:
    cfg = load_cluster(cluster)
    name = name or os.environ.get("KINS_CLUSTER") or cfg.name
    if name != cfg.name:
        data = msgspec.to_builtins(cfg)
        data["name"] = name
        cfg = parse_cluster(data, cluster or "default cluster")
    return cfg


def startup_objects(*, no_workloads: bool, bare: bool) -> list[Object]:
    """What a new cluster starts with: the article's add-ons and workloads; with ``no_workloads``
    the add-ons only (cluster DNS, the ingress controller; without the article's Ingress, whose
    backend is a workload); with ``bare`` nothing."""
    if bare:
        return []
    objs = load_paths(article_manifests(addons_only=no_workloads))
    if no_workloads:
        objs = [o for o in objs if not isinstance(o, Ingress)]
    return objs


def bring_up(
    cluster: str | None, name: str | None, *, no_workloads: bool, timeout: float, quiet: bool, bare: bool = False
) -> None:
    from ..apiserver.auth import read_token
    from ..client import Client, connect
    from ..daemon.state import DaemonInfo, cluster_dir, pid_alive

    t0 = time.monotonic()
    console = Console(stderr=True, quiet=quiet)
    cfg = _config(cluster, name)
    state = cluster_dir(cfg.name)
    info = DaemonInfo.read(state)
    if info is not None and pid_alive(info.pid, cfg.name):
        raise KinsError(f"cluster {cfg.name!r} is already running (daemon pid {info.pid}); `kins down` first")
    restart = (state / "store.db").exists()
    if restart and cluster is not None:
        console.print(f"[yellow]cluster {cfg.name!r} has state: restarting it with its stored cluster file")
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    (state / "teardown").unlink(missing_ok=True)
    (state / "daemon.failed").unlink(missing_ok=True)
    if not restart:
        (state / "cluster.yaml").write_text(json.dumps(msgspec.to_builtins(cfg), indent=2) + "\n")
    objs = [] if restart else startup_objects(no_workloads=no_workloads, bare=bare)
    proc = spawn_daemon(cfg.name, state)

    def daemon_ready() -> tuple[bool, str]:
        if proc.poll() is not None:
            why = (state / "daemon.failed").read_text().strip() if (state / "daemon.failed").exists() else ""
            tail = (state / "daemon.out").read_text()[-2000:] if (state / "daemon.out").exists() else ""
            raise KinsError(f"the daemon exited ({proc.returncode}) {why}\n{tail}".strip())
        i = DaemonInfo.read(state)
        return (i is not None and i.pid == proc.pid, "")

    _wait("starting the daemon (nodes, underlay, API)", daemon_ready, timeout, console, quiet)
    info = DaemonInfo.read(state)
    assert info is not None
    # The daemon's own socket: this machine's root needs no TLS round trips to reach it.
    client = connect(f"unix:{info.socket}", read_token(state)) if info.socket else None
    client = client or Client(info.url, read_token(state), ca_file=info.ca_file)
    t_daemon = time.monotonic() - t0
    apply_all(client, objs)

    def pods_ready() -> tuple[bool, str]:
        pods = [p for p in client.list("Pod", all_namespaces=True) if isinstance(p, Pod)]
        ready = sum(1 for p in pods if p.ready)
        want = len(pods)
        return (want > 0 and ready == want) or (not objs and not restart and want == 0), f"{ready}/{want} pods ready"

    if objs or restart:
        _wait("starting pods", pods_ready, timeout, console, quiet)
    t_ready = time.monotonic() - t0
    if not quiet:
        console.print(
            f"[green]cluster {cfg.name!r} is up[/] in {t_ready:.1f}s (daemon {t_daemon:.1f}s): "
            f"{len(cfg.nodes)} nodes, state in {state}"
        )
    if objs and not no_workloads:
        show_flow(client, cfg, console, t0)


def show_flow(client: Client, cfg: ClusterConfig, console: Console, t0: float) -> None:
    """The article's request: a business-manager pod calls data-product's ClusterIP; which
    pods answer, on which node."""
    from ..clientexec import Command, Result, pod_path, run_many

    pods = {p.name: p for p in client.list("Pod", "default") if isinstance(p, Pod)}
    svc = client.get("Service", "default", "data-product")
    assert isinstance(svc, Service)
    bm = sorted((p for p in pods.values() if p.name.startswith("business-manager")), key=lambda p: p.name)
    if not bm:
        return
    src = bm[0]
    url = f"http://{svc.spec.clusterIP}:50051/"
    answered: Counter[str] = Counter()
    first: float | None = None
    n = 30
    curl = Command(pod_path(src.namespace, src.name), ["curl", "-s", "-m", "2", url])
    for r in run_many(client, [curl] * n, timeout=5):
        if isinstance(r, Result) and r.code == 0:
            try:
                answered[json.loads(r.stdout)["pod"]] += 1
            except (ValueError, KeyError):
                answered["<bad answer>"] += 1
            first = min(first, r.ended - t0) if first is not None else r.ended - t0
        else:
            answered["<no answer>"] += 1
    src_node = src.spec.nodeName
    out(f"\nRequest flow: pod {src.name} ({src.status.podIP if src.status else ''}, {src_node})")
    out(f"  -> data-product ClusterIP {svc.spec.clusterIP}:50051 (kube-proxy DNATs to a random endpoint)")
    for pod_name, count in sorted(answered.items()):
        p = pods.get(pod_name)
        where = f"{p.status.podIP if p and p.status else '?'} on {p.spec.nodeName if p else '?'}"
        hop = "same node, via docker0" if p and p.spec.nodeName == src_node else "other node, via flannel.1 (VXLAN)"
        out(f"  <- answered by {pod_name:<34} {where:<24} {count:>2}/{n}  ({hop})")
    if first is not None:
        out(f"\nfirst answered request {first:.2f}s after `kins up` started")
    show_ingress_flow(client, cfg, pods)


INGRESS_HOST = "business-manager.default"
INGRESS_PATH = "/api/v1/product/list"


def _host_curl(host: str, url: str, headers: dict[str, str]) -> Command:
    from ..clientexec import Command, host_path

    hdr = [a for k, v in headers.items() for a in ("-H", f"{k}: {v}")]
    return Command(host_path(host), ["curl", "-s", "-m", "3", *hdr, "-w", "\n%{http_code}", url])


def _curl_answer(r: Result | BaseException) -> tuple[int, str]:
    """(HTTP status, body) of a ``_host_curl``; 0 when it got no answer."""
    from ..clientexec import Result

    if not isinstance(r, Result):
        return 0, ""
    body, _, code = r.stdout.decode(errors="replace").rpartition("\n")
    return (int(code) if code.isdigit() else 0), body


def show_ingress_flow(client: Client, cfg: ClusterConfig, pods: dict[str, Pod]) -> None:
    """The article's whole request: the external host ``client`` asks node1's ingress NodePort
    for the product list; nginx, business-manager, cluster DNS and data-product each take a hop."""
    from .._errors import NotFound
    from ..clientexec import Command, Result, pod_path, run, run_many

    try:
        isvc = client.get("Service", "ingress-nginx", "ingress-nginx")
        dp = client.get("Service", "default", "data-product")
    except NotFound:
        return
    assert isinstance(isvc, Service) and isinstance(dp, Service)
    if not cfg.hosts or not cfg.nodes:
        return
    ext = cfg.hosts[0]
    node = cfg.nodes[0]
    port = next((p.nodePort for p in isvc.spec.ports or [] if p.port == 80 and p.nodePort), None)
    if port is None:
        return
    url = f"http://{node.ip}:{port}{INGRESS_PATH}"
    curl = _host_curl(ext.name, url, {"Host": INGRESS_HOST})
    answers: Counter[tuple[str, str]] = Counter()
    failures: Counter[str] = Counter()
    deadline = time.monotonic() + 10  # nginx may still be loading its first configuration
    n = 12
    # All at once while every one is answered; one at a time (with a pause) once one is not.
    batch = n
    while sum(answers.values()) < n and time.monotonic() < deadline:
        failed = False
        for r in run_many(client, [curl] * batch, timeout=10):
            code, body = _curl_answer(r)
            try:
                data = json.loads(body) if code == 200 else None
            except ValueError:
                data = None
            if data is None:
                failures[f"HTTP {code or 'no answer'}"] += 1
                failed = True
                continue
            answers[(data["businessManager"]["pod"], data["dataProduct"]["pod"])] += 1
        if failed:
            batch = 1
            time.sleep(0.2)
        batch = min(batch, n - sum(answers.values()))
    ing = sorted((p for p in client.list("Pod", "ingress-nginx") if isinstance(p, Pod)), key=lambda p: p.name)
    nginx = f"{ing[0].name} ({ing[0].status.podIP if ing[0].status else '?'}, {ing[0].spec.nodeName})" if ing else "?"

    def where(name: str) -> str:
        p = pods.get(name)
        return f"{name} ({p.status.podIP if p and p.status else '?'}, {p.spec.nodeName if p else '?'})"

    resolved = "?"
    bms = sorted({bm for bm, _ in answers})
    if bms and bms[0] in pods:
        asker = pods[bms[0]]
        getent = Command(pod_path(asker.namespace, asker.name), ["getent", "hosts", "data-product"])
        try:
            r = run(client, getent, timeout=5)
        except (KinsError, TimeoutError):
            r = Result(1)
        words = r.stdout.decode(errors="replace").split()
        resolved = words[0] if r.code == 0 and words else "?"
    out(f"\nFrom outside: host {ext.name} ({ext.ip}) runs curl -H 'Host: {INGRESS_HOST}' {url}")
    out(f"  1. -> {node.name} {node.ip}:{port}   NodePort of ingress-nginx/ingress-nginx: kube-proxy DNATs to nginx")
    out(f"  2. -> nginx {nginx}   Host {INGRESS_HOST} matches the Ingress business-manager")
    out("  3. -> Service business-manager   nginx proxies straight to one of its endpoints (its upstream)")
    out("  4. -> a business-manager pod   it calls DATA_PRODUCT_URL http://data-product:50051/")
    out(f"  5. -> cluster DNS {cfg.dns_ip}   resolves data-product (default.svc.{cfg.services.domain}) to {resolved}")
    out(f"  6. -> ClusterIP {dp.spec.clusterIP}:50051   kube-proxy DNATs to a data-product pod, same node or VXLAN")
    for (bm, dpod), count in sorted(answers.items()):
        b, d = pods.get(bm), pods.get(dpod)
        hop = "same node, docker0" if b and d and b.spec.nodeName == d.spec.nodeName else "other node, flannel.1 VXLAN"
        out(f"     {where(bm)} -> {where(dpod)}  {count:>2}/{n}  ({hop})")
    for why, count in sorted(failures.items()):
        out(f"     {why}: {count}")
