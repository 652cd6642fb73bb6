"""What a request asks for: the resource its URL addresses, its body and its query parameters
(selectors, paging, ``dryRun``, ``fieldValidation``, the Table version of ``Accept``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web
from msgspec.structs import replace

from .._errors import MultiValidationError
from ..api.load import to_object
from ..api.meta import LabelSelector, Object, parse_label_selector
from ..api.resources import BY_PATH, Resource
from . import protobuf
from . import table as api_table
from .encode import encode
from .errors import ApiError, invalid
from .fields import unknown_fields
from .keys import WARNINGS

FIELD_VALIDATION = ("Ignore", "Warn", "Strict")


async def read_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        raise ApiError(400, "BadRequest", "the request body is empty")
    if request.content_type == protobuf.MEDIA_TYPE:
        # Decoded to the JSON its Go twin would have sent: checked and stored the same way.
        try:
            return protobuf.decode_object(raw)
        except protobuf.ProtobufError as e:
            raise ApiError(400, "BadRequest", f"the request body is not a valid protobuf object: {e}") from None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as e:
        raise ApiError(400, "BadRequest", f"the request body is not valid JSON: {e}") from None


def decode(res: Resource, doc: Any, namespace: str | None, url_name: str | None) -> Object:
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
    if obj.metadata.labels == {} or obj.metadata.annotations == {}:
        # An empty map is no map once the API server has decoded it (omitempty): kubectl's
        # patches send "annotations": {} when the live object has none.
        meta = obj.metadata
        obj = replace(obj, metadata=replace(meta, labels=meta.labels or None, annotations=meta.annotations or None))
    return obj


def check_fields(request: web.Request, res: Resource, cls: type[Object], doc: Any) -> None:
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


def label_selector(request: web.Request) -> LabelSelector | None:
    text = request.query.get("labelSelector")
    return parse_label_selector(text) if text else None


def _field_value(obj: Object, path: str) -> str:
    cur: Any = encode(obj)
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def field_filter(request: web.Request) -> Callable[[Object], bool]:
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


def int_param(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text in (None, ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, "BadRequest", f"{name} must be an integer, not {text!r}") from None


def truthy(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


# Per request: dryRun=All sent in a DELETE's DeleteOptions body (where kubectl sends it).
DRY_RUN_BODY: web.RequestKey[bool] = web.RequestKey("dry_run_body", bool)


def dry_run(request: web.Request) -> bool:
    return "All" in request.query.getall("dryRun", []) or request.get(DRY_RUN_BODY, False)


async def read_delete_dry_run(request: web.Request) -> None:
    """A DELETE may say ``dryRun`` in its DeleteOptions body instead of the query (kubectl
    ``delete --dry-run=server`` does): ``dry_run`` then sees it too."""
    if not request.can_read_body:
        return
    try:
        body = msgspec.json.decode(await request.read())
    except msgspec.DecodeError:
        return
    if isinstance(body, dict) and isinstance(body.get("dryRun"), list) and "All" in body["dryRun"]:
        request[DRY_RUN_BODY] = True


def table_version(request: web.Request) -> str | None:
    """The Table version the client asked for (``kubectl get``), or None for plain objects."""
    version = api_table.table_version(request.headers.get("Accept", ""))
    if version is not None and request.query.get("includeObject", "Metadata") not in api_table.INCLUDE_OBJECT:
        raise ApiError(400, "BadRequest", f"includeObject must be one of {', '.join(api_table.INCLUDE_OBJECT)}")
    return version


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


def parse_target(request: web.Request) -> Target:
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
