"""Identity and access on every request: authentication, impersonation, RBAC authorization,
and the API's own identity endpoints (TokenRequest, SelfSubjectAccessReview,
SelfSubjectRulesReview, SelfSubjectReview).

The middleware answers 401 for a request no authenticator recognises and 403 (a ``Status``
with reason ``Forbidden`` in the API server's words) for one RBAC does not allow. Members of
``system:masters`` (the admin token) are allowed everything without consulting RBAC, as the
API server's privileged-group authorizer does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .._errors import NotFound
from ..api.core import Pod
from ..api.rbac import ServiceAccount
from .authn import ANONYMOUS_USER, AUTHENTICATED, Authenticator, UserInfo, service_account_of
from .authz import RBAC, Attributes, forbidden_message, request_attributes
from .errors import ApiError
from .keys import STORE_KEY
from .request import read_body
from .response import json_response
from .tokens import Binding, bound_claims

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

AUTHN_KEY = web.AppKey("authn", Authenticator)
RBAC_KEY = web.AppKey("rbac", RBAC)
USER_KEY: web.RequestKey[UserInfo] = web.RequestKey("user", UserInfo)

# The one path anyone may read without credentials (for health checks); everything else needs a
# token, as with an API server that runs without anonymous access.
PUBLIC_PATHS = frozenset({"/healthz"})

AUTHN_GROUP = "authentication.k8s.io"
AUTHZ_GROUP = "authorization.k8s.io"
TOKEN_PATH = "/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 1 << 32
BOUND_KINDS = {"Pod": "v1", "Secret": "v1", "Node": "v1"}


def user_of(request: web.Request) -> UserInfo:
    return request.get(USER_KEY) or ANONYMOUS_USER


def _bearer(request: web.Request) -> str | None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" and given.strip() else None


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = _bearer(request)
    if token is None and request.path in PUBLIC_PATHS and request.method == "GET":
        return await handler(request)
    user = request.app[AUTHN_KEY].authenticate(token) if token is not None else None
    if user is None:
        raise ApiError(401, "Unauthorized", "Unauthorized")
    rbac = request.app[RBAC_KEY]
    user = _impersonate(request, user, rbac)
    request[USER_KEY] = user
    if not user.master:
        a = request_attributes(request.method, request.path, dict(request.query))
        allowed, reason = rbac.authorize(user, a)
        if not allowed:
            raise _forbidden(user, a, reason)
    return await handler(request)


def _forbidden(user: UserInfo, a: Attributes, reason: str = "") -> ApiError:
    return ApiError(403, "Forbidden", forbidden_message(user, a, reason), kind=a.resource, name=a.name)


def _impersonate(request: web.Request, user: UserInfo, rbac: RBAC) -> UserInfo:
    """The ``Impersonate-*`` headers: each name asked for must be allowed the ``impersonate``
    verb (on users, groups, serviceaccounts, uids, userextras/<key>)."""
    h = request.headers
    name = h.get("Impersonate-User")
    groups = h.getall("Impersonate-Group", [])
    uid = h.get("Impersonate-Uid", "")
    prefix = "impersonate-extra-"
    extras = {k[len(prefix) :].lower(): h.getall(k) for k in dict.fromkeys(h) if k.lower().startswith(prefix)}
    if name is None:
        if groups or uid or extras:
            raise ApiError(500, "InternalError", "requested impersonation without a user: Impersonate-User is required")
        return user
    checks: list[Attributes] = []
    sa = service_account_of(name)
    if sa is not None:
        checks.append(Attributes("impersonate", True, "", "", "v1", "serviceaccounts", "", sa[0], sa[1]))
    else:
        checks.append(Attributes("impersonate", True, "", "", "v1", "users", "", "", name))
    checks += [Attributes("impersonate", True, "", "", "v1", "groups", "", "", g) for g in groups]
    if uid:
        checks.append(Attributes("impersonate", True, "", AUTHN_GROUP, "v1", "uids", "", "", uid))
    for key, values in extras.items():
        checks += [Attributes("impersonate", True, "", AUTHN_GROUP, "v1", "userextras", key, "", v) for v in values]
    for a in checks:
        allowed, reason = rbac.authorize(user, a)
        if not allowed:
            raise _forbidden(user, a, reason)
    all_groups = list(groups)
    if sa is not None:
        all_groups += [g for g in ("system:serviceaccounts", f"system:serviceaccounts:{sa[0]}") if g not in all_groups]
    if AUTHENTICATED not in all_groups and name != "system:anonymous":
        all_groups.append(AUTHENTICATED)
    return UserInfo(name, tuple(all_groups), uid, extras)


# --- TokenRequest -------------------------------------------------------------------------------


def _now_text(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _body(request: web.Request) -> dict[str, Any]:
    """The request's object, sent as JSON or (typed clients: kubectl 1.3x) as protobuf."""
    doc = await read_body(request)
    if not isinstance(doc, dict):
        raise ApiError(400, "BadRequest", "the request body must be a JSON object")
    return doc


