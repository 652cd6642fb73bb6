"""Real kubectl binaries against a kins API: where to find them, and how to run them.

This machine carries kubectl 1.27 to 1.33 beside the Google Cloud SDK's ``kubectl`` (files
``kubectl.1.NN`` next to the one ``command -v kubectl`` resolves to). A machine without them
cannot run these checks: the tests that need one skip with a message naming what is missing,
never pass silently.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from kins.api.config import default_cluster
from kins.apiserver.auth import ensure_tls, generate_token, server_ssl_context
from kins.apiserver.keys import STATE_DIR_KEY
from kins.apiserver.kubeconfig import render_kubeconfig
from kins.apiserver.server import make_app, start
from kins.apiserver.tokens import SigningKey
from kins.store.base import Store

OLDEST, NEWEST = "1.27", "1.33"


def kubectl_versions() -> dict[str, Path]:
    """``{"1.27": path, ...}`` of the versioned kubectl binaries on this machine."""
    found = shutil.which("kubectl")
    if found is None:
        return {}
    home = Path(os.path.realpath(found)).parent
    out = {}
    for path in sorted(home.glob("kubectl.1.*")):
        if os.access(path, os.X_OK):
            out[path.name.removeprefix("kubectl.")] = path
    return out


def require_kubectl(version: str) -> Path:
    """The kubectl binary of ``version`` (``"1.27"``), or skip saying it is not installed."""
    path = kubectl_versions().get(version)
    if path is None:
        pytest.skip(f"kubectl {version} is not on this machine (looked beside `command -v kubectl`)")
    return path


@dataclass
class Kubectl:
    """One kubectl version pointed at one API through its own kubeconfig."""

    binary: Path
    kubeconfig: Path

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.kubeconfig.parent),
            "KUBECONFIG": str(self.kubeconfig),
        }
        p = subprocess.run(
            [str(self.binary), *args], input=input, capture_output=True, text=True, timeout=timeout, env=env
        )
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def __call__(self, *args: str, input: str | None = None) -> str:
        return self.run(*args, input=input).stdout


def kubectl_for(version: str, kubeconfig: Path) -> Kubectl:
    return Kubectl(require_kubectl(version), kubeconfig)


@dataclass
class TlsApi:
    url: str
    token: str
    store: Store
    kubeconfig: Path

    def kubectl(self, version: str = NEWEST) -> Kubectl:
        return kubectl_for(version, self.kubeconfig)


@contextmanager
def tls_api(
    store: Store,
    state_dir: Path,
    name: str = "test",
    signing_key: SigningKey | None = None,
    *,
    pods: Path | None = None,
) -> Iterator[TlsApi]:
    """The API over HTTPS on 127.0.0.1:<free port> (kubectl sends tokens only over TLS), with a
    kubeconfig for it in ``state_dir``; its loop runs in a background thread. ``signing_key``
    signs its ServiceAccount tokens (a fresh key when not given); ``pods``: the state directory
    whose sandbox records the pod subresources (exec, attach ...) read."""
    state_dir.mkdir(parents=True, exist_ok=True)
    cert, key = ensure_tls(state_dir)
    token = generate_token()

    def app() -> web.Application:
        made = make_app(store, default_cluster(), token=token, signing_key=signing_key)
        if pods is not None:
            made[STATE_DIR_KEY] = pods
        return made

    with app_in_thread(app, server_ssl_context(cert, key)) as port:
        url = f"https://127.0.0.1:{port}"
        kc = state_dir / "kubeconfig"
        kc.write_text(render_kubeconfig(name, url, cert.read_bytes(), token))
        kc.chmod(0o600)
        yield TlsApi(url, token, store, kc)


@contextmanager
def app_in_thread(app: Callable[[], web.Application], ssl_context: ssl.SSLContext | None = None) -> Iterator[int]:
    """The application ``app()`` makes, served on 127.0.0.1:<free port> (yielded) from an event
    loop of its own in a background thread, until the block ends."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    bound: list[int] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        runner, port = loop.run_until_complete(start(app(), ssl_context=ssl_context))
        bound.append(port)
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="kins-api-test", daemon=True)
    thread.start()
    assert ready.wait(10) and bound, "the API did not start"
    try:
        yield bound[0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def all_versions(versions: Sequence[str] = (OLDEST, NEWEST)) -> list[str]:
    """Parameters for tests that run against the oldest and newest kubectl."""
    return list(versions)
