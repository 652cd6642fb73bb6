"""The kubelet's records of what runs: a pod (sandbox, address, namespace) and its containers."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...api.core import Container, ContainerStateTerminated, Pod
from ...runtime.types import Container as RunningContainer
from ...runtime.types import Sandbox
from .probes import ProbeState


@dataclass
class ContainerRun:
    spec: Container
    running: RunningContainer | None = None
    restarts: int = 0
    started_at: str | None = None
    ready: bool = False
    waiting: tuple[str, str] | None = ("ContainerCreating", "")
    terminated: ContainerStateTerminated | None = None
    last_terminated: ContainerStateTerminated | None = None
    backoff: float = 0.0
    restart_at: float | None = None
    readiness: ProbeState | None = None
    liveness: ProbeState | None = None
    started_mono: float = 0.0


@dataclass
class PodRun:
    key: str
    uid: str
    node: str
    ip: str = ""
    netns: str = ""  # the kernel's namespace name
    sandbox: Sandbox | None = None
    containers: dict[str, ContainerRun] = field(default_factory=dict)
    # Ephemeral containers (kubectl debug): started once, never restarted, not in readiness.
    ephemeral: dict[str, ContainerRun] = field(default_factory=dict)
    phase: str = "Pending"
    reason: str | None = None
    message: str | None = None
    stopping: bool = False
    dirty: bool = True
    retry_at: float | None = None  # set while the pod waits to be started again


def has_run(run: PodRun) -> bool:
    """Whether any container of ``run`` is running or has run (and so may be restarting)."""
    return any(
        cr.running is not None or cr.terminated is not None or cr.last_terminated is not None
        for cr in run.containers.values()
    )


def unfinished(pod: Pod) -> bool:
    return (pod.status.phase if pod.status else None) not in ("Succeeded", "Failed")
