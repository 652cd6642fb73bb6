"""The kubelet's usage arithmetic on real processes: CPU time and rates, process trees, PSS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kins.agents.kubelet.metrics import MetricsSampler, boottime
from kins.agents.kubelet.state import ContainerRun, PodRun
from kins.agents.kubelet.usage import (
    CLOCK_TICK_NS,
    History,
    Point,
    ProcessTable,
    cpu_rate,
    pss_bytes,
    read_stat,
    usage_of,
)
from kins.api.core import Container as ContainerSpec
from kins.runtime.types import Container, Sandbox

PY = sys.executable


@contextmanager
def proc(code: str, *, new_session: bool = True) -> Iterator[subprocess.Popen[str]]:
    """A Python child running ``code``; it prints "ready" once set up."""
    p = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=new_session)
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
        yield p
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL) if new_session else p.kill()
        p.wait()


SPIN = "import sys, time\nprint('ready', flush=True)\nwhile True: pass\n"
IDLE = "import sys, time\nprint('ready', flush=True)\ntime.sleep(600)\n"


def _self_cpu(pid: int) -> float:
    """The process's own CPU seconds, read independently of the module (/proc/PID/schedstat:
    nanoseconds on the CPU)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def test_cpu_rate_of_a_spinning_process_matches_its_own_clock() -> None:
    with proc(SPIN) as p:
        t0 = boottime()
        a = read_stat(p.pid)
        s0 = _self_cpu(p.pid)
        time.sleep(1.5)
        b = read_stat(p.pid)
        s1 = _self_cpu(p.pid)
        t1 = boottime()
    assert a is not None and b is not None
    rate = cpu_rate(Point(t0, a.cpu_ticks * CLOCK_TICK_NS), Point(t1, b.cpu_ticks * CLOCK_TICK_NS))
    expected = (s1 - s0) / (t1 - t0) * 1e9
    # The machine is shared: a spinning process gets what it gets, but the ticks and the
    # scheduler's own nanoseconds agree to a few ticks over the interval.
    assert rate > 0.1e9, rate
    assert abs(rate - expected) < 0.05e9, (rate, expected)
    assert rate <= 1.05e9


def test_an_idle_process_uses_no_cpu() -> None:
    with proc(IDLE) as p:
        a = read_stat(p.pid)
        time.sleep(0.5)
        b = read_stat(p.pid)
    assert a is not None and b is not None
    assert cpu_rate(Point(0, a.cpu_ticks * CLOCK_TICK_NS), Point(0.5, b.cpu_ticks * CLOCK_TICK_NS)) == 0


