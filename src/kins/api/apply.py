"""Server-side apply: who owns which fields of an object, and the apply itself.

``metadata.managedFields`` holds one entry per manager (manager, operation Apply or Update,
apiVersion, subresource, time) with the set of fields it owns (``fieldsets.py``). ``apply``
merges an applied configuration into the live object: fields the manager applied before and
dropped are removed unless another manager owns them, and fields another manager set to a
different value are conflicts unless forced. ``update`` records what a plain write (create,
update, patch) changed as owned by its writer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from .._errors import KinsError
from .fieldsets import (
    ABSENT,
    Path,
    Schema,
    check_config,
    compare,
    deep_copy,
    flatten,
    from_fields_v1,
    get_path,
    json_text,
    merge,
    path_string,
    remove_path,
    to_fields_v1,
    trie_has,
)

APPLY = "Apply"
UPDATE = "Update"
FIELDS_V1 = "FieldsV1"
BEFORE_FIRST_APPLY = "before-first-apply"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# The manager whose applies also keep kubectl's last-applied annotation (as kube-apiserver does).
KUBECTL = "kubectl"


# --- managers ---------------------------------------------------------------------------------


class Manager:
    """One ``managedFields`` entry: who (manager, operation, subresource, apiVersion), when,
    and what it owns.

    An entry read from an object keeps its ``fieldsV1`` trie and is parsed into paths only when
    its set must change: a write that touches none of another manager's fields (a kubelet's
    status update, for the creator's entry) passes that entry through as it was.
    """

    __slots__ = ("_paths", "api_version", "manager", "operation", "raw", "subresource", "time")

    def __init__(
        self,
        manager: str,
        operation: str,
        api_version: str,
        fields: set[Path] | None = None,
        time: str | None = None,
        subresource: str = "",
        raw: dict[str, Any] | None = None,
    ) -> None:
        self.manager = manager
        self.operation = operation
        self.api_version = api_version
        self.time = time
        self.subresource = subresource
        self.raw = raw
        self._paths = fields if fields is not None or raw is not None else set()

    @property
    def fields(self) -> set[Path]:
        if self._paths is None:
            self._paths = from_fields_v1(self.raw)
        return self._paths

    @fields.setter
    def fields(self, paths: set[Path]) -> None:
        self._paths = paths

    def discard(self, paths: set[Path]) -> None:
        """Give up ``paths`` (another writer changed or removed them)."""
        if not paths:
            return
        if self._paths is None and not any(trie_has(self.raw, p) for p in paths):
            return
        self.fields -= paths

    def empty(self) -> bool:
        return not self.raw if self._paths is None else not self._paths

    def copy(self) -> Manager:
        return Manager(
            self.manager,
            self.operation,
            self.api_version,
            None if self._paths is None else set(self._paths),
            self.time,
            self.subresource,
            self.raw,
        )

    @property
    def ident(self) -> tuple[str, str, str, str]:
        # Appliers are one manager whatever version they applied in; updaters are one per version.
        return (self.manager, self.operation, self.subresource, "" if self.operation == APPLY else self.api_version)

    def describe(self) -> str:
        """The manager as conflict messages name it."""
        text = json_text(self.manager)
        if self.subresource:
            text += f" with subresource {json_text(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time is not None:
            out["time"] = self.time
        out["fieldsType"] = FIELDS_V1
        out["fieldsV1"] = self.raw if self._paths is None else to_fields_v1(self._paths)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def parse_managers(entries: Any) -> list[Manager]:
    """``metadata.managedFields`` -> managers (entries of another format or malformed are
    dropped, as the API server resets what it cannot read)."""
    out: list[Manager] = []
    if not isinstance(entries, list):
        return out
    for e in entries:
        if not isinstance(e, dict):
            continue
        trie = e.get("fieldsV1")
        out.append(
            Manager(
                manager=str(e.get("manager") or ""),
                operation=str(e.get("operation") or ""),
                api_version=str(e.get("apiVersion") or ""),
                time=e.get("time"),
                subresource=str(e.get("subresource") or ""),
                raw=trie if isinstance(trie, dict) else {},
            )
        )
    return out


def encode_managers(managers: list[Manager]) -> list[dict[str, Any]]:
    """Entries in the API's order: appliers first, then by time, manager, version, subresource."""
    live = [m for m in managers if not m.empty()]
    live.sort(key=lambda m: (m.operation, m.time or "", m.manager, m.api_version, m.subresource))
    return [m.entry() for m in live]


