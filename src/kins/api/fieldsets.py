"""Field sets of JSON-shaped objects, as Kubernetes' structured-merge-diff defines them,
over the typed structs of ``kins.api``.

- A *path* names one field of an object as a tuple of ``fieldsV1`` keys: ``f:<field>`` for a
  field or a map entry, ``k:{"name":"web"}`` for an element of an associative list (the JSON of
  its key fields, sorted), ``v:<json>`` for an element of a set, ``i:<n>`` for an index.
- A *field set* is a set of paths. ``metadata.managedFields`` stores one per manager as a trie
  (``fieldsV1``) where a leaf ``{}`` is a member and ``.`` marks an inner node that is one.
- Lists are atomic (replaced whole, owned as one field), sets (scalars merged) or associative
  (elements merged by their key fields), as ``x-kubernetes-list-type`` says upstream; the
  merge keys of ``patch.py`` serve here too, with the few lists whose keys differ (container
  ports by ``containerPort`` and ``protocol``) or that upstream keeps atomic named below.

Here: the merge schema of a kind, the member paths of a value (``flatten``), what changed
between two values (``compare``), the structured merge (``merge``) and the removal of a path.
Ownership (who holds which set) is ``apply.py``'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec
import msgspec.inspect as mi

from .._errors import KinsError
from .patch import MERGE_KEYS, MERGED_SCALAR_LISTS

Path = tuple[str, ...]

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


def json_text(value: Any) -> str:
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
    return "k:" + json_text(dict(sorted(kv.items())))


def list_index(items: list[Any], schema: Schema) -> dict[str, Any] | None:
    """Element path element -> element of a granular list; None when the list cannot be keyed
    (an element without its key, duplicates), which is then treated as one atomic field."""
    out: dict[str, Any] = {}
    if schema.list_type == "set":
        for x in items:
            if isinstance(x, dict | list):
                return None
            out["v:" + json_text(x)] = x
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
            out.append("[" + ",".join(f"{k}={json_text(v)}" for k, v in fields.items()) + "]")
        elif kind == "v":
            out.append("[=" + text + "]")
        else:
            out.append("[" + text + "]")
    return "".join(out)


# --- field sets -------------------------------------------------------------------------------

MARK: Any = object()  # the value of a path that is a member with children (a list element ...)
ABSENT: Any = object()


def _granular(value: Any, schema: Schema) -> bool:
    """Whether a value is merged field by field (non-empty structs and maps, keyed lists)."""
    if isinstance(value, dict):
        return bool(value) and schema.kind in ("struct", "map", "any")
    if isinstance(value, list):
        return schema.kind == "list" and schema.list_type != "atomic"
    return False


def child_schema(schema: Schema, name: str) -> tuple[Schema, bool]:
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
            sub, entry = child_schema(schema, name)
            if _granular(child, sub):
                if entry or (marks and name not in _ALWAYS_PRESENT):
                    out[p] = MARK
                flatten(child, sub, p, out, marks)
            else:
                out[p] = child
    elif isinstance(value, list) and schema.kind == "list" and schema.list_type != "atomic":
        index = list_index(value, schema)
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
            o, n = old.get(name, ABSENT), new.get(name, ABSENT)
            if o is n or o == n:
                continue
            sub, _ = child_schema(schema, name)
            if o is ABSENT:
                c.added.update(flatten({name: n}, schema, path, marks=marks))
            elif n is ABSENT:
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
        and (oi := list_index(old, schema)) is not None
        and (ni := list_index(new, schema)) is not None
    ):
        assert schema.elem is not None
        for pe in oi.keys() | ni.keys():
            o, n = oi.get(pe, ABSENT), ni.get(pe, ABSENT)
            if o == n:
                continue
            p = (*path, pe)
            if o is ABSENT:
                c.added.update(flatten([n], schema, path, marks=marks))
            elif n is ABSENT:
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


def merge(live: Any, config: Any, schema: Schema) -> Any:
    """``config`` laid over ``live``: structs and maps field by field, associative lists and
    sets element by element (live order, new elements after), anything else replaced."""
    if isinstance(config, dict) and isinstance(live, dict) and schema.kind in ("struct", "map", "any"):
        out = dict(live)
        for name, value in config.items():
            if value is None:
                out.pop(name, None)
                continue
            sub, _ = child_schema(schema, name)
            out[name] = merge(live.get(name), value, sub)
        return out
    if isinstance(config, list) and isinstance(live, list) and schema.kind == "list" and schema.list_type != "atomic":
        li, ci = list_index(live, schema), list_index(config, schema)
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
                check_config(value, child_schema(schema, name)[0], (*path, "f:" + name))
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
    """The value at ``path`` in ``doc``, or ``ABSENT``."""
    node = doc
    for pe in path:
        kind, text = pe[0], pe[2:]
        if kind == "f":
            if not isinstance(node, dict) or text not in node:
                return ABSENT
            node = node[text]
        elif not isinstance(node, list):
            return ABSENT
        elif kind == "i":
            at = int(text)
            if not 0 <= at < len(node):
                return ABSENT
            node = node[at]
        else:
            node = next((item for item in node if _element_pe(item, pe) == pe), ABSENT)
            if node is ABSENT:
                return node
    return node


def _element_pe(item: Any, pe: str) -> str | None:
    if pe.startswith("v:"):
        return "v:" + json_text(item)
    keys = tuple(msgspec.json.decode(pe[2:]))
    return item_key(item, keys)


def deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) for v in value]
    return value
