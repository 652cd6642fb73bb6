"""Field ownership on the API's writes: ``metadata.managedFields`` kept on every create,
update and patch, and server-side apply (``PATCH`` with ``application/apply-patch+yaml``).

The field-set logic is ``kins.api.apply``; this module reads what the request names (the
field manager, ``force``, ``dryRun``), turns conflicts into the API's 409 Status, and shows
dry runs as the store would have written them.
"""

from __future__ import annotations

import random
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web
from msgspec.structs import replace

from .._errors import Conflict, MultiValidationError, NotFound
from ..api import apply as ssa
from ..api import fieldsets
from ..api.defaulting import apply_create_defaults
from ..api.load import parse_text
from ..api.meta import Object
from ..api.resources import Resource
from ..store.base import created, random_suffix, updated
from . import namespaces
from .encode import encode_value
from .errors import ApiError
from .keys import STORE_KEY
from .request import Target, check_fields, decode, dry_run, truthy
from .response import encode_obj, respond

APPLY_PATCH = "application/apply-patch+yaml"
_RNG = random.Random()
MAX_MANAGER = 128
RETRIES = 5

Check = Callable[[web.Application, Resource, Object, "Object | None"], Object]
MergeInto = Callable[[Target, Object, Object], Object]
AfterWrite = Callable[[web.Request, Object], Object]


def manager_name(request: web.Request) -> str:
    """``fieldManager``, else the User-Agent's first segment (``kubectl/v1.33.0 (...)`` ->
    ``kubectl``), as the API server names a writer that did not name itself."""
    name = request.query.get("fieldManager")
    if name is None:
        name = request.headers.get("User-Agent", "").split("/", 1)[0]
    if len(name) > MAX_MANAGER:
        raise _invalid_option("fieldManager", f"Too long: may not be more than {MAX_MANAGER} bytes")
    return name


def _invalid_option(field: str, message: str) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        f'PatchOptions.meta.k8s.io "" is invalid: {field}: {message}',
        kind="PatchOptions",
        causes=[{"reason": "FieldValueInvalid", "message": message, "field": field}],
    )


def _has_status(res: Resource) -> bool:
    return "status" in res.cls.__struct_fields__


def record_write(request: web.Request, t: Target, old: Object | None, new: Object) -> Object:
    """``new`` with its managed fields after a create (``old`` None), update or patch.

    An object that exists without any (written by a controller straight to the store) stays
    without on updates, as upstream tracks an object from its creation or its first apply
    only: the kubelet's status writes to the Pods a ReplicaSet made cost nothing here.
    """
    sub = t.sub or ""
    source = old.metadata.managedFields if old is not None else None
    if not sub:
        requested = new.metadata.managedFields
        if requested == [] or (isinstance(requested, list) and requested == [{}]):
            # The client strips them: an existing object is then untracked (until an apply).
            if old is not None:
                return replace(new, metadata=replace(new.metadata, managedFields=None))
            source = None
        elif requested:
            source = requested  # the client sets them (kubectl moving client-side owners to apply)
    if old is not None and not source and not old.metadata.managedFields:
        return new
    live_doc, new_doc = _changed_parts(t.res, old, new)
    managers = ssa.update(
        live_doc,
        new_doc,
        fieldsets.schema_of(t.res.cls),
        ssa.parse_managers(source),
        manager_name(request),
        t.res.group_version,
        sub,
        _has_status(t.res),
    )
    entries = ssa.encode_managers(managers) or None
    return replace(new, metadata=replace(new.metadata, managedFields=entries))


