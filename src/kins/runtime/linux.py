"""prctl and the process and socket helpers of the pod runtime; the namespace calls (setns,
unshare, mount) come from the kernel layer's one binding of them.

Kept free of heavy imports: the fork server loads this module before forking every pod process.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading

from ..kernel.syscalls import CLONE_NEWNET, check, setns

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def prctl(option: int, arg: int) -> None:
    check(_libc.prctl(option, arg, 0, 0, 0), "prctl")


def set_comm(name: str) -> None:
    """Name the process in ``ps`` (the kernel keeps 15 bytes)."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    check(_libc.prctl(PR_SET_NAME, ctypes.addressof(buf), 0, 0, 0), "prctl")


def socket_in_netns(
    netns_path: str, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
) -> socket.socket:
    """A socket created inside another network namespace, without forking.

    A network namespace belongs to a thread, so a short-lived thread enters the namespace, creates
    the socket and ends; the socket stays in that namespace for its whole life. Probes and tests
    use this to talk to a pod's loopback or listen as a pod would.
    """
    result: list[socket.socket | BaseException] = []

    def run() -> None:
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd, CLONE_NEWNET)
            finally:
                os.close(fd)
            result.append(socket.socket(family, type, proto))
        except BaseException as exc:
            result.append(exc)

    t = threading.Thread(target=run, name="netns-socket")
    t.start()
    t.join()
    out = result[0]
    if isinstance(out, BaseException):
        raise out
    return out


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat), None if gone.

    Together with the pid it names a process unambiguously, so a reused pid is never mistaken for
    a pod's sandbox.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[19])


def memory_of(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of a process in bytes, from /proc/PID/smaps_rollup; (0, 0) if it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
    except OSError:
        return 0, 0
    return pss, rss
