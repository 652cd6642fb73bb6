"""The pod a subresource request (``log``, ``exec``, ``portforward``) is about, its container
and its running sandbox.

These subresources are served by the API itself (in Kubernetes the API server proxies them to
the node's kubelet; here every node's pods live on this machine). Errors are worded as the API
server and the kubelet word them.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ..api.core import Container, Pod
from ..runtime.runtime import load_sandbox
from ..runtime.types import Sandbox
from .errors import ApiError
from .keys import STATE_DIR_KEY, STORE_KEY


def state_dir(app: web.Application) -> Path | None:
    if STATE_DIR_KEY in app:
        return app[STATE_DIR_KEY]
    daemon = app.get("kins.daemon")
    found = getattr(daemon, "state_dir", None)
    return Path(found) if found is not None else None


def need_state_dir(app: web.Application) -> Path:
    found = state_dir(app)
    if found is None:
        raise ApiError(503, "ServiceUnavailable", "this API serves no pods of its own (no kubelet)")
    return found


def get_pod(request: web.Request) -> Pod:
    """The pod of the URL (404 ``pods "x" not found`` as the store words it)."""
    obj = request.app[STORE_KEY].get("Pod", request.match_info["namespace"], request.match_info["name"])
    assert isinstance(obj, Pod)
    return obj


def all_containers(pod: Pod) -> list[Container]:
    """The pod's containers, init containers and ephemeral containers."""
    return [*pod.spec.containers, *(pod.spec.initContainers or []), *(pod.spec.ephemeralContainers or [])]


def container_name(pod: Pod, given: str | None) -> str:
    """The container a request is about: the only one, or the one named (the API server's checks)."""
    names = [c.name for c in pod.spec.containers]
    inits = [c.name for c in pod.spec.initContainers or []]
    ephemeral = [c.name for c in pod.spec.ephemeralContainers or []]
    if not given:
        if len(names) == 1:
            return names[0]
        msg = f"a container name must be specified for pod {pod.name}, choose one of: [{' '.join(names)}]"
        if inits:
            msg += f" or one of the init containers: [{' '.join(inits)}]"
        if ephemeral:
            msg += f" or one of the ephemeral containers: [{' '.join(ephemeral)}]"
        raise ApiError(400, "BadRequest", msg)
    if given not in names and given not in inits and given not in ephemeral:
        raise ApiError(400, "BadRequest", f"container {given} is not valid for pod {pod.name}")
    return given


def running_sandbox(request: web.Request, pod: Pod, container: str) -> Sandbox:
    """The pod's running sandbox, for exec and port forwarding (400 when the pod does not run)."""
    phase = pod.status.phase if pod.status is not None else None
    if phase in ("Succeeded", "Failed"):
        raise ApiError(
            400,
            "BadRequest",
            f"pod {pod.name} is not running and cannot execute commands; current phase is {phase}",
        )
    try:
        sandbox = load_sandbox(need_state_dir(request.app), pod.key)
    except Exception:
        sandbox = None
    if sandbox is None or (sandbox.uid and pod.metadata.uid and sandbox.uid != pod.metadata.uid):
        raise ApiError(400, "BadRequest", f'container "{container}" in pod "{pod.name}" is not running')
    return sandbox
