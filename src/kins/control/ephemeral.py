"""Generic ephemeral volumes (the ephemeral volume controller): a pod's ``ephemeral`` volume is
a claim ``<pod>-<volume>`` made from its ``volumeClaimTemplate``, owned by the pod, and deleted
with it. Until then it is an ordinary claim: bound, provisioned and mounted like any other.

A claim of that name that the pod does not own is not taken over; the pod waits, as upstream's
scheduler makes it wait (``PVC ns/name was not created for pod ns/pod (pod is not owner)``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import msgspec
from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.core import Pod
from ..api.defaulting import apply_defaults
from ..api.meta import ObjectMeta
from ..api.storage import PersistentVolumeClaim, StorageClass
from ..api.volumes import admit_claim, ephemeral_claims
from ..store.base import DELETED, Store, WatchEvent
from .base import owner_ref, split_key
from .events import NO_EVENTS, WARNING, EventSink
from .volumebinding import owned_by_pod

COMPONENT = "ephemeral_volume"


def _template(raw: dict[str, Any]) -> PersistentVolumeClaim:
    tmpl = raw.get("volumeClaimTemplate") or {}
    doc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": tmpl.get("metadata") or {}}
    return msgspec.convert({**doc, "spec": tmpl.get("spec") or {}}, PersistentVolumeClaim)


class EphemeralVolumeController:
    name = "ephemeral-volume"
    kinds = frozenset({"Pod", "PersistentVolumeClaim"})

    def __init__(self, store: Store, events: EventSink = NO_EVENTS) -> None:
        self.store = store
        self.events = events

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        if isinstance(o, Pod):
            return (o.key,) if ephemeral_claims(o) else ()
        if isinstance(o, PersistentVolumeClaim) and ev.type != DELETED:
            # A claim a pod owns is looked at with its pod (gone: the claim goes).
            return [f"{o.namespace}/{r.name}" for r in o.metadata.ownerReferences or [] if r.kind == "Pod"]
        return ()

    def start_keys(self) -> Iterable[str]:
        return ()

    def reconcile(self, key: str) -> bool:
        ns, name = split_key(key)
        try:
            got = self.store.get("Pod", ns, name)
        except NotFound:
            got = None
        pod = got if isinstance(got, Pod) else None
        changed = self._collect(ns, name, pod)
        if pod is None or pod.terminating or not pod.metadata.uid:
            return changed
        classes = [c for c in self.store.list("StorageClass")[0] if isinstance(c, StorageClass)]
        for volume, claim in ephemeral_claims(pod).items():
            try:
                have = self.store.get("PersistentVolumeClaim", ns, claim)
            except NotFound:
                have = None
            if isinstance(have, PersistentVolumeClaim):
                if not owned_by_pod(have, pod):
                    self.events.event(
                        pod,
                        WARNING,
                        "FailedBinding",
                        f"PVC {ns}/{claim} was not created for pod {ns}/{name} (pod is not owner)",
                        component=COMPONENT,
                    )
                continue
            vol = next(v for v in pod.spec.volumes or [] if v.name == volume)
            t = _template(vol.ephemeral or {})
            meta = ObjectMeta(
                name=claim,
                namespace=ns,
                labels=t.metadata.labels,
                annotations=t.metadata.annotations,
                ownerReferences=[owner_ref(pod)],
            )
            pvc = apply_defaults(admit_claim(replace(t, metadata=meta, status=None), classes))
            with contextlib.suppress(Conflict):
                self.store.create(pvc)
                changed = True
        return changed

    def _collect(self, ns: str, name: str, pod: Pod | None) -> bool:
        """Claims owned by an earlier pod of this name (or by one that is gone) go."""
        changed = False
        for c in self.store.list("PersistentVolumeClaim", ns)[0]:
            if not isinstance(c, PersistentVolumeClaim) or c.metadata.deletionTimestamp:
                continue
            refs = [r for r in c.metadata.ownerReferences or [] if r.kind == "Pod" and r.name == name]
            if refs and (pod is None or all(r.uid != pod.metadata.uid for r in refs)):
                with contextlib.suppress(NotFound):
                    self.store.delete("PersistentVolumeClaim", ns, c.name)
                    changed = True
        return changed
