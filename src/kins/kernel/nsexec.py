"""Run a program in a network namespace as ``ip netns exec`` does: the namespace's network, and a
private mount namespace whose /sys is the namespace's own sysfs (so ``/sys/class/net`` lists its
interfaces).

``command(name, argv)`` gives the host command line for it: this file run as a script by the
interpreter in isolated mode, without site packages, so it starts in a few milliseconds and
imports nothing of kins (nor anything the caller's environment could shadow).
"""

from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_SLAVE = 0x80000
MNT_DETACH = 2
EXEC_FAILED = 255  # what ip netns exec exits with when the program cannot be started


def command(name: str, argv: list[str]) -> list[str]:
    """The host command line that runs ``argv`` in kins' namespace ``name``."""
    from .._errors import KernelError
    from .netns import check_owned, exists, path

    if not argv:
        raise ValueError("exec needs a command")
    check_owned(name)
    if not exists(name):
        raise KernelError("netns exec", name, "no such network namespace")
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), path(name), *argv]


def _enter(netns_path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)

    def check(rc: int, what: str) -> None:
        if rc != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    check(libc.setns(fd, CLONE_NEWNET), "setns")
    os.close(fd)
    check(libc.unshare(CLONE_NEWNS), "unshare")
    # Slave: the host's later mounts still show here, nothing mounted here reaches the host.
    check(libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None), "mount --make-rslave /")
    libc.umount2(b"/sys", MNT_DETACH)  # may fail (nothing there): sysfs is mounted over it then
    check(libc.mount(b"sysfs", b"/sys", b"sysfs", 0, None), "mount sysfs")


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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
