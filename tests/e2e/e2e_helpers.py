"""Live clusters for end-to-end tests: `kins up` under a unique name in a scratch state directory.

Every cluster is brought down in a ``finally`` and checked to have left nothing behind: no
``kins-<name>-`` namespace or mount, no process of its own, no state directory. Tests talk to it
the way a user does, through the ``kins`` command (exec, node exec, host exec, apply ...), and
read objects through the typed API client.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from kins.api.core import Pod, Service
from kins.api.discovery import Endpoint, EndpointSlice
from kins.api.registry import STORED
from kins.apiserver.auth import read_token
from kins.client import Client
from kins.daemon.state import DaemonInfo
from kins.runtime.linux import socket_in_netns

T = TypeVar("T")

KINS = [sys.executable, "-c", "from kins.cli import main; main()"]
ARTICLE = resources.files("kins").joinpath("data/article")
# The article's two applications (the system pods of a full `kins up` are not needed here).
ARTICLE_APPS = [str(ARTICLE.joinpath("business-manager.yaml")), str(ARTICLE.joinpath("data-product.yaml"))]
DATA_PRODUCT_IP = "10.254.116.224"
DATA_PRODUCT_URL = f"http://{DATA_PRODUCT_IP}:50051/"


def poll(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """Call ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            got = check()
        except (AssertionError, subprocess.CalledProcessError) as e:
            got, last = None, e
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


