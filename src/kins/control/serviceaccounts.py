"""The ServiceAccount controllers of kube-controller-manager: a ``default`` ServiceAccount in
every namespace, the ``kube-root-ca.crt`` ConfigMap (the API's certificate, which the projected
``ca.crt`` of pods comes from), and the tokens of legacy token Secrets.

A Secret of type ``kubernetes.io/service-account-token`` that names its ServiceAccount in the
``kubernetes.io/service-account.name`` annotation gets ``token`` (a JWT that never expires),
``ca.crt`` and ``namespace``, and the ServiceAccount's uid in an annotation; it is deleted when
its ServiceAccount goes.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterable

from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.core import ConfigMap, Secret
from ..api.meta import ObjectMeta
from ..api.rbac import ServiceAccount
from ..store.base import DELETED, Store, WatchEvent

DEFAULT = "default"
ROOT_CA = "kube-root-ca.crt"
TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME = "kubernetes.io/service-account.name"
SA_UID = "kubernetes.io/service-account.uid"
ROOT_CA_ANNOTATION = "kubernetes.io/description"
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
    "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
    "distributions of Kubernetes clusters."
)

# (namespace, secret name, ServiceAccount name, ServiceAccount uid) -> a legacy token
LegacySigner = Callable[[str, str, str, str], str]


def _b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


class ServiceAccountController:
    """Keys: ``ns/<namespace>`` (its default ServiceAccount and root CA ConfigMap) and
    ``secret/<namespace>/<name>`` (a token Secret to fill or remove)."""

    name = "serviceaccount"
    kinds = frozenset({"Namespace", "ServiceAccount", "ConfigMap", "Secret"})

    def __init__(self, store: Store, ca_pem: bytes | None, sign: LegacySigner | None) -> None:
        self.store = store
        self.ca_pem = ca_pem
        self.sign = sign
        self._namespaces: set[str] = set()
        self._token_secrets: dict[str, set[str]] = {}  # "ns/sa" -> names of its token Secrets

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        obj = ev.object
        if obj.kind == "Namespace":
            if ev.type == DELETED:
                self._namespaces.discard(obj.name)
                return ()
            self._namespaces.add(obj.name)
            return () if obj.metadata.deletionTimestamp else (f"ns/{obj.name}",)
        if obj.kind == "ServiceAccount":
            keys = [f"ns/{obj.namespace}"] if obj.name == DEFAULT and ev.type == DELETED else []
            keys += [f"secret/{obj.namespace}/{s}" for s in self._token_secrets.get(f"{obj.namespace}/{obj.name}", ())]
            return keys
        if obj.kind == "ConfigMap":
            return [f"ns/{obj.namespace}"] if obj.name == ROOT_CA else ()
        if isinstance(obj, Secret) and obj.type == TOKEN_TYPE:
            sa = (obj.metadata.annotations or {}).get(SA_NAME, "")
            bucket = self._token_secrets.setdefault(f"{obj.namespace}/{sa}", set())
            if ev.type == DELETED:
                bucket.discard(obj.name)
                return ()
            bucket.add(obj.name)
            return (f"secret/{obj.namespace}/{obj.name}",)
        return ()

    def start_keys(self) -> Iterable[str]:
        return [f"ns/{n}" for n in sorted(self._namespaces)]

    def reconcile(self, key: str) -> bool:
        kind, _, rest = key.partition("/")
        if kind == "ns":
            return self._namespace(rest)
        ns, _, name = rest.partition("/")
        return self._secret(ns, name)

    def _namespace(self, ns: str) -> bool:
        if ns not in self._namespaces:
            return False
        try:
            if self.store.get("Namespace", None, ns).metadata.deletionTimestamp:
                return False
        except NotFound:
            return False
        wrote = False
        try:
            self.store.get("ServiceAccount", ns, DEFAULT)
        except NotFound:
            with contextlib.suppress(Conflict):
                self.store.create(ServiceAccount(metadata=ObjectMeta(name=DEFAULT, namespace=ns)))
                wrote = True
        if self.ca_pem is not None:
            want = {"ca.crt": self.ca_pem.decode()}
            try:
                cm = self.store.get("ConfigMap", ns, ROOT_CA)
                if isinstance(cm, ConfigMap) and cm.data != want:
                    self.store.update(replace(cm, data=want), check_rv=False)
                    wrote = True
            except NotFound:
                meta = ObjectMeta(name=ROOT_CA, namespace=ns, annotations={ROOT_CA_ANNOTATION: ROOT_CA_DESCRIPTION})
                with contextlib.suppress(Conflict):
                    self.store.create(ConfigMap(metadata=meta, data=want))
                    wrote = True
        return wrote

    def _secret(self, ns: str, name: str) -> bool:
        try:
            sec = self.store.get("Secret", ns, name)
        except NotFound:
            return False
        if not isinstance(sec, Secret) or sec.type != TOKEN_TYPE:
            return False
        ann = sec.metadata.annotations or {}
        sa_name = ann.get(SA_NAME, "")
        try:
            sa = self.store.get("ServiceAccount", ns, sa_name)
        except NotFound:
            sa = None
        if sa is None or (ann.get(SA_UID) and ann[SA_UID] != sa.metadata.uid):
            # Its ServiceAccount is gone (or was recreated): the token goes with it.
            with contextlib.suppress(NotFound):
                self.store.delete("Secret", ns, name)
                return True
            return False
        data = dict(sec.data or {})
        if data.get("token") and ann.get(SA_UID) == sa.metadata.uid:
            return False
        if self.sign is None:
            return False
        uid = sa.metadata.uid or ""
        data["token"] = _b64(self.sign(ns, name, sa_name, uid))
        data["namespace"] = _b64(ns)
        if self.ca_pem is not None:
            data["ca.crt"] = _b64(self.ca_pem)
        meta = replace(sec.metadata, annotations={**ann, SA_UID: uid})
        self.store.update(replace(sec, metadata=meta, data=data), check_rv=False)
        return True
