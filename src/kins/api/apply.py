"""Server-side apply: field sets, ownership and the structured merge, on JSON-shaped objects.

This is the model of Kubernetes' structured-merge-diff, over the typed structs of ``kins.api``:

- A *path* names one field of an object as a tuple of ``fieldsV1`` keys: ``f:<field>`` for a
  field or a map entry, ``k:{"name":"web"}`` for an element of an associative list (the JSON of
  its key fields, sorted), ``v:<json>`` for an element of a set, ``i:<n>`` for an index.
- A *field set* is a set of paths. ``metadata.managedFields`` stores one per manager as a trie
  (``fieldsV1``) where a leaf ``{}`` is a member and ``.`` marks an inner node that is one.
- Lists are atomic (replaced whole, owned as one field), sets (scalars merged) or associative
  (elements merged by their key fields), as ``x-kubernetes-list-type`` says upstream; the
  merge keys of ``patch.py`` serve here too, with the few lists whose keys differ (container
  ports by ``containerPort`` and ``protocol``) or that upstream keeps atomic named below.

``apply`` merges an applied configuration into the live object: fields the manager applied
before and dropped are removed unless another manager owns them, and fields another manager
set to a different value are conflicts unless forced. ``update`` records what a plain write
(create, update, patch) changed as owned by its manager.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import msgspec
import msgspec.inspect as mi

from .._errors import KinsError
from .patch import MERGE_KEYS, MERGED_SCALAR_LISTS

Path = tuple[str, ...]
FieldSet = frozenset[Path]

APPLY = "Apply"
UPDATE = "Update"
FIELDS_V1 = "FieldsV1"
BEFORE_FIRST_APPLY = "before-first-apply"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# The manager whose applies also keep kubectl's last-applied annotation (as kube-apiserver does).
KUBECTL = "kubectl"

# --- schema -----------------------------------------------------------------------------------

# List element type -> key fields, where the keys are not patch.py's single merge key.
_KEYS_BY_ELEMENT: dict[str, tuple[str, ...]] = {
    "ContainerPort": ("containerPort", "protocol"),
    "ServicePort": ("port", "protocol"),
    "NodeAddress": ("type",),
    "PodIP": ("ip",),
}
# (struct, field) or field -> list type, where upstream differs from patch.py's merge keys.
_LIST_TYPES: dict[Any, tuple[str, tuple[str, ...]]] = {
    "topologySpreadConstraints": ("map", ("topologyKey", "whenUnsatisfiable")),
    "hostIPs": ("atomic", ()),
    "podCIDRs": ("set", ()),
    ("Endpoint", "addresses"): ("set", ()),
}
# Lists keyed only by their element type (ports of a container or a Service, a Node's
# addresses): elsewhere (Endpoints, EndpointSlices, NetworkPolicies) they are atomic.
_BY_ELEMENT_ONLY = frozenset({"ports", "addresses"})
# Maps and structs that are one field as a whole (mapType / structType atomic).
_ATOMIC_MAPS: frozenset[Any] = frozenset(
    {"nodeSelector", ("ServiceSpec", "selector"), ("ReplicationControllerSpec", "selector")}
)
_ATOMIC_STRUCTS = frozenset({"LabelSelector"})
# Key fields the API defaults, so an applied element without them still has its key.
_KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}
# Struct fields that are never absent in Go (non-pointer structs): an update that fills them
# in does not make their writer own the struct itself, only what it set inside.
_ALWAYS_PRESENT = frozenset(
    {
        "metadata",
        "spec",
        "status",
        "template",
        "strategy",
        "updateStrategy",
        "nodeInfo",
        "daemonEndpoints",
        "containers",
    }
)


@dataclass(eq=False)
class Schema:
    """How one position of an object merges: ``struct`` (declared fields), ``map`` (any keys,
    one value schema), ``list`` (``list_type`` atomic, set or map with ``keys``), ``leaf``
    (scalars and atomic values)."""

    kind: str
    fields: dict[str, Schema] = field(default_factory=dict)
    elem: Schema | None = None
    list_type: str = "atomic"
    keys: tuple[str, ...] = ()
    name: str = ""


LEAF = Schema("leaf")
ANY = Schema("any")


def _strip_none(t: mi.Type) -> mi.Type:
    if isinstance(t, mi.UnionType):
        rest = [x for x in t.types if not isinstance(x, mi.NoneType)]
        if len(rest) == 1:
            return rest[0]
        return mi.AnyType()
    return t


def _list_schema(parent: str, fname: str, elem_t: mi.Type, memo: dict[type, Schema]) -> Schema:
    elem = _schema(elem_t, memo, parent, fname)
    elem_name = elem_t.cls.__name__ if isinstance(elem_t, mi.StructType) else ""
    if (parent, fname) in _LIST_TYPES or fname in _LIST_TYPES:
        kind, keys = _LIST_TYPES.get((parent, fname)) or _LIST_TYPES[fname]
        return Schema("list", elem=elem, list_type=kind, keys=keys)
    if elem_name in _KEYS_BY_ELEMENT:
        return Schema("list", elem=elem, list_type="map", keys=_KEYS_BY_ELEMENT[elem_name])
    if fname in MERGED_SCALAR_LISTS:
        return Schema("list", elem=elem, list_type="set")
    if fname in MERGE_KEYS and fname not in _BY_ELEMENT_ONLY and elem.kind == "struct":
        for key in MERGE_KEYS[fname]:
            if key in elem.fields:
                return Schema("list", elem=elem, list_type="map", keys=(key,))
    return Schema("list", elem=elem, list_type="atomic")


def _schema(t: mi.Type, memo: dict[type, Schema], parent: str = "", fname: str = "") -> Schema:
    t = _strip_none(t)
    if isinstance(t, mi.StructType):
        if t.cls.__name__ in _ATOMIC_STRUCTS:
            return LEAF
        if t.cls in memo:
            return memo[t.cls]
        s = Schema("struct", name=t.cls.__name__)
        memo[t.cls] = s
        for f in t.fields:
            s.fields[f.encode_name] = _schema(f.type, memo, s.name, f.encode_name)
        return s
    if isinstance(t, mi.DictType):
        if (parent, fname) in _ATOMIC_MAPS or fname in _ATOMIC_MAPS:
            return LEAF
        return Schema("map", elem=_schema(t.value_type, memo))
    if isinstance(t, mi.ListType | mi.VarTupleType | mi.SetType):
        return _list_schema(parent, fname, t.item_type, memo)
    if isinstance(t, mi.AnyType):
        return ANY
    return LEAF


@cache
def schema_of(cls: type[msgspec.Struct]) -> Schema:
    """The merge schema of a kind's struct (cached: types do not change)."""
    return _schema(mi.type_info(cls), {})


