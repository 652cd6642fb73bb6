"""OpenAPI documents: ``/openapi/v3`` (per group version) and ``/openapi/v2`` (one document).

kubectl reads them for several things, so they carry what the Kubernetes API server's do:

- ``kubectl explain`` prints a kind's fields from them (1.27 from v2, 1.33 from v3), finding
  the kind's schema by its ``x-kubernetes-group-version-kind``.
- ``kubectl apply``/``create``/``diff`` validate manifests. kubectl first asks the v3
  document whether the PATCH operation of the kind takes the ``fieldValidation`` query
  parameter; it does, so kubectl leaves validation to the server (``?fieldValidation=Strict``:
  unknown fields are refused). kubectl 1.27 downloads the v2 document before that question
  (without it, it refuses to apply unless ``--validate=false``) and validates client-side
  against it only when the server lacks ``fieldValidation``.
- ``kubectl apply`` computes its strategic merge patch from the schemas' patch merge keys when
  the PATCH operation accepts ``application/strategic-merge-patch+json`` (kinds built into
  Kubernetes; custom kinds get JSON merge patches, as from a real cluster).

kubectl 1.27 asks for v2 as protobuf (gnostic's ``openapi.v2.Document``, see
``openapi_proto``); JSON is served to ``Accept: application/json``.

Documents are built lazily from ``api.resources.ALL`` and cached per registry generation:
``invalidate()`` drops them (a kind registered at runtime), and a changed registry is noticed
anyway by its fingerprint.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from ..api import registry
from ..api import resources as api_resources
from ..api.meta import Object
from ..api.metrics import NodeMetrics, PodMetrics
from ..api.resources import Resource, Scale
from . import openapi_proto
from .openapi_schema import (
    BUILTIN_GROUPS,
    DELETE_OPTIONS,
    PATCH,
    STATUS,
    SchemaBuilder,
    ref,
    to_v2,
)
from .verbs import JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH

OPENAPI_VERSION = "3.0.0"
SWAGGER_VERSION = "2.0"
TITLE = "Kubernetes"
INFO_VERSION = "v1.32.0-kins"
PROTOBUF_V2 = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
PROTOBUF_V2_ALT = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
FIELD_VALIDATION = ("Ignore", "Warn", "Strict")
RESPONSE_TYPES = ["application/json", "application/yaml"]
WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
PATCH_PARAMS = (*WRITE_PARAMS, "force")
DELETE_PARAMS = ("dryRun", "gracePeriodSeconds", "propagationPolicy")
ANY_BODY = ["*/*"]
LIST_PARAMS = (
    "allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
    "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch",
)  # fmt: skip
PARAM_DOCS = {
    "dryRun": "All: run every stage of the request but persist nothing.",
    "fieldManager": "The name of the actor making the change.",
    "fieldValidation": "What to do with unknown or duplicate fields: Ignore, Warn or Strict.",
    "force": "Take over conflicting fields (server-side apply).",
    "pretty": "Indent the output.",
    "labelSelector": "Only objects whose labels match.",
    "fieldSelector": "Only objects whose fields match.",
    "limit": "At most this many objects; continue from the returned token.",
    "continue": "The token of the page to continue from.",
    "resourceVersion": "Answer from (or watch from) this version.",
    "timeoutSeconds": "End the list or watch after this many seconds.",
    "watch": "Watch for changes instead of listing.",
    "gracePeriodSeconds": "Seconds before the object is deleted; 0 deletes at once.",
    "propagationPolicy": "Orphan, Background or Foreground deletion of dependents.",
}
INT_PARAMS = frozenset({"limit", "timeoutSeconds", "gracePeriodSeconds"})
BOOL_PARAMS = frozenset({"allowWatchBookmarks", "sendInitialEvents", "watch", "force"})


class OpenAPINotFound(Exception):
    """No document for that group version."""


def gv_path(gv: str) -> str:
    """``v1`` -> ``api/v1``, ``apps/v1`` -> ``apis/apps/v1`` (the keys of the v3 index)."""
    return f"api/{gv}" if "/" not in gv else f"apis/{gv}"


def _digest(body: bytes) -> str:
    return hashlib.sha512(body).hexdigest().upper()


# --- operations, in a form both documents are rendered from ---------------------------------


@dataclass
class _Op:
    method: str
    action: str
    operation_id: str
    gvk: dict[str, str]
    response: str  # definition name
    params: tuple[str, ...] = ()
    body: str | None = None  # definition name of the request body
    consumes: list[str] = field(default_factory=list)
    description: str = ""


@dataclass
class _Path:
    path: str
    ops: list[_Op]
    params: list[str]  # path parameters (in order), plus ``pretty``


def _patch_types(res: Resource) -> list[str]:
    builtin = res.group in BUILTIN_GROUPS and not isinstance(getattr(res.cls, "OPENAPI_SCHEMA", None), dict)
    return [JSON_PATCH, MERGE_PATCH, *([STRATEGIC_PATCH] if builtin else [])]


def _resource_paths(res: Resource, b: SchemaBuilder) -> list[_Path]:
    """The paths of one resource (collection, object, all namespaces, subresources), with
    their operations; adds the definitions they refer to to ``b``."""
    kind = b.add_kind(res.group_version, res.kind, res.cls)
    kind_list = b.add_list(res.group_version, res.kind, kind)
    for name in (STATUS, DELETE_OPTIONS, PATCH):
        b.add_fixed(name)
    gvk = {"group": res.group, "kind": res.kind, "version": res.version}
    group_id = "".join(p.capitalize() for p in (res.group.split(".")[0] or "core", res.version))
    ident = f"{group_id}{'Namespaced' if res.namespaced else ''}{res.kind}"
    root = "/api/v1" if res.group_version == "v1" else f"/apis/{res.group_version}"
    scope = f"{root}/namespaces/{{namespace}}" if res.namespaced else root
    scope_params = ["namespace"] if res.namespaced else []
    object_params = ["name", *scope_params]
    patch_types = _patch_types(res)
    k = res.kind

    def write(method: str, verb: str, target: str, target_gvk: dict[str, str], suffix: str = "", desc: str = "") -> _Op:
        if method == "patch":
            return _Op(
                "patch", "patch", f"patch{ident}{suffix}", target_gvk, target, PATCH_PARAMS, PATCH, patch_types, desc
            )
        return _Op(method, method, f"{verb}{ident}{suffix}", target_gvk, target, WRITE_PARAMS, target, ANY_BODY, desc)

    def remove(action: str, verb: str, params: tuple[str, ...], desc: str) -> _Op:
        return _Op("delete", action, f"{verb}{ident}", gvk, STATUS, params, DELETE_OPTIONS, ANY_BODY, desc)

    if res.cls in READ_ONLY_TYPES:  # the Metrics API: get and list only
        paths = [
            _Path(
                f"{scope}/{res.plural}", [_Op("get", "list", f"list{ident}", gvk, kind_list, LIST_PARAMS)], scope_params
            ),
            _Path(f"{scope}/{res.plural}/{{name}}", [_Op("get", "get", f"read{ident}", gvk, kind)], object_params),
        ]
        if res.namespaced:
            ops = [_Op("get", "list", f"list{group_id}{k}ForAllNamespaces", gvk, kind_list, LIST_PARAMS)]
            paths.append(_Path(f"{root}/{res.plural}", ops, []))
        return paths
    collection_ops = [
        _Op("get", "list", f"list{ident}", gvk, kind_list, LIST_PARAMS, description=f"List {k} objects."),
        write("post", "create", kind, gvk, desc=f"Create a {k}."),
        remove("deletecollection", "deleteCollection", (*DELETE_PARAMS, *LIST_PARAMS), f"Delete {k} objects."),
    ]
    object_ops = [
        _Op("get", "get", f"read{ident}", gvk, kind, description=f"Read the {k}."),
        write("put", "replace", kind, gvk, desc=f"Replace the {k}."),
        write("patch", "patch", kind, gvk, desc=f"Partially update the {k}."),
        remove("delete", "delete", DELETE_PARAMS, f"Delete the {k}."),
    ]
    paths = [
        _Path(f"{scope}/{res.plural}", collection_ops, scope_params),
        _Path(f"{scope}/{res.plural}/{{name}}", object_ops, object_params),
    ]
    if res.namespaced:
        ops = [_Op("get", "list", f"list{group_id}{k}ForAllNamespaces", gvk, kind_list, LIST_PARAMS)]
        paths.append(_Path(f"{root}/{res.plural}", ops, []))
    for sub in res.subresources:
        target, sub_gvk = kind, gvk
        if sub == "scale":
            target = b.add_kind("autoscaling/v1", "Scale", Scale)
            sub_gvk = {"group": "autoscaling", "kind": "Scale", "version": "v1"}
        suffix = sub.capitalize()
        ops = [
            _Op("get", "get", f"read{ident}{suffix}", sub_gvk, target),
            write("put", "replace", target, sub_gvk, suffix),
            write("patch", "patch", target, sub_gvk, suffix),
        ]
        paths.append(_Path(f"{scope}/{res.plural}/{{name}}/{sub}", ops, object_params))
    return paths


def _param_schema(name: str) -> dict[str, Any]:
    if name in INT_PARAMS:
        return {"type": "integer"}
    if name in BOOL_PARAMS:
        return {"type": "boolean"}
    return {"type": "string"}


def _v3_param(name: str, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": where}
    if name in PARAM_DOCS:
        out["description"] = PARAM_DOCS[name]
    schema = {**_param_schema(name), "uniqueItems": True}
    if name == "fieldValidation":
        schema["enum"] = list(FIELD_VALIDATION)
    out["schema"] = schema
    if where == "path":
        out["required"] = True
        out["description"] = f"The {name} of the object." if name == "name" else "The object's namespace."
    return out


def _v2_param(name: str, where: str) -> dict[str, Any]:
    v3 = _v3_param(name, where)
    out: dict[str, Any] = {k: v for k, v in v3.items() if k != "schema"}
    out.update(v3["schema"])
    return out


def _render_v3(p: _Path) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for op in p.ops:
        o: dict[str, Any] = {"description": op.description or op.operation_id, "operationId": op.operation_id}
        if op.params:
            o["parameters"] = [_v3_param(n, "query") for n in op.params]
        if op.body:
            o["requestBody"] = {
                "content": {t: {"schema": ref(op.body)} for t in op.consumes},
                "required": op.method != "delete",
            }
        o["responses"] = {
            "200": {"description": "OK", "content": {t: {"schema": ref(op.response)} for t in RESPONSE_TYPES}},
            "401": {"description": "Unauthorized"},
        }
        if op.method == "post":
            o["responses"]["201"] = {
                "description": "Created",
                "content": {t: {"schema": ref(op.response)} for t in RESPONSE_TYPES},
            }
        o["x-kubernetes-action"] = op.action
        o["x-kubernetes-group-version-kind"] = op.gvk
        item[op.method] = o
    item["parameters"] = [_v3_param(n, "path") for n in p.params] + [_v3_param("pretty", "query")]
    return item


def _render_v2(p: _Path) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for op in p.ops:
        o: dict[str, Any] = {"description": op.description or op.operation_id}
        if op.consumes:
            o["consumes"] = op.consumes
        o["produces"] = RESPONSE_TYPES
        o["schemes"] = ["https"]
        o["operationId"] = op.operation_id
        params: list[dict[str, Any]] = []
        if op.body:
            params.append(
                {
                    "name": "body",
                    "in": "body",
                    "required": op.method != "delete",
                    "schema": {"$ref": f"#/definitions/{op.body}"},
                }
            )
        params += [_v2_param(n, "query") for n in op.params]
        if params:
            o["parameters"] = params
        o["responses"] = {
            "200": {"description": "OK", "schema": {"$ref": f"#/definitions/{op.response}"}},
            "401": {"description": "Unauthorized"},
        }
        o["x-kubernetes-action"] = op.action
        o["x-kubernetes-group-version-kind"] = op.gvk
        item[op.method] = o
    item["parameters"] = [_v2_param(n, "path") for n in p.params] + [_v2_param("pretty", "query")]
    return item


# --- documents ------------------------------------------------------------------------------


def _v3_document(gv: str, resources: list[Resource]) -> dict[str, Any]:
    b = SchemaBuilder()
    paths: dict[str, Any] = {}
    for res in resources:
        for p in _resource_paths(res, b):
            paths[p.path] = _render_v3(p)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": TITLE, "version": INFO_VERSION},
        "paths": paths,
        "components": {"schemas": dict(sorted(b.schemas.items()))},
    }


def _v2_document(resources: list[Resource]) -> dict[str, Any]:
    b = SchemaBuilder()
    paths: dict[str, Any] = {}
    for res in resources:
        for p in _resource_paths(res, b):
            paths[p.path] = _render_v2(p)
    return {
        "swagger": SWAGGER_VERSION,
        "info": {"title": TITLE, "version": INFO_VERSION},
        "paths": paths,
        "definitions": {name: to_v2(s, name) for name, s in sorted(b.schemas.items())},
    }


@dataclass
class _Docs:
    """The documents of one registry generation, each built on first use."""

    fingerprint: tuple[Any, ...]
    resources: list[Resource]
    v3: dict[str, bytes] = field(default_factory=dict)
    v3_index: bytes | None = None
    v2_json: bytes | None = None
    v2_proto: bytes | None = None
    v2_dict: dict[str, Any] | None = None

    def group_versions(self) -> list[str]:
        return sorted({r.group_version for r in self.resources}, key=lambda gv: (gv != "v1", gv))


_docs: _Docs | None = None


def invalidate() -> None:
    """Forget every built document (the registry of kinds changed)."""
    global _docs
    _docs = None


registry.HOOKS.append(invalidate)  # a custom resource registered or removed


def _fingerprint(resources: list[Resource]) -> tuple[Any, ...]:
    return tuple((r.group_version, r.kind, r.plural, r.namespaced, id(r.cls)) for r in resources)


# Served but not stored: the Metrics API's kinds (answered by apiserver/metrics.py).
READ_ONLY: tuple[Resource, ...] = tuple(
    Resource(cls.KIND, cls.API_VERSION, cls.PLURAL, cls.NAMESPACED, cls, cls) for cls in (NodeMetrics, PodMetrics)
)
READ_ONLY_TYPES: frozenset[type[Object]] = frozenset(r.cls for r in READ_ONLY)


def _current() -> _Docs:
    global _docs
    resources = [*api_resources.ALL, *READ_ONLY]
    fp = _fingerprint(resources)
    if _docs is None or _docs.fingerprint != fp:
        _docs = _Docs(fp, resources)
    return _docs


def document(gv: str) -> bytes:
    """The OpenAPI v3 document of one group version, as JSON."""
    docs = _current()
    body = docs.v3.get(gv)
    if body is None:
        resources = [r for r in docs.resources if r.group_version == gv]
        if not resources:
            raise OpenAPINotFound(gv)
        body = docs.v3[gv] = msgspec.json.encode(_v3_document(gv, resources))
    return body


def index() -> bytes:
    """``/openapi/v3``: each group version's document URL, with its content hash as kubectl expects."""
    docs = _current()
    if docs.v3_index is None:
        paths = {
            gv_path(gv): {"serverRelativeURL": f"/openapi/v3/{gv_path(gv)}?hash={_digest(document(gv))}"}
            for gv in docs.group_versions()
        }
        docs.v3_index = msgspec.json.encode({"paths": paths})
    return docs.v3_index


