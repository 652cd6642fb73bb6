"""setns(2), which Python 3.11's ``os`` lacks, bound once with ctypes for the kernel layer and the
pod runtime alike.

Kept free of heavy imports: the runtime's fork server loads it before forking every pod process.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


def setns(fd: int, nstype: int = 0) -> None:
    """Move the calling thread into the namespace ``fd`` refers to."""
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")
