"""Pod processes: sandboxes holding a pod's namespaces, containers forked into them, exec."""

from kins.runtime.errors import ContainerStartError, ImageError, RuntimeFailure, SandboxError
from kins.runtime.exec import exec_in_pod, popen_in_pod
from kins.runtime.linux import socket_in_netns
from kins.runtime.runtime import Runtime, load_sandbox
from kins.runtime.types import Container, ContainerSpec, ExecResult, ProcessExit, Sandbox

__all__ = [
    "Container",
    "ContainerSpec",
    "ContainerStartError",
    "ExecResult",
    "ImageError",
    "ProcessExit",
    "Runtime",
    "RuntimeFailure",
    "Sandbox",
    "SandboxError",
    "exec_in_pod",
    "load_sandbox",
    "popen_in_pod",
    "socket_in_netns",
]
