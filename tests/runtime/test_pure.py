"""Runtime pieces that need no root: mount-table filtering, names, exit statuses."""

from __future__ import annotations

import os
import signal

import pytest

from kins.runtime.runtime import decode_status, pod_dir_name
from kins.runtime.types import Sandbox
from kins.runtime.zygote import nsfs_mounts_to_detach

MOUNTINFO = """\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:5 / /proc rw - proc proc rw
40 22 253:1 /run/netns /run/netns rw shared:5 - ext4 /dev/vda rw
41 40 0:4 net:[4026532300] /run/netns/kins-a rw shared:6 - nsfs nsfs rw
42 40 0:4 net:[4026532400] /run/netns/kins-b rw shared:7 - nsfs nsfs rw
50 22 0:26 / /run/docker rw - tmpfs tmpfs rw
51 50 0:4 net:[4026532500] /run/docker/netns/x rw - nsfs nsfs rw
52 50 0:27 / /run/docker/other rw - tmpfs tmpfs rw
60 22 0:4 net:[4026532600] /var/my\\040ns rw - nsfs nsfs rw
"""


def test_nsfs_mounts_to_detach() -> None:
    # /run/netns holds only namespace files: detached whole. /run/docker holds other mounts too:
    # only its namespace file goes. A namespace file under / goes alone (never / itself).
    assert nsfs_mounts_to_detach(MOUNTINFO) == ["/run/docker/netns/x", "/run/netns", "/var/my ns"]
    assert nsfs_mounts_to_detach("22 1 253:1 / / rw - ext4 /dev/vda rw\n") == []


def test_pod_dir_name() -> None:
    assert pod_dir_name("default/business-manager-666f454f7f-bg2bt") == "default_business-manager-666f454f7f-bg2bt"
    for bad in ("../x", "a/b/c", "default/a b", "nons", ""):
        with pytest.raises(ValueError):
            pod_dir_name(bad)


def test_decode_status() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    assert decode_status(os.waitpid(pid, 0)[1]) == (3, None)
    pid = os.fork()
    if pid == 0:
        signal.pause()
        os._exit(0)
    os.kill(pid, signal.SIGKILL)
    assert decode_status(os.waitpid(pid, 0)[1]) == (137, signal.SIGKILL)


def test_sandbox_record_round_trip() -> None:
    sb = Sandbox("default_a", "default/a", "a", "/run/netns/x", 42, 1234, "/tmp/pods/default_a")
    assert Sandbox.from_json(sb.to_json()) == sb


def test_check_mounts_orders_parents_first_and_refuses_bad_ones() -> None:
    from kins.runtime.mounts import check_mounts

    got = check_mounts([("/v/b", "/etc/app/sub/", False), ("/v/a", "/etc/app", True)])
    assert got == [("/v/a", "/etc/app", True), ("/v/b", "/etc/app/sub", False)]
    for bad in ([("v", "/x", False)], [("/v", "x", False)], [("/v", "/", False)], [("/a", "/x", False)] * 2):
        with pytest.raises(ValueError):
            check_mounts(bad)


def test_top_submounts() -> None:
    from kins.runtime.mounts import top_submounts, under

    info = (
        "22 1 253:1 / / rw - ext4 /dev/vda rw\n"
        "30 22 0:5 / /etc/resolv.conf rw - ext4 /dev/vda rw\n"
        "31 22 0:6 / /etc/ssl rw - tmpfs t rw\n"
        "32 31 0:7 / /etc/ssl/certs rw - tmpfs t rw\n"
        "33 22 0:8 / /etcetera rw - tmpfs t rw\n"
        "34 22 0:9 / /etc/my\\040dir rw - tmpfs t rw\n"
    )
    assert top_submounts(info, "/etc") == ["/etc/my dir", "/etc/resolv.conf", "/etc/ssl"]
    assert under("/etc/ssl/x", ["/etc/ssl"]) and not under("/etcetera", ["/etc"])
