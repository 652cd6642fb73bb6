"""Manifests in, typed objects out.

YAML goes through yaml-rs (a Rust parser, ~25x faster than PyYAML's C loader on a 10,000-Service
dump) and JSON through msgspec; both give plain dicts that msgspec converts into the typed
structs, which also yields the field path of a type error. Multi-document files, directories,
``-`` for stdin and ``kind: List`` dumps from ``kubectl get -o yaml`` are all accepted.
"""

from __future__ import annotations

import contextlib
import gc
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import yaml_rs

from .._errors import MultiValidationError, ValidationError
from .apiextensions import CustomResourceDefinition
from .meta import Object
from .networking import LegacyIngress
from .registry import KINDS

T = TypeVar("T")

_DOC_SEPARATOR = re.compile(r"^---(\s|$)", re.MULTILINE)
_MSGSPEC_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects.

    A 10,000-Service dump creates millions of dicts and strings in one go; without this the
    collector runs hundreds of times over the growing heap and triples the load time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _msgspec_error(where: str, err: msgspec.ValidationError) -> ValidationError:
    m = _MSGSPEC_PATH.match(str(err))
    assert m is not None
    path = (m.group("path") or "").lstrip(".")
    msg = m.group("msg").replace("`", "")
    return ValidationError(where, path, msg)


def convert(data: Any, typ: type[T], where: str) -> T:
    """Typed conversion; a wrong type raises a ValidationError naming the field path."""
    try:
        return msgspec.convert(data, typ)
    except msgspec.ValidationError as e:
        raise MultiValidationError([_msgspec_error(where, e)]) from None


def parse_text(text: str, source: str) -> list[Any]:
    """Documents of a YAML or JSON text (empty documents dropped)."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            data = msgspec.json.decode(stripped)
        except msgspec.DecodeError:
            pass  # JSON flow style is also YAML; let the YAML parser report the error
        else:
            return [data] if isinstance(data, dict) else list(data) if isinstance(data, list) else [data]
    try:
        data = yaml_rs.loads(text, parse_datetime=False)
    except yaml_rs.YAMLDecodeError as e:
        raise MultiValidationError([ValidationError(source, "", f"invalid YAML: {e}")]) from None
    # yaml-rs returns a list for several documents and the bare value for one; a single
    # document that is itself a list has no separator line.
    if isinstance(data, list) and _DOC_SEPARATOR.search(text):
        docs = data
    else:
        docs = [data]
    return [d for d in docs if d is not None]


def _describe(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    name = meta.get("name") or meta.get("generateName") or "<unnamed>"
    ns = meta.get("namespace")
    kind = doc.get("kind") or "object"
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


def to_object(doc: Any, source: str) -> Object:
    """One document -> its typed object, in the version it is stored as."""
    if not isinstance(doc, dict):
        raise MultiValidationError(
            [ValidationError(source, "", f"a manifest must be a mapping, not {type(doc).__name__}")]
        )
    where = f"{source}: {_describe(doc)}" if source else _describe(doc)
    kind = doc.get("kind")
    api = doc.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        raise MultiValidationError([ValidationError(where, "kind", "Required value")])
    if not isinstance(api, str) or not api:
        raise MultiValidationError([ValidationError(where, "apiVersion", "Required value")])
    cls = KINDS.get((api, kind))
    if cls is None:
        raise MultiValidationError([ValidationError(where, "kind", f'no matches for kind "{kind}" in version "{api}"')])
    prepare = getattr(cls, "prepare", None)
    if prepare is not None:
        # a custom resource: pruned, defaulted and checked by the schema of its version
        doc = prepare(doc)
        errors = cls.schema_errors(doc)  # type: ignore[attr-defined]
        if errors:
            raise MultiValidationError([ValidationError(where, f, m) for f, m in errors])
    return stored_form(convert(doc, cls, where))


def stored_form(obj: Object) -> Object:
    """An object of a version that is converted before it is stored (legacy Ingress,
    autoscaling/v1, a custom resource's other versions) in the stored version."""
    if isinstance(obj, LegacyIngress):
        return obj.to_v1()
    to_stored = getattr(obj, "to_stored", None)
    return to_stored() if to_stored is not None else obj


def expand_lists(docs: Iterable[Any]) -> list[Any]:
    """Flatten ``kind: List`` (and ``ServiceList`` etc.) into their items."""
    out: list[Any] = []
    for d in docs:
        if isinstance(d, dict) and isinstance(d.get("kind"), str) and d["kind"].endswith("List") and "items" in d:
            items = d.get("items") or []
            if not isinstance(items, list):
                raise MultiValidationError([ValidationError(d["kind"], "items", "must be a list")])
            out.extend(expand_lists(items))
        else:
            out.append(d)
    return out


def _read(path: str) -> list[tuple[str, str]]:
    if path == "-":
        return [("<stdin>", sys.stdin.read())]
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in MANIFEST_SUFFIXES)
        return [(str(f), f.read_text()) for f in files]
    try:
        return [(str(p), p.read_text())]
    except FileNotFoundError:
        raise MultiValidationError([ValidationError(str(p), "", "no such file or directory")]) from None
    except OSError as e:
        raise MultiValidationError([ValidationError(str(p), "", f"cannot read: {e.strerror}")]) from None