def v2_dict() -> dict[str, Any]:
    """The OpenAPI v2 (Swagger 2.0) document, as data."""
    docs = _current()
    if docs.v2_dict is None:
        docs.v2_dict = _v2_document(docs.resources)
    return docs.v2_dict


def v2_json() -> bytes:
    docs = _current()
    if docs.v2_json is None:
        docs.v2_json = msgspec.json.encode(v2_dict())
    return docs.v2_json


def v2_proto() -> bytes:
    docs = _current()
    if docs.v2_proto is None:
        docs.v2_proto = openapi_proto.encode_document(v2_dict())
    return docs.v2_proto


# --- HTTP -------------------------------------------------------------------------------------


def _cached(request: web.Request, body: bytes, content_type: str, *, immutable: bool = False) -> web.Response:
    etag = f'"{_digest(body)}"'
    headers = {
        "ETag": etag,
        "Vary": "Accept",
        "Cache-Control": "public, immutable" if immutable else "no-cache, private",
    }
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return web.Response(status=304, headers=headers)
    response = web.Response(body=body, headers={**headers, "Content-Type": content_type})
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response.enable_compression(web.ContentCoding.gzip)  # as the API server sends them
    return response


async def _index(request: web.Request) -> web.Response:
    return _cached(request, index(), "application/json")


