"""Pod subresources kubectl uses every day: ``log``, ``exec`` and ``portforward``.

They are served by the API itself (in Kubernetes the API server proxies them to the node's
kubelet; here every node's pods live on this machine). The routes are registered ahead of the
generic resource routes. Errors are worded as the API server and the kubelet word them.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ..api.core import Pod
from ..runtime.runtime import load_sandbox
from ..runtime.types import Sandbox
from .server import STORE_KEY, ApiError

# The daemon's state directory (pod logs and sandbox records). The daemon object, when the
# daemon serves the app, carries it too: see ``state_dir``.
STATE_DIR_KEY = web.AppKey("pods_state_dir", Path)
POD_PATH = "/api/v1/namespaces/{namespace}/pods/{name}"


def add_routes(app: web.Application) -> None:
    from . import exec as api_exec
    from . import logs as api_log
    from . import portforward as api_portforward

    app.router.add_get(POD_PATH + "/log", api_log.handle)
    # kubectl opens WebSockets with GET; POST is what a SPDY client sends (refused with a Status).
    app.router.add_route("*", POD_PATH + "/exec", api_exec.handle)
    app.router.add_route("*", POD_PATH + "/portforward", api_portforward.handle)
    app.cleanup_ctx.append(api_log.sample_logs)


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


def container_name(pod: Pod, given: str | None) -> str:
    """The container a request is about: the only one, or the one named (the API server's checks)."""
    names = [c.name for c in pod.spec.containers]
    inits = [c.name for c in pod.spec.initContainers or []]
    if not given:
        if len(names) == 1:
            return names[0]
        msg = f"a container name must be specified for pod {pod.name}, choose one of: [{' '.join(names)}]"
        if inits:
            msg += f" or one of the init containers: [{' '.join(inits)}]"
        raise ApiError(400, "BadRequest", msg)
    if given not in names and given not in inits:
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
