"""Endpoints and EndpointSlices for Services, as the three Kubernetes controllers write them.

- Services with a selector: an ``Endpoints`` object of the Service's name (the endpoints
  controller) and EndpointSlices ``<service>-<5 chars>`` managed by
  ``endpointslice-controller.k8s.io``, at most 100 endpoints each, owned by the Service.
- Services without a selector: user-written Endpoints stay as written and are mirrored into
  slices managed by ``endpointslicemirroring-controller.k8s.io``; user-written slices are left
  alone.
- ExternalName Services get neither; a deleted Service's Endpoints are deleted.

A named targetPort is looked up per pod (``containerPort`` name and protocol), so pods may
serve one Service port on different numbers. Readiness: Endpoints list ready pods under
``addresses`` and the others under ``notReadyAddresses`` and leave terminating pods out; slices
list them all with ready/serving/terminating conditions. ``publishNotReadyAddresses`` makes
every pod ready.

Pods and Services are indexed by namespace and label so that a change costs the Services or
pods it can concern, not a scan of all of them.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable

from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.core import (
    EndpointAddress,
    EndpointPort,
    Endpoints,
    EndpointSubset,
    ObjectReference,
    Pod,
    Service,
    ServicePort,
)
from ..api.discovery import Endpoint, EndpointConditions, EndpointSlice, EndpointSlicePort
from ..api.meta import Object, ObjectMeta, OwnerReference
from ..store.base import DELETED, Store, WatchEvent, random_suffix
from .base import owner_ref, split_key

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
SLICE_CONTROLLER = "endpointslice-controller.k8s.io"
MIRROR_CONTROLLER = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
HEADLESS = "service.kubernetes.io/headless"
MAX_PER_SLICE = 100
MAX_PER_MIRRORED_SLICE = 1000


def resolve_target_port(port: ServicePort, pod: Pod) -> int | None:
    """The pod's number for a Service port: a number as is, a name via the pod's containerPorts."""
    tp = port.targetPort if port.targetPort is not None else port.port
    if isinstance(tp, int):
        return tp
    if tp.isdigit():
        return int(tp)
    for c in pod.spec.containers:
        for cp in c.ports or []:
            if cp.name == tp and cp.protocol == port.protocol:
                return cp.containerPort
    return None


def _ip_key(ip: str) -> tuple[int, int | str]:
    try:
        return (0, int(ipaddress.ip_address(ip)))
    except ValueError:
        return (1, ip)


def _pod_ref(p: Pod) -> ObjectReference:
    return ObjectReference(kind="Pod", namespace=p.namespace, name=p.name, uid=p.metadata.uid)


def _hostname(p: Pod, svc: Service) -> str | None:
    if p.spec.hostname and p.spec.subdomain == svc.name and p.namespace == svc.namespace:
        return p.spec.hostname
    return None


def _serves(p: Pod) -> bool:
    return bool(p.status and p.status.podIP) and (p.status.phase if p.status else None) not in ("Succeeded", "Failed")


_PortKey = tuple[str, int, str, str | None]  # (name, number, protocol, appProtocol), hashable


def _pod_ports(svc: Service, pod: Pod) -> tuple[_PortKey, ...]:
    out = []
    for sp in svc.spec.ports or []:
        n = resolve_target_port(sp, pod)
        if n is not None:
            out.append((sp.name or "", n, sp.protocol, sp.appProtocol))
    return tuple(sorted(out, key=lambda k: (k[0], k[1], k[2])))


def desired_subsets(svc: Service, pods: list[Pod]) -> list[EndpointSubset] | None:
    """The endpoints controller's subsets: addresses grouped by identical port sets."""
    publish = bool(svc.spec.publishNotReadyAddresses)
    groups: dict[tuple[_PortKey, ...], tuple[list[EndpointAddress], list[EndpointAddress]]] = {}
    headless_no_ports = not svc.spec.ports
    for p in pods:
        if not _serves(p) or (p.terminating and not publish):
            continue
        key = _pod_ports(svc, p)
        if not key and not headless_no_ports:
            continue
        assert p.status is not None and p.status.podIP is not None
        addr = EndpointAddress(
            ip=p.status.podIP, hostname=_hostname(p, svc), nodeName=p.spec.nodeName, targetRef=_pod_ref(p)
        )
        ready, not_ready = groups.setdefault(key, ([], []))
        (ready if publish or p.ready else not_ready).append(addr)
    subsets = []
    for key in sorted(groups):
        ready, not_ready = groups[key]
        ready.sort(key=lambda a: _ip_key(a.ip))
        not_ready.sort(key=lambda a: _ip_key(a.ip))
        ports = [EndpointPort(name=n or None, port=num, protocol=proto, appProtocol=ap) for n, num, proto, ap in key]
        subsets.append(
            EndpointSubset(addresses=ready or None, notReadyAddresses=not_ready or None, ports=ports or None)
        )
    return subsets or None


