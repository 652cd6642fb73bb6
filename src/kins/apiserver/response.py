"""Response bodies: objects in the version of the path, lists, and Tables for ``kubectl get``."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from ..api.meta import Object
from ..api.resources import Resource
from . import table as api_table
from .encode import encode
from .legacy import ingress_to_legacy


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(data), status=status, content_type="application/json")


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