def now() -> str:
    """Managed-fields time: RFC 3339 in UTC, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Paths no manager owns: identity and bookkeeping the server sets.
_META_STRIP = (
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "generation",
    "managedFields",
    "resourceVersion",
)
STRIPPED: frozenset[Path] = frozenset(
    {("f:apiVersion",), ("f:kind",), ("f:metadata",)} | {("f:metadata", "f:" + n) for n in _META_STRIP}
)


def _owned_scope(path: Path, subresource: str) -> bool:
    """Whether a write through the main resource (``subresource`` "") or ``/status`` can own
    ``path``: the main resource leaves status alone, ``/status`` changes only status."""
    if path in STRIPPED:
        return False
    top = path[0] if path else ""
    if subresource == "status":
        return top == "f:status"
    return top != "f:status"


def _scoped(paths: Iterable[Path], subresource: str, has_status: bool) -> set[Path]:
    if not has_status and subresource == "":
        return {p for p in paths if p not in STRIPPED}
    return {p for p in paths if _owned_scope(p, subresource)}


def _meta_view(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without the metadata fields no manager owns (cheaper than filtering paths)."""
    meta = doc.get("metadata")
    out = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}
    if isinstance(meta, dict):
        out["metadata"] = {k: v for k, v in meta.items() if k not in _META_STRIP}
    return out


# --- update -----------------------------------------------------------------------------------


def update(
    live: dict[str, Any] | None,
    new: dict[str, Any],
    schema: Schema,
    managers: list[Manager],
    manager: str,
    api_version: str,
    subresource: str = "",
    has_status: bool = True,
    when: str | None = None,
) -> list[Manager]:
    """The managers after a plain write of ``new`` over ``live`` (None: a create) by
    ``manager``: it owns what it changed, and others lose what it changed or removed."""
    c = compare(_meta_view(live) if live is not None else {}, _meta_view(new), schema)
    changed = _scoped(c.changed(), subresource, has_status)
    removed = _scoped(c.removed, subresource, has_status)
    me = Manager(manager, UPDATE, api_version, set(), None, subresource)
    out: list[Manager] = []
    mine: Manager | None = None
    for m in managers:
        if m.ident == me.ident:
            mine = m
            continue
        m.discard(changed)
        m.discard(removed)
        if not m.empty():
            out.append(m)
    if mine is None:
        mine = me
    else:
        mine.discard(removed)
    if changed:
        mine.fields |= changed
        mine.time = when or now()
    if not mine.empty():
        out.append(mine)
    return cap_updaters(out)


MAX_UPDATERS = 10
ANCIENT = "ancient-changes"


def cap_updaters(managers: list[Manager], limit: int = MAX_UPDATERS) -> list[Manager]:
    """At most ``limit`` Update entries: the oldest are folded, per API version, into one
    ``ancient-changes`` entry (as the API server keeps managedFields from growing)."""
    updaters = [m for m in managers if m.operation == UPDATE]
    if len(updaters) <= limit:
        return managers
    updaters.sort(key=lambda m: (m.time or "", m.manager))
    buckets = {m.api_version: m for m in updaters if m.manager == ANCIENT and not m.subresource}
    first: dict[str, Manager] = {}
    out = list(managers)
    length = len(updaters)
    for m in updaters:
        if length <= limit:
            break
        if m.manager == ANCIENT:
            continue
        version = m.api_version
        if version not in first and version not in buckets:
            first[version] = m
            continue
        bucket = buckets.get(version)
        if bucket is None:
            oldest = first[version]
            bucket = Manager(ANCIENT, UPDATE, version, set(oldest.fields), oldest.time)
            out[out.index(oldest)] = bucket
            buckets[version] = bucket
        bucket.fields = bucket.fields | m.fields
        bucket.time = m.time
        out.remove(m)
        length -= 1
    return out


# --- apply ------------------------------------------------------------------------------------


@dataclass
class Conflict:
    manager: Manager
    path: Path


