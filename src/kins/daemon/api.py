"""The HTTP API, shaped like the Kubernetes REST API so that kubectl-style clients work.

Paths, verbs, list and watch bodies, and errors (``Status`` objects with reasons and field
causes) follow the Kubernetes conventions. The store does the versioning; this layer decodes
bodies into typed objects, runs validation and the admission hook, applies patches and streams
watches. Store calls are synchronous and short, so handlers call them directly on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib
import ipaddress
import logging
import ssl
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from types import ModuleType
from typing import Any

import msgspec
from aiohttp import web
from msgspec.structs import replace

from .._errors import AllocationError, Conflict, Gone, KinsError, MultiValidationError, NotFound, ValidationError
from ..api.config import ClusterConfig
from ..api.load import to_object
from ..api.meta import LabelSelector, Object, parse_label_selector, selector_matches
from ..store.base import Store, WatchEvent
from ..store.watch import Watch
from . import api_discovery, api_encode, api_openapi, api_patch, api_table
from .api_fields import unknown_fields
from .api_legacy import ingress_to_legacy
from .api_resources import (
    BY_PATH,
    Resource,
    Scale,
    ScaleSpec,
    ScaleStatus,
    selector_string,
)

Admission = Callable[[Object, Object | None], Object]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger(__name__)

UNAUTHENTICATED_PATHS = frozenset({"/healthz"})
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
DEFAULT_WATCH_SECONDS = 1800
# How often an idle watch checks whether its client went away.
WATCH_POLL_SECONDS = 2.0
PATCH_RETRIES = 5

STORE_KEY = web.AppKey("store", Store)
CFG_KEY = web.AppKey("cfg", ClusterConfig)
TOKEN_KEY = web.AppKey("token", str)
ADMISSION_KEY = web.AppKey("admission", object)
WATCHES_KEY: web.AppKey[set[Watch]] = web.AppKey("watches")
# Per request: texts for ``Warning: 299`` response headers (kubectl prints them).
WARNINGS: web.RequestKey[list[str]] = web.RequestKey("warnings", list[str])
FIELD_VALIDATION = ("Ignore", "Warn", "Strict")


class ApiError(Exception):
    """An error answered as a Kubernetes ``Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        kind: str = "",
        name: str = "",
        causes: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.kind = kind
        self.name = name
        self.causes = causes

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = self.causes
        if details:
            out["details"] = details
        return out


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(data), status=status, content_type="application/json")


def _cause_reason(message: str) -> str:
    low = message.lower()
    if low.startswith("required"):
        return "FieldValueRequired"
    if low.startswith("unsupported"):
        return "FieldValueNotSupported"
    if low.startswith("duplicate"):
        return "FieldValueDuplicate"
    if low.startswith("forbidden"):
        return "FieldValueForbidden"
    return "FieldValueInvalid"


def invalid(res: Resource, name: str, errors: list[ValidationError]) -> ApiError:
    causes = [{"reason": _cause_reason(e.message), "message": e.message, "field": e.field} for e in errors]
    detail = "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in errors)
    return ApiError(
        422, "Invalid", f'{res.kind} "{name}" is invalid: {detail}', kind=res.plural, name=name, causes=causes
    )


# --- validation -------------------------------------------------------------------------------

_validate_module: ModuleType | None = None
_validate_missing = False


def _validator() -> ModuleType | None:
    """kins.api.validation when it is installed; looked up lazily so the API works without it."""
    global _validate_module, _validate_missing
    if _validate_module is None and not _validate_missing:
        try:
            _validate_module = importlib.import_module("kins.api.validation")
        except ModuleNotFoundError as e:
            if e.name != "kins.api.validation":
                raise
            _validate_missing = True
    return _validate_module


