"""A real API server (the daemon's aiohttp app over a MemoryStore) on loopback, in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from kins.api.config import default_cluster
from kins.apiserver.auth import generate_token
from kins.apiserver.server import make_app, start
from kins.store.base import Store


@contextmanager
def api_server(store: Store, token: str | None = None, unix: str | None = None) -> Iterator[tuple[str, str]]:
    """``(url, token)`` of an API serving ``store`` until the block ends; with ``unix``, on that
    socket (``unix:<path>``, as the daemon offers it to pods) instead of loopback TCP."""
    token = token or generate_token()
    loop = asyncio.new_event_loop()
    bound: list[int] = []
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        app = make_app(store, default_cluster(), token=token)
        if unix is None:
            runner, port = loop.run_until_complete(start(app))
            bound.append(port)
        else:
            runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.UnixSite(runner, unix).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(10)
    try:
        yield (f"unix:{unix}" if unix is not None else f"http://127.0.0.1:{bound[0]}"), token
    finally:
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)
