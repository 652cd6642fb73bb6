"""What a pod's processes use, read from /proc: CPU time and working-set memory.

A real kubelet reads both from the pod's cgroups (cAdvisor). kins' pods have no cgroups of their
own: a container is the process the fork server started (in a session of its own, ``setsid``)
and whatever it forks, so its usage is summed over that process's session and descendants.
Processes of ``kubectl exec`` are not counted (a real container runtime puts them in the
container's cgroup; here they belong to whoever ran nsenter).

CPU is cumulative time (``utime + stime`` of each live process, plus ``cutime + cstime``: the
time of children it has waited for, so a short-lived child's work is not lost when it exits);
the usage the Metrics API shows is its rate over a window between two samples, in nanocores.

Memory is the proportional set size (PSS, ``/proc/PID/smaps_rollup``), not the RSS. Every pod
process is forked from one interpreter and keeps sharing its pages (copy-on-write) with the
fork server and every other pod: RSS counts those tens of MiB in full for each pod, so a node's
pods would add up to many times what the node really uses. A cgroup charges each page once, to
whoever first touched it; PSS likewise counts each page once in all, split between its sharers,
and counts a pod's own pages in full. The kubelet's working set is usage minus inactive file
pages; a process view has no active/inactive split, and PSS holds only mapped (in use) file
pages, never the unmapped page cache a cgroup would also count, which is the closest match.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

CLOCK_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    session: int
    cpu_ticks: int  # utime + stime + cutime + cstime
    start_time: int  # clock ticks since boot


def read_stat(pid: int) -> ProcStat | None:
    """One process's /proc/PID/stat, None when it is gone (or a zombie: it holds nothing)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields follow the last ')'.
    f = data[data.rindex(b")") + 2 :].split()
    if f[0] == b"Z":
        return None
    # After the name: state(0) ppid(1) pgrp(2) session(3) … utime(11) stime(12) cutime(13)
    # cstime(14) … starttime(19).
    ticks = int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return ProcStat(pid, int(f[1]), int(f[3]), ticks, int(f[19]))


def all_processes() -> dict[int, ProcStat]:
    """Every live process of the machine, by pid."""
    out: dict[int, ProcStat] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := read_stat(int(name))) is not None:
            out[st.pid] = st
    return out


def pss_bytes(pid: int) -> int:
    """The process's proportional set size in bytes (see the module's note), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return 0
    return 0


class ProcessTable:
    """One snapshot of /proc, to find the processes of many containers at once."""

    def __init__(self, procs: dict[int, ProcStat] | None = None) -> None:
        self.procs = all_processes() if procs is None else procs
        self._children: dict[int, list[int]] = {}
        self._sessions: dict[int, list[int]] = {}
        for st in self.procs.values():
            self._children.setdefault(st.ppid, []).append(st.pid)
            self._sessions.setdefault(st.session, []).append(st.pid)

    def tree(self, root: int, start_time: int | None = None) -> list[int]:
        """``root`` (when it is still the process started at ``start_time``), its descendants
        and the rest of its session (children that the fork server adopted when their parent
        exited keep it)."""
        st = self.procs.get(root)
        if st is None or (start_time and st.start_time != start_time):
            return []
        seen = {root}
        todo = [root]
        while todo:
            for child in self._children.get(todo.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        if st.session == root:  # a session leader: the container's own session
            seen.update(self._sessions.get(root, ()))
        return sorted(seen)


@dataclass(frozen=True)
class Usage:
    """Cumulative CPU time (ns) and current memory (bytes) of a group of processes."""

    cpu_ns: int
    memory: int


def usage_of(table: ProcessTable, pids: Iterable[int]) -> Usage:
    cpu = mem = 0
    for pid in pids:
        st = table.procs.get(pid)
        if st is None:
            continue
        cpu += st.cpu_ticks * CLOCK_TICK_NS
        mem += pss_bytes(pid)
    return Usage(cpu, mem)


@dataclass(frozen=True)
class Point:
    """One sample of one container: when (seconds, monotonic) and what it had used."""

    at: float
    cpu_ns: int


def cpu_rate(older: Point, newer: Point) -> int:
    """Nanocores used between two samples: CPU nanoseconds per second of wall time. A counter
    that went back (a process whose time went to a reaper outside the group) counts as idle."""
    elapsed = newer.at - older.at
    if elapsed <= 0:
        return 0
    return max(0, round((newer.cpu_ns - older.cpu_ns) / elapsed))


class History:
    """A container's recent samples, to take the CPU rate over about ``window`` seconds."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.points: list[Point] = []

    def add(self, p: Point) -> None:
        self.points.append(p)
        # Keep the newest point that is at least a window old (the rate's start) and those after.
        while len(self.points) > 2 and p.at - self.points[1].at >= self.window:
            del self.points[0]

    def rate(self) -> tuple[int, float] | None:
        """(nanocores, window in seconds) from the oldest kept sample to the newest; None with
        fewer than two samples."""
        if len(self.points) < 2:
            return None
        first, last = self.points[0], self.points[-1]
        return cpu_rate(first, last), last.at - first.at