def _changed_parts(res: Resource, old: Object | None, new: Object) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The encoded top-level fields that differ between ``old`` and ``new`` (all of ``new`` for
    a create): what the comparison needs, so that a status write encodes only the status."""
    if old is None:
        return None, encode_obj(res, new)
    live: dict[str, Any] = {}
    doc: dict[str, Any] = {}
    key = (new.KIND, new.metadata.namespace, new.metadata.name)
    for name in type(new).__struct_fields__:
        o, n = getattr(old, name), getattr(new, name)
        if name == "metadata":
            o = replace(o, managedFields=None, resourceVersion=None, generation=None)
            n = replace(n, managedFields=None, resourceVersion=None, generation=None)
        if name in ("apiVersion", "kind") or o == n:
            continue
        if o is not None:
            live[name] = _encoded(key, name, o)
        if n is not None:
            doc[name] = _encoded(key, name, n)
    return live, doc


# (kind, namespace, name, field) -> (value, its encoding): the new status of one write is the
# old status of the next (a kubelet writes a Pod's status again and again), and a struct
# comparison is far cheaper than encoding it again.
_ENCODED: OrderedDict[tuple[Any, ...], tuple[Any, Any]] = OrderedDict()
_ENCODED_MAX = 1024  # a few MB at most; past it, writes just encode again


def _encoded(key: tuple[Any, ...], field: str, value: Any) -> Any:
    if field == "metadata":
        return encode_value(value)
    k = (*key, field)
    hit = _ENCODED.get(k)
    if hit is not None and hit[0] == value:
        _ENCODED.move_to_end(k)
        return hit[1]
    # Runs after admission: nothing changes the value in place from here on.
    doc = encode_value(value)
    _ENCODED[k] = (value, doc)
    _ENCODED.move_to_end(k)
    if len(_ENCODED) > _ENCODED_MAX:
        _ENCODED.popitem(last=False)
    return doc


def would_create(obj: Object) -> Object:
    """A dry-run create as the store would have answered it (identity set, a generateName
    completed, nothing held)."""
    name = obj.metadata.name or (obj.metadata.generateName or "") + random_suffix(_RNG)
    out = created(obj, name, obj.metadata.namespace or "", str(uuid.uuid4()), 0, ssa.now())
    return replace(out, metadata=replace(out.metadata, resourceVersion=None))


def would_update(obj: Object, old: Object) -> Object:
    """A dry-run update as the store would have answered it (generation bumped on a spec
    change), with the live resourceVersion: nothing was written."""
    rv = old.metadata.resourceVersion
    out = updated(obj, old, old.metadata.namespace or "", int(rv) if rv and rv.isdigit() else 0)
    return replace(out, metadata=replace(out.metadata, resourceVersion=rv))


def _config(request: web.Request, t: Target, raw: bytes) -> dict[str, Any]:
    try:
        docs = parse_text(raw.decode(), "apply")
    except (MultiValidationError, UnicodeDecodeError) as e:
        raise ApiError(400, "BadRequest", f"error decoding YAML: {e}") from None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ApiError(400, "BadRequest", "the apply configuration must be one object")
    doc: dict[str, Any] = docs[0]
    if doc.get("apiVersion") != t.res.group_version or doc.get("kind") != t.res.kind:
        raise ApiError(
            400,
            "BadRequest",
            f"the apply configuration is a {doc.get('kind')!r} in {doc.get('apiVersion')!r}, "
            f"this path takes {t.res.kind} in {t.res.group_version}",
        )
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        raise ApiError(400, "BadRequest", "metadata must be an object")
    if meta.get("managedFields") is not None:
        raise ApiError(400, "BadRequest", "metadata.managedFields must be nil")
    if meta.get("name") not in (None, t.name):
        raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
    check_fields(request, t.res, t.res.cls, doc)
    return doc


async def serve_apply(
    request: web.Request, t: Target, check: Check, merge_into: MergeInto, after: AfterWrite
) -> web.Response:
    """Server-side apply of the request's configuration to the object ``t`` names."""
    assert t.name is not None
    manager = request.query.get("fieldManager")
    if not manager:
        raise _invalid_option("fieldManager", "Required value: is required for apply patch")
    manager = manager_name(request)
    force = truthy(request, "force")
    config = _config(request, t, await request.read())
    schema = fieldsets.schema_of(t.res.cls)
    store = request.app[STORE_KEY]
    wanted_rv = config["metadata"].get("resourceVersion")
    for _ in range(RETRIES):
        try:
            old: Object | None = store.get(t.res.kind, t.store_ns, t.name)
        except NotFound:
            old = None
        if old is None and t.sub:
            raise ApiError(404, "NotFound", f'{t.res.plural} "{t.name}" not found', kind=t.res.plural, name=t.name)
        live = encode_obj(t.res, old) if old is not None else None
        applied = _apply(t, live, config, schema, manager, force)
        doc = applied.obj
        doc.setdefault("metadata", {})["managedFields"] = ssa.encode_managers(applied.managers)
        obj = decode(t.res, doc, t.namespace, t.name)
        if old is None:
            return _create(request, t, obj, check, after)
        if wanted_rv is None:
            obj = replace(obj, metadata=replace(obj.metadata, resourceVersion=old.metadata.resourceVersion))
        merged = merge_into(t, old, obj)
        # /status takes only the status from the body; the entries are the apply's own.
        merged = replace(merged, metadata=replace(merged.metadata, managedFields=obj.metadata.managedFields))
        obj = check(request.app, t.res, merged, old)
        if obj == old:
            # Nothing to write (the same configuration applied again): no new version, no event.
            return respond(request, encode_obj(t.res, old))
        if dry_run(request):
            return respond(request, encode_obj(t.res, would_update(obj, old)))
        try:
            return respond(request, encode_obj(t.res, after(request, store.update(obj, check_rv=True))))
        except Conflict as e:
            if wanted_rv is not None:
                raise ApiError(409, "Conflict", str(e), kind=t.res.plural, name=t.name) from None
    raise ApiError(409, "Conflict", f'{t.res.plural} "{t.name}": too many concurrent writers, try again')


