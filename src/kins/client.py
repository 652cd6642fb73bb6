"""A typed client of the kins API (the Kubernetes-shaped one ``kins up`` serves).

Objects go in and come out as kins.api types; API errors come back as the kins error classes
(NotFound, Conflict, Gone, MultiValidationError with the field paths of the Status causes), so
the CLI prints them like local errors.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import Generator, Iterator, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import msgspec
from msgspec.structs import replace

from . import __version__
from ._errors import Conflict, NotFound, error_from_status
from .api.load import to_object
from .api.meta import LabelSelector, Object
from .api.patch import three_way
from .api.resources import Resource, Scale, resource_for, selector_string
from .store.base import WatchEvent

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_RETRIES = 5
POLICY_LOG_PATH = "/kins/v1/policylog"
METRICS_PATH = "/kins/v1/metrics"

Selector = str | LabelSelector | dict[str, str] | None
# Records of the policy log as the API serves them (JSON objects, with their ``seq``).
PolicyLogItems = list[dict[str, Any]]


def _selector_text(selector: Selector) -> str | None:
    if selector is None:
        return None
    if isinstance(selector, str):
        return selector or None
    if isinstance(selector, dict):
        selector = LabelSelector(matchLabels=selector)
    return selector_string(selector) or None


def _where(kind: str, ns: str | None, name: str) -> str:
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


def _raise_for_stream(resp: httpx.Response, where: str = "") -> None:
    """A streamed response's error, read whole and worded as the API words it."""
    if resp.status_code < 400:
        return
    resp.read()
    try:
        body: Any = msgspec.json.decode(resp.content)
    except msgspec.DecodeError:
        body = resp.text
    raise error_from_status(resp.status_code, body, where)


