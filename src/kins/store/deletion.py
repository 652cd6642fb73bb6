"""Deletion as the API server's registry does it: preconditions, finalizers, graceful pods and
the garbage collector's propagation policies.

A delete removes an object at once only when nothing holds it. An object with finalizers (or
one the policy gives the ``orphan`` / ``foregroundDeletion`` finalizer, or a running pod on a
store that deletes pods gracefully, or a Namespace whose ``spec.finalizers`` are not empty) is
only marked: ``deletionTimestamp`` and ``deletionGracePeriodSeconds`` are set and it goes when
its last finalizer is removed by an update (``finish``) or, for a pod, when the kubelet deletes
it without grace. The API's DELETE and the controllers (garbage collector, namespace
controller) go through the same functions, so a cascade behaves the same whoever starts it.
"""

from __future__ import annotations

from dataclasses import dataclass

from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.core import Namespace, NamespaceStatus, Pod
from ..api.meta import Object
from .base import Clock, Store

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
# The namespace controller's token in a Namespace's spec.finalizers.
KUBERNETES = "kubernetes"
POLICIES = ("Foreground", "Background", "Orphan")

_clock = Clock()


@dataclass(frozen=True)
class DeleteRequest:
    """What a DeleteOptions asks for (None: not given)."""

    propagation: str | None = None  # Foreground | Background | Orphan
    orphan_dependents: bool | None = None  # the old form of the policy
    grace_seconds: int | None = None
    uid: str | None = None  # preconditions
    resource_version: str | None = None


@dataclass(frozen=True)
class Deleted:
    obj: Object  # as removed, or as marked when it stays
    gone: bool  # False: marked, waiting for finalizers (or the kubelet)


class PreconditionFailed(Conflict):
    """A DeleteOptions precondition (uid, resourceVersion) does not match the object."""


# The etcd key prefixes of the kinds whose key is not /registry/<plural> (the API server's
# precondition errors name the key).
_KEY_PREFIX = {
    "Node": "minions",
    "Service": "services/specs",
    "Endpoints": "services/endpoints",
    "Ingress": "ingress",
}
_BUILTIN_GROUPS = frozenset({"", "apps", "batch", "discovery.k8s.io", "networking.k8s.io"})


def storage_key(obj: Object) -> str:
    group = obj.apiVersion.rpartition("/")[0]
    plural = obj.PLURAL or obj.KIND.lower() + "s"
    prefix = _KEY_PREFIX.get(obj.KIND) or (plural if group in _BUILTIN_GROUPS else f"{group}/{plural}")
    return f"/registry/{prefix}/{obj.key}"


def _qualified(obj: Object) -> str:
    group = obj.apiVersion.rpartition("/")[0]
    plural = obj.PLURAL or obj.KIND.lower() + "s"
    return f"{plural}.{group}" if group else plural


def check_preconditions(obj: Object, req: DeleteRequest) -> None:
    """409 Conflict, worded as the API server's storage words it, when a precondition fails."""
    m = obj.metadata
    if req.uid is not None and req.uid != m.uid:
        what = f"UID in precondition: {req.uid}, UID in object meta: {m.uid or ''}"
    elif req.resource_version is not None and req.resource_version != m.resourceVersion:
        what = (
            f"ResourceVersion in precondition: {req.resource_version}, "
            f"ResourceVersion in object meta: {m.resourceVersion}"
        )
    else:
        return
    if isinstance(obj, Namespace):  # the namespace registry checks these itself, more tersely
        detail = f"Precondition failed: {what}"
    else:
        detail = (
            f"StorageError: invalid object, Code: 4, Key: {storage_key(obj)}, ResourceVersion: 0, "
            f"AdditionalErrorMsg: Precondition failed: {what}"
        )
    raise PreconditionFailed(f'Operation cannot be fulfilled on {_qualified(obj)} "{obj.name}": {detail}')


def _orphans(finalizers: list[str], req: DeleteRequest) -> bool:
    if req.orphan_dependents is not None:
        return req.orphan_dependents
    if req.propagation is not None:
        return req.propagation == "Orphan"
    for f in finalizers:
        if f in (ORPHAN, FOREGROUND):
            return f == ORPHAN
    return False


def _foreground(finalizers: list[str], req: DeleteRequest) -> bool:
    if req.orphan_dependents is not None:
        return False
    if req.propagation is not None:
        return req.propagation == "Foreground"
    for f in finalizers:
        if f in (ORPHAN, FOREGROUND):
            return f == FOREGROUND
    return False


