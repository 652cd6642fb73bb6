"""``kins wait``: block until objects meet a condition, as ``kubectl wait`` does, on the API's watch.

``--for=condition=NAME[=VALUE]`` (a ``status.conditions`` entry whose status is VALUE, "True" by
default, compared without case; a condition written for an older generation does not count),
``--for=delete``, ``--for=create`` and ``--for=jsonpath={PATH}[=VALUE]``. Each object that meets
it prints ``<kind>/<name> condition met``; the first one that does not by the timeout ends the
command with ``timed out waiting for the condition on <resource>/<name>`` and exit status 1.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import typer

from .._errors import Gone, KinsError
from ..api.meta import LabelSelector, Object, parse_label_selector
from .app import app
from .common import NameOpt, out

Key = tuple[str, str]  # (namespace, name)


class WaitTimeout(KinsError):
    """Some object did not meet the condition in time (kubectl's exit status 1)."""


# --- what to wait for ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """A parsed ``--for``: ``met(obj)`` with ``obj`` None when the object does not exist."""

    text: str
    met: Callable[[dict[str, Any] | None], bool]
    deleting: bool = False


def _condition(name: str, value: str) -> Callable[[dict[str, Any] | None], bool]:
    def met(obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        status = obj.get("status") or {}
        generation = (obj.get("metadata") or {}).get("generation")
        for c in status.get("conditions") or []:
            if str(c.get("type", "")).lower() != name.lower():
                continue
            observed = c.get("observedGeneration", status.get("observedGeneration"))
            if generation is not None and observed is not None and observed < generation:
                return False  # a status written for an older spec
            return str(c.get("status", "")).lower() == value.lower()
        return False

    return met


_STEP = re.compile(
    r"\.([A-Za-z0-9_-]+)"  # .field
    r"|\[(\d+|\*)\]"  # [0] or [*]
    r"""|\[['"]([^'"]+)['"]\]"""  # ['field']
    r"""|\[\?\(@\.([\w.-]+)\s*==\s*['"]?([^'")]*)['"]?\)\]"""  # [?(@.type=="Ready")]
)


def jsonpath(obj: Any, expr: str) -> list[Any]:
    """The values a kubectl-style JSONPath (``{.a.b[0]}``, ``[*]``, ``[?(@.type=="Ready")]``)
    selects in ``obj``."""
    body = expr.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    body = body.removeprefix("$")
    cur = [obj]
    pos = 0
    while pos < len(body):
        m = _STEP.match(body, pos)
        if m is None:
            raise KinsError(f"error: unsupported JSONPath {expr!r} at {body[pos:]!r}")
        pos = m.end()
        field, index, quoted, fkey, fval = m.groups()
        nxt: list[Any] = []
        for v in cur:
            if field is not None or quoted is not None:
                if isinstance(v, dict) and (field or quoted) in v:
                    nxt.append(v[field or quoted])
            elif index is not None:
                if isinstance(v, list):
                    nxt.extend(v if index == "*" else v[int(index) : int(index) + 1])
            elif isinstance(v, list):
                nxt.extend(i for i in v if isinstance(i, dict) and _text(_dig(i, fkey)) == fval)
        cur = nxt
    return cur


def _dig(obj: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)  # type: ignore[assignment]
    return obj


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return msgspec.json.encode(v).decode()
    return "" if v is None else str(v)


def parse_for(text: str) -> Wanted:
    """``--for`` as kubectl reads it."""
    if text == "delete":
        return Wanted(text, lambda obj: obj is None, deleting=True)
    if text == "create":
        return Wanted(text, lambda obj: obj is not None)
    if text.startswith("condition="):
        name, _, value = text.removeprefix("condition=").partition("=")
        if not name:
            raise KinsError("error: --for=condition needs a condition name, e.g. --for=condition=Ready")
        return Wanted(text, _condition(name, value or "true"))
    if text.startswith("jsonpath="):
        rest = text.removeprefix("jsonpath=").strip("'")
        close = rest.find("}")
        if not rest.startswith("{") or close < 0:
            raise KinsError(f"error: --for=jsonpath: {rest!r} is not a JSONPath in braces, e.g. '{{.status.phase}}'")
        expr, tail = rest[: close + 1], rest[close + 1 :].lstrip("'")
        if tail and not tail.startswith("="):
            raise KinsError(f"error: --for=jsonpath: expected =VALUE after {expr}, got {tail!r}")
        want = tail[1:] if tail else None
        jsonpath({}, expr)  # refuse a bad expression before waiting

        def met(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            found = jsonpath(obj, expr)
            if want is None:
                return bool(found)
            return len(found) == 1 and _text(found[0]) == want

        return Wanted(text, met)
    raise KinsError(f"error: unrecognized condition: {text!r}")


# --- waiting -------------------------------------------------------------------------------------


def _key(obj: Object) -> Key:
    return (obj.namespace if obj.NAMESPACED else "", obj.name)


def wait_for(
    client: Any,
    kind: str,
    wanted: Wanted,
    deadline: float,
    *,
    namespace: str | None,
    names: list[str] | None = None,
    selector: LabelSelector | None = None,
    all_namespaces: bool = False,
    on_met: Callable[[Key], None] = lambda key: None,
) -> list[Key]:
    """Wait on ``kind`` objects (the named ones, else all those the selector matches now)
    until each meets ``wanted`` or ``deadline`` (time.monotonic) passes; the keys that did not,
    in order. One list, then one watch from its resourceVersion: no polling."""
    from ..api.registry import STORED

    namespaced = STORED[kind].NAMESPACED
    ns = (namespace or "default") if namespaced else ""
    items, rv = client.list_with_rv(kind, namespace, selector, all_namespaces)
    current = {_key(o): o for o in items}
    if names is not None:
        targets = [(ns, n) for n in names]
        missing = [k[1] for k in targets if k not in current and not wanted.deleting]
        if missing:
            raise KinsError(f'Error from server (NotFound): {STORED[kind].PLURAL} "{missing[0]}" not found')
    else:
        targets = sorted(current)
        if not targets:
            raise KinsError("error: no matching resources found")
    pending: dict[Key, None] = {}
    for k in targets:
        obj = current.get(k)
        if wanted.met(msgspec.to_builtins(obj) if obj is not None else None):
            on_met(k)
        else:
            pending[k] = None
    while pending and time.monotonic() < deadline:
        try:
            events = client.watch(
                kind,
                namespace,
                rv,
                selector=selector,
                all_namespaces=all_namespaces,
                timeout=deadline - time.monotonic(),
            )
            for ev in events:
                rv = ev.rv
                k = _key(ev.object)
                if k in pending:
                    obj = None if ev.type == "DELETED" else msgspec.to_builtins(ev.object)
                    if wanted.met(obj):
                        del pending[k]
                        on_met(k)
                if not pending or time.monotonic() >= deadline:
                    break
        except Gone:
            items, rv = client.list_with_rv(kind, namespace, selector, all_namespaces)
            current = {_key(o): o for o in items}
            for k in list(pending):
                obj = current.get(k)
                if wanted.met(msgspec.to_builtins(obj) if obj is not None else None):
                    del pending[k]
                    on_met(k)
    return list(pending)


def parse_timeout(text: str) -> float:
    """kubectl's ``--timeout``: a Go duration (``30s``, ``1m30s``, ``500ms``) or plain seconds;
    negative means a week."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    t = text.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", t):
        secs = float(t)
    else:
        parts = re.findall(r"(-?\d+(?:\.\d+)?)(ms|s|m|h)", t)
        if not parts or "".join(a + b for a, b in parts) != t:
            raise KinsError(f'error: invalid --timeout "{text}": use a duration such as 30s, 2m or 1h')
        secs = sum(float(a) * units[b] for a, b in parts)
    return 7 * 86400.0 if secs < 0 else secs


def display_name(kind: str) -> str:
    """kind.group as kubectl's name printer shows it: ``pod``, ``deployment.apps``."""
    from ..api.registry import STORED

    cls = STORED[kind]
    group = cls.API_VERSION.rpartition("/")[0]
    return f"{kind.lower()}.{group}" if group else kind.lower()


@app.command()
def wait(
    resource: Annotated[str, typer.Argument(help="TYPE, or TYPE/NAME")],
    names: Annotated[list[str] | None, typer.Argument(help="Names of TYPE objects.")] = None,
    for_: Annotated[
        str, typer.Option("--for", help="condition=NAME[=VALUE], delete, create or jsonpath='{PATH}'=VALUE")
    ] = "",
    selector: Annotated[str | None, typer.Option("-l", "--selector")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every object of TYPE in the namespace.")] = False,
    all_namespaces: Annotated[bool, typer.Option("-A", "--all-namespaces")] = False,
    namespace: Annotated[str | None, typer.Option("-n", "--namespace")] = None,
    timeout: Annotated[str, typer.Option("--timeout", help="How long to wait (30s, 2m; 0 checks once).")] = "30s",
    name: NameOpt = None,
) -> None:
    """Wait until objects meet a condition (kubectl wait), on the API's watch."""
    from ..api.registry import STORED, resolve_resource
    from .common import live_client

    if not for_:
        raise KinsError("error: --for must be given: condition=NAME[=VALUE], delete, create or jsonpath=...")
    wanted = parse_for(for_)
    given = list(names or [])
    if "/" in resource:
        resource, first = resource.split("/", 1)
        given.insert(0, first)
    try:
        kind = resolve_resource(resource)
    except KeyError:
        raise KinsError(f'error: the server doesn\'t have a resource type "{resource}"') from None
    if not given and not selector and not all_ and not all_namespaces:
        raise KinsError("error: resource(s) were provided, but no name was specified")
    deadline = time.monotonic() + parse_timeout(timeout)
    shown = display_name(kind)
    left = wait_for(
        live_client(name),
        kind,
        wanted,
        deadline,
        namespace=None if all_namespaces else namespace,
        names=given or None,
        selector=parse_label_selector(selector) if selector else None,
        all_namespaces=all_namespaces,
        on_met=_reporter(shown),
    )
    if left:
        raise WaitTimeout(f"error: timed out waiting for the condition on {STORED[kind].PLURAL}/{left[0][1]}")


def wait_applied(client: Any, objs: list[Object], timeout: float) -> None:
    """``kins apply --wait``: every applied Deployment Available with all its replicas updated
    and ready, and every applied Pod Ready; raises WaitTimeout naming the first that is not."""
    deadline = time.monotonic() + timeout
    checks: list[tuple[str, Wanted]] = [
        ("Deployment", _deployment_done()),
        ("Pod", Wanted("condition=Ready", _condition("Ready", "true"))),
    ]
    from ..api.registry import STORED

    for kind, wanted in checks:
        by_ns: dict[str, list[str]] = {}
        for o in objs:
            if kind == o.KIND:
                by_ns.setdefault(o.namespace, []).append(o.name)
        report = _reporter(display_name(kind))
        for ns, names in sorted(by_ns.items()):
            left = wait_for(client, kind, wanted, deadline, namespace=ns, names=names, on_met=report)
            if left:
                raise WaitTimeout(f"error: timed out waiting for the condition on {STORED[kind].PLURAL}/{left[0][1]}")


def _reporter(shown: str) -> Callable[[Key], None]:
    return lambda key: out(f"{shown}/{key[1]} condition met")


def _deployment_done() -> Wanted:
    available = _condition("Available", "true")

    def met(obj: dict[str, Any] | None) -> bool:
        if obj is None or not available(obj):
            return False
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        want = spec.get("replicas", 1)
        if (status.get("observedGeneration") or 0) < ((obj.get("metadata") or {}).get("generation") or 0):
            return False
        return all(
            (status.get(f) or 0) == want for f in ("updatedReplicas", "readyReplicas", "availableReplicas", "replicas")
        )

    return Wanted("condition=Available", met)


__all__ = ["WaitTimeout", "Wanted", "jsonpath", "parse_for", "parse_timeout", "wait_applied", "wait_for"]