# --- paths ------------------------------------------------------------------------------------


class ApplyError(KinsError):
    """An applied configuration that cannot be merged (a list element without its key)."""


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def item_key(item: Any, keys: tuple[str, ...]) -> str | None:
    """The ``k:`` path element of an associative list's element, or None if a key is missing."""
    if not isinstance(item, dict):
        return None
    kv = {}
    for k in keys:
        v = item.get(k, _KEY_DEFAULTS.get(k))
        if v is None:
            return None
        kv[k] = v
    return "k:" + _json(dict(sorted(kv.items())))


def _list_index(items: list[Any], schema: Schema) -> dict[str, Any] | None:
    """Element path element -> element of a granular list; None when the list cannot be keyed
    (an element without its key, duplicates), which is then treated as one atomic field."""
    out: dict[str, Any] = {}
    if schema.list_type == "set":
        for x in items:
            if isinstance(x, dict | list):
                return None
            out["v:" + _json(x)] = x
        return out if len(out) == len(items) else None
    for item in items:
        key = item_key(item, schema.keys)
        if key is None or key in out:
            return None
        out[key] = item
    return out


def path_string(path: Path) -> str:
    """A path as the API's messages write it: ``.spec.containers[name="web"].image``."""
    out = []
    for pe in path:
        kind, text = pe[0], pe[2:]
        if kind == "f":
            out.append("." + text)
        elif kind == "k":
            fields = msgspec.json.decode(text)
            out.append("[" + ",".join(f"{k}={_json(v)}" for k, v in fields.items()) + "]")
        elif kind == "v":
            out.append("[=" + text + "]")
        else:
            out.append("[" + text + "]")
    return "".join(out)


