"""Errors of the pod runtime, for the kubelet to turn into pod and container status."""

from __future__ import annotations

from kins._errors import KinsError


class RuntimeFailure(KinsError):
    """The runtime itself broke (its fork server died or did not answer)."""


class ImageError(KinsError):
    """The image cannot run here: not built in and no command, or a built-in used in a way kins
    does not implement. The kubelet reports it like ErrImagePull/ErrImageNeverPull."""

    reason = "ErrImageNeverPull"


class ContainerStartError(KinsError):
    """The container's process could not start (binary not found, namespace gone, ...);
    the kubelet reports it like CreateContainerError/StartError."""

    reason = "StartError"


class SandboxError(KinsError):
    """The pod sandbox could not be created or is not running."""

    reason = "CreatePodSandboxError"
