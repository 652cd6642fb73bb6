"""Who a request comes from: the admin's bearer token or a ServiceAccount's JWT, and
impersonation (``Impersonate-User`` / ``-Group`` / ``-Uid`` / ``-Extra-*`` headers).

The admin token is user ``kins-admin`` in ``system:masters``; a ServiceAccount token is
``system:serviceaccount:<ns>:<name>`` in the ServiceAccount groups, valid while it is unexpired,
its ServiceAccount still exists with the uid it names, and the pod or secret it is bound to still
exists. Anything else is 401, as an API server without anonymous access answers.
"""

from __future__ import annotations

import base64
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

from .._errors import NotFound
from ..api.core import Secret
from ..api.rbac import service_account_groups
from ..store.base import Store
from .tokens import CLOCK_SKEW, LEGACY_ISSUER, SigningKey

ADMIN_USER = "kins-admin"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict)

    @property
    def master(self) -> bool:
        return MASTERS in self.groups

    def as_dict(self) -> dict[str, Any]:
        """The authentication.k8s.io UserInfo."""
        out: dict[str, Any] = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = self.extra
        return out


ADMIN = UserInfo(ADMIN_USER, (MASTERS, AUTHENTICATED))
ANONYMOUS_USER = UserInfo(ANONYMOUS, (UNAUTHENTICATED,))


class Authenticator:
    def __init__(self, admin_token: str, key: SigningKey, audiences: list[str], issuer: str, store: Store) -> None:
        self.admin_token = admin_token.encode()
        self.key = key
        self.audiences = audiences
        self.issuer = issuer
        self.store = store

    def authenticate(self, token: str) -> UserInfo | None:
        # compare_digest keeps the comparison time independent of where the tokens differ.
        if hmac.compare_digest(token.encode(), self.admin_token):
            return ADMIN
        claims = self.key.verify(token)
        if claims is None:
            return None
        if claims.get("iss") == LEGACY_ISSUER:
            return self._legacy(token, claims)
        return self._bound(claims)

    def _service_account(self, ns: str, name: str, uid: str) -> bool:
        try:
            sa = self.store.get("ServiceAccount", ns, name)
        except NotFound:
            return False
        return sa.metadata.uid == uid and sa.metadata.deletionTimestamp is None

    def _alive(self, kind: str, ns: str, ref: Any) -> bool:
        if not isinstance(ref, dict):
            return False
        try:
            obj = self.store.get(kind, ns, str(ref.get("name", "")))
        except NotFound:
            return False
        return obj.metadata.uid == ref.get("uid")

    def _bound(self, claims: dict[str, Any]) -> UserInfo | None:
        now = time.time()
        if claims.get("iss") != self.issuer:
            return None
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int) or now > exp + CLOCK_SKEW or not isinstance(nbf, int) or now < nbf - CLOCK_SKEW:
            return None
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not set(auds) & set(self.audiences):
            return None
        private = claims.get("kubernetes.io")
        if not isinstance(private, dict):
            return None
        ns = private.get("namespace")
        sa = private.get("serviceaccount")
        if not isinstance(ns, str) or not isinstance(sa, dict):
            return None
        name, uid = str(sa.get("name", "")), str(sa.get("uid", ""))
        if claims.get("sub") != f"{SA_PREFIX}{ns}:{name}" or not self._service_account(ns, name, uid):
            return None
        extra: dict[str, list[str]] = {}
        for kind in ("pod", "secret"):
            ref = private.get(kind)
            if ref is not None:
                if not self._alive(kind.capitalize(), ns, ref):
                    return None
                extra[f"authentication.kubernetes.io/{kind}-name"] = [str(ref["name"])]
                extra[f"authentication.kubernetes.io/{kind}-uid"] = [str(ref["uid"])]
        node = private.get("node")
        if isinstance(node, dict):
            extra["authentication.kubernetes.io/node-name"] = [str(node.get("name", ""))]
            extra["authentication.kubernetes.io/node-uid"] = [str(node.get("uid", ""))]
        if isinstance(claims.get("jti"), str):
            extra["authentication.kubernetes.io/credential-id"] = [f"JTI={claims['jti']}"]
        return UserInfo(claims["sub"], tuple(service_account_groups(ns)), uid, extra)

    def _legacy(self, token: str, claims: dict[str, Any]) -> UserInfo | None:
        keys = ("namespace", "secret.name", "service-account.name", "service-account.uid")
        values = [claims.get(f"kubernetes.io/serviceaccount/{k}") for k in keys]
        if not all(isinstance(v, str) and v for v in values):
            return None
        ns, secret, name, uid = (str(v) for v in values)
        if not self._service_account(ns, name, uid):
            return None
        # The token lives as long as its Secret holds it.
        try:
            sec = self.store.get("Secret", ns, secret)
        except NotFound:
            return None
        held = (sec.data or {}).get("token", "") if isinstance(sec, Secret) else ""
        try:
            if base64.b64decode(held).decode() != token:
                return None
        except ValueError:
            return None
        return UserInfo(f"{SA_PREFIX}{ns}:{name}", tuple(service_account_groups(ns)), uid)


def service_account_of(user: str) -> tuple[str, str] | None:
    """``system:serviceaccount:ns:name`` -> (ns, name)."""
    if not user.startswith(SA_PREFIX):
        return None
    ns, sep, name = user[len(SA_PREFIX) :].partition(":")
    return (ns, name) if sep and ns and name else None