def _check(app: web.Application, res: Resource, obj: Object, old: Object | None) -> Object:
    """Validation, then the admission hook (which may set allocated fields); 422 on refusal."""
    mod = _validator()
    if mod is not None:
        errors = list(mod.validate(obj, app[CFG_KEY]))
        if errors:
            raise invalid(res, obj.name, errors)
    admission: Admission | None = app[ADMISSION_KEY]  # type: ignore[assignment]
    if admission is not None:
        try:
            obj = admission(obj, old)
        except MultiValidationError as e:
            raise invalid(res, obj.name, e.errors) from None
        except ValidationError as e:
            raise invalid(res, obj.name, [e]) from None
        except AllocationError as e:
            raise invalid(res, obj.name, [ValidationError("", "", str(e))]) from None
    return obj


# --- request parsing --------------------------------------------------------------------------


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        raise ApiError(400, "BadRequest", "the request body is empty")
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as e:
        raise ApiError(400, "BadRequest", f"the request body is not valid JSON: {e}") from None


def _decode(res: Resource, doc: Any, namespace: str | None, url_name: str | None) -> Object:
    """A request body -> the typed stored object, checked against the URL."""
    if not isinstance(doc, dict):
        raise ApiError(400, "BadRequest", "the request body must be a JSON object")
    doc = dict(doc)
    doc.setdefault("apiVersion", res.group_version)
    doc.setdefault("kind", res.kind)
    if doc["kind"] != res.kind:
        raise ApiError(400, "BadRequest", f"the body is a {doc['kind']}, this path takes {res.kind}")
    if doc["apiVersion"] != res.group_version:
        raise ApiError(
            400, "BadRequest", f"the body has apiVersion {doc['apiVersion']}, this path takes {res.group_version}"
        )
    meta = doc.get("metadata")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ApiError(400, "BadRequest", "metadata must be an object")
    meta = dict(meta)
    doc["metadata"] = meta
    name = meta.get("name") or url_name or ""
    if res.namespaced:
        body_ns = meta.get("namespace")
        if body_ns and body_ns != namespace:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    if url_name is not None and meta.get("name") not in (None, "", url_name):
        raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
    try:
        obj = to_object(doc, "")
    except MultiValidationError as e:
        raise invalid(res, name, e.errors) from None
    if url_name is not None and not obj.metadata.name:
        obj = replace(obj, metadata=replace(obj.metadata, name=url_name))
    return obj


def _check_fields(request: web.Request, res: Resource, cls: type[Object], doc: Any) -> None:
    """``fieldValidation``: fields the kind does not have are refused (``Strict``, what kubectl
    apply and create ask for), reported as warnings (``Warn``, the default) or dropped."""
    mode = request.query.get("fieldValidation") or "Warn"
    if mode not in FIELD_VALIDATION:
        raise ApiError(400, "BadRequest", f"fieldValidation must be one of {', '.join(FIELD_VALIDATION)}, not {mode!r}")
    if mode == "Ignore" or not isinstance(doc, dict):
        return
    unknown = [f'unknown field "{path}"' for path in unknown_fields(doc, cls)]
    if not unknown:
        return
    if mode == "Strict":
        raise ApiError(
            400,
            "BadRequest",
            f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
            f"strict decoding error: {', '.join(unknown)}",
        )
    request.setdefault(WARNINGS, []).extend(unknown)


def _selector(request: web.Request) -> LabelSelector | None:
    text = request.query.get("labelSelector")
    return parse_label_selector(text) if text else None


def _field_value(obj: Object, path: str) -> str:
    cur: Any = api_encode.encode(obj)
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def _field_filter(request: web.Request) -> Callable[[Object], bool]:
    """``fieldSelector``: ``path=value``, ``path==value``, ``path!=value``, comma-joined."""
    text = request.query.get("fieldSelector", "")
    terms: list[tuple[str, bool, str]] = []
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            continue
        if "!=" in term:
            path, _, value = term.partition("!=")
            terms.append((path.strip(), False, value.strip()))
        elif "=" in term:
            path, _, value = term.partition("==") if "==" in term else term.partition("=")
            terms.append((path.strip(), True, value.strip()))
        else:
            raise ApiError(400, "BadRequest", f"invalid field selector {term!r}")

    def matches(obj: Object) -> bool:
        return all((_field_value(obj, p) == v) == eq for p, eq, v in terms)

    return matches


