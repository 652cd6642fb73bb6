"""Root tests: pod volumes bound in the sandbox's mount namespace, the host's files untouched."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from runtime_helpers import Netns

from kins.runtime import Runtime, SandboxError, exec_in_pod

pytestmark = pytest.mark.root


def sh(sb: object, script: str) -> tuple[int, str]:
    r = exec_in_pod(sb, ["sh", "-c", script])  # type: ignore[arg-type]
    return r.returncode, (r.stdout + r.stderr).decode()


def test_volumes_are_mounted_in_the_pod_only(
    runtime: Runtime, netns: Netns, pod_files: tuple[Path, Path], tmp_path: Path
) -> None:
    (ns,) = netns.make()
    tag = secrets.token_hex(4)
    empty = tmp_path / "empty"
    empty.mkdir()
    config = tmp_path / "config"
    config.mkdir()
    (config / "app.conf").write_text("answer = 42\n")
    single = tmp_path / "token"
    single.write_text("s3cret\n")
    existing = tmp_path / "existing-target"  # a mount point that exists on the host
    existing.mkdir()
    (existing / "host-file").write_text("host\n")
    host_etc = sorted(p.name for p in Path("/etc").iterdir())
    host_mounts = Path("/proc/self/mountinfo").read_text()
    new_dir = f"/etc/kins-{tag}/conf.d"  # neither /etc/kins-<tag> nor conf.d exist on the host
    mounts = [
        (str(empty), new_dir, False),
        (str(config), f"/etc/kins-{tag}/ro", True),
        (str(single), f"/etc/kins-{tag}/token", True),
        (str(config), str(existing), False),
    ]
    sb = runtime.create_sandbox("default/vol", netns.path(ns), "vol", *map(str, pod_files), mounts=mounts)

    assert sh(sb, f"echo hi > {new_dir}/x && cat {new_dir}/x") == (0, "hi\n")
    assert (empty / "x").read_text() == "hi\n"  # the pod wrote into its volume
    assert sh(sb, f"cat /etc/kins-{tag}/ro/app.conf /etc/kins-{tag}/token") == (0, "answer = 42\ns3cret\n")
    code, out = sh(sb, f"touch /etc/kins-{tag}/ro/new")
    assert code != 0 and "Read-only file system" in out
    assert sh(sb, f"ls {existing}") == (0, "app.conf\n")
    # The overlay that made room for the mount points keeps /etc and its other mounts as they are.
    assert sh(sb, "cat /etc/resolv.conf")[1] == pod_files[0].read_text()
    assert sh(sb, "cat /etc/hostname")[1] == Path("/etc/hostname").read_text()

    assert not Path(f"/etc/kins-{tag}").exists()
    assert sorted(p.name for p in Path("/etc").iterdir()) == host_etc
    assert (existing / "host-file").read_text() == "host\n"
    assert Path("/proc/self/mountinfo").read_text() == host_mounts

    runtime.remove_sandbox(sb)
    assert not Path(f"/etc/kins-{tag}").exists()


def test_bad_mounts_are_sandbox_errors(
    runtime: Runtime, netns: Netns, pod_files: tuple[Path, Path], tmp_path: Path
) -> None:
    (ns,) = netns.make()
    files = tuple(map(str, pod_files))
    tag = secrets.token_hex(4)
    with pytest.raises(SandboxError, match="does not exist"):
        runtime.create_sandbox(
            "default/a", netns.path(ns), "a", *files, mounts=[(str(tmp_path / "nope"), "/mnt/x", False)]
        )
    with pytest.raises(SandboxError, match="does not add directories to /"):
        runtime.create_sandbox(
            "default/b", netns.path(ns), "b", *files, mounts=[(str(tmp_path), f"/kins-{tag}", False)]
        )
    assert not Path(f"/kins-{tag}").exists()
    assert runtime.sandboxes() == []
    sb = runtime.create_sandbox("default/c", netns.path(ns), "c", *files)
    assert sh(sb, "hostname") == (0, "c\n")
