"""The controller process end to end: the kins API on a unix socket, the controller listing and
watching through it, real nginx in a scratch namespace, status written back."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from ingress_cases import load_case
from msgspec.structs import replace
from netns_helpers import Backends, NsPool, request, scratch_netns

from kins.api.config import default_cluster
from kins.api.core import Service, ServicePort, ServiceSpec
from kins.api.meta import ObjectMeta
from kins.api.networking import Ingress
from kins.apiserver.server import make_app
from kins.ingress import IngressConfig
from kins.ingress.controller import Controller, Options
from kins.store.memory import MemoryStore

pytestmark = pytest.mark.root
TOKEN = "test-token"


class ApiServer:
    """make_app served on a unix socket from its own event loop thread."""

    def __init__(self, store: MemoryStore, sock: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.runner: web.AppRunner | None = None
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(self.loop)
            app = make_app(store, default_cluster(), token=TOKEN)
            self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
            self.loop.run_until_complete(self.runner.setup())
            self.loop.run_until_complete(web.UnixSite(self.runner, str(sock)).start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def close(self) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _until(what: Callable[[], object], want: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    got: object = None
    while time.monotonic() < deadline:
        try:
            got = what()
        except OSError as e:
            got = e
        if got == want:
            return
        time.sleep(0.05)
    raise AssertionError(f"waited for {want!r}, last saw {got!r}")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[MemoryStore, NsPool, Controller, dict[tuple[str, int], str]]]:
    case = load_case("paths", addresses=lambda i: [("127.0.0.2", 3000 + i), ("127.0.0.3", 3000 + i)])
    store = MemoryStore()
    for obj in [*case.services, *case.slices, *case.secrets, *case.ingresses]:
        store.create(obj)
    publish = Service(
        metadata=ObjectMeta(name="ingress-nginx", namespace="ingress-nginx"),
        spec=ServiceSpec(type="NodePort", ports=[ServicePort(name="http", port=80)], externalIPs=["192.168.0.21"]),
    )
    store.create(publish)
    sock = tmp_path / "api.sock"
    api = ApiServer(store, sock)
    cfg = IngressConfig(dir=str(tmp_path / "ingress"))
    with scratch_netns() as ns:
        pool = NsPool(ns)
        backends = Backends(ns, sorted(case.endpoints()))
        opts = Options(
            api=f"unix:{sock}",
            token=TOKEN,
            cfg=cfg,
            publish_service="ingress-nginx/ingress-nginx",
            nginx_wrapper=("ip", "netns", "exec", ns),
        )
        ctl = Controller(opts)
        runner = threading.Thread(target=ctl.run)
        runner.start()
        try:
            yield store, pool, ctl, case.endpoints()
        finally:
            ctl.stop_event.set()
            runner.join(30)
            assert not runner.is_alive()
            assert not ctl.nginx.running
            backends.close()
            pool.close()
            api.close()


def test_controller_follows_the_api(env: tuple[MemoryStore, NsPool, Controller, dict[tuple[str, int], str]]) -> None:
    store, pool, ctl, endpoints = env

    def served(host: str, path: str) -> str | int:
        r = pool.run(lambda: request(host, path))
        if r.status == 200 and r.body is not None:
            ip, _, port = r.body["endpoint"].rpartition(":")
            return endpoints[(ip, int(port))]
        return r.status

    _until(lambda: served("exact-path-rules", "/foo"), "foo-exact")

    # status: the publish Service's external IP
    def status_ips() -> list[str | None]:
        ing = store.get("Ingress", "default", "path-rules")
        assert isinstance(ing, Ingress)
        lb = ing.status.loadBalancer if ing.status is not None else None
        return [i.ip for i in (lb.ingress if lb is not None else None) or []]

    _until(status_ips, ["192.168.0.21"])

    # a new Ingress is served after a reload
    reloads = ctl.reloads
    first = store.get("Ingress", "default", "path-rules")
    assert isinstance(first, Ingress)
    rules = [replace(r, host="added.example") for r in (first.spec.rules or [])[:1]]
    store.create(Ingress(metadata=ObjectMeta(name="added", namespace="default"), spec=replace(first.spec, rules=rules)))
    _until(lambda: served("added.example", "/foo"), "foo-exact")
    assert ctl.reloads == reloads + 1  # the burst of events made one reload

    # endpoints gone -> 503; deleted Ingress -> 404
    store.delete("EndpointSlice", "default", "foo-exact-abcde")
    _until(lambda: served("exact-path-rules", "/foo"), 503)
    store.delete("Ingress", "default", "added")
    _until(lambda: served("added.example", "/foo"), 404)