# --- field sets -------------------------------------------------------------------------------

MARK: Any = object()  # the value of a path that is a member with children (a list element ...)
_ABSENT: Any = object()


def _granular(value: Any, schema: Schema) -> bool:
    """Whether a value is merged field by field (non-empty structs and maps, keyed lists)."""
    if isinstance(value, dict):
        return bool(value) and schema.kind in ("struct", "map", "any")
    if isinstance(value, list):
        return schema.kind == "list" and schema.list_type != "atomic"
    return False


def _child(schema: Schema, name: str) -> tuple[Schema, bool]:
    """Schema of a field and whether it is a map entry (a member even with children)."""
    if schema.kind == "struct":
        sub = schema.fields.get(name)
        return (ANY, True) if sub is None else (sub, False)
    if schema.kind == "map":
        assert schema.elem is not None
        return schema.elem, True
    return ANY, True


def flatten(
    value: Any, schema: Schema, path: Path = (), out: dict[Path, Any] | None = None, marks: bool = False
) -> dict[Path, Any]:
    """Every member path of ``value`` -> its value (leaves) or ``MARK`` (members with children).

    ``marks`` also counts a non-empty struct or map as a member (a pointer or map field that an
    update filled in), as upstream's comparison of an update sees it.
    """
    if out is None:
        out = {}
    if isinstance(value, dict) and schema.kind in ("struct", "map", "any"):
        for name, child in value.items():
            p = (*path, "f:" + name)
            sub, entry = _child(schema, name)
            if _granular(child, sub):
                if entry or (marks and name not in _ALWAYS_PRESENT):
                    out[p] = MARK
                flatten(child, sub, p, out, marks)
            else:
                out[p] = child
    elif isinstance(value, list) and schema.kind == "list" and schema.list_type != "atomic":
        index = _list_index(value, schema)
        if index is None:
            out[path] = value
            return out
        assert schema.elem is not None
        for pe, item in index.items():
            p = (*path, pe)
            if schema.list_type == "set" or not isinstance(item, dict) or not item:
                out[p] = item
            else:
                out[p] = MARK
                flatten(item, schema.elem, p, out, marks)
    else:
        out[path] = value
    return out


@dataclass
class Comparison:
    added: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)

    def changed(self) -> set[Path]:
        return self.added | self.modified