def _int_param(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text in (None, ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, "BadRequest", f"{name} must be an integer, not {text!r}") from None


def _truthy(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


def _dry_run(request: web.Request) -> bool:
    return "All" in request.query.getall("dryRun", [])


# --- encoding ---------------------------------------------------------------------------------


def _encode_obj(res: Resource, obj: Object) -> dict[str, Any]:
    doc = api_encode.encode(obj)
    if res.legacy and res.kind == "Ingress":
        return ingress_to_legacy(doc, res.group_version)
    return doc


def _list_body(res: Resource, items: list[Object], rv: int, cont: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if cont:
        meta["continue"] = cont
    return {
        "kind": f"{res.kind}List",
        "apiVersion": res.group_version,
        "metadata": meta,
        "items": [_encode_obj(res, o) for o in items],
    }


def _table_version(request: web.Request) -> str | None:
    """The Table version the client asked for (``kubectl get``), or None for plain objects."""
    version = api_table.table_version(request.headers.get("Accept", ""))
    if version is not None and request.query.get("includeObject", "Metadata") not in api_table.INCLUDE_OBJECT:
        raise ApiError(400, "BadRequest", f"includeObject must be one of {', '.join(api_table.INCLUDE_OBJECT)}")
    return version


def _table(
    request: web.Request, res: Resource, version: str, objs: list[Object], rv: int | str | None, cont: str | None = None
) -> dict[str, Any]:
    return api_table.table(
        res.kind,
        res.group_version,
        objs,
        version=version,
        include=request.query.get("includeObject", "Metadata"),
        resource_version=str(rv) if rv is not None else None,
        continue_token=cont,
    )


def _scale_of(obj: Object) -> Scale:
    spec = getattr(obj, "spec", None)
    status = getattr(obj, "status", None)
    m = obj.metadata
    return Scale(
        metadata=replace(
            m,
            labels=None,
            annotations=None,
            ownerReferences=None,
            finalizers=None,
            managedFields=None,
            generation=None,
        ),
        spec=ScaleSpec(replicas=(spec.replicas if spec is not None and spec.replicas is not None else 1)),
        status=ScaleStatus(
            replicas=(status.replicas or 0) if status is not None else 0,
            selector=selector_string(spec.selector if spec is not None else None) or None,
        ),
    )


# --- the app ----------------------------------------------------------------------------------


def make_app(store: Store, cfg: ClusterConfig, *, token: str, admission: Admission | None = None) -> web.Application:
    """The API as an aiohttp application. Serve it with ``start`` (loopback only)."""
    if not token:
        raise ValueError("an API token is required")
    app = web.Application(middlewares=[_errors_middleware, _auth_middleware])
    app[STORE_KEY] = store
    app[CFG_KEY] = cfg
    app[TOKEN_KEY] = token
    app[ADMISSION_KEY] = admission
    app[WATCHES_KEY] = set()
    app.on_shutdown.append(_close_watches)
    api_discovery.add_routes(app.router)
    api_openapi.add_routes(app.router)
    from . import api_pods  # imported here: it builds on this module

    api_pods.add_routes(app)  # log, exec, portforward: ahead of the generic resource routes
    app.router.add_route("*", "/api/{version}/{tail:.+}", _resource_handler)
    app.router.add_route("*", "/apis/{group}/{version}/{tail:.+}", _resource_handler)
    return app


async def _close_watches(app: web.Application) -> None:
    """Ends open watch streams so that shutdown does not wait for their clients."""
    watches: set[Watch] = app[WATCHES_KEY]
    for w in list(watches):
        w.close()


@web.middleware
async def _errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        resp = await handler(request)
        for text in dict.fromkeys(request.get(WARNINGS, ())):
            if not resp.prepared:
                resp.headers.add("Warning", f"299 - {msgspec.json.encode(text).decode()}")
        return resp
    except ApiError as e:
        return _json(e.status(), e.code)
    except NotFound as e:
        return _json(ApiError(404, "NotFound", str(e)).status(), 404)
    except Gone as e:
        return _json(ApiError(410, "Gone", str(e)).status(), 410)
    except Conflict as e:
        return _json(ApiError(409, "Conflict", str(e)).status(), 409)
    except MultiValidationError as e:
        causes = [{"reason": _cause_reason(x.message), "message": x.message, "field": x.field} for x in e.errors]
        return _json(ApiError(422, "Invalid", str(e), causes=causes).status(), 422)
    except api_discovery.DiscoveryNotFound as e:
        return _json(ApiError(404, "NotFound", str(e)).status(), 404)
    except api_openapi.OpenAPINotFound as e:
        return _json(ApiError(404, "NotFound", f"no OpenAPI document for {e}").status(), 404)
    except api_patch.PatchError as e:
        return _json(ApiError(422, "UnprocessableEntity", str(e)).status(), 422)
    except KinsError as e:
        return _json(ApiError(400, "BadRequest", str(e)).status(), 400)
    except web.HTTPException as e:
        if e.status >= 400:
            reason = {404: "NotFound", 405: "MethodNotAllowed"}.get(e.status, "BadRequest")
            return _json(ApiError(e.status, reason, e.reason).status(), e.status)
        raise
    except Exception as e:
        # A bug, not a refusal: still answer with a Status so that clients report it.
        log.exception("%s %s failed", request.method, request.path)
        return _json(ApiError(500, "InternalError", f"internal error: {e}").status(), 500)


@web.middleware
async def _auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in UNAUTHENTICATED_PATHS:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        expected = request.app[TOKEN_KEY].encode()
        # compare_digest keeps the comparison time independent of where the tokens differ.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise ApiError(401, "Unauthorized", "Unauthorized")
    return await handler(request)


# --- resource routing -------------------------------------------------------------------------


class Target:
    """What a resource URL addresses: a collection, an object, or an object's subresource."""

    def __init__(self, res: Resource, namespace: str | None, name: str | None, sub: str | None, watch: bool):
        self.res = res
        self.namespace = namespace
        self.name = name
        self.sub = sub
        self.watch = watch

    @property
    def store_ns(self) -> str | None:
        return self.namespace if self.res.namespaced else None


def _not_found_path(path: str) -> ApiError:
    return ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")


def _parse_target(request: web.Request) -> Target:
    info = request.match_info
    gv = f"{info['group']}/{info['version']}" if "group" in info else info["version"]
    parts = [p for p in info["tail"].split("/") if p]
    watch = False
    if parts and parts[0] == "watch":  # the old /api/v1/watch/... form
        watch, parts = True, parts[1:]

    def lookup(plural: str) -> Resource | None:
        return BY_PATH.get((gv, plural))

    namespace: str | None = None
    if len(parts) >= 3 and parts[0] == "namespaces" and lookup(parts[2]) is not None and parts[2] not in ("status",):
        namespace, parts = parts[1], parts[2:]
    if not parts or len(parts) > 3:
        raise _not_found_path(request.path)
    res = lookup(parts[0])
    if res is None:
        raise _not_found_path(request.path)
    if namespace is not None and not res.namespaced:
        raise _not_found_path(request.path)
    name = parts[1] if len(parts) > 1 else None
    sub = parts[2] if len(parts) > 2 else None
    if sub is not None and sub not in res.subresources:
        raise _not_found_path(request.path)
    if res.namespaced and name is not None and namespace is None:
        raise _not_found_path(request.path)
    return Target(res, namespace, name, sub, watch)


async def _resource_handler(request: web.Request) -> web.StreamResponse:
    t = _parse_target(request)
    method = request.method
    if t.name is None:
        if method == "GET":
            if t.watch or _truthy(request, "watch"):
                return await _watch(request, t)
            return _list(request, t)
        if method == "POST":
            return await _create(request, t)
        if method == "DELETE":
            return _delete_collection(request, t)
    elif t.sub == "scale":
        if method == "GET":
            return _json(msgspec.to_builtins(_scale_of(_get(request, t))))
        if method in ("PUT", "PATCH"):
            return await _write_scale(request, t)
    else:
        if method == "GET":
            if t.watch:
                return await _watch(request, t)
            obj = _get(request, t)
            version = _table_version(request)
            if version is not None:
                return _json(_table(request, t.res, version, [obj], None))
            return _json(_encode_obj(t.res, obj))
        if method == "PUT":
            return await _replace(request, t)
        if method == "PATCH":
            return await _patch(request, t)
        if method == "DELETE" and t.sub is None:
            return _delete(request, t)
    raise ApiError(405, "MethodNotAllowed", f"the server does not allow {method} on the requested resource")


# --- verbs ------------------------------------------------------------------------------------


def _get(request: web.Request, t: Target) -> Object:
    assert t.name is not None
    return request.app[STORE_KEY].get(t.res.kind, t.store_ns, t.name)


def _matching(request: web.Request, t: Target) -> tuple[list[Object], int]:
    items, rv = request.app[STORE_KEY].list(t.res.kind, t.store_ns, _selector(request))
    fields = _field_filter(request)
    return [o for o in items if fields(o)], rv


def _list(request: web.Request, t: Target) -> web.Response:
    items, rv = _matching(request, t)
    limit = _int_param(request, "limit")
    cont = request.query.get("continue")
    start = 0
    if cont:
        # The continue token is the position in the (key-ordered) list plus the list's RV.
        try:
            rv_text, _, pos = cont.partition(":")
            start = int(pos)
            int(rv_text)
        except ValueError:
            raise ApiError(400, "BadRequest", "invalid continue token") from None
    next_token = None
    if limit is not None and limit > 0:
        if start + limit < len(items):
            next_token = f"{rv}:{start + limit}"
        items = items[start : start + limit]
    elif start:
        items = items[start:]
    version = _table_version(request)
    if version is not None:
        return _json(_table(request, t.res, version, items, rv, next_token))
    return _json(_list_body(t.res, items, rv, next_token))


async def _create(request: web.Request, t: Target) -> web.Response:
    store = request.app[STORE_KEY]
    doc = await _body(request)
    _check_fields(request, t.res, t.res.cls, doc)
    obj = _decode(t.res, doc, t.namespace, None)
    # The store assigns these; a copy of a live object (kubectl get -o yaml) must still create.
    obj = replace(obj, metadata=replace(obj.metadata, resourceVersion=None, uid=None, creationTimestamp=None))
    if not obj.metadata.name and not obj.metadata.generateName:
        raise invalid(t.res, "", [ValidationError("", "metadata.name", "Required value: name or generateName")])
    if obj.metadata.name:
        # Refuse before admission, so that a duplicate does not hold on to allocated addresses.
        with contextlib.suppress(NotFound):
            store.get(t.res.kind, t.store_ns, obj.metadata.name)
            raise ApiError(
                409,
                "AlreadyExists",
                f'{t.res.plural} "{obj.metadata.name}" already exists',
                kind=t.res.plural,
                name=obj.metadata.name,
            )
    obj = _check(request.app, t.res, obj, None)
    if _dry_run(request):
        return _json(_encode_obj(t.res, obj), 201)
    try:
        created = store.create(obj)
    except Conflict as e:
        raise ApiError(409, "AlreadyExists", str(e), kind=t.res.plural, name=obj.metadata.name) from None
    return _json(_encode_obj(t.res, created), 201)


def _conflict(t: Target, e: Conflict) -> ApiError:
    return ApiError(409, "Conflict", str(e), kind=t.res.plural, name=t.name or "")


def _merge_into(old: Object, new: Object, sub: str | None) -> Object:
    """What a write through the main resource or ``/status`` may change.

    As in Kubernetes, the main resource keeps the stored status and ``/status`` changes only
    the status; identity fields always come from the stored object.
    """
    keep = {"uid": old.metadata.uid, "creationTimestamp": old.metadata.creationTimestamp}
    if sub == "status":
        status = getattr(new, "status", None)
        return replace(old, status=status, metadata=replace(old.metadata, resourceVersion=new.metadata.resourceVersion))
    merged = replace(new, metadata=replace(new.metadata, **keep))
    if "status" in type(old).__struct_fields__:
        merged = replace(merged, status=getattr(old, "status", None))
    return merged


def _write(request: web.Request, t: Target, new: Object, old: Object, check_rv: bool) -> Object:
    obj = _check(request.app, t.res, _merge_into(old, new, t.sub), old)
    if _dry_run(request):
        return obj
    try:
        return request.app[STORE_KEY].update(obj, check_rv=check_rv)
    except Conflict as e:
        raise _conflict(t, e) from None


async def _replace(request: web.Request, t: Target) -> web.Response:
    doc = await _body(request)
    _check_fields(request, t.res, t.res.cls, doc)
    new = _decode(t.res, doc, t.namespace, t.name)
    old = _get(request, t)
    # Without a resourceVersion an update is unconditional, as for most Kubernetes resources.
    check_rv = new.metadata.resourceVersion is not None
    return _json(_encode_obj(t.res, _write(request, t, new, old, check_rv)))


def _apply_patch(request: web.Request, current: dict[str, Any], patch: Any) -> Any:
    ctype = request.content_type
    if ctype == MERGE_PATCH:
        return api_patch.merge_patch(current, patch)
    if ctype == STRATEGIC_PATCH:
        return api_patch.strategic_merge_patch(current, patch)
    if ctype == JSON_PATCH:
        return api_patch.json_patch(current, patch)
    raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {ctype}")


def _patch_precondition(patch: Any) -> str | None:
    if isinstance(patch, dict):
        meta = patch.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("resourceVersion"), str):
            return str(meta["resourceVersion"])
    return None


async def _patch(request: web.Request, t: Target) -> web.Response:
    patch = await _body(request)
    wanted_rv = _patch_precondition(patch)
    for _ in range(PATCH_RETRIES):
        old = _get(request, t)
        # Patched in the version of the path (the client computed the patch in it).
        doc = _apply_patch(request, _encode_obj(t.res, old), patch)
        # The live object has only known fields: whatever is unknown came with the patch.
        _check_fields(request, t.res, t.res.cls, doc)
        new = _decode(t.res, doc, t.namespace, t.name)
        if wanted_rv is None:
            # No precondition in the patch: apply it to what we read, retry if that changed.
            new = replace(new, metadata=replace(new.metadata, resourceVersion=old.metadata.resourceVersion))
        try:
            return _json(_encode_obj(t.res, _write(request, t, new, old, True)))
        except ApiError as e:
            if e.code != 409 or wanted_rv is not None:
                raise
    raise ApiError(409, "Conflict", f'{t.res.plural} "{t.name}": too many concurrent writers, try again')


async def _write_scale(request: web.Request, t: Target) -> web.Response:
    body = await _body(request)
    for _ in range(PATCH_RETRIES):
        old = _get(request, t)
        current = _scale_of(old)
        if request.method == "PATCH":
            doc = _apply_patch(request, msgspec.to_builtins(current), body)
        else:
            doc = body
        try:
            scale = msgspec.convert(doc, Scale)
        except msgspec.ValidationError as e:
            raise ApiError(400, "BadRequest", f"invalid Scale: {e}") from None
        if scale.spec.replicas < 0:
            err = ValidationError("", "spec.replicas", "must be greater than or equal to 0")
            raise invalid(t.res, t.name or "", [err])
        wanted_rv = scale.metadata.resourceVersion if request.method == "PUT" else _patch_precondition(body)
        spec = replace(old.spec, replicas=scale.spec.replicas)  # type: ignore[attr-defined]
        meta = replace(old.metadata, resourceVersion=wanted_rv or old.metadata.resourceVersion)
        new = replace(old, spec=spec, metadata=meta)
        try:
            updated = request.app[STORE_KEY].update(new, check_rv=True) if not _dry_run(request) else new
        except Conflict as e:
            if wanted_rv is not None:
                raise _conflict(t, e) from None
            continue
        return _json(msgspec.to_builtins(_scale_of(updated)))
    raise ApiError(409, "Conflict", f'{t.res.plural} "{t.name}": too many concurrent writers, try again')


def _delete(request: web.Request, t: Target) -> web.Response:
    assert t.name is not None
    store = request.app[STORE_KEY]
    if _dry_run(request):
        return _json(_encode_obj(t.res, _get(request, t)))
    return _json(_encode_obj(t.res, store.delete(t.res.kind, t.store_ns, t.name)))


def _delete_collection(request: web.Request, t: Target) -> web.Response:
    store = request.app[STORE_KEY]
    items, _ = _matching(request, t)
    deleted: list[Object] = []
    if not _dry_run(request):
        with store.transaction():
            deleted = [store.delete(t.res.kind, o.metadata.namespace, o.name) for o in items]
    else:
        deleted = items
    return _json(_list_body(t.res, deleted, store.resource_version, None))


# --- watch ------------------------------------------------------------------------------------


def _watch_line(request: web.Request, res: Resource, ev: WatchEvent, table_version: str | None) -> bytes:
    if table_version is not None:
        # Each event's object is a one-row Table, as the API server sends them to kubectl get -w.
        body: Any = _table(request, res, table_version, [ev.object], ev.object.metadata.resourceVersion)
    else:
        body = _encode_obj(res, ev.object)
    return msgspec.json.encode({"type": ev.type, "object": body}) + b"\n"


async def _watch(request: web.Request, t: Target) -> web.StreamResponse:
    """Newline-delimited JSON events, from ``resourceVersion`` (or the current state, sent as
    ADDED events, when it is absent or "0"), until ``timeoutSeconds``."""
    store = request.app[STORE_KEY]
    selector = _selector(request)
    fields = _field_filter(request)
    timeout = _int_param(request, "timeoutSeconds") or DEFAULT_WATCH_SECONDS
    table_version = _table_version(request)
    rv_text = request.query.get("resourceVersion", "")
    initial: list[Object] = []
    if rv_text in ("", "0"):
        # Watching from the list's RV makes the two seamless: nothing is missed or repeated.
        initial, since = store.list(t.res.kind, t.store_ns, selector)
        w = store.watch({t.res.kind}, since)
    else:
        try:
            since = int(rv_text)
        except ValueError:
            raise ApiError(400, "BadRequest", f"invalid resourceVersion {rv_text!r}") from None
        w = store.watch({t.res.kind}, since)  # Gone -> 410 through the middleware

    def wanted(obj: Object) -> bool:
        if t.res.namespaced and t.namespace is not None and obj.metadata.namespace != t.namespace:
            return False
        if t.name is not None and obj.name != t.name:
            return False
        if selector is not None and not selector_matches(selector, obj.metadata.labels or {}):
            return False
        return fields(obj)

    resp = web.StreamResponse(headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    watches = request.app[WATCHES_KEY]
    watches.add(w)
    try:
        await resp.prepare(request)
        for obj in initial:
            if wanted(obj):
                await resp.write(_watch_line(request, t.res, WatchEvent("ADDED", obj, since), table_version))
        deadline = time.monotonic() + timeout
        async with contextlib.aclosing(_events(w, deadline, request)) as events:
            async for ev in events:
                if wanted(ev.object):
                    await resp.write(_watch_line(request, t.res, ev, table_version))
    except ConnectionResetError:
        return resp  # the client went away: nothing to report to anyone
    finally:
        watches.discard(w)
        w.close()
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp


async def _events(w: Watch, deadline: float, request: web.Request) -> AsyncGenerator[WatchEvent, None]:
    """The watch's events until the deadline, the client leaving or the watch closing.

    One ``__anext__`` stays pending across polls: cancelling it would finish the generator.
    """
    it = w.aiter()
    pending: asyncio.Future[WatchEvent] | None = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            if pending is None:
                pending = asyncio.ensure_future(it.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=min(remaining, WATCH_POLL_SECONDS))
            if not done:
                continue
            try:
                ev = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield ev
    finally:
        w.close()
        if pending is not None:
            with contextlib.suppress(BaseException):
                await pending


# --- serving ----------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def start(
    app: web.Application, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on a loopback address (HTTPS with ``ssl_context``, which kubectl needs to
    send its token); returns the runner (``await runner.cleanup()`` to stop) and the bound
    port (useful with ``port=0``)."""
    if not _is_loopback(host):
        raise ValueError(f"the API listens on loopback only, not {host}")
    # Open watches would otherwise hold a shutdown for a minute.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    server = site._server
    assert server is not None
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
