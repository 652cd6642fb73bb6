"""The generic resource verbs: get, list, create, replace, patch, delete, the ``scale``
subresource, and watch through ``watch``.

The store does the versioning; this layer decodes bodies into typed objects, runs validation
and the admission hook and applies patches. Store calls are synchronous and short, so handlers
call them directly on the loop.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

import msgspec
from aiohttp import web
from msgspec.structs import replace

from .._errors import AllocationError, Conflict, MultiValidationError, NotFound, ValidationError
from ..api import patch as api_patch
from ..api.core import Namespace, Pod
from ..api.custom import CustomObject, scale_fields, with_replicas
from ..api.defaulting import apply_create_defaults, apply_defaults
from ..api.meta import Object
from ..api.resources import Resource, Scale, ScaleSpec, ScaleStatus, selector_string
from ..api.validation import validate
from ..api.validation.rbac import validate_update
from ..store import deletion as store_deletion
from ..store.base import random_suffix
from . import definitions, ephemeral, namespaces, volumes
from . import deletion as api_deletion
from .errors import ApiError, invalid
from .keys import ADMISSION_KEY, CFG_KEY, STORE_KEY, WARNINGS, Admission
from .managed import APPLY_PATCH, check_options, record_write, serve_apply, store_new, would_update
from .request import (
    Target,
    check_fields,
    decode,
    dry_run,
    field_filter,
    int_param,
    label_selector,
    parse_target,
    read_body,
    read_delete_dry_run,
    table_version,
    truthy,
)
from .response import as_table, encode_obj, respond, respond_list, respond_stored
from .saadmission import admit_pod
from .watch import serve_watch

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

PATCH_RETRIES = 5

# --- validation -------------------------------------------------------------------------------


def _check(app: web.Application, res: Resource, obj: Object, old: Object | None) -> Object:
    """Defaulting, validation, then the admission hook (which may set allocated fields); 422 on
    refusal."""
    obj = apply_defaults(obj)
    if old is None and isinstance(obj, Pod):
        obj = admit_pod(app[STORE_KEY], obj)
    errors = list(validate(obj, app[CFG_KEY])) + definitions.conflicts(obj)
    if old is not None:
        errors.extend(validate_update(obj, old))
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
    try:
        return volumes.admit(app[STORE_KEY], obj, old)
    except ValidationError as e:
        raise invalid(res, obj.name, [e]) from None


def _scale_of(obj: Object) -> Scale:
    spec = getattr(obj, "spec", None)
    status = getattr(obj, "status", None)
    m = obj.metadata
    meta = replace(
        m, labels=None, annotations=None, ownerReferences=None, finalizers=None, managedFields=None, generation=None
    )
    if isinstance(obj, CustomObject):
        replicas, current, selector = scale_fields(obj)
        return Scale(
            metadata=meta, spec=ScaleSpec(replicas=replicas), status=ScaleStatus(replicas=current, selector=selector)
        )
    return Scale(
        metadata=meta,
        spec=ScaleSpec(replicas=(spec.replicas if spec is not None and spec.replicas is not None else 1)),
        status=ScaleStatus(
            replicas=(status.replicas or 0) if status is not None else 0,
            selector=selector_string(spec.selector if spec is not None else None) or None,
        ),
    )


async def handle_resource(request: web.Request) -> web.StreamResponse:
    t = parse_target(request)
    method = request.method
    if method == "DELETE":
        await read_delete_dry_run(request)
    deprecation = getattr(t.res.cls, "DEPRECATION", None)
    if deprecation:  # a deprecated version of a custom resource
        request.setdefault(WARNINGS, []).append(deprecation)
    if t.name is None:
        if method == "GET":
            if t.watch or truthy(request, "watch"):
                return await serve_watch(request, t)
            return _list(request, t)
        if method == "POST":
            return await _create(request, t)
        if method == "DELETE":
            return await _delete_collection(request, t)
    elif t.sub == "scale":
        if method == "GET":
            return respond(request, msgspec.to_builtins(_scale_of(_get(request, t))))
        if method in ("PUT", "PATCH"):
            return await _write_scale(request, t)
    else:
        if method == "GET":
            if t.watch:
                return await serve_watch(request, t)
            obj = _get(request, t)
            version = table_version(request)
            if version is not None:
                return respond(request, as_table(request, t.res, version, [obj], None))
            return respond_stored(request, t.res, obj)
        if method == "PUT":
            return await _replace(request, t)
        if method == "PATCH":
            return await _patch(request, t)
        if method == "DELETE" and t.sub is None:
            return await api_deletion.delete_object(request, t)
    raise ApiError(405, "MethodNotAllowed", f"the server does not allow {method} on the requested resource")


# --- verbs ------------------------------------------------------------------------------------


def _get(request: web.Request, t: Target) -> Object:
    assert t.name is not None
    return request.app[STORE_KEY].get(t.res.kind, t.store_ns, t.name)


def _matching(request: web.Request, t: Target) -> tuple[list[Object], int]:
    items, rv = request.app[STORE_KEY].list(t.res.kind, t.store_ns, label_selector(request))
    fields = field_filter(request)
    return [o for o in items if fields(o)], rv


def _list(request: web.Request, t: Target) -> web.Response:
    items, rv = _matching(request, t)
    limit = int_param(request, "limit")
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
    version = table_version(request)
    if version is not None:
        return respond(request, as_table(request, t.res, version, items, rv, next_token))
    return respond_list(request, t.res, items, rv, next_token)


async def _create(request: web.Request, t: Target) -> web.Response:
    store = request.app[STORE_KEY]
    doc = await read_body(request)
    check_fields(request, t.res, t.res.cls, doc)
    obj = decode(t.res, doc, t.namespace, None)
    # The store assigns these; a copy of a live object (kubectl get -o yaml) must still create.
    obj = replace(obj, metadata=replace(obj.metadata, resourceVersion=None, uid=None, creationTimestamp=None))
    obj = namespaces.admit_create(request, store, t, obj)
    if not obj.metadata.name and not obj.metadata.generateName:
        raise invalid(t.res, "", [ValidationError("", "metadata.name", "Required value: name or generateName")])
    if isinstance(obj, Namespace) and not obj.metadata.name:
        obj = _named(store, obj)
    if isinstance(obj, Pod):
        ephemeral.check_create(obj)
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
    obj = record_write(request, t, None, _check(request.app, t.res, apply_create_defaults(obj), None))
    return store_new(request, t, obj, _after_write)


def _named(store: Any, ns: Namespace) -> Namespace:
    """A generateName Namespace gets its name here, before defaulting, as the API server's
    strategy does: its name label must be set from the final name."""
    assert ns.metadata.generateName
    for _ in range(8):
        name = ns.metadata.generateName + random_suffix(_RNG)
        try:
            store.get("Namespace", None, name)
        except NotFound:
            break
    return replace(ns, metadata=replace(ns.metadata, name=name))


_RNG = random.Random()


def _conflict(t: Target, e: Conflict) -> ApiError:
    return ApiError(409, "Conflict", str(e), kind=t.res.plural, name=t.name or "")


def _merge_into(res: Resource, old: Object, new: Object, sub: str | None) -> Object:
    """What a write through the main resource or ``/status`` may change.

    As in Kubernetes, the main resource keeps the stored status and ``/status`` changes only
    the status (when the kind has a status subresource: a custom resource without one takes
    its status with the rest); identity fields always come from the stored object.
    """
    keep = {"uid": old.metadata.uid, "creationTimestamp": old.metadata.creationTimestamp}
    if sub == "status":
        status = getattr(new, "status", None)
        return replace(old, status=status, metadata=replace(old.metadata, resourceVersion=new.metadata.resourceVersion))
    if isinstance(old, Pod) and isinstance(new, Pod):
        if sub == "ephemeralcontainers":
            return ephemeral.merge(old, new)
        # Ephemeral containers change only through their subresource.
        new = replace(new, spec=replace(new.spec, ephemeralContainers=old.spec.ephemeralContainers))
    merged = replace(new, metadata=replace(new.metadata, **keep))
    if "status" in type(old).__struct_fields__ and "status" in res.subresources:
        merged = replace(merged, status=getattr(old, "status", None))
    return merged


def _write(request: web.Request, t: Target, new: Object, old: Object, check_rv: bool) -> Object:
    obj = record_write(request, t, old, _check(request.app, t.res, _merged(t, old, new), old))
    if dry_run(request):
        return would_update(obj, old)
    try:
        updated = request.app[STORE_KEY].update(obj, check_rv=check_rv)
    except Conflict as e:
        raise _conflict(t, e) from None
    return _after_write(request, updated)


def _merged(t: Target, old: Object, new: Object) -> Object:
    """What an update through ``t`` leaves of ``new`` over the stored ``old``."""
    return namespaces.merge_update(t, old, _merge_into(t.res, old, new, t.sub))


def _after_write(request: web.Request, written: Object) -> Object:
    """The steps after a write is stored: an update that took the last finalizer off an object
    being deleted lets it go; a CustomResourceDefinition serves (or stops serving) its kind."""
    store = request.app[STORE_KEY]
    finished = store_deletion.finish(store, written)
    if store_deletion.should_go(written):
        definitions.deleted(store, finished)
    else:
        definitions.stored(finished)
    return finished


async def _replace(request: web.Request, t: Target) -> web.Response:
    doc = await read_body(request)
    check_fields(request, t.res, t.res.cls, doc)
    new = decode(t.res, doc, t.namespace, t.name)
    old = _get(request, t)
    # Without a resourceVersion an update is unconditional, as for most Kubernetes resources.
    check_rv = new.metadata.resourceVersion is not None
    return respond(request, encode_obj(t.res, _write(request, t, new, old, check_rv)))


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
    check_options(request)
    if request.content_type == APPLY_PATCH:
        return await serve_apply(request, t, _check, _merged, _after_write)
    patch = await read_body(request)
    wanted_rv = _patch_precondition(patch)
    for _ in range(PATCH_RETRIES):
        old = _get(request, t)
        # Patched in the version of the path (the client computed the patch in it).
        doc = _apply_patch(request, encode_obj(t.res, old), patch)
        # The live object has only known fields: whatever is unknown came with the patch.
        check_fields(request, t.res, t.res.cls, doc)
        new = decode(t.res, doc, t.namespace, t.name)
        if wanted_rv is None:
            # No precondition in the patch: apply it to what we read, retry if that changed.
            new = replace(new, metadata=replace(new.metadata, resourceVersion=old.metadata.resourceVersion))
        try:
            return respond(request, encode_obj(t.res, _write(request, t, new, old, True)))
        except ApiError as e:
            if e.code != 409 or wanted_rv is not None:
                raise
    raise ApiError(409, "Conflict", f'{t.res.plural} "{t.name}": too many concurrent writers, try again')


async def _write_scale(request: web.Request, t: Target) -> web.Response:
    body = await read_body(request)
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
        meta = replace(old.metadata, resourceVersion=wanted_rv or old.metadata.resourceVersion)
        if isinstance(old, CustomObject):
            new: Object = replace(with_replicas(old, scale.spec.replicas), metadata=meta)
        else:
            spec = replace(old.spec, replicas=scale.spec.replicas)  # type: ignore[attr-defined]
            new = replace(old, spec=spec, metadata=meta)
        new = record_write(request, t, old, new)
        try:
            updated = request.app[STORE_KEY].update(new, check_rv=True) if not dry_run(request) else new
        except Conflict as e:
            if wanted_rv is not None:
                raise _conflict(t, e) from None
            continue
        return respond(request, msgspec.to_builtins(_scale_of(updated)))
    raise ApiError(409, "Conflict", f'{t.res.plural} "{t.name}": too many concurrent writers, try again')


async def _delete_collection(request: web.Request, t: Target) -> web.Response:
    items, _ = _matching(request, t)
    return await api_deletion.delete_collection(request, t, items)
