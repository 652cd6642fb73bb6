"""Root test: 200 pods (sandbox + agnhost netexec) started, checked, measured and removed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from runtime_helpers import Netns

from kins.runtime import ContainerSpec, Runtime, socket_in_netns
from kins.runtime.linux import memory_of

pytestmark = pytest.mark.root

PODS = 200
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"
# Starting a pod is a fork of the runtime's server, not a fresh interpreter (~12 ms of CPU bare,
# ~75 ms with an app's imports): CPU time says so whatever else the machine runs (about 3.5 ms
# per pod measured). Wall time only has to rule out a wait per pod (e.g. on a 0.2 s poll):
# kernel namespace work and a loaded machine stretch it, an idle one needs about 2.5 s.
MAX_START_CPU_SECONDS = 20e-3 * PODS
MAX_START_SECONDS = 0.15 * PODS
MAX_PSS = 2 * 1024**3


def hostname_of(netns_path: str) -> str | None:
    """GET /hostname from the pod's netexec over its loopback, None while it does not answer."""
    try:
        with socket_in_netns(netns_path) as s:
            s.settimeout(2)
            s.connect(("127.0.0.1", 8080))
            s.sendall(b"GET /hostname HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    return body.decode() if head.startswith(b"HTTP/1.1 200") else None


def cpu_seconds_of(pid: int) -> float:
    """CPU time a process and its reaped children used (user + system), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the command: state is field 3, so utime..cstime (fields 14-17) are [11:15]
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def test_200_pods(netns: Netns, pod_files: tuple[Path, Path], tmp_path: Path) -> None:
    t0 = time.monotonic()
    names = netns.make(PODS)
    t_netns = time.monotonic() - t0
    mounts_before = Path("/proc/self/mountinfo").read_text().count(str(tmp_path))

    rt = Runtime(tmp_path / "state")
    try:
        t0 = time.monotonic()
        sandboxes = []
        for i, ns in enumerate(names):
            sb = rt.create_sandbox(f"default/pod-{i}", netns.path(ns), f"pod-{i}", *map(str, pod_files))
            rt.start_container(sb, ContainerSpec("netexec", AGNHOST, args=("netexec", "--http-port=8080")))
            sandboxes.append(sb)
        t_started = time.monotonic() - t0
        pending = {sb.netns_path: sb.hostname for sb in sandboxes}
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for path, name in list(pending.items()):
                got = hostname_of(path)
                if got is not None:
                    assert got == name
                    del pending[path]
        t_ready = time.monotonic() - t0
        assert not pending, f"{len(pending)} pods never answered"

        pids = rt.pids()
        cpu = sum(cpu_seconds_of(pid) for pid in pids)  # the fork server and every pod, so far
        assert len(pids) == 1 + 2 * PODS
        pss = rss = 0
        for pid in pids:
            p, r = memory_of(pid)
            pss += p
            rss += r
        per_pod = pss / PODS / 1024**2
        print(
            f"\n{PODS} pods: netns {t_netns:.2f}s (kernel layer, not counted), started {t_started:.2f}s,"
            f" all answering {t_ready:.2f}s, CPU {cpu:.2f}s; PSS {pss / 1024**2:.0f} MiB ({per_pod:.2f} MiB/pod),"
            f" RSS sum {rss / 1024**2:.0f} MiB"
        )

        t0 = time.monotonic()
        for sb in sandboxes:
            rt.remove_sandbox(sb, grace=5)
        t_removed = time.monotonic() - t0
        print(f"{PODS} pods removed in {t_removed:.2f}s")
        assert rt.containers() == [] and rt.sandboxes() == []
        assert not [p for p in pids[1:] if Path(f"/proc/{p}").exists()]
    finally:
        rt.shutdown()
    assert not Path(f"/proc/{pids[0]}").exists()
    assert Path("/proc/self/mountinfo").read_text().count(str(tmp_path)) == mounts_before
    assert cpu < MAX_START_CPU_SECONDS, f"{PODS} pods took {cpu:.2f}s of CPU to start"
    assert t_ready < MAX_START_SECONDS, f"{PODS} pods took {t_ready:.1f}s to answer"
    assert pss < MAX_PSS, f"{PODS} pods use {pss / 1024**3:.2f} GiB (PSS)"
