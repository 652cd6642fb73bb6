"""Pod volumes: bind mounts inside a sandbox's private mount namespace.

Runs in the sandbox's holder process, after it unshared its mount namespace and made every mount
private, so nothing here is seen by the host. A mount point the pod's path lacks is created
without touching the host's files: the nearest existing directory above it is covered with an
overlay whose writable layer is a tmpfs private to the pod (its own submounts are bound back on
top), and the directory is made in that layer. Stdlib only: the fork server loads this module.
"""

from __future__ import annotations

import os

from kins.kernel.syscalls import MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT, mount

Mount = tuple[str, str, bool]  # (host path, path in the pod, read only)


def check_mounts(mounts: list[Mount]) -> list[Mount]:
    """Normalised mounts, parents before children; ValueError for what cannot be mounted."""
    out: list[Mount] = []
    for src, dst, ro in mounts:
        if not os.path.isabs(src) or not os.path.isabs(dst):
            raise ValueError(f"mount {src} -> {dst}: paths must be absolute")
        dst = os.path.normpath(dst)
        if dst == "/":
            raise ValueError(f"mount {src}: cannot mount over the pod's /")
        out.append((os.path.normpath(src), dst, bool(ro)))
    seen: set[str] = set()
    for _, dst, _ in out:
        if dst in seen:
            raise ValueError(f"two volumes mounted at {dst}")
        seen.add(dst)
    return sorted(out, key=lambda m: (m[1].count("/"), m[1]))


def nearest_existing(path: str) -> str:
    """The longest prefix of ``path`` (a normalised absolute path) that exists."""
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return path


def under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def top_submounts(mountinfo: str, base: str) -> list[str]:
    """Mount points strictly below ``base`` that are not below another one of them (binding
    those back recursively restores the whole tree)."""
    points = []
    prefix = base.rstrip("/") + "/"
    for line in mountinfo.splitlines():
        f = line.split(" ")
        if len(f) > 4:
            point = f[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
            if point.startswith(prefix):
                points.append(point)
    top: list[str] = []
    for p in sorted(set(points), key=lambda p: (p.count("/"), p)):
        if not under(p, top):
            top.append(p)
    return top


class MountSetup:
    """Applies a pod's mounts; ``scratch`` is an empty directory in the cluster's state dir that
    receives the pod's private tmpfs (used only if a mount point has to be created)."""

    def __init__(self, scratch: str) -> None:
        self.scratch = scratch
        self.scratch_ready = False
        self.writable: list[str] = []  # paths below which directories can be made privately
        self.layers = 0

    def apply(self, mounts: list[Mount]) -> None:
        ordered = check_mounts(mounts)
        for src, _, _ in ordered:
            if not os.path.exists(src):
                raise FileNotFoundError(f"volume source {src} does not exist")
        # Sources (and the scratch dir) are held open first: a volume mounted over a directory
        # above them (an emptyDir at /tmp, with the state directory below /tmp) would hide them.
        if any(not os.path.lexists(dst) for _, dst, _ in ordered):
            self.prepare_scratch()
        held = [os.open(src, os.O_PATH | os.O_CLOEXEC) for src, _, _ in ordered]
        dirs = [os.path.isdir(src) for src, _, _ in ordered]
        try:
            for (src, dst, ro), fd, is_dir in zip(ordered, held, dirs, strict=True):
                if not os.path.lexists(dst):
                    self.make_mount_point(dst, is_dir)
                elif os.path.isdir(dst) != is_dir:
                    kind = "directory" if is_dir else "file"
                    raise ValueError(f"mount {src}: {dst} exists and is not a {kind}")
                mount(f"/proc/self/fd/{fd}", dst, None, MS_BIND | MS_REC)
                if ro:
                    mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
                else:
                    self.writable.append(dst)  # the pod's own volume: mount points in it are fine
        finally:
            for fd in held:
                os.close(fd)

    def prepare_scratch(self) -> None:
        """The pod's tmpfs on the scratch dir, reached from now on through a descriptor (its
        path may be covered by a volume later)."""
        if self.scratch_ready:
            return
        mount("tmpfs", self.scratch, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=16m")
        fd = os.open(self.scratch, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.scratch = f"/proc/self/fd/{fd}"  # kept open for the holder's life (closed on exec)
        self.scratch_ready = True

    def make_mount_point(self, dst: str, is_dir: bool) -> None:
        parent = os.path.dirname(dst)
        anchor = nearest_existing(parent)
        if not os.path.isdir(anchor):
            raise ValueError(f"mount point {dst}: {anchor} is not a directory")
        if not under(anchor, self.writable):
            if anchor == "/":
                raise ValueError(f"mount point {dst} does not exist and kins does not add directories to /")
            self.overlay(anchor)
        os.makedirs(parent, exist_ok=True)
        if is_dir:
            os.mkdir(dst)
        else:
            os.close(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))

    def overlay(self, anchor: str) -> None:
        """Cover ``anchor`` with an overlay writing to the pod's tmpfs, submounts kept."""
        self.prepare_scratch()
        layer = os.path.join(self.scratch, str(self.layers))
        self.layers += 1
        lower, upper, work = (os.path.join(layer, d) for d in ("lower", "upper", "work"))
        for d in (lower, upper, work):
            os.makedirs(d)
        for path in (anchor, layer):
            if any(c in path for c in ",:\\"):
                raise ValueError(f"cannot overlay {anchor}: {path} has a ',', ':' or '\\\\'")
        with open("/proc/self/mountinfo") as f:
            subs = top_submounts(f.read(), anchor)
        st = os.stat(anchor)
        os.chmod(upper, st.st_mode & 0o7777)
        os.chown(upper, st.st_uid, st.st_gid)
        # A recursive bind of the anchor keeps reachable what the overlay is about to cover; it is
        # reached through a descriptor, since the overlay may cover the scratch dir's path too.
        mount(anchor, lower, None, MS_BIND | MS_REC)
        fd = os.open(lower, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            mount("overlay", anchor, "overlay", 0, f"lowerdir={lower},upperdir={upper},workdir={work}")
            for sub in subs:
                rel = sub[len(anchor.rstrip("/")) + 1 :]
                mount(f"/proc/self/fd/{fd}/{rel}", sub, None, MS_BIND | MS_REC)
        finally:
            os.close(fd)
        self.writable.append(anchor)