def _apply(
    t: Target, live: dict[str, Any] | None, config: dict[str, Any], schema: fieldsets.Schema, manager: str, force: bool
) -> ssa.Applied:
    managers = ssa.parse_managers((live or {}).get("metadata", {}).get("managedFields"))

    def run(forced: bool) -> ssa.Applied:
        return ssa.apply(
            live, config, schema, managers, manager, t.res.group_version, forced, t.sub or "", _has_status(t.res)
        )

    try:
        try:
            applied = run(force)
        except ssa.Conflicts as e:
            if manager != ssa.KUBECTL or live is None:
                raise
            # kubectl taking over from its own client-side apply: the fields whose live value
            # is still the one it last applied are no conflict.
            allowed = ssa.allowed_by_last_applied(live, schema)
            rest = [c for c in e.conflicts if c.path not in allowed]
            if rest:
                raise ssa.Conflicts(rest) from None
            applied = run(True)
    except ssa.Conflicts as e:
        raise ApiError(409, "Conflict", e.message(), causes=e.causes()) from None
    except fieldsets.ApplyError as e:
        raise ApiError(
            422, "Invalid", f'{t.res.kind} "{t.name}" is invalid: {e}', kind=t.res.plural, name=t.name or ""
        ) from None
    if manager == ssa.KUBECTL and live is not None:
        annotations = (applied.obj.get("metadata") or {}).get("annotations") or {}
        if annotations.get(ssa.LAST_APPLIED):
            annotations[ssa.LAST_APPLIED] = ssa.last_applied_text(config)
    return applied


def _create(request: web.Request, t: Target, obj: Object, check: Check, after: AfterWrite) -> web.Response:
    store = request.app[STORE_KEY]
    obj = replace(obj, metadata=replace(obj.metadata, resourceVersion=None, uid=None, creationTimestamp=None))
    obj = namespaces.admit_create(request, store, t, obj)
    return store_new(request, t, check(request.app, t.res, apply_create_defaults(obj), None), after)


def store_new(request: web.Request, t: Target, obj: Object, after: AfterWrite) -> web.Response:
    """The last step of every create, admitted and checked: the would-be object of a dry run, or
    the stored one (AlreadyExists when another writer got there first)."""
    if dry_run(request):
        return respond(request, encode_obj(t.res, would_create(obj)), 201)
    try:
        made = request.app[STORE_KEY].create(obj)
    except Conflict as e:
        raise ApiError(409, "AlreadyExists", str(e), kind=t.res.plural, name=obj.metadata.name) from None
    return respond(request, encode_obj(t.res, after(request, made)), 201)


def check_options(request: web.Request) -> None:
    """``force`` belongs to apply patches only."""
    if "force" in request.query and request.content_type != APPLY_PATCH:
        raise _invalid_option("force", "Forbidden: may not be specified for non-apply patch")
