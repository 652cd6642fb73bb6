"""Run a program in a network namespace as ``ip netns exec`` does: the namespace's network, and a
private mount namespace whose /sys is the namespace's own sysfs (so ``/sys/class/net`` lists its
interfaces).

``netns.exec_argv(name, argv)`` gives the host command line: the interpreter in isolated mode,
without site packages, loading only this module and ``syscalls`` (so it starts in a few
milliseconds, and nothing the caller's environment holds can shadow them).
"""

from __future__ import annotations

import contextlib
import os
import sys

from .syscalls import CLONE_NEWNET, CLONE_NEWNS, MNT_DETACH, MS_REC, MS_SLAVE, mount, setns, umount2, unshare

EXEC_FAILED = 255  # what ip netns exec exits with when the program cannot be started

# ``python -I -S -c BOOT NETNS_PATH ARGV...``: ``kins`` as a bare package, so that importing this
# module runs no package ``__init__`` that would pull in the rest of kins.
BOOT = """
import sys, types
m = types.ModuleType("kins"); m.__path__ = [{kins!r}]; sys.modules["kins"] = m
from kins.kernel.nsexec import main
sys.exit(main(sys.argv[1:]))
"""
KINS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _enter(netns_path: str) -> None:
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)
    unshare(CLONE_NEWNS)
    # Slave: the host's later mounts still show here, nothing mounted here reaches the host.
    mount("none", "/", None, MS_REC | MS_SLAVE)
    with contextlib.suppress(OSError):  # nothing mounted there: sysfs goes over the directory
        umount2("/sys", MNT_DETACH)
    mount("sysfs", "/sys", "sysfs", 0)


def main(args: list[str]) -> int:
    netns_path, argv = args[0], args[1:]
    try:
        _enter(netns_path)
    except OSError as e:
        sys.stderr.write(f"cannot enter {netns_path}: {e.strerror or e}\n")
        return EXEC_FAILED
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        sys.stderr.write(f'exec of "{argv[0]}" failed: {e.strerror or e}\n')
    return EXEC_FAILED
