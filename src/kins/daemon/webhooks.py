"""Validating admission webhooks, called as the API server calls them.

Before a create or update is stored, every ValidatingWebhookConfiguration's webhooks whose rules
match the write (group, version, resource, operation; namespace and object selectors) are sent
an AdmissionReview v1. A webhook backed by a Service is reached at a ready endpoint of it, from
the namespace of the node that runs that endpoint (pod addresses are routed there, not in the
host's namespace), over TLS verified with the webhook's ``caBundle`` for the name
``<service>.<namespace>.svc``. A denial refuses the write with the webhook's message; a webhook
that cannot be called refuses it under ``failurePolicy: Fail`` and is skipped under ``Ignore``.

The call is synchronous, as the rest of a write is: it holds the API for as long as the webhook
takes (its ``timeoutSeconds`` at most, 10 s by default).
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import uuid
from typing import Any

from .._errors import NotFound
from ..api.admissionregistration import ValidatingWebhook, ValidatingWebhookConfiguration
from ..api.config import ClusterConfig
from ..api.core import Endpoints, Namespace, Service
from ..api.load import to_dict
from ..api.meta import Object, selector_matches
from ..api.resources import resource_for
from ..apiserver.errors import ApiError
from ..kernel import netns as kns
from ..runtime.linux import socket_in_netns
from ..store.base import Store


def _match(values: list[str] | None, value: str) -> bool:
    return bool(values) and ("*" in (values or []) or value in (values or []))


def rule_matches(hook: ValidatingWebhook, group: str, version: str, resource: str, op: str, namespaced: bool) -> bool:
    for r in hook.rules or []:
        scope = r.scope or "*"
        if (scope == "Namespaced" and not namespaced) or (scope == "Cluster" and namespaced):
            continue
        if (
            _match(r.apiGroups, group)
            and _match(r.apiVersions, version)
            and _match(r.resources, resource)
            and _match(r.operations, op)
        ):
            return True
    return False


def _status_only(obj: Object, old: Object) -> bool:
    def rest(o: Object) -> dict[str, Any]:
        d = to_dict(o)
        d.pop("status", None)
        meta = dict(d.get("metadata") or {})
        for k in ("resourceVersion", "managedFields", "generation"):
            meta.pop(k, None)
        d["metadata"] = meta
        return d

    return rest(obj) == rest(old)


class WebhookError(Exception):
    pass


class Webhooks:
    def __init__(self, store: Store, cfg: ClusterConfig) -> None:
        self.store = store
        self.cfg = cfg

    def admit(self, obj: Object, old: Object | None) -> None:
        """Raises ApiError when a matching webhook denies the write (or cannot be called and
        fails closed)."""
        if isinstance(obj, ValidatingWebhookConfiguration):
            return  # never gated by webhooks, as upstream: a broken one could not be fixed
        configs = self.store.list("ValidatingWebhookConfiguration")[0]
        if not configs:
            return
        try:
            res = resource_for(obj.kind)
        except KeyError:
            return
        op = "CREATE" if old is None else "UPDATE"
        if old is not None and _status_only(obj, old):
            return  # a write of the status subresource: rules name resources, not */status
        for cfg in configs:
            assert isinstance(cfg, ValidatingWebhookConfiguration)
            for hook in cfg.webhooks or []:
                if not rule_matches(hook, res.group, res.version, res.plural, op, res.namespaced):
                    continue
                if not selector_matches(hook.objectSelector, obj.labels) or not self._ns_matches(hook, obj):
                    continue
                self._call(hook, res.group, res.version, res.kind, res.plural, op, obj, old)

    def _ns_matches(self, hook: ValidatingWebhook, obj: Object) -> bool:
        sel = hook.namespaceSelector
        if sel is None or not (sel.matchLabels or sel.matchExpressions) or not obj.namespace:
            return True
        try:
            ns = self.store.get("Namespace", None, obj.namespace)
        except NotFound:
            return True
        return isinstance(ns, Namespace) and selector_matches(sel, ns.labels)

    def _call(
        self, hook: ValidatingWebhook, group: str, version: str, kind: str, plural: str, op: str, obj: Object,
        old: Object | None,
    ) -> None:  # fmt: skip
        request = {
            "uid": str(uuid.uuid4()),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": plural},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": plural},
            "name": obj.name,
            "namespace": obj.namespace or "",
            "operation": op,
            "userInfo": {"username": "kins"},
            "object": to_dict(obj),
            "oldObject": to_dict(old) if old is not None else None,
            "dryRun": False,
        }
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
        try:
            answer = self._post(hook, review)
            response = answer.get("response") or {}
            if response.get("uid") != request["uid"]:
                raise WebhookError("the AdmissionReview answered has another uid")
        except (WebhookError, OSError, ssl.SSLError, http.client.HTTPException, ValueError) as e:
            if (hook.failurePolicy or "Fail") == "Ignore":
                return
            raise ApiError(
                500, "InternalError", f'Internal error occurred: failed calling webhook "{hook.name}": {e}'
            ) from None
        if response.get("allowed") is True:
            return
        status = response.get("status") or {}
        message = status.get("message") or ""
        code = int(status.get("code") or 400)
        text = f'admission webhook "{hook.name}" denied the request' + (f": {message}" if message else "")
        reason = status.get("reason") or ("BadRequest" if code == 400 else "Forbidden")
        raise ApiError(code, reason, text, kind=plural, name=obj.name)

    def _post(self, hook: ValidatingWebhook, review: dict[str, Any]) -> dict[str, Any]:
        cc = hook.clientConfig
        if cc is None or cc.service is None:
            raise WebhookError("kins calls webhooks backed by a Service only (clientConfig.url is not supported)")
        ref = cc.service
        ns, name = ref.namespace or "default", ref.name or ""
        host = f"{name}.{ns}.svc"
        ip, port, node = self._endpoint(ns, name, ref.port or 443)
        path = (ref.path or "/") + f"?timeout={hook.timeoutSeconds or 10}s"
        ctx = ssl.create_default_context()
        if cc.caBundle:
            ctx = ssl.create_default_context(cadata=base64.b64decode(cc.caBundle).decode())
        timeout = float(hook.timeoutSeconds or 10)
        sock = socket_in_netns(kns.path(kns.node_ns(self.cfg.name, node)))
        try:
            sock.settimeout(timeout)
            sock.connect((ip, port))
            tls = ctx.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
        conn.sock = tls
        try:
            body = json.dumps(review).encode()
            conn.request("POST", path, body, {"Content-Type": "application/json", "Accept": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise WebhookError(f"the webhook answered HTTP {resp.status}: {data[:200]!r}")
            out = json.loads(data)
        finally:
            conn.close()
        if not isinstance(out, dict):
            raise WebhookError("the webhook answered no AdmissionReview")
        return out

    def _endpoint(self, ns: str, name: str, port: int) -> tuple[str, int, str]:
        """A ready endpoint of the Service's ``port``: (pod IP, target port, node)."""
        try:
            svc = self.store.get("Service", ns, name)
            eps = self.store.get("Endpoints", ns, name)
        except NotFound:
            raise WebhookError(f'service "{name}" not found') from None
        assert isinstance(svc, Service) and isinstance(eps, Endpoints)
        port_name = next((p.name or "" for p in svc.spec.ports or [] if p.port == port), None)
        if port_name is None:
            raise WebhookError(f'service "{name}" has no port {port}')
        for subset in eps.subsets or []:
            target = next((p.port for p in subset.ports or [] if (p.name or "") == port_name), None)
            for a in subset.addresses or []:
                if target is not None and a.nodeName:
                    return a.ip, target, a.nodeName
        raise WebhookError(f'no endpoints available for service "{name}"')
