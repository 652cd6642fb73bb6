"""Where the controller keeps nginx.conf, certificates and logs when no ``--dir`` is given.

Upstream's image writes ``/etc/nginx`` inside its own container filesystem. A kins pod shares
the host's filesystem but has a mount namespace of its own (every mount private, see
``runtime/mounts.py``), so the controller covers ``/etc/nginx`` with a fresh tmpfs in that
namespace: the same path upstream uses, private to the pod, gone with it, and the host's
``/etc/nginx`` is never read or written. A volume the pod mounts there itself (the article's
emptyDir) is used as it is.
"""

from __future__ import annotations

import os

from .._errors import KinsError
from ..kernel.syscalls import MS_NODEV, MS_NOSUID, mount

DEFAULT_DIR = "/etc/nginx"


def mount_points(mountinfo: str) -> set[str]:
    """The mount points of a ``/proc/<pid>/mountinfo`` text (octal escapes decoded)."""
    out = set()
    for line in mountinfo.splitlines():
        f = line.split(" ")
        if len(f) > 4:
            out.add(f[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\"))
    return out


def in_own_mount_namespace() -> bool:
    """Whether this process's mount namespace differs from its parent's: a pod's container is
    forked by kins' fork server, which stays in the host's namespace and joins the container
    to its pod's; a controller started from a shell shares the shell's."""
    try:
        return os.readlink("/proc/self/ns/mnt") != os.readlink(f"/proc/{os.getppid()}/ns/mnt")
    except OSError:
        return False


def private_dir(path: str = DEFAULT_DIR) -> str:
    """``path`` as a directory private to this pod: a tmpfs mounted there unless something
    (a volume, an earlier run of the container) is mounted there already."""
    if not in_own_mount_namespace():
        raise KinsError(
            f"--dir is required outside a pod: kins would mount a tmpfs on {path} only in a pod's own mount namespace"
        )
    with open("/proc/self/mountinfo") as f:
        if os.path.normpath(path) in mount_points(f.read()):
            return path
    if not os.path.isdir(path):
        raise KinsError(f"{path} does not exist on this machine: give the controller --dir (an emptyDir volume)")
    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64m")
    return path