def _invalid(kind: str, name: str, field: str, message: str) -> ApiError:
    cause = {"reason": "FieldValueInvalid", "message": message, "field": field}
    return ApiError(
        422, "Invalid", f'{kind} "{name}" is invalid: {field}: {message}', kind=kind, name=name, causes=[cause]
    )


def issue_token(
    request: web.Request, ns: str, name: str, spec: dict[str, Any]
) -> tuple[str, int, list[str], dict[str, Any] | None]:
    """A bound token for ServiceAccount ``ns/name``: (token, expiry, audiences, boundObjectRef)."""
    store = request.app[STORE_KEY]
    authn = request.app[AUTHN_KEY]
    what = f"TokenRequest.{AUTHN_GROUP}"
    sa = store.get("ServiceAccount", ns, name)
    assert isinstance(sa, ServiceAccount)
    seconds = spec.get("expirationSeconds")
    if seconds is None:
        seconds = DEFAULT_EXPIRATION
    if not isinstance(seconds, int) or seconds < MIN_EXPIRATION:
        raise _invalid(
            what,
            name,
            "spec.expirationSeconds",
            f"Invalid value: {seconds}: may not specify a duration less than 10 minutes",
        )
    if seconds > MAX_EXPIRATION:
        raise _invalid(
            what,
            name,
            "spec.expirationSeconds",
            f"Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds",
        )
    audiences = spec.get("audiences") or list(authn.audiences)
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise ApiError(400, "BadRequest", "spec.audiences must be a list of strings")
    ref = spec.get("boundObjectRef")
    bound: Binding | None = None
    node: tuple[str, str] | None = None
    if ref is not None:
        if not isinstance(ref, dict):
            raise ApiError(400, "BadRequest", "spec.boundObjectRef must be an object")
        kind, obj_name, uid = str(ref.get("kind", "")), str(ref.get("name", "")), str(ref.get("uid", ""))
        if kind not in BOUND_KINDS:
            raise ApiError(
                400, "BadRequest", f'cannot bind token for serviceaccount "{name}" to object of kind "{kind}"'
            )
        try:
            obj = store.get(kind, None if kind == "Node" else ns, obj_name)
        except NotFound:
            raise ApiError(
                404, "NotFound", f'{kind.lower()}s "{obj_name}" not found', kind=f"{kind.lower()}s", name=obj_name
            ) from None
        if uid and obj.metadata.uid != uid:
            raise ApiError(
                409,
                "Conflict",
                f"the UID in the bound object reference ({uid}) does not match the UID in record. "
                "The object might have been deleted and then recreated",
            )
        if isinstance(obj, Pod):
            if (obj.spec.serviceAccountName or "default") != name:
                raise ApiError(
                    400,
                    "BadRequest",
                    f'cannot bind token for serviceaccount "{name}" to pod running with different serviceaccount name.',
                )
            if obj.spec.nodeName:
                try:
                    n = store.get("Node", None, obj.spec.nodeName)
                    node = (n.name, n.metadata.uid or "")
                except NotFound:
                    node = None
        if kind != "Node":
            bound = Binding(kind, obj_name, obj.metadata.uid or "")
        else:
            node = (obj.name, obj.metadata.uid or "")
        ref = {"kind": kind, "apiVersion": BOUND_KINDS[kind], "name": obj_name, "uid": obj.metadata.uid or ""}
    now = int(time.time())
    claims = bound_claims(authn.issuer, audiences, ns, name, sa.metadata.uid or "", seconds, bound, node, now=now)
    return authn.key.sign(claims), now + seconds, audiences, ref


async def _token_request(request: web.Request) -> web.Response:
    ns, name = request.match_info["namespace"], request.match_info["name"]
    if request.method != "POST":
        raise ApiError(405, "MethodNotAllowed", f"the server does not allow {request.method} on the requested resource")
    doc = await _body(request)
    spec = doc.get("spec") or {}
    if not isinstance(spec, dict):
        raise ApiError(400, "BadRequest", "spec must be an object")
    token, exp, audiences, ref = issue_token(request, ns, name, spec)
    out_spec: dict[str, Any] = {
        "audiences": audiences,
        "expirationSeconds": spec.get("expirationSeconds") or DEFAULT_EXPIRATION,
    }
    if ref is not None:
        out_spec["boundObjectRef"] = ref
    body = {
        "kind": "TokenRequest",
        "apiVersion": f"{AUTHN_GROUP}/v1",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": _now_text(time.time())},
        "spec": out_spec,
        "status": {"token": token, "expirationTimestamp": _now_text(exp)},
    }
    return json_response(body, 201)


# --- reviews ------------------------------------------------------------------------------------


def _review(doc: dict[str, Any], kind: str, group_version: str, status: dict[str, Any]) -> dict[str, Any]:
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    return {
        "kind": kind,
        "apiVersion": group_version,
        "metadata": {**(meta or {}), "creationTimestamp": None},
        "spec": doc.get("spec") or {},
        "status": status,
    }