async def _document(request: web.Request) -> web.Response:
    tail = request.match_info["tail"]
    for gv in _current().group_versions():
        if gv_path(gv) == tail:
            body = document(gv)
            want = request.query.get("hash")
            current = _digest(body)
            if want is not None and want != current:
                # A stale link: send the client to the current version of the document.
                raise web.HTTPMovedPermanently(f"/openapi/v3/{tail}?hash={current}")
            return _cached(request, body, "application/json", immutable=want is not None)
    raise OpenAPINotFound(tail)


def _accepts(header: str) -> list[str]:
    return [part.split(";")[0].strip().lower() for part in header.split(",") if part.strip()]


async def _v2(request: web.Request) -> web.Response:
    for media in _accepts(request.headers.get("Accept", "")) or ["*/*"]:
        if media in (PROTOBUF_V2.lower(), PROTOBUF_V2_ALT.lower()):
            # Answered with the dotted name whichever was asked: Go's media type parser, which
            # kubectl runs on the answer, refuses the ``@`` of the other.
            return _cached(request, v2_proto(), PROTOBUF_V2_ALT)
        if media in ("application/json", "application/*", "*/*"):
            return _cached(request, v2_json(), "application/json")
    raise web.HTTPNotAcceptable(text="the OpenAPI v2 document is served as application/json or protobuf")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/openapi/v3", _index)
    router.add_get("/openapi/v3/{tail:.+}", _document)
    router.add_get("/openapi/v2", _v2)
