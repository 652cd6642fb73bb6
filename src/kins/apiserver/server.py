"""The HTTP API, shaped like the Kubernetes REST API so that kubectl-style clients work.

Paths, verbs, list and watch bodies, and errors (``Status`` objects with reasons and field
causes) follow the Kubernetes conventions. This module builds the app: authentication, the
error middleware and every route; the handlers live beside it.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from .._errors import Conflict, Gone, KinsError, MultiValidationError, NotFound
from ..api import patch as api_patch
from ..api.config import ClusterConfig
from ..store.base import Store
from . import access, attach, definitions, discovery, logs, metrics, openapi, policylog, portforward
from . import exec as pod_exec
from .authn import Authenticator
from .authz import RBAC
from .errors import ApiError, cause_reason
from .keys import ADMISSION_KEY, CFG_KEY, STORE_KEY, TOKEN_KEY, WARNINGS, WATCHES_KEY, Admission
from .response import respond
from .tokens import SigningKey, issuer
from .verbs import handle_resource
from .watch import close_watches

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger(__name__)

POD_PATH = "/api/v1/namespaces/{namespace}/pods/{name}"


def make_app(
    store: Store,
    cfg: ClusterConfig,
    *,
    token: str,
    admission: Admission | None = None,
    signing_key: SigningKey | None = None,
) -> web.Application:
    """The API as an aiohttp application. Serve it with ``start`` (loopback only).

    ``token`` is the admin's; ``signing_key`` signs ServiceAccount tokens (a fresh one when not
    given: tokens then die with the app)."""
    if not token:
        raise ValueError("an API token is required")
    app = web.Application(middlewares=[_errors_middleware, access.access_middleware])
    iss = issuer(cfg.services.domain)
    app[access.AUTHN_KEY] = Authenticator(token, signing_key or SigningKey.generate(), [iss], iss, store)
    app[access.RBAC_KEY] = RBAC(store)
    app[STORE_KEY] = store
    app[CFG_KEY] = cfg
    app[TOKEN_KEY] = token
    app[ADMISSION_KEY] = admission
    app[WATCHES_KEY] = set()
    # The kinds of the CustomResourceDefinitions a kept store holds are served from the start.
    definitions.serve_stored(store)
    app.on_shutdown.append(close_watches)
    discovery.add_routes(app.router)
    openapi.add_routes(app.router)
    access.add_routes(app)
    # The pod subresources go ahead of the generic resource routes, which would claim them.
    app.router.add_get(POD_PATH + "/log", logs.handle)
    # kubectl opens WebSockets with GET; a SPDY client sends POST (upgraded, as GET may be).
    app.router.add_route("*", POD_PATH + "/exec", pod_exec.handle)
    app.router.add_route("*", POD_PATH + "/portforward", portforward.handle)
    app.router.add_route("*", POD_PATH + "/attach", attach.handle)
    app.cleanup_ctx.append(logs.sample_logs)
    policylog.add_routes(app)
    metrics.add_routes(app)
    app.router.add_route("*", "/api/{version}/{tail:.+}", handle_resource)
    app.router.add_route("*", "/apis/{group}/{version}/{tail:.+}", handle_resource)
    return app


@web.middleware
async def _errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        resp = await handler(request)
        for text in dict.fromkeys(request.get(WARNINGS, ())):
            if not resp.prepared:
                resp.headers.add("Warning", f"299 - {msgspec.json.encode(text).decode()}")
        return resp
    except ApiError as e:
        return respond(request, e.status(), e.code)
    except NotFound as e:
        return respond(request, ApiError(404, "NotFound", str(e)).status(), 404)
    except Gone as e:
        return respond(request, ApiError(410, "Gone", str(e)).status(), 410)
    except Conflict as e:
        return respond(request, ApiError(409, "Conflict", str(e)).status(), 409)
    except MultiValidationError as e:
        causes = [{"reason": cause_reason(x.message), "message": x.message, "field": x.field} for x in e.errors]
        return respond(request, ApiError(422, "Invalid", str(e), causes=causes).status(), 422)
    except discovery.DiscoveryNotFound as e:
        return respond(request, ApiError(404, "NotFound", str(e)).status(), 404)
    except openapi.OpenAPINotFound as e:
        return respond(request, ApiError(404, "NotFound", f"no OpenAPI document for {e}").status(), 404)
    except api_patch.PatchError as e:
        return respond(request, ApiError(422, "UnprocessableEntity", str(e)).status(), 422)
    except KinsError as e:
        return respond(request, ApiError(400, "BadRequest", str(e)).status(), 400)
    except web.HTTPException as e:
        if e.status >= 400:
            reason = {404: "NotFound", 405: "MethodNotAllowed"}.get(e.status, "BadRequest")
            return respond(request, ApiError(e.status, reason, e.reason).status(), e.status)
        raise
    except Exception as e:
        # A bug, not a refusal: still answer with a Status so that clients report it.
        log.exception("%s %s failed", request.method, request.path)
        return respond(request, ApiError(500, "InternalError", f"internal error: {e}").status(), 500)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


MAX_REQUEST_LINE = 1 << 20


async def start(
    app: web.Application, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on a loopback address (HTTPS with ``ssl_context``, which kubectl needs to
    send its token); returns the runner (``await runner.cleanup()`` to stop) and the bound
    port (useful with ``port=0``)."""
    if not _is_loopback(host):
        raise ValueError(f"the API listens on loopback only, not {host}")
    # Open watches would otherwise hold a shutdown for a minute.
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=2.0,
        # An exec's command travels in the URL's query (as kubectl sends it): a script passed
        # with `-c` easily passes aiohttp's 8 KiB default. Go's servers allow 1 MiB of headers.
        max_line_size=MAX_REQUEST_LINE,
        max_field_size=MAX_REQUEST_LINE,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    server = site._server
    assert server is not None
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