def finalizers_for(finalizers: list[str], req: DeleteRequest) -> list[str]:
    """``metadata.finalizers`` after a delete with ``req``: the garbage collector's two
    finalizers set as the policy says (the rest kept, in order)."""
    out = [f for f in finalizers if f not in (ORPHAN, FOREGROUND)]
    if _orphans(finalizers, req):
        out.append(ORPHAN)
    if _foreground(finalizers, req):
        out.append(FOREGROUND)
    return finalizers if sorted(out) == sorted(finalizers) else out


def _pod_grace(store: Store, obj: Object, req: DeleteRequest) -> int:
    """Seconds a pod gets to stop: only on a store that deletes pods gracefully (the daemon's,
    where kubelets stop them), and only for a scheduled pod that has not finished."""
    if not getattr(store, "graceful", False) or not isinstance(obj, Pod) or not obj.spec.nodeName:
        return 0
    if (obj.status.phase if obj.status else None) in ("Succeeded", "Failed"):
        return 0
    if req.grace_seconds is not None:
        return max(req.grace_seconds, 0)
    grace = obj.spec.terminationGracePeriodSeconds
    return 30 if grace is None else grace


def _raw(store: Store) -> Store:
    raw: Store = getattr(store, "raw", store)
    return raw


def delete(
    store: Store, kind: str, namespace: str | None, name: str, req: DeleteRequest, *, dry_run: bool = False
) -> Deleted:
    """Delete one object as the API does (see the module's docstring). Raises NotFound,
    PreconditionFailed."""
    raw = _raw(store)
    obj = raw.get(kind, namespace, name)
    check_preconditions(obj, req)
    m = obj.metadata
    finalizers = list(m.finalizers or [])
    if isinstance(obj, Namespace) and not m.deletionTimestamp:
        return _mark_namespace(raw, obj, req, dry_run)
    if isinstance(obj, Namespace) and obj.spec is not None and obj.spec.finalizers:
        return Deleted(obj, False)  # the namespace controller is emptying it
    wanted = finalizers_for(finalizers, req)
    grace = _pod_grace(store, obj, req)
    if m.deletionTimestamp and m.deletionGracePeriodSeconds is not None:
        # Already going: a delete may shorten the grace period, never lengthen it.
        grace = min(grace, m.deletionGracePeriodSeconds)
    if not wanted and grace == 0:
        if dry_run:
            return Deleted(obj, True)
        return Deleted(raw.delete(kind, namespace, name), True)
    marked_meta = replace(
        m,
        deletionTimestamp=m.deletionTimestamp or _clock.now(),
        deletionGracePeriodSeconds=grace,
        finalizers=wanted or None,
    )
    if marked_meta == m or dry_run:
        return Deleted(replace(obj, metadata=marked_meta), False)
    return Deleted(raw.update(replace(obj, metadata=marked_meta), check_rv=False), False)


def _mark_namespace(raw: Store, ns: Namespace, req: DeleteRequest, dry_run: bool) -> Deleted:
    """The first delete of a Namespace only starts its termination: the namespace controller
    empties it and removes its ``kubernetes`` finalizer, and only then does it go."""
    m = ns.metadata
    status = ns.status or NamespaceStatus()
    marked = replace(
        ns,
        metadata=replace(
            m, deletionTimestamp=_clock.now(), finalizers=finalizers_for(list(m.finalizers or []), req) or None
        ),
        status=replace(status, phase="Terminating"),
    )
    if dry_run:
        return Deleted(marked, False)
    return Deleted(raw.update(marked, check_rv=False), False)


def should_go(obj: Object) -> bool:
    """Whether an object marked for deletion is free to go: no finalizers left (a Namespace's
    ``spec.finalizers`` included) and no grace period still running."""
    m = obj.metadata
    if not m.deletionTimestamp or m.finalizers:
        return False
    if isinstance(obj, Namespace) and obj.spec is not None and obj.spec.finalizers:
        return False
    return not m.deletionGracePeriodSeconds


def finish(store: Store, obj: Object) -> Object:
    """After an update: an object marked for deletion whose last finalizer was just removed
    goes (what the update returns, as the API server answers it)."""
    if not should_go(obj):
        return obj
    raw = _raw(store)
    try:
        return raw.delete(obj.KIND, obj.metadata.namespace, obj.name)
    except NotFound:  # another writer finished it first
        return obj


def set_finalizers(store: Store, obj: Object, finalizers: list[str]) -> Object:
    """Write ``metadata.finalizers`` (a controller taking its finalizer off), then ``finish``."""
    updated = _raw(store).update(replace(obj, metadata=replace(obj.metadata, finalizers=finalizers or None)))
    return finish(store, updated)
