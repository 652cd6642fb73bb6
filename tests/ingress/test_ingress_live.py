"""Real nginx with the rendered config, in a scratch network namespace, in front of echo
backends on 127.0.0.x: host and path rules, TLS with SNI, fallbacks, load balancing, refused
configs and graceful reloads under load. No nginx may outlive a test."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ingress_cases import Case, load_case
from msgspec.structs import replace
from netns_helpers import Backends, NsPool, Reply, request, scratch_netns

from kins.api.meta import ObjectMeta
from kins.api.networking import Ingress
from kins.ingress import IngressConfig, Rendered
from kins.ingress.controller import Controller, Options, prepare_dir

pytestmark = pytest.mark.root


def three_local(i: int) -> list[tuple[str, int]]:
    return [(f"127.0.0.{n}", 3000 + i) for n in (2, 3, 4)]


def _nginx_pids(marker: str) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "nginx" in cmd and marker in cmd:
            out.append(int(pid))
    return out


@dataclass
class Live:
    ns: str
    case: Case
    cfg: IngressConfig
    ctl: Controller
    pool: NsPool

    def get(self, host: str | None, path: str, **kw: object) -> Reply:
        return self.pool.run(lambda: request(host, path, **kw))  # type: ignore[arg-type]

    def served(self, host: str | None, path: str, **kw: object) -> str | int:
        """The Service that answered, or the status nginx answered itself."""
        r = self.get(host, path, **kw)
        if r.status == 200 and r.body is not None:
            return self.case.endpoints()[_split(r.body["endpoint"])]
        return r.status

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.get("localhost", "/healthz", port=self.cfg.status_port).status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("nginx did not come up: " + _errlog(self.cfg))
            time.sleep(0.05)


def _split(ep: str) -> tuple[str, int]:
    ip, _, port = ep.rpartition(":")
    return ip, int(port)


def _errlog(cfg: IngressConfig) -> str:
    try:
        return Path(cfg.path("logs", "error.log")).read_text()[-2000:]
    except OSError:
        return "(no error log)"


@pytest.fixture
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    case = load_case(request.param, addresses=three_local)
    cfg = IngressConfig(dir=str(tmp_path / "ingress"))
    with scratch_netns() as ns:
        pool = NsPool(ns, workers=6)
        backends = Backends(ns, sorted(e for e in case.endpoints() if e[0].startswith("127.")))
        opts = Options(api="http://127.0.0.1:9", token="unused", cfg=cfg, nginx_wrapper=("ip", "netns", "exec", ns))
        ctl = Controller(opts)
        try:
            prepare_dir(cfg)
            assert ctl.apply(case.render(cfg))
            lv = Live(ns, case, cfg, ctl, pool)
            lv.wait_ready()
            yield lv
        finally:
            ctl.nginx.stop()
            ctl.client.close()
            backends.close()
            pool.close()
            deadline = time.monotonic() + 5
            while _nginx_pids(cfg.dir) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _nginx_pids(cfg.dir), "nginx processes left behind"


# --- host and path rules ---------------------------------------------------------------------


@pytest.mark.parametrize("live", ["paths"], indirect=True)
def test_path_rules(live: Live) -> None:
    table: list[tuple[str, str, str | int]] = [
        ("exact-path-rules", "/foo", "foo-exact"),
        ("exact-path-rules", "/foo/", 404),
        ("exact-path-rules", "/FOO", 404),
        ("exact-path-rules", "/bar", 404),
        ("prefix-path-rules", "/foo", "foo-prefix"),
        ("prefix-path-rules", "/foo/", "foo-prefix"),
        ("prefix-path-rules", "/FOO", 404),
        ("prefix-path-rules", "/aaa/bbb", "aaa-slash-bbb-prefix"),
        ("prefix-path-rules", "/aaa/bbb/ccc", "aaa-slash-bbb-prefix"),
        ("prefix-path-rules", "/aaa/ccc", "aaa-prefix"),
        ("prefix-path-rules", "/aaaccc", 404),
        ("prefix-path-rules", "/aaa/bbbxyz", "aaa-prefix"),
        ("mixed-path-rules", "/foo", "foo-exact"),
        ("mixed-path-rules", "/foo/", "foo-prefix"),
        ("trailing-slash-path-rules", "/aaa/bbb", "aaa-slash-bbb-slash-prefix"),
        ("trailing-slash-path-rules", "/aaa/bbb/", "aaa-slash-bbb-slash-prefix"),
        ("trailing-slash-path-rules", "/foo", 404),
        ("trailing-slash-path-rules", "/foo/", "foo-slash-exact"),
        ("impl-path-rules", "/foobar", "impl-foo"),
        ("impl-path-rules", "/foo/bar", "foo-bar-prefix"),
        ("impl-path-rules", "/foo/barbaz", "impl-foo"),
        ("impl-path-rules", "/other", "root-prefix"),
        ("unknown-host", "/foo", 404),
    ]
    got = [(h, p, live.served(h, p)) for h, p, _ in table]
    assert got == table
    # the backend sees the request unchanged
    r = live.get("prefix-path-rules", "/aaa/bbb/ccc?q=1")
    assert r.body is not None and r.body["path"] == "/aaa/bbb/ccc?q=1"


@pytest.mark.parametrize("live", ["hosts"], indirect=True)
def test_host_rules_and_sni(live: Live) -> None:
    # plain HTTP to a host with its own certificate: ingress-nginx's 308 to HTTPS
    r = live.get("foo.bar.com", "/x")
    assert (r.status, r.location) == (308, "https://foo.bar.com/x")
    r = live.get("foo.bar.com", "/", https=True)
    assert r.cert_names == ["foo.bar.com"]
    assert live.served("foo.bar.com", "/", https=True) == "foo-bar-com"
    assert r.body is not None and r.body["host"] == "foo.bar.com"
    assert r.body["headers"]["x-forwarded-proto"] == "https"
    r = live.get("bar.foo.com", "/", https=True)
    assert r.cert_names == ["*.foo.com"]
    assert live.served("bar.foo.com", "/", https=True) == "wildcard-foo-com"
    # the wildcard covers exactly one label; unknown names get the default certificate and 404
    for host in ("baz.bar.foo.com", "foo.com", "subdomain.bar.com"):
        r = live.get(host, "/", https=True)
        assert (r.status, r.cert_names) == (404, ["ingress.local"]), host
        assert live.served(host, "/") == 404
    # an exact host beats the wildcard; ssl-redirect "false" serves plain HTTP
    assert live.served("exact.foo.com", "/") == "exact-foo-com"
    assert live.get("exact.foo.com", "/", https=True).cert_names == ["*.foo.com"]


@pytest.mark.parametrize("live", ["default-backend"], indirect=True)
def test_default_backend_and_headers(live: Live) -> None:
    for method, host, path in [
        ("GET", "my-host", "/"),
        ("GET", "my-host", "/sub-path"),
        ("POST", "some-host", "/"),
        ("PUT", "127.0.0.1", "/resource"),  # no host: the address itself
        ("DELETE", "some-host", "/resource"),
        ("PATCH", "my-host", "/resource"),
    ]:
        r = live.get(host, path, method=method)
        assert r.status == 200 and r.body is not None
        assert (r.body["method"], r.body["path"]) == (method, path)
        assert live.case.endpoints()[_split(r.body["endpoint"])] == "echo-service"
    r = live.get("my-host", "/")
    assert r.body is not None
    h = r.body["headers"]
    assert h["host"] == "my-host"
    assert h["x-real-ip"] == h["x-forwarded-for"] == "127.0.0.1"
    assert (h["x-forwarded-proto"], h["x-forwarded-host"], h["x-forwarded-port"]) == ("http", "my-host", "80")
    assert h["user-agent"] == "kins-test"
    assert live.served("fallback.example", "/api/v1") == "api"
    assert live.served("fallback.example", "/other") == "fallback"
    assert live.served("anything.example", "/catchall/x") == "catchall"


@pytest.mark.parametrize("live", ["classes"], indirect=True)
def test_ingress_class(live: Live) -> None:
    for host in ("by-field.example", "by-controller.example", "by-annotation.example", "no-class.example"):
        assert live.served(host, "/") == "echo", host
    for host in ("other-class.example", "ingress-class", "other-annotation.example"):
        assert live.served(host, "/") == 404, host


@pytest.mark.parametrize("live", ["merge"], indirect=True)
def test_merged_ingresses_older_wins(live: Live) -> None:
    assert live.served("merged.example", "/api") == "svc-older-exact"
    assert live.served("merged.example", "/api/x") == "svc-older"
    assert live.served("merged.example", "/web") == "svc-newer"


@pytest.mark.parametrize("live", ["unresolved"], indirect=True)
def test_unresolved_backends_answer_503(live: Live) -> None:
    for path in ("/missing-service", "/missing-port", "/no-endpoints/x"):
        assert live.served("unresolved.example", path) == 503, path
    assert live.served("unresolved.example", "/named-port") == "echo"
    assert live.served("unresolved.example", "/elsewhere") == 404


@pytest.mark.parametrize("live", ["default-backend"], indirect=True)
def test_load_balancing_over_all_endpoints(live: Live) -> None:
    seen = Counter(live.get("lb", "/").body["endpoint"] for _ in range(60))  # type: ignore[index]
    want = {f"{ip}:{port}" for (ip, port), svc in live.case.endpoints().items() if svc == "echo-service"}
    assert set(seen) == want and len(want) == 3
    assert all(n == 20 for n in seen.values()), seen  # round robin


# --- TLS problems and refused configs -----------------------------------------------------------


@pytest.mark.parametrize("live", ["tls-broken"], indirect=True)
def test_broken_certificates_fall_back_and_keep_serving(live: Live) -> None:
    for host in ("mismatch.example", "garbage.example", "wrong-name.example", "missing.example", "good.example"):
        r = live.get(host, "/", https=True)
        assert (r.status, r.cert_names) == (200, ["ingress.local"]), host
        assert live.served(host, "/") == "echo"  # no certificate of its own: no redirect


@pytest.mark.parametrize("live", ["hosts"], indirect=True)
def test_refused_config_keeps_the_previous_one(live: Live) -> None:
    good = Path(live.cfg.path("nginx.conf")).read_text()
    bad = live.case.render(live.cfg)
    broken = Rendered(bad.conf.replace("listen 80;", "listen 80 no-such-flag;"), bad.files, [], bad.model)
    assert live.ctl.apply(broken) is False
    assert Path(live.cfg.path("nginx.conf")).read_text() == good
    assert live.ctl.apply(broken) is False  # the same refused text is not retried
    assert live.served("bar.foo.com", "/", https=True) == "wildcard-foo-com"
    assert live.ctl.nginx.running


# --- graceful reloads ------------------------------------------------------------------------


def _with_extra_host(case: Case, cfg: IngressConfig, on: bool) -> Rendered:
    """The case, plus (when ``on``) a copy of its first Ingress answering for extra.example."""
    ings = list(case.ingresses)
    if on:
        first = ings[0]
        rules = [replace(r, host="extra.example") for r in (first.spec.rules or [])[:1]]
        meta = ObjectMeta(name="extra", namespace="default")
        ings.append(Ingress(metadata=meta, spec=replace(first.spec, rules=rules, tls=None)))
    return dataclasses.replace(case, ingresses=ings).render(cfg)


@pytest.mark.parametrize("live", ["paths"], indirect=True)
def test_reload_under_load_loses_no_request(live: Live) -> None:
    stop = threading.Event()
    results: list[int | str] = []
    lock = threading.Lock()

    def loop() -> None:
        while not stop.is_set():
            try:
                got = live.served("prefix-path-rules", "/aaa/bbb/x")
            except OSError as e:
                got = f"error: {e}"
            with lock:
                results.append(got)

    workers = [threading.Thread(target=loop) for _ in range(4)]
    for t in workers:
        t.start()
    try:
        time.sleep(0.3)
        for i in range(5):
            assert live.ctl.apply(_with_extra_host(live.case, live.cfg, on=i % 2 == 0))
            time.sleep(0.3)
    finally:
        stop.set()
        for t in workers:
            t.join(30)
    assert live.ctl.reloads == 5
    bad = [r for r in results if r != "aaa-slash-bbb-prefix"]
    assert len(results) > 100 and not bad, (len(results), bad[:5])
    # the last reload (i == 4) added the extra host
    deadline = time.monotonic() + 5
    while live.served("extra.example", "/foo") != "foo-exact" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.served("extra.example", "/foo") == "foo-exact"