class Conflicts(KinsError):
    """Fields the applied configuration would change that other managers own."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = sorted(conflicts, key=lambda c: (c.manager.describe(), c.path))
        super().__init__(self.message())

    def message(self) -> str:
        cs = self.conflicts
        if len(cs) == 1:
            return f"Apply failed with 1 conflict: conflict with {cs[0].manager.describe()}: {path_string(cs[0].path)}"
        lines: list[str] = []
        by: dict[str, list[Path]] = {}
        for c in cs:
            by.setdefault(c.manager.describe(), []).append(c.path)
        for who in sorted(by):
            lines.append(f"conflicts with {who}:")
            lines.extend(f"- {path_string(p)}" for p in by[who])
        return f"Apply failed with {len(cs)} conflicts: " + "\n".join(lines)

    def causes(self) -> list[dict[str, str]]:
        return [
            {
                "reason": "FieldManagerConflict",
                "message": f"conflict with {c.manager.describe()}",
                "field": path_string(c.path),
            }
            for c in self.conflicts
        ]


def _prefixes(paths: Iterable[Path]) -> set[Path]:
    out: set[Path] = set()
    for p in paths:
        for i in range(len(p), 0, -1):
            if p[:i] in out:
                break
            out.add(p[:i])
    return out


def _drop_emptied(doc: Any, path: Path, owned: set[Path]) -> None:
    """After a prune: a struct or map left empty that nobody owns goes too (as an omitted
    empty map does upstream), up to the first ancestor still holding something."""
    while path and path not in owned:
        value = get_path(doc, path)
        if value is ABSENT or not isinstance(value, dict | list) or value:
            return
        remove_path(doc, path)
        path = path[:-1]


@dataclass
class Applied:
    obj: dict[str, Any]
    managers: list[Manager]
    changed: bool


def apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    schema: Schema,
    managers: list[Manager],
    manager: str,
    api_version: str,
    force: bool,
    subresource: str = "",
    has_status: bool = True,
    when: str | None = None,
) -> Applied:
    """Server-side apply of ``config`` by ``manager`` onto ``live`` (None: apply-create)."""
    check_config(config, schema)
    when = when or now()
    base = live if live is not None else {}
    managers = [m.copy() for m in managers]
    if live is not None and not managers:
        # An object nobody owns fields of (written before managed fields were kept, or by a
        # controller straight to the store): its fields become one updater's, so applying a
        # different value is a conflict rather than a silent overwrite.
        managers = update(None, live, schema, [], BEFORE_FIRST_APPLY, api_version, subresource, has_status, when)
    me = Manager(manager, APPLY, api_version, set(), when, subresource)
    last: set[Path] = set()
    others: list[Manager] = []
    for m in managers:
        if m.ident == me.ident:
            last = m.fields
        else:
            others.append(m)
    mine = _scoped(flatten(_meta_view(config), schema), subresource, has_status)
    me.fields = mine
    # Copies: pruning edits the result in place, and the caller still needs its configuration.
    merged = merge(deep_copy(base), deep_copy(config), schema)
    dropped = last - mine
    if dropped:
        owned = set(mine)
        for m in others:
            owned |= m.fields
        keep = _prefixes(owned)
        for p in sorted(dropped, key=len):
            if p not in keep:
                remove_path(merged, p)
                _drop_emptied(merged, p[:-1], owned)
    c = compare(_meta_view(base), _meta_view(merged), schema)
    changed = _scoped(c.changed(), subresource, has_status)
    removed = _scoped(c.removed, subresource, has_status)
    conflicts = [Conflict(m, p) for m in others for p in (m.fields & changed)]
    if conflicts and not force:
        raise Conflicts(conflicts)
    out: list[Manager] = []
    for m in others:
        m.discard(changed)
        m.discard(removed)
        if not m.empty():
            out.append(m)
    is_changed = live is None or merged != live
    if not is_changed:
        # Nothing changed: the applier's entry keeps its time (as upstream: a no-op apply).
        old = next((m for m in managers if m.ident == me.ident), None)
        me.time = old.time if old is not None else when
    out.append(me)
    return Applied(merged, out, is_changed)


def allowed_by_last_applied(live: dict[str, Any], schema: Schema) -> set[Path]:
    """Fields kubectl's client-side apply recorded in the last-applied annotation that still
    hold the value it applied: kubectl's first server-side apply takes them over without a
    conflict (how kubectl moves an object from client-side to server-side apply)."""
    meta = live.get("metadata")
    text = (meta.get("annotations") or {}).get(LAST_APPLIED) if isinstance(meta, dict) else None
    if not text:
        return set()
    try:
        last = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return set()
    if not isinstance(last, dict) or last.get("apiVersion") != live.get("apiVersion"):
        return set()
    fields = set(flatten(last, schema))
    c = compare(last, live, schema, marks=False)
    return fields - c.modified - c.added - c.removed


def last_applied_text(config: dict[str, Any]) -> str:
    """The last-applied annotation kubectl's server-side applies keep up to date."""
    doc = deep_copy(config)
    meta = doc.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(LAST_APPLIED, None)
        if not meta["annotations"]:
            del meta["annotations"]
    return msgspec.json.encode(doc).decode()
