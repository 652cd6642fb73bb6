"""Typed values exchanged with the pod runtime."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ContainerSpec:
    """What the kubelet asks for: a container of a pod, in Kubernetes terms."""

    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    stdin: bool = False  # attach may write to it (runtime/stdio.py)
    stdin_once: bool = False
    tty: bool = False


@dataclass(frozen=True)
class Sandbox:
    """A pod's namespaces, held by one small process (``pid``).

    ``start_time`` (clock ticks since boot) guards against a reused pid. ``dir`` holds the pod's
    logs and this sandbox's record (sandbox.json), so other processes (``kins exec``) find it.
    ``uid`` is the pod object's, so a sandbox found after a restart is matched to the right pod.
    """

    id: str
    pod_key: str
    hostname: str
    netns_path: str
    pid: int
    start_time: int
    dir: str
    uid: str = ""

    @property
    def record_path(self) -> Path:
        return Path(self.dir) / "sandbox.json"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Sandbox:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Container:
    id: str  # "<sandbox id>/<container name>/<attempt>"
    sandbox_id: str
    name: str
    attempt: int
    pid: int
    image: str
    builtin: str | None  # the built-in app's name, None for a host binary
    log_path: str
    start_time: int = 0  # clock ticks since boot, as for Sandbox


@dataclass(frozen=True)
class ProcessExit:
    """A pod process ended. ``exit_code`` follows container runtimes: 128+N when killed by signal N."""

    id: str  # container id, or sandbox id when ``sandbox`` is true
    pid: int
    exit_code: int
    signal: int | None
    sandbox: bool = False


@dataclass(frozen=True)
class ExecResult:
    returncode: int
    stdout: bytes
    stderr: bytes
