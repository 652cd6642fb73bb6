"""Root tests: a live cluster survives its daemon's SIGKILL; containers restart; pod volumes.

Each test brings up its own uniquely named cluster with ``kins up`` (its state in a scratch
directory) and always ends it with ``kins down``, then checks that none of its namespaces is left.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_helpers import dead, pods, poll, snapshot, traffic_to

from kins.api.core import Pod, Service
from kins.apiserver.auth import read_token
from kins.client import Client
from kins.daemon.state import DaemonInfo
from kins.runtime import load_sandbox
from kins.store.sqlite import SqliteStore

pytestmark = pytest.mark.root


@dataclass
class Cluster:
    name: str
    root: Path  # KINS_STATE_DIR

    @property
    def state(self) -> Path:
        return self.root / self.name

    def kins(self, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess[str]:
        exe = shutil.which("kins")
        assert exe is not None, "the kins command is not installed"
        env = {**os.environ, "KINS_STATE_DIR": str(self.root)}
        env.pop("KINS_CLUSTER", None)
        done = subprocess.run(
            [exe, *args, "--name", self.name], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check:
            assert done.returncode == 0, f"kins {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done

    def client(self) -> Client:
        info = DaemonInfo.read(self.state)
        assert info is not None
        return Client(info.url, read_token(self.state), ca_file=info.ca_file)

    def daemon_pid(self) -> int:
        info = DaemonInfo.read(self.state)
        assert info is not None
        return info.pid


def namespaces_of(name: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"kins-{name}-")]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    assert os.geteuid() == 0, "these tests build real network namespaces and need root"
    # Short paths: the API's unix socket lives in the state dir.
    root = Path(tempfile.mkdtemp(prefix="kins-rs-", dir="/tmp"))
    c = Cluster(f"rs{secrets.token_hex(3)}", root)
    try:
        yield c
    finally:
        try:
            c.kins("down", timeout=120, check=False)
        finally:
            left = namespaces_of(c.name)
            shutil.rmtree(root, ignore_errors=True)
        assert left == [], f"namespaces left behind: {left}"


def kill_daemon(c: Cluster) -> None:
    pid = c.daemon_pid()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not dead(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert dead(pid)


def test_daemon_sigkill_keeps_traffic_and_objects(cluster: Cluster) -> None:
    cluster.kins("up")
    client = cluster.client()
    before = snapshot(client)
    pods_before = pods(client)
    assert pods_before and all(p.ready for p in pods_before.values())
    svc = client.get("Service", "default", "data-product")
    assert isinstance(svc, Service) and svc.spec.clusterIP
    bm = sorted(k for k in pods_before if k.startswith("default/business-manager"))[0]
    sandboxes = {k: load_sandbox(cluster.state, k) for k in pods_before}
    client.close()

    with traffic_to(sandboxes[bm].netns_path, (svc.spec.clusterIP, 50051)) as traffic:
        poll(lambda: traffic.answered(1), 20, "a first answer")
        kill_daemon(cluster)
        dead_since = traffic.ok
        # the daemon stays dead until `kins up` below
        poll(lambda: traffic.answered(dead_since + 20), 20, "answers while the daemon is dead")

        cluster.kins("up")
        up_since = traffic.ok
        poll(lambda: traffic.answered(up_since + 20), 20, "answers once the daemon adopted its pods again")
    assert traffic.failures == []
    assert len(traffic.answered_by) == 3  # all data-product pods, across both nodes

    client = cluster.client()
    after = snapshot(client)
    # Nothing lost, nothing rewritten. Events are a record of what happened, and the restart
    # happened: the node controller registers every Node again on its start, as Kubernetes'
    # does, so the only objects that may be new are Events; the old ones are all kept.
    assert {k: v for k, v in after.items() if k[0] != "Event"} == {k: v for k, v in before.items() if k[0] != "Event"}
    assert {k: after.get(k, (None, None))[0] for k in before if k[0] == "Event"} == {
        k: v[0] for k, v in before.items() if k[0] == "Event"
    }
    log = (cluster.state / "daemon.log").read_text()
    assert log.count("adopted sandbox") == len(pods_before)
    assert "pod network repaired" not in log  # adoption found every link and address right
    for key, p in pods(client).items():
        old = pods_before[key]
        assert p.status is not None and old.status is not None
        assert p.status.podIP == old.status.podIP
        assert [cs.restartCount for cs in p.status.containerStatuses or []] == [0] * len(p.spec.containers)
        assert p.ready
        # The very same processes: adopted, not started again.
        assert load_sandbox(cluster.state, key) == sandboxes[key]
    client.close()
    # A restarted daemon still manages its pods: a new one starts and gets an address.
    cluster.kins("scale", "deployment", "data-product", "--replicas", "4")
    deadline = time.monotonic() + 60
    with cluster.client() as client:
        while time.monotonic() < deadline:
            dp = [p for p in pods(client, "default").values() if p.name.startswith("data-product")]
            if len(dp) == 4 and all(p.ready for p in dp):
                break
            time.sleep(0.1)
        ips = [p.status.podIP for p in dp if p.status]
    assert len(dp) == 4 and all(p.ready for p in dp)
    assert len(set(ips)) == 4


MANIFEST = """
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: default}
data:
  app.conf: "answer = 42\\n"
  unused: "not mounted"