_SliceGroups = list[tuple[list[EndpointSlicePort] | None, list[Endpoint]]]


def desired_slice_groups(svc: Service, pods: list[Pod]) -> _SliceGroups:
    """(ports, endpoints) per slice for the EndpointSlice controller, endpoints chunked by 100."""
    publish = bool(svc.spec.publishNotReadyAddresses)
    groups: dict[tuple[_PortKey, ...], list[Endpoint]] = {}
    for p in pods:
        if not _serves(p):
            continue
        serving = p.ready
        terminating = p.terminating
        assert p.status is not None and p.status.podIP is not None
        ep = Endpoint(
            addresses=[p.status.podIP],
            conditions=EndpointConditions(
                ready=publish or (serving and not terminating), serving=serving, terminating=terminating
            ),
            hostname=_hostname(p, svc),
            nodeName=p.spec.nodeName,
            targetRef=_pod_ref(p),
        )
        groups.setdefault(_pod_ports(svc, p), []).append(ep)
    out: _SliceGroups = []
    for key in sorted(groups):
        eps = sorted(groups[key], key=lambda e: _ip_key(e.addresses[0]))
        ports = [EndpointSlicePort(name=n, protocol=proto, port=num, appProtocol=ap) for n, num, proto, ap in key]
        for i in range(0, len(eps), MAX_PER_SLICE):
            out.append((ports or None, eps[i : i + MAX_PER_SLICE]))
    return out


def mirrored_slice_groups(ep: Endpoints) -> _SliceGroups:
    out: _SliceGroups = []
    for sub in ep.subsets or []:
        ports = [
            EndpointSlicePort(name=p.name or "", protocol=p.protocol, port=p.port, appProtocol=p.appProtocol)
            for p in sub.ports or []
        ]
        eps = [
            Endpoint(
                addresses=[a.ip],
                conditions=EndpointConditions(ready=ready),
                hostname=a.hostname,
                nodeName=a.nodeName,
                targetRef=a.targetRef,
            )
            for addrs, ready in ((sub.addresses, True), (sub.notReadyAddresses, False))
            for a in addrs or []
        ]
        for i in range(0, len(eps), MAX_PER_MIRRORED_SLICE):
            out.append((ports or None, eps[i : i + MAX_PER_MIRRORED_SLICE]))
    return out


