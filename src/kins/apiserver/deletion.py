"""DELETE on an object or a collection: the DeleteOptions a client sends (a JSON body, as
kubectl sends it, or query parameters), checked as the API server checks them, then
``kins.store.deletion`` does the deleting.
"""

from __future__ import annotations

import contextlib

import msgspec
from aiohttp import web

from .._errors import NotFound, ValidationError
from ..api.meta import Object
from ..store import deletion
from ..store.deletion import DeleteRequest, PreconditionFailed
from . import definitions
from .errors import ApiError, cause_reason
from .keys import STORE_KEY
from .request import Target
from .response import encode_obj, list_body, respond

# The namespaces the API server's NamespaceLifecycle admission never lets go.
IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})


class Preconditions(msgspec.Struct, kw_only=True):
    uid: str | None = None
    resourceVersion: str | None = None


class DeleteOptions(msgspec.Struct, kw_only=True):
    kind: str | None = None
    apiVersion: str | None = None
    gracePeriodSeconds: int | None = None
    preconditions: Preconditions | None = None
    orphanDependents: bool | None = None
    propagationPolicy: str | None = None
    dryRun: list[str] | None = None


def _bool(name: str, text: str) -> bool:
    low = text.lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise ApiError(400, "BadRequest", f"{name}: invalid value {text!r}: expected a boolean")


def _from_query(request: web.Request) -> DeleteOptions:
    q = request.query
    grace = q.get("gracePeriodSeconds")
    try:
        grace_s = int(grace) if grace not in (None, "") else None
    except ValueError:
        raise ApiError(400, "BadRequest", f"gracePeriodSeconds must be an integer, not {grace!r}") from None
    orphan = q.get("orphanDependents")
    return DeleteOptions(
        gracePeriodSeconds=grace_s,
        orphanDependents=_bool("orphanDependents", orphan) if orphan not in (None, "") else None,
        propagationPolicy=q.get("propagationPolicy") or None,
        dryRun=q.getall("dryRun", []) or None,
    )


async def read_options(request: web.Request) -> DeleteOptions:
    """The DeleteOptions of a DELETE: its body when it has one, else its query (as the API
    server reads them)."""
    raw = await request.read()
    if not raw.strip():
        opts = _from_query(request)
    else:
        try:
            opts = msgspec.json.decode(raw, type=DeleteOptions)
        except msgspec.DecodeError as e:
            raise ApiError(400, "BadRequest", f"the request body is not a valid DeleteOptions: {e}") from None
    _validate(opts)
    return opts


def _validate(opts: DeleteOptions) -> None:
    errors: list[ValidationError] = []
    policy = opts.propagationPolicy
    if opts.orphanDependents is not None and policy is not None:
        errors.append(
            ValidationError(
                "",
                "propagationPolicy",
                f'Invalid value: "{policy}": orphanDependents and deletionPropagation cannot be both set',
            )
        )
    if policy is not None and policy not in deletion.POLICIES:
        supported = ", ".join(f'"{p}"' for p in (*deletion.POLICIES, "nil"))
        errors.append(
            ValidationError("", "propagationPolicy", f'Unsupported value: "{policy}": supported values: {supported}')
        )
    for v in opts.dryRun or []:
        if v != "All":
            errors.append(ValidationError("", "dryRun", f'Unsupported value: "{v}": supported values: "All"'))
    if errors:
        causes = [{"reason": cause_reason(e.message), "message": e.message, "field": e.field} for e in errors]
        detail = ", ".join(f"{e.field}: {e.message}" for e in errors)
        raise ApiError(
            422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: {detail}', kind="DeleteOptions", causes=causes
        )


def _request(opts: DeleteOptions) -> DeleteRequest:
    pre = opts.preconditions or Preconditions()
    return DeleteRequest(
        propagation=opts.propagationPolicy,
        orphan_dependents=opts.orphanDependents,
        grace_seconds=opts.gracePeriodSeconds,
        uid=pre.uid,
        resource_version=pre.resourceVersion,
    )


def _dry(opts: DeleteOptions) -> bool:
    return "All" in (opts.dryRun or [])


def _forbid_immortal(t: Target, name: str) -> None:
    if t.res.kind == "Namespace" and name in IMMORTAL_NAMESPACES:
        raise ApiError(
            403,
            "Forbidden",
            f'namespaces "{name}" is forbidden: this namespace may not be deleted',
            kind="namespaces",
            name=name,
        )


def _one(request: web.Request, t: Target, name: str, namespace: str | None, opts: DeleteOptions) -> deletion.Deleted:
    store = request.app[STORE_KEY]
    try:
        done = deletion.delete(store, t.res.kind, namespace, name, _request(opts), dry_run=_dry(opts))
    except PreconditionFailed as e:
        raise ApiError(409, "Conflict", str(e), kind=t.res.plural, name=name) from None
    if done.gone and not _dry(opts):
        definitions.deleted(store, done.obj)  # a CustomResourceDefinition takes its objects and kind along
    return done


async def delete_object(request: web.Request, t: Target) -> web.Response:
    assert t.name is not None
    opts = await read_options(request)
    _forbid_immortal(t, t.name)
    done = _one(request, t, t.name, t.store_ns, opts)
    # 202 when the client asked for cascading (orphanDependents=false) and the object stays.
    code = 202 if not done.gone and opts.orphanDependents is False else 200
    return respond(request, encode_obj(t.res, done.obj), code)


async def delete_collection(request: web.Request, t: Target, items: list[Object]) -> web.Response:
    """Each of ``items`` (the collection, selectors applied) deleted with the request's
    options; the answer lists them as deleted (or as marked, for those that stay)."""
    opts = await read_options(request)
    for o in items:
        _forbid_immortal(t, o.name)
    store = request.app[STORE_KEY]
    out: list[Object] = []
    with store.transaction():
        for o in items:
            with contextlib.suppress(NotFound):  # gone since the list
                out.append(_one(request, t, o.name, o.metadata.namespace, opts).obj)
    return respond(request, list_body(t.res, out, store.resource_version, None))
