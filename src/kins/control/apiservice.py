"""The APIService availability controller: a service-backed APIService's ``Available``
condition follows its Service's endpoints, with kube-aggregator's reasons and messages.

kins' API serves the groups it knows itself (``metrics.k8s.io`` from the kubelets' reports), so
once the Service has a ready endpoint on the APIService's port the condition is
``True``/``Passed``; the aggregator's discovery request to the extension server is the one
check kins does not make. A group kins does not serve stays unavailable whatever the endpoints:
nothing would answer for it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable

from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.apiregistration import APIService, APIServiceStatus
from ..api.core import Endpoints, Service
from ..api.meta import Condition
from ..store.base import Store, WatchEvent

# Groups whose requests kins' API answers itself when their APIService is service-backed.
SERVED_BY_KINS = frozenset({"metrics.k8s.io"})


def availability(svc: APIService, service: Service | None, endpoints: Endpoints | None) -> Condition:
    """The Available condition (without its transition time) of a service-backed APIService."""
    ref = svc.spec.service
    assert ref is not None
    where = f'service/{ref.name} in "{ref.namespace}"'
    if service is None:
        return Condition(type="Available", status="False", reason="ServiceNotFound", message=f"{where} is not present")
    if (svc.spec.group or "") not in SERVED_BY_KINS:
        return Condition(
            type="Available",
            status="False",
            reason="ServiceNotProxied",
            message=f"kins proxies no requests to extension API servers and serves no {svc.spec.group} itself",
        )
    if service.spec.type == "ExternalName":
        return Condition(type="Available", status="True", reason="Passed", message="all checks passed")
    want_port = ref.port or 443
    port_name = next((p.name or "" for p in service.spec.ports or [] if p.port == want_port), None)
    if port_name is None:
        return Condition(
            type="Available",
            status="False",
            reason="ServicePortError",
            message=f"{where} is not listening on port {want_port}",
        )
    if endpoints is None:
        return Condition(
            type="Available", status="False", reason="MissingEndpoints", message=f"cannot find endpoints for {where}"
        )
    for subset in endpoints.subsets or []:
        if subset.addresses and any((p.name or "") == port_name for p in subset.ports or []):
            return Condition(type="Available", status="True", reason="Passed", message="all checks passed")
    return Condition(
        type="Available",
        status="False",
        reason="MissingEndpoints",
        message=f"endpoints for {where} have no addresses with port name {port_name!r}",
    )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class APIServiceAvailability:
    name = "apiservice-availability"
    kinds = frozenset({"APIService", "Service", "Endpoints"})

    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_service: dict[str, set[str]] = {}  # "ns/name" -> APIService names
        self._service_of: dict[str, str] = {}

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        obj = ev.object
        if isinstance(obj, APIService):
            old = self._service_of.pop(obj.name, None)
            if old is not None:
                self._by_service.get(old, set()).discard(obj.name)
            ref = obj.spec.service
            if ref is not None and ev.type != "DELETED":
                key = f"{ref.namespace}/{ref.name}"
                self._service_of[obj.name] = key
                self._by_service.setdefault(key, set()).add(obj.name)
                return (obj.name,)
            return ()
        return tuple(self._by_service.get(obj.key, ()))

    def start_keys(self) -> Iterable[str]:
        return list(self._service_of)

    def reconcile(self, key: str) -> bool:
        try:
            svc = self.store.get("APIService", None, key)
        except NotFound:
            return False
        if not isinstance(svc, APIService) or svc.spec.service is None:
            return False
        ref = svc.spec.service
        service = endpoints = None
        with contextlib.suppress(NotFound):
            service = self.store.get("Service", ref.namespace, ref.name or "")
        with contextlib.suppress(NotFound):
            endpoints = self.store.get("Endpoints", ref.namespace, ref.name or "")
        want = availability(
            svc,
            service if isinstance(service, Service) else None,
            endpoints if isinstance(endpoints, Endpoints) else None,
        )
        old = {c.type: c for c in (svc.status.conditions if svc.status else None) or []}
        prev = old.get("Available")
        if prev is not None and (prev.status, prev.reason, prev.message) == (want.status, want.reason, want.message):
            return False
        moved = prev is None or prev.status != want.status
        want = replace(want, lastTransitionTime=_now() if moved or prev is None else prev.lastTransitionTime)
        rest = [c for t, c in old.items() if t != "Available"]
        try:
            self.store.update(replace(svc, status=APIServiceStatus(conditions=[want, *rest])))
        except (Conflict, NotFound):
            return False
        return True
