"""Run a host program inside a pod's namespaces (``kins exec POD -- CMD``).

The program joins the network, UTS and mount namespaces of the pod's holder process, so it
sees the pod's interfaces, hostname, /etc/resolv.conf and /etc/hosts. util-linux ``nsenter``
does the joining: exec is a user action, not a per-pod cost, and nsenter keeps the caller
(a threaded daemon) free of fork-time hazards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from kins._errors import NotFound
from kins.runtime.errors import ContainerStartError
from kins.runtime.linux import process_start_time
from kins.runtime.types import ExecResult, Sandbox

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def pod_command(sandbox: Sandbox, argv: Sequence[str]) -> list[str]:
    """The host command line that runs ``argv`` inside the pod."""
    if not argv:
        raise ValueError("exec needs a command")
    if process_start_time(sandbox.pid) != sandbox.start_time:
        raise NotFound(f"pod {sandbox.pod_key}: its sandbox is not running")
    nsenter = shutil.which("nsenter")
    if nsenter is None:
        raise ContainerStartError("exec needs nsenter (util-linux) on the host")
    return [nsenter, "-t", str(sandbox.pid), "-n", "-u", "-m", "--", *argv]


def pod_env(sandbox: Sandbox, env: Mapping[str, str] | None, *, tty: bool = False) -> dict[str, str]:
    out = {"PATH": DEFAULT_PATH, "HOSTNAME": sandbox.hostname}
    if tty and "TERM" in os.environ:
        out["TERM"] = os.environ["TERM"]
    out.update(env or {})
    return out


def popen_in_pod(
    sandbox: Sandbox, argv: Sequence[str], *, env: Mapping[str, str] | None = None, **popen: Any
) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` of ``argv`` inside the pod (stdin/stdout/stderr as for Popen)."""
    return subprocess.Popen(pod_command(sandbox, argv), env=pod_env(sandbox, env), **popen)


def exec_in_pod(
    sandbox: Sandbox,
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    interactive: bool = False,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> ExecResult:
    """Run ``argv`` inside the pod and wait for it.

    By default output is captured and ``input`` (if any) is its stdin. With ``interactive`` the
    program uses the caller's own stdin/stdout/stderr (a terminal for ``kins exec -it``) and the
    result carries only the exit code. Exit code 127 and a message on stderr: not found.
    """
    cmd = pod_command(sandbox, argv)
    full_env = pod_env(sandbox, env, tty=interactive)
    if interactive:
        rc = subprocess.run(cmd, env=full_env, timeout=timeout, check=False).returncode
        return ExecResult(rc, b"", b"")
    done = subprocess.run(
        cmd,
        env=full_env,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return ExecResult(done.returncode, done.stdout, done.stderr)