def test_a_reaped_child_keeps_its_cpu_time_in_the_parent() -> None:
    # The child spins for 0.4 s of CPU and is waited for: its time moves to the parent's
    # cutime, so the group's total does not drop when it exits.
    code = (
        "import os, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    t = time.process_time()\n"
        "    while time.process_time() - t < 0.4: pass\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    with proc(code) as p:
        st = read_stat(p.pid)
        assert st is not None
        assert st.cpu_ticks * CLOCK_TICK_NS >= 0.35e9


def test_tree_holds_descendants_and_the_session_but_not_strangers() -> None:
    code = (
        "import subprocess, sys, time\n"
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print('ready', c.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    p = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert p.stdout is not None
        _, child = p.stdout.readline().split()
        with proc(IDLE) as stranger:
            table = ProcessTable()
            tree = table.tree(p.pid)
            assert p.pid in tree and int(child) in tree
            assert stranger.pid not in tree and os.getpid() not in tree
            # A reused pid (another start time) is not the container's.
            assert table.tree(p.pid, table.procs[p.pid].start_time + 1) == []
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


TOUCH = 40 << 20
SHARED = f"import os, time\nb = bytearray(b'x') * {TOUCH}\n"


def test_pss_counts_private_memory_in_full() -> None:
    with proc(SHARED + "print('ready', flush=True)\ntime.sleep(600)\n") as p:
        assert pss_bytes(p.pid) >= TOUCH


def test_pss_splits_pages_shared_by_forked_processes() -> None:
    # Parent and child share the 40 MiB the parent wrote before fork: each one's RSS counts
    # it in full, their PSS adds up to it once (what the machine really spends).
    code = SHARED + "if os.fork() == 0:\n    time.sleep(600)\nprint('ready', flush=True)\ntime.sleep(600)\n"
    with proc(code) as p:
        table = ProcessTable()
        pids = table.tree(p.pid)
        assert len(pids) == 2
        rss = sum(_rss(pid) for pid in pids)
        pss = sum(pss_bytes(pid) for pid in pids)
        assert rss >= 2 * TOUCH
        assert TOUCH <= pss < 1.5 * TOUCH, (pss, rss)
        assert usage_of(table, pids).memory == pss or abs(usage_of(table, pids).memory - pss) < (1 << 20)


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_a_gone_process_has_no_usage() -> None:
    p = subprocess.Popen([PY, "-c", "pass"])
    p.wait()
    assert read_stat(p.pid) is None
    assert pss_bytes(p.pid) == 0
    assert ProcessTable().tree(p.pid) == []


def test_history_takes_the_rate_over_the_window() -> None:
    h = History(window=15)
    assert h.rate() is None
    for t in range(0, 31, 5):
        h.add(Point(float(t), t * 10**8))  # 100m all along
    rate = h.rate()
    assert rate is not None
    assert rate[0] == 10**8
    assert 15 <= rate[1] < 20  # from the newest point at least a window old
    # A counter going back (a process whose time went to a reaper elsewhere) is idle, not < 0.
    assert cpu_rate(Point(0, 10**9), Point(1, 0)) == 0
    assert cpu_rate(Point(1, 0), Point(1, 10**9)) == 0


def _container(sandbox_id: str, name: str, pid: int) -> Container:
    st = read_stat(pid)
    assert st is not None
    return Container(f"{sandbox_id}/{name}/0", sandbox_id, name, 0, pid, "img", None, "/dev/null", st.start_time)


def test_sampler_reports_pods_and_nodes(tmp_path: Path) -> None:
    with (
        proc(SPIN) as busy,
        proc(SHARED + "print('ready', flush=True)\ntime.sleep(600)\n") as big,
        proc(IDLE) as holder,
        proc(IDLE) as agent,
    ):
        hst = read_stat(holder.pid)
        assert hst is not None
        sandbox = Sandbox("default_web", "default/web", "web", "/x", holder.pid, hst.start_time, str(tmp_path))
        run = PodRun(key="default/web", uid="u1", node="n1", sandbox=sandbox)
        for name, p in (("spin", busy), ("big", big)):
            run.containers[name] = ContainerRun(
                ContainerSpec(name=name), running=_container("default_web", name, p.pid)
            )
        sampler = MetricsSampler(
            {run.key: run},
            threading.RLock(),
            nodes=lambda: ["n1", "n2"],
            # A process younger than the window, as an agent started with its pods: its start is
            # its first point (an older one would have no rate in the first sample).
            own=lambda: [agent.pid],
            post=print,
            window=15,
        )
        time.sleep(0.6)  # the containers' start is their window's first point
        first = sampler.sample()
        time.sleep(1.0)
        second = sampler.sample()
    for reports in (first, second):
        assert [r["node"] for r in reports] == ["n1", "n2"]
        n1, n2 = reports
        assert isinstance(n1["pods"], list) and len(n1["pods"]) == 1
        pod = n1["pods"][0]
        assert (pod["namespace"], pod["name"], pod["uid"]) == ("default", "web", "u1")
        usage = {c["name"]: c for c in pod["containers"]}
        assert usage["spin"]["cpu"] > 0.05e9
        assert usage["big"]["memory"] >= TOUCH
        assert usage["big"]["cpu"] < usage["spin"]["cpu"]
        assert 0.5 <= pod["window"] <= 15
        # The node holds its pods (holder included) plus its share of the agent.
        assert n1["memory"] > usage["big"]["memory"] + usage["spin"]["memory"]
        assert n1["cpu"] >= usage["spin"]["cpu"]
        assert n2["pods"] == [] and 0 < n2["memory"] < n1["memory"]
    assert second[0]["pods"][0]["window"] > first[0]["pods"][0]["window"]


def test_sampler_leaves_out_a_container_without_a_rate_yet(tmp_path: Path) -> None:
    # A container older than the window with a single sample has no rate: its pod waits for
    # the next sample rather than show a made-up number.
    with proc(IDLE) as p:
        run = PodRun(key="default/old", uid="u", node="n1")
        run.containers["c"] = ContainerRun(ContainerSpec(name="c"), running=_container("default_old", "c", p.pid))
        sampler = MetricsSampler({run.key: run}, threading.RLock(), lambda: ["n1"], lambda: [], print, window=0.2)
        time.sleep(0.3)
        assert sampler.sample() == []
        time.sleep(0.6)
        (report,) = sampler.sample()
        assert [x["name"] for x in report["pods"]] == ["old"]
        assert report["pods"][0]["containers"][0]["cpu"] == 0
