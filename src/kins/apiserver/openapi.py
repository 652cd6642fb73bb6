"""OpenAPI v3 documents: just enough for kubectl's checks before it writes.

``kubectl apply``/``create`` validate manifests by default. kubectl 1.32 first asks the
server's OpenAPI v3 documents whether the PATCH operation of the kind takes the
``fieldValidation`` query parameter; when it does, kubectl leaves validation to the server
(``?fieldValidation=Strict``, which the API implements: unknown fields are refused). Without
these documents kubectl falls back to OpenAPI v2, and without that it refuses to apply unless
``--validate=false``.

So each group version's document lists, per resource, the object path with its GET, PUT,
PATCH and DELETE operations, tagged with ``x-kubernetes-group-version-kind`` and the query
parameters the API takes. It carries no schemas: kubectl then computes strategic merge patches
from its own built-in types, which know every patch merge key.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

import msgspec
from aiohttp import web

from ..api import registry
from ..api.resources import ALL, GROUP_VERSIONS, Resource

OPENAPI_VERSION = "3.0.0"
QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "pretty")
FIELD_VALIDATION = ("Ignore", "Warn", "Strict")


class OpenAPINotFound(Exception):
    """No document for that group version."""


def gv_path(gv: str) -> str:
    """``v1`` -> ``api/v1``, ``apps/v1`` -> ``apis/apps/v1`` (the keys of the v3 index)."""
    return f"api/{gv}" if "/" not in gv else f"apis/{gv}"


def _object_path(res: Resource) -> str:
    root = "/api/v1" if res.group_version == "v1" else f"/apis/{res.group_version}"
    ns = "/namespaces/{namespace}" if res.namespaced else ""
    return f"{root}{ns}/{res.plural}/{{name}}"


def _param(name: str, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": where, "schema": {"type": "string", "uniqueItems": True}}
    if where == "path":
        out["required"] = True
    if name == "fieldValidation":
        out["schema"]["enum"] = list(FIELD_VALIDATION)
    return out


def _operation(res: Resource, verb: str, action: str) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{verb}{res.kind}",
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": res.group, "version": res.version, "kind": res.kind},
    }
    if action in ("put", "patch"):
        op["parameters"] = [_param(p, "query") for p in QUERY_PARAMS]
    return op


def _path_item(res: Resource) -> dict[str, Any]:
    params = [_param("name", "path")] + ([_param("namespace", "path")] if res.namespaced else [])
    return {
        "get": _operation(res, "read", "get"),
        "put": _operation(res, "replace", "put"),
        "patch": _operation(res, "patch", "patch"),
        "delete": _operation(res, "delete", "delete"),
        "parameters": params,
    }


@cache
def document(gv: str) -> bytes:
    """The OpenAPI v3 document of one group version (encoded once: it never changes)."""
    resources = [r for r in ALL if r.group_version == gv]
    if not resources:
        raise OpenAPINotFound(gv)
    doc = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "kins", "version": gv},
        "paths": {_object_path(r): _path_item(r) for r in resources},
        "components": {"schemas": {}},
    }
    return msgspec.json.encode(doc)


@cache
def index() -> bytes:
    """``/openapi/v3``: each group version's document URL, with a content hash as kubectl expects."""
    paths: dict[str, Any] = {}
    for gv in GROUP_VERSIONS:
        digest = hashlib.sha512(document(gv)).hexdigest()[:32].upper()
        paths[gv_path(gv)] = {"serverRelativeURL": f"/openapi/v3/{gv_path(gv)}?hash={digest}"}
    return msgspec.json.encode({"paths": paths})


# The documents are rebuilt once a custom resource is registered or removed.
registry.HOOKS.extend((document.cache_clear, index.cache_clear))


def _response(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


async def _index(request: web.Request) -> web.Response:
    return _response(index())


async def _document(request: web.Request) -> web.Response:
    tail = request.match_info["tail"]
    for gv in GROUP_VERSIONS:
        if gv_path(gv) == tail:
            return _response(document(gv))
    raise OpenAPINotFound(tail)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/openapi/v3", _index)
    router.add_get("/openapi/v3/{tail:.+}", _document)
