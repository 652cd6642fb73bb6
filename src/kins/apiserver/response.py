"""Response bodies: objects in the version of the path, lists, and Tables for ``kubectl get``;
JSON or Kubernetes' protobuf, as the request's ``Accept`` prefers."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from aiohttp import web

from ..api.meta import Object
from ..api.resources import Resource
from . import protobuf
from . import table as api_table
from .encode import encode
from .errors import ApiError
from .legacy import ingress_to_legacy

JSON = "application/json"


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(data), status=status, content_type="application/json")


def _accepted(request: web.Request) -> list[str]:
    """The media types the client accepts that we could answer with, most preferred first
    (by ``q``, then by order); ``*/*`` and ``application/*`` stand for JSON."""
    ranked: list[tuple[float, int, str]] = []
    for i, media_range in enumerate(request.headers.get("Accept", "").split(",")):
        kind, *rest = (part.strip() for part in media_range.split(";"))
        kind = kind.lower()
        params = {k.strip().lower(): v.strip() for k, _, v in (p.partition("=") for p in rest)}
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 1.0
        if q <= 0 or "as" in params:  # as=Table (and the like) are answered elsewhere
            continue
        if kind == protobuf.MEDIA_TYPE:
            ranked.append((-q, i, protobuf.MEDIA_TYPE))
        elif kind in (JSON, "*/*", "application/*", ""):
            ranked.append((-q, i, JSON))
    return [media for _, _, media in sorted(ranked)] or [JSON]


def wants_protobuf(request: web.Request, api_version: str, kind: str) -> bool:
    """Whether to answer with protobuf: the client prefers it and the kind has a message.
    A kind without one (custom resources) for a client that takes nothing else: 406, as
    upstream answers."""
    accepted = _accepted(request)
    if accepted[0] != protobuf.MEDIA_TYPE:
        return False
    if protobuf.has_message(api_version, kind):
        return True
    if JSON in accepted:
        return False
    raise ApiError(
        406, "NotAcceptable", f"the resource {kind} in {api_version} cannot be encoded as {protobuf.MEDIA_TYPE}"
    )


def respond(request: web.Request, data: dict[str, Any], status: int = 200) -> web.Response:
    """An object, list or Status in the format the client prefers (Tables are always JSON)."""
    kind = data.get("kind", "")
    if kind != "Table" and wants_protobuf(request, data.get("apiVersion", ""), kind):
        return web.Response(body=protobuf.encode_object(data), status=status, content_type=protobuf.MEDIA_TYPE)
    return json_response(data, status)


def encode_obj(res: Resource, obj: Object) -> dict[str, Any]:
    doc = encode(obj)
    if res.legacy and res.kind == "Ingress":
        return ingress_to_legacy(doc, res.group_version)
    # autoscaling/v1, and custom resources in the version of the path
    from_stored = getattr(res.cls, "from_stored", None)
    if from_stored is not None:
        converted: dict[str, Any] = from_stored(doc)
        return converted
    return doc


# Encoded objects by (uid, resourceVersion, group/version, protobuf?): a stored object changes
# only with a new resourceVersion, and the same objects are read over and over (lists, relists,
# kubectl describe, every watcher of a write). Stored objects only: a dry-run write answers with
# an object the store never held.
ENCODED_OBJECTS = 10_000  # ~15 MB of pods at most
_ENCODED: dict[tuple[str, str, str, bool], bytes] = {}


def encoded(res: Resource, obj: Object, proto: bool) -> bytes:
    """A stored object as JSON, or as its protobuf message without the envelope."""
    m = obj.metadata
    key = (m.uid, m.resourceVersion, res.group_version, proto) if m.uid and m.resourceVersion else None
    if key is not None:
        hit = _ENCODED.get(key)
        if hit is not None:
            return hit
    doc = encode_obj(res, obj)
    data = protobuf.encode_body(doc) if proto else msgspec.json.encode(doc)
    if key is not None:
        _ENCODED[key] = data
        if len(_ENCODED) > ENCODED_OBJECTS:
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                del _ENCODED[next(iter(_ENCODED))]
    return data


def respond_stored(request: web.Request, res: Resource, obj: Object) -> web.Response:
    """A stored object read back (GET)."""
    if wants_protobuf(request, res.group_version, res.kind):
        body = protobuf.wrap(res.group_version, res.kind, encoded(res, obj, True))
        return web.Response(body=body, content_type=protobuf.MEDIA_TYPE)
    return web.Response(body=encoded(res, obj, False), content_type=JSON)


def respond_list(request: web.Request, res: Resource, items: list[Object], rv: int, cont: str | None) -> web.Response:
    """A list of stored objects, its items encoded (or found already encoded) one by one."""
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if cont:
        meta["continue"] = cont
    kind = f"{res.kind}List"
    if wants_protobuf(request, res.group_version, kind):
        body = protobuf.encode_list(res.group_version, kind, meta, [encoded(res, o, True) for o in items])
        return web.Response(body=body, content_type=protobuf.MEDIA_TYPE)
    doc: dict[str, Any] = {"kind": kind, "apiVersion": res.group_version, "metadata": meta, "items": []}
    doc["items"] = [msgspec.Raw(encoded(res, o, False)) for o in items]
    return web.Response(body=msgspec.json.encode(doc), content_type=JSON)


def list_body(res: Resource, items: list[Object], rv: int, cont: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if cont:
        meta["continue"] = cont
    return {
        "kind": f"{res.kind}List",
        "apiVersion": res.group_version,
        "metadata": meta,
        "items": [encode_obj(res, o) for o in items],
    }


def as_table(
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
