"""Patch formats of the Kubernetes API, applied to plain JSON-shaped dicts.

- JSON merge patch (RFC 7386): maps merge recursively, ``null`` deletes, anything else replaces.
- Strategic merge patch, the subset kubectl sends: like a merge patch, except that lists of
  objects with a known merge key (containers by ``name``, Service ports by ``port`` ...) merge
  element by element, ``{"$patch": "delete"}`` elements remove, ``$setElementOrder/<field>``
  orders the result, ``$retainKeys`` clears the other members of a union,
  ``$deleteFromPrimitiveList/<field>`` removes scalars from a merged list (``finalizers``), and
  other ``$`` directives are dropped. Without this, ``kubectl apply``
  changing one container's image would wipe the container's other fields.
- JSON patch (RFC 6902): add, remove, replace, move, copy, test.

``three_way`` computes what ``kubectl apply`` would: the live object with the new manifest laid
over it and the fields dropped since the last apply removed.
"""

from __future__ import annotations

import copy
from typing import Any

from .._errors import KinsError

# Field name -> candidate merge keys (first one present in the elements wins). These are the
# patchMergeKey tags of the Kubernetes types kins models.
MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "imagePullSecrets": ("name",),
    "hostAliases": ("ip",),
    "conditions": ("type",),
    "ports": ("containerPort", "port"),
    "ownerReferences": ("uid",),
    "topologySpreadConstraints": ("topologyKey",),
    "addresses": ("type",),
    "volumeDevices": ("devicePath",),
    "resourceClaims": ("name",),
    "schedulingGates": ("name",),
    "podIPs": ("ip",),
    "hostIPs": ("ip",),
    "webhooks": ("name",),
}


