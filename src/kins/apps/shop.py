"""The article's two services: business-manager (the front) calls data-product (the back).

Each answer names the pod that served it and that pod's IP, so a request sent through the
ingress and two Services shows which pods the load balancing picked.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

from kins.apps.web import Handler, Request, Response, http_get, log, serve_http

DEFAULT_DATA_PRODUCT_URL = "http://data-product:50051/"

PRODUCTS = [
    {"id": 1, "name": "keyboard", "price": 25.0},
    {"id": 2, "name": "monitor", "price": 139.0},
    {"id": 3, "name": "mouse", "price": 12.5},
]


def whoami(req: Request, env: Mapping[str, str]) -> dict[str, str]:
    """This pod's name and IP. The IP is POD_IP when set (downward API), else the address the
    request arrived on, which after kube-proxy's DNAT is the pod IP."""
    return {"pod": socket.gethostname(), "podIP": env.get("POD_IP") or req.local[0]}


class DataProduct:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    async def handle(self, req: Request) -> Response:
        log(f"{req.method} {req.target} from {req.client[0]}")
        if req.path == "/healthz":
            return Response.text("ok")
        if req.path == "/":
            return Response.json({"service": "data-product", **whoami(req, self.env), "products": PRODUCTS})
        return Response.json({"error": f"no route {req.path}"}, 404)


class BusinessManager:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        url = urlsplit(env.get("DATA_PRODUCT_URL") or DEFAULT_DATA_PRODUCT_URL)
        if not url.hostname:
            raise ValueError(f"DATA_PRODUCT_URL has no host: {env.get('DATA_PRODUCT_URL')!r}")
        self.upstream_host = url.hostname
        self.upstream_port = url.port or 80
        self.upstream_path = url.path or "/"

    async def handle(self, req: Request) -> Response:
        log(f"{req.method} {req.target} from {req.client[0]}")
        me = whoami(req, self.env)
        if req.path == "/healthz":
            return Response.text("ok")
        if req.path == "/":
            return Response.json({"service": "business-manager", **me})
        if req.path == "/api/v1/product/list":
            return await self.product_list(me)
        return Response.json({"error": f"no route {req.path}"}, 404)

    async def product_list(self, me: dict[str, str]) -> Response:
        upstream = f"http://{self.upstream_host}:{self.upstream_port}{self.upstream_path}"
        try:
            reply = await http_get(self.upstream_host, self.upstream_port, self.upstream_path, timeout=5.0)
            body = json.loads(reply.body)
            if reply.status != 200 or not isinstance(body, dict):
                raise ValueError(f"status {reply.status}")
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
            return Response.json({"businessManager": me, "error": f"{upstream}: {exc or type(exc).__name__}"}, 502)
        return Response.json(
            {
                "businessManager": me,
                "dataProduct": {"pod": body.get("pod", ""), "podIP": body.get("podIP", "")},
                "products": body.get("products", []),
            }
        )


async def _serve(handle: Handler, port: int) -> int:
    await serve_http(handle, port)
    log(f"listening on port {port}")
    await asyncio.get_running_loop().create_future()
    return 0


def _port(env: Mapping[str, str], default: int) -> int:
    return int(env.get("PORT") or default)


def business_manager_main(argv: list[str]) -> int:
    env = dict(os.environ)
    return asyncio.run(_serve(BusinessManager(env).handle, _port(env, 8080)))


def data_product_main(argv: list[str]) -> int:
    env = dict(os.environ)
    return asyncio.run(_serve(DataProduct(env).handle, _port(env, 50051)))
