"""Namespace lifecycle on writes, as the API server's NamespaceLifecycle admission and the
namespace registry's strategies do it.

- A new Namespace is Active and carries the ``kubernetes`` finalizer in ``spec.finalizers``
  (only ``PUT .../finalize`` changes them afterwards; the namespace controller removes it once
  the namespace is empty).
- Nothing is created in a Terminating namespace (403, cause ``NamespaceTerminating``), nor, on
  an API that requires it (the daemon's), in a namespace that does not exist (404; dry runs
  excepted, see ``admit_create``).
- An update never sets or clears ``deletionTimestamp`` / ``deletionGracePeriodSeconds`` (only a
  delete does) and adds no finalizer to an object being deleted.
"""

from __future__ import annotations

from aiohttp import web
from msgspec.structs import replace

from .._errors import NotFound, ValidationError
from ..api.core import Namespace, NamespaceSpec, NamespaceStatus
from ..api.meta import Object
from ..store.base import Store
from ..store.deletion import KUBERNETES
from .errors import ApiError, invalid
from .request import Target, dry_run

# Set on an app whose objects may only be created in namespaces that exist (the daemon's, where
# the system namespaces are made at start). Without it a missing namespace is no refusal, which
# lets a bare store serve tests and tools.
REQUIRE_NAMESPACES = web.AppKey("require_namespaces", bool)


def _group_resource(t: Target) -> str:
    return f"{t.res.plural}.{t.res.group}" if t.res.group else t.res.plural


def admit_create(request: web.Request, store: Store, t: Target, obj: Object) -> Object:
    """``obj`` as it may be created, or the API's refusal."""
    m = obj.metadata
    if m.deletionTimestamp or m.deletionGracePeriodSeconds is not None:
        obj = replace(obj, metadata=replace(m, deletionTimestamp=None, deletionGracePeriodSeconds=None))
    if isinstance(obj, Namespace):
        finalizers = list((obj.spec.finalizers if obj.spec else None) or [])
        if KUBERNETES not in finalizers:
            finalizers.append(KUBERNETES)
        return replace(
            obj,
            spec=replace(obj.spec or NamespaceSpec(), finalizers=finalizers),
            status=NamespaceStatus(phase="Active"),
        )
    if not t.res.namespaced or not t.namespace:
        return obj
    try:
        ns = store.get("Namespace", None, t.namespace)
    except NotFound:
        # A dry run is let through: `kins apply` checks a whole set of manifests before it
        # creates the namespaces they live in (all or nothing), where kubectl applies in order.
        if request.app.get(REQUIRE_NAMESPACES) and not dry_run(request):
            raise ApiError(
                404, "NotFound", f'namespaces "{t.namespace}" not found', kind="namespaces", name=t.namespace
            ) from None
        return obj
    phase = ns.status.phase if isinstance(ns, Namespace) and ns.status else None
    if phase == "Terminating":
        # Named as admission names an object whose name is not generated yet.
        name = obj.metadata.name or obj.metadata.generateName or "Unknown"
        what = f'{_group_resource(t)} "{name}"'
        raise ApiError(
            403,
            "Forbidden",
            f"{what} is forbidden: "
            f"unable to create new content in namespace {t.namespace} because it is being terminated",
            kind=t.res.plural,
            group=t.res.group,
            name=name,
            causes=[
                {
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {t.namespace} is being terminated",
                    "field": "metadata.namespace",
                }
            ],
        )
    return obj


def merge_update(t: Target, old: Object, new: Object) -> Object:
    """What an update may change of the deletion state (and, for a Namespace, of its
    ``spec.finalizers``: only through ``/finalize``)."""
    om, nm = old.metadata, new.metadata
    if om.deletionTimestamp:
        added = [f for f in nm.finalizers or [] if f not in (om.finalizers or [])]
        if added:
            listed = ", ".join(f'"{f}"' for f in added)
            err = ValidationError(
                "",
                "metadata.finalizers",
                "Forbidden: no new finalizers can be added if the object is being deleted, "
                f"found new finalizers []string{{{listed}}}",
            )
            raise invalid(t.res, new.name, [err])
    if nm.deletionTimestamp != om.deletionTimestamp or nm.deletionGracePeriodSeconds != om.deletionGracePeriodSeconds:
        new = replace(
            new,
            metadata=replace(
                nm, deletionTimestamp=om.deletionTimestamp, deletionGracePeriodSeconds=om.deletionGracePeriodSeconds
            ),
        )
    if isinstance(new, Namespace) and isinstance(old, Namespace) and t.sub != "finalize":
        keep = old.spec.finalizers if old.spec else None
        if (new.spec.finalizers if new.spec else None) != keep:
            new = replace(new, spec=replace(new.spec or NamespaceSpec(), finalizers=keep))
    return new