---
apiVersion: v1
kind: Secret
metadata: {name: web-secret, namespace: default}
data:
  token: %(token)s
---
apiVersion: v1
kind: Pod
metadata: {name: vol-demo, namespace: default}
spec:
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.47
    args: ["netexec", "--http-port=8080"]
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
    volumeMounts:
    - {name: scratch, mountPath: /mnt/kins-scratch}
    - {name: config, mountPath: /etc/kins-demo/config}
    - {name: secret, mountPath: /etc/kins-demo/secret, readOnly: true}
  volumes:
  - name: scratch
    emptyDir: {}
  - name: config
    configMap:
      name: web-config
      items: [{key: app.conf, path: conf/app.conf}]
  - name: secret
    secret: {secretName: web-secret}
---
apiVersion: v1
kind: Pod
metadata: {name: sys-demo, namespace: kube-system}
spec:
  containers:
  - name: main
    image: docker.io/library/busybox:1.36
    command: ["sleep", "3600"]
"""


def wait_pod(c: Cluster, ns: str, name: str, check, timeout: float = 60) -> Pod:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    with c.client() as client:
        while True:
            p = client.get("Pod", ns, name)
            assert isinstance(p, Pod)
            if check(p) or time.monotonic() > deadline:
                return p
            time.sleep(0.1)


def restarts(p: Pod) -> int:
    return sum(cs.restartCount for cs in (p.status.containerStatuses if p.status else None) or [])


def processes_in(netns_path: str, comm: str) -> list[int]:
    ino = os.stat(netns_path).st_ino
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if (
                    os.stat(f"/proc/{entry}/ns/net").st_ino == ino
                    and Path(f"/proc/{entry}/comm").read_text().strip() == comm
                ):
                    out.append(int(entry))
            except OSError:
                continue
    return out


def kill_container(c: Cluster, key: str, comm: str) -> None:
    sb = load_sandbox(c.state, key)
    (pid,) = processes_in(sb.netns_path, comm)
    os.kill(pid, signal.SIGKILL)


def get_po_line(c: Cluster, name: str) -> list[str]:
    out = c.kins("get", "po").stdout
    line = next(line for line in out.splitlines() if line.startswith(name + " "))
    return line.split()


def test_container_restarts_and_pod_volumes(cluster: Cluster, tmp_path: Path) -> None:
    cluster.kins("up", "--no-workloads")
    manifest = tmp_path / "demo.yaml"
    manifest.write_text(MANIFEST % {"token": base64.b64encode(b"s3cret\n").decode()})
    cluster.kins("apply", "-f", str(manifest))
    pod = wait_pod(cluster, "default", "vol-demo", lambda p: p.ready)
    assert pod.ready
    key = "default/vol-demo"
    ip = pod.status.podIP if pod.status else None

    def sh(script: str) -> str:
        done = cluster.kins("exec", "vol-demo", "--", "sh", "-c", script, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    # configMap with items: only the listed key, at its path; secret base64-decoded; emptyDir
    # shared with the host's per-pod directory.
    assert sh("cat /etc/kins-demo/config/conf/app.conf") == "answer = 42\n"
    assert sh("ls -A /etc/kins-demo/config") == "conf\n"
    assert sh("cat /etc/kins-demo/secret/token") == "s3cret\n"
    assert sh("echo hello > /mnt/kins-scratch/f && cat /mnt/kins-scratch/f") == "hello\n"
    volumes = cluster.state / "pods" / "default_vol-demo" / "volumes"
    assert (volumes / "scratch" / "f").read_text() == "hello\n"
    assert not Path("/etc/kins-demo").exists() and not Path("/mnt/kins-scratch").exists()
    assert cluster.kins("exec", "vol-demo", "--", "touch", "/etc/kins-demo/secret/x", check=False).returncode != 0

    # A system pod's containers can reach the API, with their projected ServiceAccount token.
    sys_pod = wait_pod(cluster, "kube-system", "sys-demo", lambda p: p.ready)
    assert sys_pod.ready
    sys_sb = load_sandbox(cluster.state, "kube-system/sys-demo")
    (sleeper,) = set(processes_in(sys_sb.netns_path, "sleep")) - {sys_sb.pid}  # the holder execs sleep too
    environ = Path(f"/proc/{sleeper}/environ").read_bytes().decode().split("\0")
    env = dict(item.split("=", 1) for item in environ if "=" in item)
    assert env["KINS_API"] == f"unix:{cluster.state / 'api.sock'}"
    assert env["KINS_TOKEN_FILE"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"

    # A container killed with SIGKILL is restarted.
    kill_container(cluster, key, "netexec")
    pod = wait_pod(cluster, "default", "vol-demo", lambda p: restarts(p) == 1 and p.ready)
    assert restarts(pod) == 1 and pod.ready
    cols = get_po_line(cluster, "vol-demo")
    assert cols[1:4] == ["1/1", "Running", "1"], cols
    assert pod.status is not None
    last = (pod.status.containerStatuses or [])[0].lastState
    assert last is not None and last.terminated is not None and last.terminated.exitCode == 137

    # One that dies while the daemon is down is restarted by the next daemon; the rest is kept.
    # A pod whose object vanished meanwhile loses its sandbox and namespace.
    kill_daemon(cluster)
    kill_container(cluster, key, "netexec")
    store = SqliteStore(cluster.state / "store.db")
    store.delete("Pod", "kube-system", "sys-demo")
    store.close()
    assert not dead(sys_sb.pid)
    cluster.kins("up")
    pod = wait_pod(cluster, "default", "vol-demo", lambda p: restarts(p) == 2 and p.ready)
    assert restarts(pod) == 2 and pod.ready
    assert pod.status is not None and pod.status.podIP == ip
    assert sh("cat /mnt/kins-scratch/f /etc/kins-demo/config/conf/app.conf") == "hello\nanswer = 42\n"
    deadline = time.monotonic() + 10
    while not (dead(sys_sb.pid) and not Path(sys_sb.netns_path).exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dead(sys_sb.pid) and dead(sleeper)
    assert not Path(sys_sb.netns_path).exists()

    # A ConfigMap change reaches the mounted files.
    with cluster.client() as client:
        client.patch("ConfigMap", "default", "web-config", {"data": {"app.conf": "answer = 43\n"}})
    deadline = time.monotonic() + 10
    while sh("cat /etc/kins-demo/config/conf/app.conf") != "answer = 43\n" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sh("cat /etc/kins-demo/config/conf/app.conf") == "answer = 43\n"

    # Deleting the pod removes its volumes.
    cluster.kins("delete", "pod", "vol-demo")
    assert not volumes.exists()