def compare(
    old: Any, new: Any, schema: Schema, path: Path = (), into: Comparison | None = None, marks: bool = True
) -> Comparison:
    """What changed from ``old`` to ``new``, as paths. Equal subtrees are skipped whole (one C
    comparison), so a status update costs what its changed fields cost."""
    c = into if into is not None else Comparison()
    if old is new or old == new:
        return c
    if isinstance(old, dict) and isinstance(new, dict) and old and new and schema.kind in ("struct", "map", "any"):
        for name in old.keys() | new.keys():
            o, n = old.get(name, _ABSENT), new.get(name, _ABSENT)
            if o is n or o == n:
                continue
            sub, _ = _child(schema, name)
            if o is _ABSENT:
                c.added.update(flatten({name: n}, schema, path, marks=marks))
            elif n is _ABSENT:
                c.removed.update(flatten({name: o}, schema, path, marks=marks))
            elif _granular(o, sub) and _granular(n, sub):
                compare(o, n, sub, (*path, "f:" + name), c, marks)
            else:
                # A leaf that became a subtree or the other way round: compare the members of both.
                fo = flatten({name: o}, schema, path, marks=marks)
                _diff_flat(fo, flatten({name: n}, schema, path, marks=marks), c)
        return c
    if (
        isinstance(old, list)
        and isinstance(new, list)
        and schema.kind == "list"
        and schema.list_type != "atomic"
        and (oi := _list_index(old, schema)) is not None
        and (ni := _list_index(new, schema)) is not None
    ):
        assert schema.elem is not None
        for pe in oi.keys() | ni.keys():
            o, n = oi.get(pe, _ABSENT), ni.get(pe, _ABSENT)
            if o == n:
                continue
            p = (*path, pe)
            if o is _ABSENT:
                c.added.update(flatten([n], schema, path, marks=marks))
            elif n is _ABSENT:
                c.removed.update(flatten([o], schema, path, marks=marks))
            elif schema.list_type == "map" and isinstance(o, dict) and isinstance(n, dict) and o and n:
                compare(o, n, schema.elem, p, c, marks)
            else:
                _diff_flat(flatten([o], schema, path, marks=marks), flatten([n], schema, path, marks=marks), c)
        return c
    _diff_flat(flatten(old, schema, path, marks=marks), flatten(new, schema, path, marks=marks), c)
    return c


def _diff_flat(fo: dict[Path, Any], fn: dict[Path, Any], c: Comparison) -> None:
    for p, v in fn.items():
        if p not in fo:
            c.added.add(p)
        elif fo[p] is not v and fo[p] != v:
            c.modified.add(p)
    c.removed.update(p for p in fo if p not in fn)


# --- fieldsV1 ---------------------------------------------------------------------------------


def from_fields_v1(trie: Any, prefix: Path = (), out: set[Path] | None = None) -> set[Path]:
    """The paths of a ``fieldsV1`` trie."""
    if out is None:
        out = set()
    if not isinstance(trie, dict):
        return out
    for key, child in trie.items():
        if key == ".":
            out.add(prefix)
            continue
        p = (*prefix, key)
        if not child:
            out.add(p)
        else:
            from_fields_v1(child, p, out)
    return out


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """The ``fieldsV1`` trie of a field set (keys sorted, ``.`` first, as the API writes it)."""
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        for pe in path:
            node = node.setdefault(pe, {})
        node["."] = {}
    return _finish(root)


def _finish(node: dict[str, Any]) -> dict[str, Any]:
    if len(node) == 1 and "." in node:
        return {}
    return {k: (v if k == "." else _finish(v)) for k, v in sorted(node.items())}


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
        text = _json(self.manager)
        if self.subresource:
            text += f" with subresource {_json(self.subresource)}"
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


def trie_has(trie: Any, path: Path) -> bool:
    """Whether a ``fieldsV1`` trie holds ``path`` as a member."""
    node = trie
    for pe in path:
        if not isinstance(node, dict):
            return False
        node = node.get(pe)
        if node is None:
            return False
    return isinstance(node, dict) and (not node or "." in node)


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


def merge(live: Any, config: Any, schema: Schema) -> Any:
    """``config`` laid over ``live``: structs and maps field by field, associative lists and
    sets element by element (live order, new elements after), anything else replaced."""
    if isinstance(config, dict) and isinstance(live, dict) and schema.kind in ("struct", "map", "any"):
        out = dict(live)
        for name, value in config.items():
            if value is None:
                out.pop(name, None)
                continue
            sub, _ = _child(schema, name)
            out[name] = merge(live.get(name), value, sub)
        return out
    if isinstance(config, list) and isinstance(live, list) and schema.kind == "list" and schema.list_type != "atomic":
        li, ci = _list_index(live, schema), _list_index(config, schema)
        if li is not None and ci is not None:
            assert schema.elem is not None
            merged = {pe: (merge(li[pe], v, schema.elem) if pe in li else v) for pe, v in ci.items()}
            return [merged.get(pe, v) for pe, v in li.items()] + [v for pe, v in merged.items() if pe not in li]
    if isinstance(config, dict) and schema.kind in ("struct", "map", "any"):
        return {k: v for k, v in config.items() if v is not None}
    return config


