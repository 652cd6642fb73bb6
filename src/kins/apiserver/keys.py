"""What every handler finds on the app (store, cluster, token, admission hook, open watches,
the pods' state directory) and on the request (warnings)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from ..api.config import ClusterConfig
from ..api.meta import Object
from ..store.base import Store
from ..store.watch import Watch

Admission = Callable[[Object, Object | None], Object]

STORE_KEY = web.AppKey("store", Store)
CFG_KEY = web.AppKey("cfg", ClusterConfig)
TOKEN_KEY = web.AppKey("token", str)
ADMISSION_KEY = web.AppKey("admission", object)
WATCHES_KEY: web.AppKey[set[Watch]] = web.AppKey("watches")
# The daemon's state directory (pod logs and sandbox records). The daemon object, when the
# daemon serves the app, carries it too: see ``pods.state_dir``.
STATE_DIR_KEY = web.AppKey("pods_state_dir", Path)
# Per request: texts for ``Warning: 299`` response headers (kubectl prints them).
WARNINGS: web.RequestKey[list[str]] = web.RequestKey("warnings", list[str])
