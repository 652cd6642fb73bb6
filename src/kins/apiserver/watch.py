"""Watches: newline-delimited JSON events (or length-prefixed protobuf WatchEvents, for clients
that prefer protobuf) streamed from the store until a deadline.

Open watches are tracked on the app so that shutdown can end them instead of waiting for
their clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from typing import Any

import msgspec
from aiohttp import web

from ..api.meta import Object, selector_matches
from ..api.resources import Resource
from ..store.base import WatchEvent
from ..store.watch import Watch
from . import protobuf
from .errors import ApiError
from .keys import STORE_KEY, WATCHES_KEY
from .request import Target, field_filter, int_param, label_selector, table_version, truthy
from .response import as_table, encoded, wants_protobuf

DEFAULT_WATCH_SECONDS = 1800
# How often an idle watch checks whether its client went away.
WATCH_POLL_SECONDS = 2.0
BOOKMARK_SECONDS = 0.05  # how soon a bookmark follows writes of other kinds


async def close_watches(app: web.Application) -> None:
    """Ends open watch streams so that shutdown does not wait for their clients."""
    watches: set[Watch] = app[WATCHES_KEY]
    for w in list(watches):
        w.close()


def _watch_line(request: web.Request, res: Resource, ev: WatchEvent, table_ver: str | None, proto: bool) -> bytes:
    if table_ver is not None:
        # Each event's object is a one-row Table, as the API server sends them to kubectl get -w.
        body: Any = as_table(request, res, table_ver, [ev.object], ev.object.metadata.resourceVersion)
        return msgspec.json.encode({"type": ev.type, "object": body}) + b"\n"
    # One write reaches every watcher of its kind: its object is encoded once (and reused by
    # reads of the same version), each watcher's event built around those bytes.
    if proto:
        return protobuf.watch_frame(ev.type, protobuf.wrap(res.group_version, res.kind, encoded(res, ev.object, True)))
    return b'{"type":' + msgspec.json.encode(ev.type) + b',"object":' + encoded(res, ev.object, False) + b"}\n"


async def serve_watch(request: web.Request, t: Target) -> web.StreamResponse:
    """Newline-delimited JSON events, from ``resourceVersion`` (or the current state, sent as
    ADDED events, when it is absent or "0"), until ``timeoutSeconds``."""
    store = request.app[STORE_KEY]
    selector = label_selector(request)
    fields = field_filter(request)
    timeout = int_param(request, "timeoutSeconds") or DEFAULT_WATCH_SECONDS
    table_ver = table_version(request)
    rv_text = request.query.get("resourceVersion", "")
    # Bookmarks say "nothing you watch changed up to here": an agent that applied what it saw
    # knows its state is that of the store's newest version, whatever kinds were written since.
    bookmarks = truthy(request, "allowWatchBookmarks") and table_ver is None
    proto = table_ver is None and wants_protobuf(request, t.res.group_version, t.res.kind)
    initial: list[Object] = []
    if rv_text in ("", "0"):
        # Watching from the list's RV makes the two seamless: nothing is missed or repeated.
        initial, since = store.list(t.res.kind, t.store_ns, selector)
        w = store.watch({t.res.kind}, since)
    else:
        try:
            since = int(rv_text)
        except ValueError:
            raise ApiError(400, "BadRequest", f"invalid resourceVersion {rv_text!r}") from None
        w = store.watch({t.res.kind}, since)  # Gone -> 410 through the middleware

    def wanted(obj: Object) -> bool:
        if t.res.namespaced and t.namespace is not None and obj.metadata.namespace != t.namespace:
            return False
        if t.name is not None and obj.name != t.name:
            return False
        if selector is not None and not selector_matches(selector, obj.metadata.labels or {}):
            return False
        return fields(obj)

    ctype = protobuf.WATCH_MEDIA_TYPE if proto else "application/json"
    resp = web.StreamResponse(headers={"Content-Type": ctype, "Transfer-Encoding": "chunked"})
    watches = request.app[WATCHES_KEY]
    watches.add(w)
    try:
        await resp.prepare(request)
        for obj in initial:
            if wanted(obj):
                await resp.write(_watch_line(request, t.res, WatchEvent("ADDED", obj, since), table_ver, proto))
        deadline = time.monotonic() + timeout
        poll = BOOKMARK_SECONDS if bookmarks else WATCH_POLL_SECONDS
        sent = since
        async with contextlib.aclosing(_events(w, deadline, request, poll)) as events:
            async for ev in events:
                if ev is None:
                    if bookmarks and w.seen_rv > sent:
                        sent = w.seen_rv
                        await resp.write(_bookmark_line(t.res, sent, proto))
                elif wanted(ev.object):
                    sent = max(sent, ev.rv)
                    await resp.write(_watch_line(request, t.res, ev, table_ver, proto))
    except ConnectionResetError:
        return resp  # the client went away: nothing to report to anyone
    finally:
        watches.discard(w)
        w.close()
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp


def _bookmark_line(res: Resource, rv: int, proto: bool) -> bytes:
    obj = {"kind": res.kind, "apiVersion": res.group_version, "metadata": {"resourceVersion": str(rv)}}
    if proto:
        return protobuf.encode_watch_event("BOOKMARK", obj)
    return msgspec.json.encode({"type": "BOOKMARK", "object": obj}) + b"\n"


async def _events(
    w: Watch, deadline: float, request: web.Request, poll: float = WATCH_POLL_SECONDS
) -> AsyncGenerator[WatchEvent | None, None]:
    """The watch's events until the deadline, the client leaving or the watch closing; None
    after each ``poll`` seconds without one.

    One ``__anext__`` stays pending across polls: cancelling it would finish the generator.
    """
    it = w.aiter()
    pending: asyncio.Future[WatchEvent] | None = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            if pending is None:
                pending = asyncio.ensure_future(it.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=min(remaining, poll))
            if not done:
                yield None
                continue
            try:
                ev = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield ev
    finally:
        w.close()
        if pending is not None:
            with contextlib.suppress(BaseException):
                await pending