class EndpointsController:
    name = "endpoints"
    kinds = frozenset({"Service", "Pod", "Endpoints", "EndpointSlice"})

    def __init__(self, store: Store, rng: random.Random, frozen: frozenset[str] = frozenset()) -> None:
        self.store = store
        self.rng = rng
        # Services ("ns/name") whose endpoints came with the input (a dump of a real cluster):
        # their pods are not in the input, so recomputing would wipe what the dump says.
        self.frozen = frozen
        self._pod_labels: dict[str, tuple[str, dict[str, str]]] = {}  # pod key -> (ns, labels)
        self._pods_by_label: dict[tuple[str, str, str], set[str]] = {}
        self._svc_sel: dict[str, dict[str, str]] = {}  # service key -> selector (non-empty only)
        self._svc_by_label: dict[tuple[str, str, str], set[str]] = {}  # one selector pair -> services
        self._slices: dict[tuple[str, str], set[str]] = {}  # (ns, service name) -> slice names
        self._slice_svc: dict[tuple[str, str], str] = {}  # (ns, slice name) -> service name
        self._mine: set[int] = set()  # resourceVersions this controller wrote

    # --- indexes -------------------------------------------------------------------------------

    def _index_pod(self, key: str, ns: str, labels: dict[str, str] | None) -> set[str]:
        """Update the pod index; the services that selected the pod before or select it now."""
        hit: set[str] = set()
        old = self._pod_labels.pop(key, None)
        if old is not None:
            for kv in old[1].items():
                s = self._pods_by_label.get((ns, *kv))
                if s is not None:
                    s.discard(key)
            hit |= self._services_for(ns, old[1])
        if labels is not None:
            self._pod_labels[key] = (ns, labels)
            for kv in labels.items():
                self._pods_by_label.setdefault((ns, *kv), set()).add(key)
            hit |= self._services_for(ns, labels)
        return hit

    def _services_for(self, ns: str, labels: dict[str, str]) -> set[str]:
        out: set[str] = set()
        for kv in labels.items():
            for skey in self._svc_by_label.get((ns, *kv), ()):
                sel = self._svc_sel[skey]
                if all(labels.get(k) == v for k, v in sel.items()):
                    out.add(skey)
        return out

    def _index_service(self, key: str, ns: str, selector: dict[str, str] | None) -> None:
        old = self._svc_sel.pop(key, None)
        if old:
            s = self._svc_by_label.get((ns, *min(old.items())))
            if s is not None:
                s.discard(key)
        if selector:
            self._svc_sel[key] = selector
            self._svc_by_label.setdefault((ns, *min(selector.items())), set()).add(key)

    def _selected_pods(self, ns: str, selector: dict[str, str]) -> list[Pod]:
        sets = [self._pods_by_label.get((ns, *kv), set()) for kv in selector.items()]
        smallest = min(sets, key=len)
        out = []
        for key in sorted(smallest):
            if all(key in s for s in sets):
                try:
                    p = self.store.get("Pod", ns, split_key(key)[1])
                except NotFound:
                    continue
                if isinstance(p, Pod):
                    out.append(p)
        return out

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        ns = o.namespace
        deleted = ev.type == DELETED
        if isinstance(o, Pod):
            return self._index_pod(o.key, ns, None if deleted else dict(o.labels))
        if isinstance(o, Service):
            self._index_service(o.key, ns, None if deleted else o.spec.selector)
            return (o.key,)
        if ev.rv in self._mine:  # our own write: the indexes already know
            self._mine.discard(ev.rv)
            return ()
        if isinstance(o, EndpointSlice):
            sk = (ns, o.name)
            old_svc = self._slice_svc.pop(sk, None)
            if old_svc is not None:
                self._slices.get((ns, old_svc), set()).discard(o.name)
            svc_name = o.service_name
            if svc_name and not deleted:
                self._slice_svc[sk] = svc_name
                self._slices.setdefault((ns, svc_name), set()).add(o.name)
            names = {n for n in (old_svc, svc_name) if n}
            return [f"{ns}/{n}" for n in sorted(names)]
        return (o.key,)

    def start_keys(self) -> Iterable[str]:
        return ()

    # --- writes --------------------------------------------------------------------------------

    def _wrote(self, obj: Object) -> None:
        self._mine.add(int(obj.metadata.resourceVersion or 0))

    def _delete(self, kind: str, ns: str, name: str) -> bool:
        try:
            self._wrote(self.store.delete(kind, ns, name))
        except NotFound:
            return False
        if kind == "EndpointSlice":
            svc_name = self._slice_svc.pop((ns, name), None)
            if svc_name is not None:
                self._slices.get((ns, svc_name), set()).discard(name)
        return True

    def _existing(self, ns: str, svc_name: str) -> dict[str, list[EndpointSlice]]:
        """Slices labelled for the Service, by the controller that manages them."""
        out: dict[str, list[EndpointSlice]] = {SLICE_CONTROLLER: [], MIRROR_CONTROLLER: []}
        for n in sorted(self._slices.get((ns, svc_name), ())):
            try:
                s = self.store.get("EndpointSlice", ns, n)
            except NotFound:
                continue
            mgr = s.labels.get(MANAGED_BY)
            if isinstance(s, EndpointSlice) and mgr in out:
                out[mgr].append(s)
        return out

    def reconcile(self, key: str) -> bool:
        if key in self.frozen:
            return False
        ns, name = split_key(key)
        try:
            svc = self.store.get("Service", ns, name)
        except NotFound:
            svc = None
        ours = self._existing(ns, name)
        mirrored = ours[MIRROR_CONTROLLER]
        if svc is None or not isinstance(svc, Service) or svc.spec.type == "ExternalName":
            changed = self._sync_slices(ns, name, SLICE_CONTROLLER, None, [], ours[SLICE_CONTROLLER])
            changed = self._sync_slices(ns, name, MIRROR_CONTROLLER, None, [], mirrored) or changed
            # As Kubernetes: the Endpoints of a deleted Service go too (user-written or not);
            # an ExternalName Service loses only those the selector produced.
            if svc is None or (isinstance(svc, Service) and svc.spec.selector):
                changed = self._delete("Endpoints", ns, name) or changed
            return changed
        if not svc.spec.selector:
            changed = self._sync_slices(ns, name, SLICE_CONTROLLER, None, [], ours[SLICE_CONTROLLER])
            return self._mirror(svc, mirrored) or changed
        pods = self._selected_pods(ns, svc.spec.selector)
        changed = self._sync_endpoints(svc, desired_subsets(svc, pods))
        groups = desired_slice_groups(svc, pods) or [(None, [])]  # a placeholder slice when empty
        changed = self._sync_slices(ns, name, SLICE_CONTROLLER, svc, groups, ours[SLICE_CONTROLLER]) or changed
        return self._sync_slices(ns, name, MIRROR_CONTROLLER, None, [], mirrored) or changed

    def _sync_endpoints(self, svc: Service, subsets: list[EndpointSubset] | None) -> bool:
        labels = dict(svc.labels)
        if svc.headless:
            labels[HEADLESS] = ""
        try:
            cur = self.store.get("Endpoints", svc.namespace, svc.name)
        except NotFound:
            cur = None
        if cur is None:
            ep = Endpoints(
                metadata=ObjectMeta(name=svc.name, namespace=svc.namespace, labels=labels or None), subsets=subsets
            )
            self._wrote(self.store.create(ep))
            return True
        assert isinstance(cur, Endpoints)
        if cur.subsets == subsets and (cur.metadata.labels or {}) == labels:
            return False
        new = replace(cur, metadata=replace(cur.metadata, labels=labels or None), subsets=subsets)
        self._wrote(self.store.update(new, check_rv=False))
        return True

    def _mirror(self, svc: Service, existing: list[EndpointSlice]) -> bool:
        try:
            ep = self.store.get("Endpoints", svc.namespace, svc.name)
        except NotFound:
            ep = None
        ns, name = svc.namespace, svc.name
        if not isinstance(ep, Endpoints) or ep.labels.get(SKIP_MIRROR) == "true":
            return self._sync_slices(ns, name, MIRROR_CONTROLLER, None, [], existing)
        return self._sync_slices(ns, name, MIRROR_CONTROLLER, svc, mirrored_slice_groups(ep), existing, ep)

    def _sync_slices(
        self,
        ns: str,
        svc_name: str,
        manager: str,
        svc: Service | None,
        groups: _SliceGroups,
        existing: list[EndpointSlice],
        mirrored_from: Endpoints | None = None,
    ) -> bool:
        if svc is None:
            for s in existing:
                self._delete("EndpointSlice", ns, s.name)
            return bool(existing)
        owner: Endpoints | Service = mirrored_from if mirrored_from is not None else svc
        base_labels = dict(mirrored_from.labels if mirrored_from is not None else svc.labels)
        base_labels.pop(SKIP_MIRROR, None)
        if mirrored_from is None and svc.headless:
            base_labels[HEADLESS] = ""
        labels = {**base_labels, SERVICE_NAME: svc_name, MANAGED_BY: manager}
        refs: list[OwnerReference] = [owner_ref(owner)]

        def same(s: EndpointSlice, ports: object, eps: list[Endpoint]) -> bool:
            return (
                s.ports == ports
                and (s.endpoints or []) == eps
                and s.labels == labels
                and s.metadata.ownerReferences == refs
                and s.addressType == "IPv4"
            )

        changed = False
        left = list(existing)
        todo = []
        for ports, eps in groups:
            match = next((s for s in left if same(s, ports, eps)), None)
            if match is not None:
                left.remove(match)
            else:
                todo.append((ports, eps))
        for ports, eps in todo:
            if left:
                s = left.pop(0)
                new = replace(
                    s,
                    metadata=replace(s.metadata, labels=labels, ownerReferences=refs),
                    addressType="IPv4",
                    ports=ports,
                    endpoints=eps or None,
                )
                self._wrote(self.store.update(new, check_rv=False))
            else:
                meta = ObjectMeta(namespace=ns, generateName=f"{svc_name}-", labels=labels, ownerReferences=refs)
                obj = EndpointSlice(metadata=meta, addressType="IPv4", ports=ports, endpoints=eps or None)
                while True:
                    try:
                        created = self.store.create(
                            replace(obj, metadata=replace(meta, name=f"{svc_name}-{random_suffix(self.rng)}"))
                        )
                        break
                    except Conflict:
                        continue
                self._wrote(created)
                # index right away: a second reconcile before the event arrives must see it
                self._slices.setdefault((ns, svc_name), set()).add(created.name)
                self._slice_svc[(ns, created.name)] = svc_name
            changed = True
        for s in left:
            self._delete("EndpointSlice", ns, s.name)
            changed = True
        return changed