class PatchError(KinsError):
    """A patch that cannot be applied (malformed, or a JSON patch ``test`` failed)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386. Returns a new value; ``target`` is not modified."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _merge_key(field: str, items: list[Any]) -> str | None:
    dicts = [i for i in items if isinstance(i, dict)]
    if not dicts or len(dicts) != len(items):
        return None
    for key in MERGE_KEYS.get(field, ()):
        if all(key in d for d in dicts):
            return key
    return None


# Lists of scalars that merge (patchStrategy "merge") instead of being replaced.
MERGED_SCALAR_LISTS = frozenset({"finalizers", "podCIDRs"})
_ORDER = "$setElementOrder/"
_DELETE_FROM = "$deleteFromPrimitiveList/"
_RETAIN = "$retainKeys"


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """The strategic merge patch as kubectl sends it (see the module docstring)."""
    if not isinstance(patch, dict):
        return _strip(patch)
    if patch.get("$patch") == "replace":
        return {k: _strip(v) for k, v in patch.items() if not k.startswith("$")}
    if patch.get("$patch") == "delete":
        return None
    out = dict(target) if isinstance(target, dict) else {}
    orders = {k[len(_ORDER) :]: v for k, v in patch.items() if k.startswith(_ORDER)}
    for k, v in patch.items():
        if k.startswith(_DELETE_FROM) and isinstance(v, list):
            field = k[len(_DELETE_FROM) :]
            if isinstance(out.get(field), list):
                out[field] = [x for x in out[field] if x not in v]
        if k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list):
            live = out.get(k)
            out[k] = _merge_list(k, live if isinstance(live, list) else [], v, orders.get(k))
        else:
            merged = strategic_merge_patch(out.get(k), v)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
    for field, order in orders.items():
        # An order for a list the patch does not otherwise touch (kubectl sends these when
        # it only deleted elements, or when only the order changed).
        if field not in patch and isinstance(out.get(field), list):
            out[field] = _merge_list(field, out[field], [], order)
    retain = patch.get(_RETAIN)
    if isinstance(retain, list):
        # retainKeys: fields of a union (a volume's source, a Deployment's strategy) that the
        # patch does not name are cleared, so switching the kind of source drops the old one.
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _strip(value: Any) -> Any:
    """A copy without patch directives (a new value still may carry them, e.g. in a list)."""
    if isinstance(value, dict):
        if value.get("$patch") == "delete":
            return None
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(x) for x in value if not (isinstance(x, dict) and x.get("$patch"))]
    return value


def _merge_list(field: str, live: list[Any], patch: list[Any], order: Any) -> list[Any]:
    if field in MERGED_SCALAR_LISTS and all(not isinstance(x, dict | list) for x in patch + live):
        merged = live + [x for x in patch if x not in live]
        if isinstance(order, list):
            wanted = [x for x in order if x in merged]
            merged = wanted + [x for x in merged if x not in wanted]
        return merged
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [_strip(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    key = _merge_key(field, patch + live) if patch or live else None
    if key is None:
        if not patch and isinstance(order, list):
            return live  # only an order, for a list without a merge key: nothing to do
        return [_strip(x) for x in patch if not (isinstance(x, dict) and x.get("$patch"))]
    result: dict[Any, Any] = {e[key]: e for e in live}
    appended: list[Any] = []
    for elem in patch:
        k = elem[key]
        if elem.get("$patch") == "delete":
            result.pop(k, None)
            continue
        if k not in result:
            appended.append(k)
        result[k] = strategic_merge_patch(result.get(k), elem)
    keys = [e[key] for e in live if e[key] in result] + appended
    if isinstance(order, list):
        wanted = [o[key] for o in order if isinstance(o, dict) and key in o and o[key] in result]
        keys = wanted + [k for k in keys if k not in wanted]
    return [result[k] for k in keys]


# --- RFC 6902 ---------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for p in parts[:-1]:
        try:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        except (KeyError, IndexError, ValueError, TypeError):
            raise PatchError(f"path {path!r} does not exist") from None
    return cur


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    try:
        return parent[int(parts[-1])] if isinstance(parent, list) else parent[parts[-1]]
    except (KeyError, IndexError, ValueError, TypeError):
        raise PatchError(f"path {path!r} does not exist") from None


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent = _parent(doc, parts, path)
    try:
        return parent.pop(int(parts[-1])) if isinstance(parent, list) else parent.pop(parts[-1])
    except (KeyError, IndexError, ValueError, TypeError):
        raise PatchError(f"path {path!r} does not exist") from None


def _add(doc: Any, path: str, value: Any, *, replace: bool = False) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, list):
        idx = len(parent) if last == "-" else int(last) if last.isdigit() else -1
        if idx < 0 or idx > len(parent) or (replace and idx >= len(parent)):
            raise PatchError(f"index {last!r} out of range in {path!r}")
        if replace:
            parent[idx] = value
        else:
            parent.insert(idx, value)
    elif isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"path {path!r} does not exist")
        parent[last] = value
    else:
        raise PatchError(f"path {path!r} does not exist")
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 on a deep copy of ``target``."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            raise PatchError(f"invalid JSON patch operation {op!r}")
        kind, path = op.get("op"), op["path"]
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            doc = _add(doc, path, copy.deepcopy(op.get("value")), replace=True)
        elif kind in ("move", "copy"):
            src = op.get("from")
            if not isinstance(src, str):
                raise PatchError(f"{kind} needs 'from'")
            value = _remove(doc, src) if kind == "move" else copy.deepcopy(_get(doc, src))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"test failed at {path!r}")
        else:
            raise PatchError(f"unknown JSON patch operation {kind!r}")
    return doc


# --- kubectl apply ----------------------------------------------------------------------------


def three_way(live: Any, last: Any, new: Any, field: str = "") -> Any:
    """``new`` laid over ``live``; what ``last`` had and ``new`` dropped is removed.

    Fields only the server or other writers set (clusterIP, nodePort, status) survive because
    they are in neither ``last`` nor ``new``.
    """
    if isinstance(new, dict):
        out = dict(live) if isinstance(live, dict) else {}
        prev = last if isinstance(last, dict) else {}
        for k in prev:
            if k not in new:
                out.pop(k, None)
        for k, v in new.items():
            out[k] = three_way(out.get(k), prev.get(k), v, k)
        return out
    if isinstance(new, list) and isinstance(live, list):
        key = _merge_key(field, new + live)
        if key is not None:
            live_by = {e[key]: e for e in live}
            last_by = {e[key]: e for e in last if isinstance(e, dict) and key in e} if isinstance(last, list) else {}
            out_list = [three_way(live_by.get(e[key]), last_by.get(e[key]), e, field) for e in new]
            new_keys = {e[key] for e in new}
            # Elements another writer added (never applied by us) stay, as kubectl keeps them.
            out_list += [e for e in live if e[key] not in new_keys and e[key] not in last_by]
            return out_list
    return copy.deepcopy(new)