class _Head(msgspec.Struct):
    kind: str = ""
    apiVersion: str = ""
    items: list[msgspec.Raw] | None = None


def _load_json(text: str) -> list[Object] | None:
    """JSON straight into typed objects, without building dicts first (several times faster for a
    big ``kind: List`` dump); None when the text is not something this path handles, so the
    general path runs and reports errors the usual way."""
    try:
        head = msgspec.json.decode(text, type=_Head)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    raws = head.items if head.kind.endswith("List") and head.items is not None else None
    if raws is None:
        return None
    objs: list[Object] = []
    for raw in raws:
        try:
            h = msgspec.json.decode(raw, type=_Head)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        cls = KINDS.get((h.apiVersion, h.kind))
        if cls is None or h.items is not None or hasattr(cls, "prepare"):
            return None  # unknown kinds and nested lists: the general path explains them
        try:
            obj = msgspec.json.decode(raw, type=cls)
        except msgspec.ValidationError:
            return None
        objs.append(stored_form(obj))
    return objs


def load_text(text: str, source: str = "<input>") -> list[Object]:
    if text.lstrip().startswith("{"):
        objs = _load_json(text)
        if objs is not None:
            return objs
    return load_documents(parse_text(text, source), source)


def _is_definition(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"


def serve_definitions(docs: Iterable[Any], source: str) -> None:
    """Register the kinds of the CustomResourceDefinitions among ``docs``, so that objects of
    those kinds load in the same input (whatever the order of the documents and files). Broken
    definitions are left to the loading that follows to report."""
    from .custom import DefinitionConflict, register_definition

    for d in expand_lists(docs):
        if _is_definition(d):
            try:
                crd = to_object(d, source)
            except MultiValidationError:
                continue
            with contextlib.suppress(DefinitionConflict):
                assert isinstance(crd, CustomResourceDefinition)
                register_definition(crd)


def load_documents(docs: Iterable[Any], source: str) -> list[Object]:
    """Typed objects of every document; all errors are collected and raised together."""
    objs: list[Object] = []
    errors: list[ValidationError] = []
    docs = list(docs)
    if any(_is_definition(d) for d in docs):
        serve_definitions(docs, source)
    for d in expand_lists(docs):
        try:
            objs.append(to_object(d, source))
        except MultiValidationError as e:
            errors.extend(e.errors)
    if errors:
        raise MultiValidationError(errors)
    return objs


def load_paths(paths: Iterable[str]) -> list[Object]:
    """Typed objects from files, directories and ``-``; nothing is returned if anything is wrong."""
    objs: list[Object] = []
    errors: list[ValidationError] = []
    with no_gc():
        texts = [st for path in paths for st in _read(path)]
        for source, text in texts:
            # definitions first: their objects may come in an earlier file
            if "CustomResourceDefinition" in text:
                with contextlib.suppress(MultiValidationError):
                    serve_definitions(parse_text(text, source), source)
        for source, text in texts:
            try:
                objs.extend(load_text(text, source))
            except MultiValidationError as e:
                errors.extend(e.errors)
    if errors:
        raise MultiValidationError(errors)
    return objs


def to_dict(obj: Object) -> dict[str, Any]:
    """The Kubernetes JSON shape of an object (fields left at defaults are omitted)."""
    out = msgspec.to_builtins(obj)
    assert isinstance(out, dict)
    return out


def to_json(obj: Object) -> bytes:
    return msgspec.json.encode(obj)