class TokenFile(httpx.Auth):
    """A bearer token kept in a file, read again once a minute as client-go does: the kubelet
    renews a pod's projected ServiceAccount token in place."""

    REREAD = 60.0

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._token = ""
        self._read_at = -self.REREAD

    @property
    def token(self) -> str:
        now = time.monotonic()
        if now - self._read_at >= self.REREAD:
            with open(self.path) as f:
                self._token = f.read().strip()
            self._read_at = now
        return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class Client:
    """``Client(base_url, token)``: the verbs of the API, typed."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        ca_file: str | os.PathLike[str] | None = None,
        transport: httpx.BaseTransport | None = None,
        uds: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
    ) -> None:
        """``ca_file``: the certificate an ``https://`` API presents (its own CA); ``uds``: the
        unix socket the API listens on (``base_url`` then only names it); ``token_file``: where
        the token is kept, read again as it changes (``token`` is then not used)."""
        # What a streaming client (exec: kins.clientexec) needs to open its own connections.
        self.base_url = base_url.rstrip("/")
        self._token_file = TokenFile(token_file) if token_file is not None else None
        self._token = token
        self.ca_file = os.fspath(ca_file) if ca_file is not None else None
        self.uds = uds
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = ssl.create_default_context(cafile=os.fspath(ca_file))
        if transport is None and uds is not None:
            # No TLS over a unix socket: skipping the CA bundle saves ~40 ms per client.
            transport = httpx.HTTPTransport(uds=uds, verify=False)
        # The API names a writer's managedFields entries after the User-Agent's first segment.
        headers = {"Accept": "application/json", "User-Agent": f"kins/{__version__} (python-httpx)"}
        if self._token_file is None:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            verify=verify,
            transport=transport,
            auth=self._token_file,
        )

    @property
    def token(self) -> str:
        return self._token_file.token if self._token_file is not None else self._token

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        where: str = "",
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        content = msgspec.json.encode(body) if body is not None else None
        headers = {"Content-Type": content_type} if content is not None else None
        resp = self._http.request(method, path, params=params, content=content, headers=headers)
        data: Any
        try:
            data = msgspec.json.decode(resp.content) if resp.content else None
        except msgspec.DecodeError:
            data = resp.text
        if resp.status_code >= 400:
            raise error_from_status(resp.status_code, data, where)
        return data

    @staticmethod
    def _typed(data: Any) -> Object:
        return to_object(data, "API response")

    @staticmethod
    def _ns(res: Resource, ns: str | None) -> str | None:
        return (ns or "default") if res.namespaced else None

    def raw(self, method: str, path: str, **params: str) -> Any:
        """A request to any path (discovery, /version); the decoded JSON body."""
        return self._request(method, path, params=params or None)

    def raw_post(self, path: str, body: Any) -> Any:
        """A JSON POST to any path; the decoded JSON body."""
        return self._request("POST", path, body=body)

    # --- verbs ---------------------------------------------------------------------------------

    def get(self, kind: str, ns: str | None, name: str) -> Object:
        res = resource_for(kind)
        ns = self._ns(res, ns)
        return self._typed(self._request("GET", res.path(ns, name), where=_where(res.kind, ns, name)))

    def list_with_rv(
        self,
        kind: str,
        ns: str | None = None,
        selector: Selector = None,
        all_namespaces: bool = False,
        field_selector: str | None = None,
    ) -> tuple[list[Object], int]:
        """The objects and the list's resourceVersion (to watch from)."""
        res = resource_for(kind)
        path = res.path(None if all_namespaces else self._ns(res, ns))
        params: dict[str, str] = {}
        if (text := _selector_text(selector)) is not None:
            params["labelSelector"] = text
        if field_selector:
            params["fieldSelector"] = field_selector
        data = self._request("GET", path, params=params)
        items = [self._typed(i) for i in data.get("items") or []]
        return items, int(data.get("metadata", {}).get("resourceVersion") or 0)

    def list(
        self,
        kind: str,
        ns: str | None = None,
        selector: Selector = None,
        all_namespaces: bool = False,
        field_selector: str | None = None,
    ) -> list[Object]:
        """Objects of a kind in ``ns`` ("default" when omitted) or every namespace."""
        return self.list_with_rv(kind, ns, selector, all_namespaces, field_selector)[0]

    def create(self, obj: Object, *, dry_run: bool = False) -> Object:
        res = resource_for(obj.KIND)
        ns = self._ns(res, obj.metadata.namespace)
        params = {"dryRun": "All"} if dry_run else None
        data = self._request("POST", res.path(ns), body=obj, params=params, where=_where(res.kind, ns, obj.name))
        return self._typed(data)

    def update(self, obj: Object, *, dry_run: bool = False) -> Object:
        """PUT; with ``metadata.resourceVersion`` set, a stale object raises Conflict."""
        return self._put(obj, None, dry_run=dry_run)

    def update_status(self, obj: Object) -> Object:
        """PUT to ``/status``: only the status changes."""
        return self._put(obj, "status")

    def _put(self, obj: Object, sub: str | None, *, dry_run: bool = False) -> Object:
        res = resource_for(obj.KIND)
        ns = self._ns(res, obj.metadata.namespace)
        params = {"dryRun": "All"} if dry_run else None
        data = self._request(
            "PUT", res.path(ns, obj.name, sub), body=obj, params=params, where=_where(res.kind, ns, obj.name)
        )
        return self._typed(data)

    def patch(self, kind: str, ns: str | None, name: str, patch: dict[str, Any], *, strategic: bool = False) -> Object:
        """A JSON merge patch (``strategic=True``: a strategic merge patch)."""
        res = resource_for(kind)
        ns = self._ns(res, ns)
        data = self._request(
            "PATCH",
            res.path(ns, name),
            body=patch,
            content_type=STRATEGIC_PATCH if strategic else MERGE_PATCH,
            where=_where(res.kind, ns, name),
        )
        return self._typed(data)

    def delete(self, kind: str, ns: str | None, name: str, *, grace_period: int | None = None) -> Object:
        """DELETE; ``grace_period=0`` removes a running pod at once instead of marking it
        Terminating (what the kubelet sends once the pod has stopped)."""
        res = resource_for(kind)
        ns = self._ns(res, ns)
        params = {"gracePeriodSeconds": str(grace_period)} if grace_period is not None else None
        return self._typed(self._request("DELETE", res.path(ns, name), params=params, where=_where(res.kind, ns, name)))

    def apply(self, obj: Object, *, dry_run: bool = False) -> Object:
        """Create, or update like ``kubectl apply``: the manifest laid over the live object,
        fields dropped since the last apply removed, fields set by the server (clusterIP,
        nodePort, status) kept. The update carries the live resourceVersion; a concurrent
        write makes it retry."""
        res = resource_for(obj.KIND)
        annotations = dict(obj.metadata.annotations or {})
        annotations.pop(LAST_APPLIED, None)
        manifest = replace(obj, metadata=replace(obj.metadata, annotations=annotations or None, resourceVersion=None))
        new = msgspec.to_builtins(manifest)
        # Recorded on the object, as kubectl does, so the next apply knows what it set before.
        annotations[LAST_APPLIED] = msgspec.json.encode(new, order="sorted").decode()
        for _ in range(APPLY_RETRIES):
            try:
                live = self.get(res.kind, obj.metadata.namespace, obj.name)
            except NotFound:
                with_note = replace(obj, metadata=replace(obj.metadata, annotations=annotations))
                try:
                    return self.create(with_note, dry_run=dry_run)
                except Conflict:
                    continue  # created meanwhile: update it
            live_doc = msgspec.to_builtins(live)
            last_text = (live.metadata.annotations or {}).get(LAST_APPLIED)
            last = json.loads(last_text) if last_text else None
            merged = three_way(live_doc, last, new)
            merged["metadata"]["annotations"] = {**(merged["metadata"].get("annotations") or {}), **annotations}
            merged["metadata"]["resourceVersion"] = live.metadata.resourceVersion
            try:
                return self.update(self._typed(merged), dry_run=dry_run)
            except Conflict:
                continue
        raise Conflict(f"{_where(res.kind, obj.metadata.namespace, obj.name)}: changed by others while applying")

    def scale(self, ns: str | None, name: str, replicas: int, kind: str = "Deployment") -> Scale:
        """Set ``spec.replicas`` through the ``/scale`` subresource; returns the new Scale."""
        res = resource_for(kind)
        ns = self._ns(res, ns)
        data = self._request(
            "PATCH",
            res.path(ns, name, "scale"),
            body={"spec": {"replicas": replicas}},
            content_type=MERGE_PATCH,
            where=_where(res.kind, ns, name),
        )
        return msgspec.convert(data, Scale)

    def get_scale(self, ns: str | None, name: str, kind: str = "Deployment") -> Scale:
        res = resource_for(kind)
        ns = self._ns(res, ns)
        return msgspec.convert(self._request("GET", res.path(ns, name, "scale")), Scale)

    def log(
        self,
        ns: str | None,
        name: str,
        *,
        container: str | None = None,
        follow: bool = False,
        previous: bool = False,
        **options: str,
    ) -> Iterator[bytes]:
        """A pod's log (``pods/NAME/log``), as it arrives; ``options``: the other PodLogOptions
        (``tailLines``, ``sinceSeconds``, ``timestamps`` ...)."""
        ns = ns or "default"
        params = dict(options)
        if container:
            params["container"] = container
        if follow:
            params["follow"] = "true"
        if previous:
            params["previous"] = "true"
        path = resource_for("Pod").path(ns, name, "log")
        # Following, the stream may stay quiet for as long as the container does.
        timeout = httpx.Timeout(10.0, read=None) if follow else None
        with self._http.stream("GET", path, params=params, timeout=timeout or httpx.USE_CLIENT_DEFAULT) as resp:
            _raise_for_stream(resp, _where("Pod", ns, name))
            yield from resp.iter_bytes()

    def watch(
        self,
        kind: str,
        ns: str | None = None,
        rv: int | str | None = None,
        *,
        selector: Selector = None,
        all_namespaces: bool = False,
        timeout: float | None = None,
    ) -> Iterator[WatchEvent]:
        """Events after ``rv`` (None: the current objects as ADDED first, then changes) until
        ``timeout`` seconds pass or the caller stops iterating. Gone if ``rv`` is too old."""
        for etype, obj, ev_rv in self.watch_stream(
            kind, rv, ns=ns, selector=selector, all_namespaces=all_namespaces, timeout=timeout
        ):
            if obj is not None:
                yield WatchEvent(etype, obj, ev_rv)

    def watch_stream(
        self,
        kind: str,
        rv: int | str | None = None,
        *,
        ns: str | None = None,
        selector: Selector = None,
        all_namespaces: bool = True,
        timeout: float | None = None,
        bookmarks: bool = False,
    ) -> Iterator[tuple[str, Object | None, int]]:
        """``(type, object, resourceVersion)`` for each event; with ``bookmarks`` also
        ``("BOOKMARK", None, rv)``: nothing of this kind changed up to ``rv``."""
        res = resource_for(kind)
        path = res.path(None if all_namespaces else self._ns(res, ns))
        params = {"watch": "true"}
        if rv is not None:
            params["resourceVersion"] = str(rv)
        if timeout is not None:
            params["timeoutSeconds"] = str(max(1, int(timeout)))
        if bookmarks:
            params["allowWatchBookmarks"] = "true"
        if (text := _selector_text(selector)) is not None:
            params["labelSelector"] = text
        # The read timeout must outlast quiet periods of the stream.
        read_timeout = None if timeout is None else timeout + 10
        with self._http.stream("GET", path, params=params, timeout=httpx.Timeout(10.0, read=read_timeout)) as resp:
            _raise_for_stream(resp)
            for line in resp.iter_lines():
                if not line.strip():
                    continue
                ev = msgspec.json.decode(line)
                etype = ev.get("type")
                if etype == "ERROR":
                    status = ev.get("object") or {}
                    raise error_from_status(int(status.get("code") or 500), status)
                if etype == "BOOKMARK":
                    meta = (ev.get("object") or {}).get("metadata") or {}
                    yield "BOOKMARK", None, int(meta.get("resourceVersion") or 0)
                    continue
                typed = self._typed(ev["object"])
                yield etype, typed, int(typed.metadata.resourceVersion or 0)

    # --- policy log (kins' own endpoint: packets NetworkPolicies denied) ------------------------

    def post_policy_log(self, node: str, records: Sequence[Any]) -> int:
        """Report denied packets seen on ``node``: records in the ``/kins/v1/policylog`` format
        (dicts, or msgspec structs of that shape). Returns the log's last sequence number."""
        data = self._request("POST", POLICY_LOG_PATH, body={"node": node, "records": list(records)})
        return int((data or {}).get("last") or 0)

    def policy_log(self, namespace: str | None = None, since: int = 0) -> tuple[PolicyLogItems, int]:
        """The logged records numbered above ``since`` (with either end in ``namespace``, when
        given), oldest first, and the log's last sequence number (to follow from)."""
        data = self._request("GET", POLICY_LOG_PATH, params=_policy_log_params(namespace, since))
        return list(data.get("items") or []), int(data.get("last") or 0)

    def follow_policy_log(self, namespace: str | None = None, since: int = 0) -> Iterator[dict[str, Any]]:
        """The records above ``since``, then each new one as it is logged, until the caller
        stops iterating or the server ends the stream."""
        params = {**_policy_log_params(namespace, since), "follow": "true"}
        # The stream stays quiet for as long as nothing is denied.
        with self._http.stream("GET", POLICY_LOG_PATH, params=params, timeout=httpx.Timeout(10.0, read=None)) as resp:
            _raise_for_stream(resp)
            for line in resp.iter_lines():
                if line.strip():
                    yield msgspec.json.decode(line)

    # --- resource metrics (kins' own endpoint: what the kubelets measured) ----------------------

    def post_metrics(self, reports: Sequence[Any]) -> None:
        """Report the latest usage of nodes and their pods, one report per node in the
        ``/kins/v1/metrics`` format (the API serves them as ``metrics.k8s.io``)."""
        self._request("POST", METRICS_PATH, body={"items": list(reports)})


def _policy_log_params(namespace: str | None, since: int) -> dict[str, str]:
    params = {"since": str(since)} if since else {}
    if namespace:
        params["namespace"] = namespace
    return params


def connect(api: str, token: str, ca_file: str | None = None, *, token_file: str | None = None) -> Client:
    """A Client for ``http(s)://host:port`` or a unix socket: ``unix:/path/to/sock`` or
    ``http+unix://%2Fpath%2Fto%2Fsock``. With ``token_file`` the token is read from there (and
    read again as it is renewed)."""
    if api.startswith("unix:"):
        path = api[len("unix:") :]
        path = "/" + path.lstrip("/") if path.startswith("//") else path
        return Client("http://kins", token, uds=path, token_file=token_file)
    if api.startswith("http+unix://"):
        path = unquote(urlsplit(api).netloc)
        return Client("http://kins", token, uds=path, token_file=token_file)
    return Client(api, token, ca_file=ca_file, token_file=token_file)
