"""``/kins/v1/nodes/NAME/exec`` and ``/kins/v1/hosts/NAME/exec``: a command on a node or an
outside host, in its network namespace (as ``ip netns exec`` runs it), over the same WebSocket
channel protocol as ``pods/NAME/exec``. Kubernetes has no such endpoint; here every node is a
namespace of this machine, and clients (``kins node exec``, ``kins host exec``) reach it only
through the API.
"""

from __future__ import annotations

from aiohttp import web

from ..api.config import ClusterConfig
from ..apiserver import exec as api_exec
from ..apiserver.errors import ApiError
from ..apiserver.keys import STORE_KEY
from ..kernel import netns
from ..runtime.exec import DEFAULT_PATH

NODE_PATH = "/kins/v1/nodes/{name}/exec"
HOST_PATH = "/kins/v1/hosts/{name}/exec"


def _launcher(ns: str, argv: list[str], what: str) -> api_exec.Launch:
    if not netns.exists(ns):
        raise ApiError(400, "BadRequest", f"{what} has no network namespace (yet)")

    def launch(tty: bool) -> tuple[list[str], dict[str, str]]:
        env = {"PATH": DEFAULT_PATH, **({"TERM": "xterm"} if tty else {})}
        return netns.exec_argv(ns, argv), env

    return launch


def add_routes(app: web.Application, cluster: str, cfg: ClusterConfig) -> None:
    def node(request: web.Request, argv: list[str]) -> api_exec.Launch:
        name = request.match_info["name"]
        request.app[STORE_KEY].get("Node", None, name)  # 404 as for any missing object
        return _launcher(netns.node_ns(cluster, name), argv, f"node {name}")

    def host(request: web.Request, argv: list[str]) -> api_exec.Launch:
        name = request.match_info["name"]
        if name not in {h.name for h in cfg.hosts}:
            raise ApiError(404, "NotFound", f'hosts "{name}" not found')
        return _launcher(netns.host_ns(cluster, name), argv, f"host {name}")

    # GET is what WebSocket clients send; POST as for pods (refused with a Status unless upgraded).
    app.router.add_route("*", NODE_PATH, api_exec.handler(node))
    app.router.add_route("*", HOST_PATH, api_exec.handler(host))