@dataclass
class Cluster:
    """One running cluster and the ways tests reach it."""

    name: str
    root: Path  # $KINS_STATE_DIR
    env: dict[str, str]
    _client: Client | None = field(default=None, repr=False)

    @property
    def state(self) -> Path:
        return self.root / self.name

    # --- commands -----------------------------------------------------------------------------

    def kins(
        self, *args: str, check: bool = True, timeout: float = 60, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([*KINS, *args], env=self.env, capture_output=True, text=True, timeout=timeout, input=stdin)
        if check and res.returncode != 0:
            raise AssertionError(f"kins {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    def exec(self, pod: str, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return self.kins("exec", pod, "--", *cmd, check=check, timeout=timeout)

    def node_exec(self, node: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.kins("node", "exec", node, "--", *cmd, check=check)

    def host_exec(self, host: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.kins("host", "exec", host, "--", *cmd, check=check)

    def curl(self, pod: str, url: str, max_time: float = 3) -> str:
        return self.exec(pod, "curl", "-sS", "-m", str(max_time), url).stdout

    def curl_many(self, pod: str, url: str, n: int, max_time: float = 2) -> list[str]:
        """``n`` requests from inside ``pod`` in one exec: one line per answer ('' for a failure)."""
        script = f'for i in $(seq {n}); do curl -s -m {max_time} "$0" | tr -d "\\n"; echo; done'
        lines = self.exec(pod, "sh", "-c", script, url, timeout=60 + n * max_time).stdout.split("\n")
        return lines[:n]

    def apply_text(self, text: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.kins("apply", "-f", "-", check=check, stdin=text)

    # --- objects ------------------------------------------------------------------------------

    @property
    def client(self) -> Client:
        if self._client is None:
            info = DaemonInfo.read(self.state)
            assert info is not None, f"no daemon.json in {self.state}"
            self._client = Client(info.url, read_token(self.state), ca_file=info.ca_file)
        return self._client

    def pods(self, prefix: str = "", ns: str = "default") -> list[Pod]:
        pods = [p for p in self.client.list("Pod", ns) if isinstance(p, Pod) and p.name.startswith(prefix)]
        return sorted(pods, key=lambda p: p.name)

    def ready_pods(self, prefix: str, ns: str = "default") -> list[Pod]:
        return [p for p in self.pods(prefix, ns) if p.ready and not p.terminating and p.status and p.status.podIP]

    def wait_ready(self, prefix: str, count: int, timeout: float = 30, ns: str = "default") -> list[Pod]:
        """Exactly ``count`` pods named ``prefix*``, all ready (none terminating)."""

        def check() -> list[Pod] | None:
            pods = self.pods(prefix, ns)
            ready = self.ready_pods(prefix, ns)
            if len(pods) == count and len(ready) == count:
                return ready
            phases = [(p.name, p.status.phase if p.status else None, p.ready) for p in pods]
            raise AssertionError(f"{len(ready)}/{len(pods)} ready: {phases}")

        return poll(check, timeout, f"{count} ready {prefix}* pods")

    def service(self, name: str, ns: str = "default") -> Service:
        svc = self.client.get("Service", ns, name)
        assert isinstance(svc, Service)
        return svc

    def _ready_endpoints(self, service: str, ns: str) -> list[Endpoint]:
        out: list[Endpoint] = []
        for s in self.client.list("EndpointSlice", ns):
            if isinstance(s, EndpointSlice) and s.service_name == service:
                out += [ep for ep in s.endpoints or [] if ep.conditions is None or ep.conditions.ready is not False]
        return out

    def endpoint_ips(self, service: str, ns: str = "default") -> set[str]:
        """Addresses of the Service's ready endpoints."""
        return {a for ep in self._ready_endpoints(service, ns) for a in ep.addresses}

    def endpoint_pods(self, service: str, ns: str = "default") -> set[str]:
        """Names of the pods behind the Service's ready endpoints."""
        return {ep.targetRef.name for ep in self._ready_endpoints(service, ns) if ep.targetRef and ep.targetRef.name}

    def status(self) -> dict[str, Any]:
        st = self.client.raw("GET", "/kins/v1/status")
        assert isinstance(st, dict)
        return st

    def wait_rules_synced(self, timeout: float = 10) -> None:
        """Every node applied the store's current resourceVersion (or a later one)."""
        rv = int(self.status()["resourceVersion"])

        def check() -> bool:
            nodes = self.status()["network"]["nodes"]
            return bool(nodes) and all(int(n["appliedResourceVersion"]) >= rv for n in nodes.values())

        poll(check, timeout, f"rules of resourceVersion {rv} on every node")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


# --- leftovers ----------------------------------------------------------------------------------


def cluster_namespaces(name: str) -> list[str]:
    base = Path("/run/netns")
    return sorted(p.name for p in base.iterdir() if p.name.startswith(f"kins-{name}-")) if base.is_dir() else []


def cluster_pids(name: str, state: Path) -> dict[int, bytes]:
    """Processes of the cluster (pid -> cmdline): inside its namespaces, or naming its state dir."""
    inodes = set()
    for ns in cluster_namespaces(name):
        with suppress(OSError):
            inodes.add(os.stat(f"/run/netns/{ns}").st_ino)
    marks = (str(state).encode(), f"--name {name}".encode())
    out: dict[int, bytes] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            net = os.stat(f"/proc/{entry}/ns/net").st_ino
        except OSError:
            continue
        if net in inodes or any(m in cmdline.replace(b"\0", b" ") for m in marks):
            out[int(entry)] = cmdline
    return out


def leftovers(name: str, state: Path, pids: dict[int, bytes]) -> list[str]:
    """What a cluster left behind after `kins down` (empty when nothing)."""
    left: list[str] = [f"namespace {ns}" for ns in cluster_namespaces(name)]
    for pid, cmdline in pids.items():
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() == cmdline:
                argv = cmdline.replace(b"\0", b" ").decode(errors="replace")
                left.append(f"process {pid} {argv[:100]}")
        except OSError:
            pass
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if f"kins-{name}-" in line or str(state) in line:
            left.append(f"mount {line}")
    if state.exists():
        left.append(f"state directory {state}")
    return left


@contextmanager
def running_cluster(*, apps: bool = True, cluster_file: str | None = None, addons: bool = False) -> Iterator[Cluster]:
    """`kins up` a fresh cluster named ``e<6 hex>`` (bare, or with its add-ons with ``addons``;
    with the article's apps unless ``apps`` is false); always `kins down` it, then assert that
    nothing of it is left."""
    name = f"e{secrets.token_hex(3)}"
    root = Path(tempfile.mkdtemp(prefix="kins-e2e-"))
    env = {**os.environ, "KINS_STATE_DIR": str(root), "KINS_CLUSTER": name}
    env.pop("KINS_API", None)
    c = Cluster(name, root, env)
    pids: dict[int, bytes] = {}
    try:
        args = ["up", "--name", name, "--no-workloads" if addons else "--bare", "-q", "--timeout", "60"]
        if cluster_file:
            args += ["--cluster", cluster_file]
        c.kins(*args, timeout=90)
        if apps:
            c.kins("apply", *(a for f in ARTICLE_APPS for a in ("-f", f)))
            c.wait_ready("business-manager", 3)
            c.wait_ready("data-product", 3)
            poll(lambda: len(c.endpoint_ips("data-product")) == 3, 10, "data-product's 3 endpoints")
            c.wait_rules_synced()
        yield c
    finally:
        c.close()
        pids = cluster_pids(name, c.state)
        down = c.kins("down", "--name", name, check=False, timeout=120) if c.state.exists() else None
        left = leftovers(name, c.state, pids)
        shutil.rmtree(root, ignore_errors=True)
        assert down is None or down.returncode == 0, f"kins down failed: {down.stdout}{down.stderr}"
        assert not left, "kins down left behind:\n" + "\n".join(left)


# --- traffic and objects across restarts ------------------------------------------------------


def dead(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


Snapshot = dict[tuple[str, str | None, str], tuple[str | None, str | None]]


def snapshot(client: Client) -> Snapshot:
    out: Snapshot = {}
    for kind in STORED:
        for o in client.list(kind, all_namespaces=True):
            out[(kind, o.namespace, o.name)] = (o.metadata.uid, o.metadata.resourceVersion)
    return out


def pods(client: Client, ns: str | None = None) -> dict[str, Pod]:
    items = client.list("Pod", ns) if ns else client.list("Pod", all_namespaces=True)
    return {p.key: p for p in items if isinstance(p, Pod)}


@dataclass
class Traffic:
    """GETs from a pod's namespace to a Service, on a thread, until stopped (bounded)."""

    netns: str
    addr: tuple[str, int]
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    answered_by: set[str] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)

    def one(self) -> None:
        try:
            with socket_in_netns(self.netns) as s:
                s.settimeout(2)
                s.connect(self.addr)
                s.sendall(b"GET / HTTP/1.1\r\nHost: data-product\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise OSError(f"answer {head[:40]!r}")
            self.answered_by.add(json.loads(body)["pod"])
            self.ok += 1
        except (OSError, ValueError, KeyError) as exc:
            self.failures.append(f"{time.strftime('%X')} {exc}")

    def run(self) -> None:
        deadline = time.monotonic() + 300
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.one()
            time.sleep(0.02)

    def answered(self, n: int) -> bool:
        """At least ``n`` answers so far, and no failure (counted answers, not fixed sleeps: a
        loaded machine answers fewer per second)."""
        assert not self.failures, self.failures[:3]
        return self.ok >= n


@contextmanager
def traffic_to(netns: str, addr: tuple[str, int]) -> Iterator[Traffic]:
    """``Traffic`` running on a thread for the duration of the block."""
    traffic = Traffic(netns, addr)
    loop = threading.Thread(target=traffic.run, daemon=True)
    loop.start()
    try:
        yield traffic
    finally:
        traffic.stop.set()
        loop.join(10)
