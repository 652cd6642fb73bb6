"""The Store protocol: versioned API objects with list and watch.

Every write bumps one global resourceVersion (an int, written into ``metadata.resourceVersion``
as a string, as the API server does with etcd's revision). Objects handed out by a store are
shared with it where the implementation can (the in-memory store does not copy, for speed):
treat them as read-only and build a modified copy (``msgspec.structs.replace`` or ``clone``)
before passing it to ``update``.
"""

from __future__ import annotations

import builtins
import os
import random
import time
from contextlib import AbstractContextManager
from typing import Protocol

import msgspec

from .._errors import Conflict, NotFound, ValidationError
from ..api.meta import LabelSelector, Object

# The event types are part of the store protocol: re-exported so stores and their users import one module.
from .events import ADDED as ADDED
from .events import DELETED as DELETED
from .events import MODIFIED as MODIFIED
from .events import WatchEvent as WatchEvent
from .watch import Watch

# Kubernetes' rand.String alphabet (no vowels, no look-alike characters): generateName suffixes
# and pod/slice name suffixes use it.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class Store(Protocol):
    def get(self, kind: str, namespace: str | None, name: str) -> Object: ...

    def list(
        self, kind: str, namespace: str | None = None, selector: LabelSelector | None = None
    ) -> tuple[builtins.list[Object], int]: ...

    def create(self, obj: Object) -> Object: ...

    def bulk_create(self, objs: builtins.list[Object]) -> builtins.list[Object]: ...

    def update(self, obj: Object, *, check_rv: bool = True) -> Object: ...

    def delete(self, kind: str, namespace: str | None, name: str) -> Object: ...

    def watch(self, kinds: set[str] | None, since: int) -> Watch: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    @property
    def resource_version(self) -> int: ...


_CLUSTER_SCOPED: set[str] = set()


def key_namespace(kind: str, namespace: str | None) -> str:
    """The namespace part of a key: "" for cluster-scoped kinds, "default" when omitted."""
    if not _CLUSTER_SCOPED:
        _fill_caches()
    if kind in _CLUSTER_SCOPED:
        return ""
    return namespace or "default"


def describe(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def clone(obj: Object) -> Object:
    """A deep copy (msgspec round trip: several times faster than copy.deepcopy)."""
    return msgspec.json.decode(msgspec.json.encode(obj), type=type(obj))


class UidSource:
    """UUID-shaped ids: a random prefix per store instance plus a counter.

    uuid4() costs ~2 us each, which is a fifth of the budget for creating an object offline;
    uniqueness only has to hold among the objects of one cluster.
    """

    def __init__(self) -> None:
        r = os.urandom(8).hex()
        self._prefix = f"{r[:8]}-{r[8:12]}-4{r[13:16]}-"
        self._n = int.from_bytes(os.urandom(4), "big") << 40

    def __call__(self) -> str:
        self._n += 1
        n = self._n
        return f"{self._prefix}{0x8000 | (n >> 48) & 0x3FFF:04x}-{n & 0xFFFFFFFFFFFF:012x}"


class Clock:
    """RFC 3339 timestamps at second resolution, formatted once per second."""

    def __init__(self) -> None:
        self._sec = -1
        self._text = ""

    def now(self) -> str:
        sec = int(time.time())
        if sec != self._sec:
            self._sec = sec
            self._text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec))
        return self._text


def random_suffix(rng: random.Random, n: int = 5) -> str:
    """``n`` characters of NAME_ALPHABET, like Kubernetes' ``rand.String(n)`` (one draw, read
    in base 27: several times faster than drawing each character)."""
    x = rng.randrange(len(NAME_ALPHABET) ** n)
    out = []
    for _ in range(n):
        x, d = divmod(x, len(NAME_ALPHABET))
        out.append(NAME_ALPHABET[d])
    return "".join(out)


_PLURALS: dict[str, str] = {}


def _fill_caches() -> None:
    """The per-kind facts the store needs, read from the registry (emptied whenever a kind is
    registered or removed at run time, and filled again on next use)."""
    from ..api import registry

    if _clear_caches not in registry.HOOKS:
        registry.HOOKS.append(_clear_caches)
    _CLUSTER_SCOPED.update(k for k, c in registry.STORED.items() if not c.NAMESPACED)
    _PLURALS.update((k, c.PLURAL) for k, c in registry.STORED.items() if c.PLURAL)


def _clear_caches() -> None:
    _CLUSTER_SCOPED.clear()
    _PLURALS.clear()


def _plural(kind: str) -> str:
    if not _PLURALS:
        _fill_caches()
    return _PLURALS.get(kind) or kind.lower() + "s"


def not_found(kind: str, name: str) -> NotFound:
    return NotFound(f'{_plural(kind)} "{name}" not found')


def already_exists(kind: str, name: str) -> Conflict:
    return Conflict(f'{_plural(kind)} "{name}" already exists')


def stale(kind: str, name: str) -> Conflict:
    return Conflict(
        f'Operation cannot be fulfilled on {_plural(kind)} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def missing_name(obj: Object) -> ValidationError:
    return ValidationError(obj.KIND, "metadata.name", "name or generateName is required")


def spec_of(obj: Object) -> object:
    """What bumps ``metadata.generation`` when it changes (spec; Endpoints/slices have none)."""
    return getattr(obj, "spec", None)


def created(obj: Object, name: str, ns: str, uid: str, rv: int, now: str) -> Object:
    """``obj`` as stored on creation: its final name, namespace, identity and version."""
    return msgspec.structs.replace(
        obj,
        metadata=msgspec.structs.replace(
            obj.metadata,
            name=name,
            namespace=ns or None,
            uid=uid,
            resourceVersion=str(rv),
            creationTimestamp=now,
            generation=1,
        ),
    )


def check_fresh(obj: Object, old: Object, check_rv: bool) -> None:
    """Optimistic concurrency: a write based on an older resourceVersion is a Conflict."""
    rv = obj.metadata.resourceVersion
    if check_rv and rv is not None and rv != old.metadata.resourceVersion:
        raise stale(obj.KIND, obj.metadata.name)


def updated(obj: Object, old: Object, ns: str, rv: int) -> Object:
    """``obj`` as stored by an update of ``old``: identity kept, generation bumped on spec change."""
    om = old.metadata
    gen = (om.generation or 1) + (spec_of(obj) != spec_of(old))
    return msgspec.structs.replace(
        obj,
        metadata=msgspec.structs.replace(
            obj.metadata,
            namespace=ns or None,
            uid=om.uid,
            creationTimestamp=om.creationTimestamp,
            resourceVersion=str(rv),
            generation=gen,
        ),
    )