def check_config(config: Any, schema: Schema, path: Path = ()) -> None:
    """An applied configuration's associative lists must key every element once (upstream
    refuses them too: their ownership could not be told apart)."""
    if isinstance(config, dict):
        for name, value in config.items():
            if isinstance(value, dict | list):
                check_config(value, _child(schema, name)[0], (*path, "f:" + name))
    elif isinstance(config, list) and schema.kind == "list" and schema.list_type == "map":
        seen: set[str] = set()
        for i, item in enumerate(config):
            key = item_key(item, schema.keys)
            if key is None:
                missing = [
                    k for k in schema.keys if not (isinstance(item, dict) and k in item) and k not in _KEY_DEFAULTS
                ]
                raise ApplyError(f"{path_string(path)}[{i}]: element is missing key field(s) {', '.join(missing)}")
            if key in seen:
                raise ApplyError(f"{path_string(path)}: duplicate entries for key {path_string((key,))}")
            seen.add(key)
            assert schema.elem is not None
            check_config(item, schema.elem, (*path, key))


def _prefixes(paths: Iterable[Path]) -> set[Path]:
    out: set[Path] = set()
    for p in paths:
        for i in range(len(p), 0, -1):
            if p[:i] in out:
                break
            out.add(p[:i])
    return out


def remove_path(doc: Any, path: Path) -> None:
    """Remove the field or list element at ``path`` from ``doc`` (in place), if present."""
    node = doc
    for i, pe in enumerate(path):
        last = i == len(path) - 1
        kind, text = pe[0], pe[2:]
        if kind == "f":
            if not isinstance(node, dict) or text not in node:
                return
            if last:
                del node[text]
                return
            node = node[text]
            continue
        if not isinstance(node, list):
            return
        if kind == "i":
            at = int(text)
        else:
            at = next((j for j, item in enumerate(node) if _element_pe(item, pe) == pe), -1)
        if not 0 <= at < len(node):
            return
        if last:
            del node[at]
            return
        node = node[at]


def get_path(doc: Any, path: Path) -> Any:
    """The value at ``path`` in ``doc``, or ``_ABSENT``."""
    node = doc
    for pe in path:
        kind, text = pe[0], pe[2:]
        if kind == "f":
            if not isinstance(node, dict) or text not in node:
                return _ABSENT
            node = node[text]
        elif not isinstance(node, list):
            return _ABSENT
        elif kind == "i":
            at = int(text)
            if not 0 <= at < len(node):
                return _ABSENT
            node = node[at]
        else:
            node = next((item for item in node if _element_pe(item, pe) == pe), _ABSENT)
            if node is _ABSENT:
                return node
    return node


def _drop_emptied(doc: Any, path: Path, owned: set[Path]) -> None:
    """After a prune: a struct or map left empty that nobody owns goes too (as an omitted
    empty map does upstream), up to the first ancestor still holding something."""
    while path and path not in owned:
        value = get_path(doc, path)
        if value is _ABSENT or not isinstance(value, dict | list) or value:
            return
        remove_path(doc, path)
        path = path[:-1]


def _element_pe(item: Any, pe: str) -> str | None:
    if pe.startswith("v:"):
        return "v:" + _json(item)
    keys = tuple(msgspec.json.decode(pe[2:]))
    return item_key(item, keys)


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


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
    merged = merge(_deep_copy(base), _deep_copy(config), schema)
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
    doc = _deep_copy(config)
    meta = doc.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(LAST_APPLIED, None)
        if not meta["annotations"]:
            del meta["annotations"]
    return msgspec.json.encode(doc).decode()