async def _self_subject_access_review(request: web.Request) -> web.Response:
    doc = await _body(request)
    spec = doc.get("spec") or {}
    user = user_of(request)
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if isinstance(ra, dict):
        a = Attributes(
            str(ra.get("verb", "")),
            True,
            "",
            str(ra.get("group", "")),
            str(ra.get("version", "")),
            str(ra.get("resource", "")),
            str(ra.get("subresource", "")),
            str(ra.get("namespace", "")),
            str(ra.get("name", "")),
        )
    elif isinstance(nra, dict):
        a = Attributes(str(nra.get("verb", "")), False, str(nra.get("path", "")))
    else:
        cause = {
            "reason": "FieldValueRequired",
            "message": "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
            "field": "spec.resourceAttributes",
        }
        raise ApiError(
            422,
            "Invalid",
            'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Required value: '
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            causes=[cause],
        )
    allowed, reason = request.app[RBAC_KEY].authorize(user, a)
    status: dict[str, Any] = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return json_response(_review(doc, "SelfSubjectAccessReview", f"{AUTHZ_GROUP}/v1", status), 201)


async def _self_subject_rules_review(request: web.Request) -> web.Response:
    doc = await _body(request)
    spec = doc.get("spec") or {}
    ns = str(spec.get("namespace") or "")
    user = user_of(request)
    errors: list[str] = []
    resource_rules: list[dict[str, Any]] = []
    url_rules: list[dict[str, Any]] = []
    for rule in request.app[RBAC_KEY].rules_for(user, ns, errors):
        if rule.nonResourceURLs:
            url_rules.append({"verbs": rule.verbs or [], "nonResourceURLs": rule.nonResourceURLs})
        else:
            r: dict[str, Any] = {
                "verbs": rule.verbs or [],
                "apiGroups": rule.apiGroups or [],
                "resources": rule.resources or [],
            }
            if rule.resourceNames:
                r["resourceNames"] = rule.resourceNames
            resource_rules.append(r)
    status: dict[str, Any] = {
        "resourceRules": resource_rules,
        "nonResourceRules": url_rules,
        "incomplete": bool(errors),
    }
    if errors:
        status["evaluationError"] = ", ".join(errors)
    return json_response(_review(doc, "SelfSubjectRulesReview", f"{AUTHZ_GROUP}/v1", status), 201)


async def _self_subject_review(request: web.Request) -> web.Response:
    doc = await _body(request) if request.can_read_body else {}
    version = request.match_info.get("version", "v1")
    body = {
        "kind": "SelfSubjectReview",
        "apiVersion": f"{AUTHN_GROUP}/{version}",
        "metadata": {"creationTimestamp": None},
        "status": {"userInfo": user_of(request).as_dict()},
    }
    del doc
    return json_response(body, 201)


# --- service account issuer discovery (OIDC) ------------------------------------------------------


async def _openid_configuration(request: web.Request) -> web.Response:
    """The issuer's OpenID provider configuration, for verifiers of ServiceAccount tokens."""
    authn = request.app[AUTHN_KEY]
    body = {
        "issuer": authn.issuer,
        "jwks_uri": f"{authn.issuer}/openid/v1/jwks",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }
    return json_response(body)


async def _jwks(request: web.Request) -> web.Response:
    resp = json_response({"keys": [request.app[AUTHN_KEY].key.jwk()]})
    resp.content_type = "application/jwk-set+json"
    return resp


# Resources served here but not stored: (group/version, plural, kind, namespaced) for discovery.
REVIEW_RESOURCES = (
    (f"{AUTHN_GROUP}/v1", "selfsubjectreviews", "SelfSubjectReview", False),
    (f"{AUTHZ_GROUP}/v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False),
    (f"{AUTHZ_GROUP}/v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", False),
)
# Subresources beyond status and scale: kind -> (subresource, its kind, group, version, verbs).
EXTRA_SUBRESOURCES = {"ServiceAccount": [("token", "TokenRequest", AUTHN_GROUP, "v1", ["create"])]}


def add_routes(app: web.Application) -> None:
    """The identity endpoints; added ahead of the generic resource routes."""
    r = app.router
    r.add_route("*", TOKEN_PATH, _token_request)
    r.add_post(f"/apis/{AUTHZ_GROUP}/v1/selfsubjectaccessreviews", _self_subject_access_review)
    r.add_post(f"/apis/{AUTHZ_GROUP}/v1/selfsubjectrulesreviews", _self_subject_rules_review)
    # kubectl auth whoami tries v1, then the beta and alpha versions older clusters served.
    r.add_post(f"/apis/{AUTHN_GROUP}/{{version:v1|v1beta1|v1alpha1}}/selfsubjectreviews", _self_subject_review)
    # Readable by every ServiceAccount (system:service-account-issuer-discovery).
    r.add_get("/.well-known/openid-configuration", _openid_configuration)
    r.add_get("/openid/v1/jwks", _jwks)
