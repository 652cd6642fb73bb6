"""Built-in image resolution and Go-style flags (no root)."""

from __future__ import annotations

import pytest

from kins.apps import AppError, agnhost, image_repository, is_builtin, resolve, shop
from kins.apps.agnhost import parse_duration, udp_answer
from kins.apps.flags import FlagError, parse_flags

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"


@pytest.mark.parametrize(
    ("image", "repo"),
    [
        (AGNHOST, "registry.k8s.io/e2e-test-images/agnhost"),
        ("agnhost", "agnhost"),
        ("localhost:5000/shop/data-product:v2@sha256:abcd", "localhost:5000/shop/data-product"),
        ("localhost:5000/business-manager", "localhost:5000/business-manager"),
    ],
)
def test_image_repository(image: str, repo: str) -> None:
    assert image_repository(image) == repo


def test_resolve_agnhost() -> None:
    app = resolve(AGNHOST, (), ("netexec", "--http-port=8080"))
    assert app is not None and app.name == "netexec" and app.argv == ("--http-port=8080",)
    assert app.main is agnhost.netexec_main
    # The image's entrypoint named explicitly is the same as no command.
    app = resolve(AGNHOST, ("/agnhost", "serve-hostname"), ("--port=9000",))
    assert app is not None and app.name == "serve-hostname" and app.argv == ("--port=9000",)
    # Any other command runs on the host.
    assert resolve(AGNHOST, ("sh", "-c", "sleep 1")) is None
    with pytest.raises(AppError, match="needs a subcommand"):
        resolve(AGNHOST)
    with pytest.raises(AppError, match="'porter' is not built into kins"):
        resolve(AGNHOST, (), ("porter",))


def test_resolve_shop_pause_and_others() -> None:
    bm = resolve("example.com/jo/business-manager:1.2")
    dp = resolve("data-product")
    pause = resolve("registry.k8s.io/pause:3.9")
    assert bm is not None and bm.main is shop.business_manager_main
    assert dp is not None and dp.main is shop.data_product_main
    assert pause is not None and pause.name == "pause"
    assert resolve("example.com/jo/business-manager:1.2", ("python3", "app.py")) is None
    assert resolve("nginx:1.25") is None
    assert is_builtin(AGNHOST) and is_builtin("x/data-product:1") and not is_builtin("busybox")


def test_flags() -> None:
    values, rest = parse_flags(
        ["--http-port=81", "-udp-port", "-1", "--tls-cert-file", "c.pem", "extra"], agnhost.NETEXEC_FLAGS
    )
    assert (values["http-port"], values["udp-port"], values["tls-cert-file"], rest) == (81, -1, "c.pem", ["extra"])
    values, _ = parse_flags(["--http=false", "--udp"], agnhost.SERVE_HOSTNAME_FLAGS)
    assert (values["http"], values["udp"], values["port"]) == (False, True, 9376)
    with pytest.raises(FlagError, match="unknown flag: --nope"):
        parse_flags(["--nope"], agnhost.NETEXEC_FLAGS)
    with pytest.raises(FlagError, match="expected an integer"):
        parse_flags(["--http-port=abc"], agnhost.NETEXEC_FLAGS)
    with pytest.raises(FlagError, match="needs an argument"):
        parse_flags(["--http-port"], agnhost.NETEXEC_FLAGS)


def test_bad_flags_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert agnhost.netexec_main(["--bogus"]) == 2
    assert "unknown flag: --bogus" in capsys.readouterr().err
    assert agnhost.serve_hostname_main(["--tcp"]) == 1  # --http defaults to true, as in agnhost


def test_durations() -> None:
    assert parse_duration("") == 0 and parse_duration("0") == 0
    assert parse_duration("1m30s") == 90 and parse_duration("250ms") == 0.25 and parse_duration("1.5h") == 5400
    with pytest.raises(ValueError):
        parse_duration("5 seconds")


def test_udp_answers() -> None:
    assert udp_answer("hostname\n", ("10.0.0.1", 5), "pod-a") == "pod-a"
    assert udp_answer("Echo Hello World", ("10.0.0.1", 5), "pod-a") == "hello world"
    assert udp_answer("clientip", ("10.0.0.1", 5555), "pod-a") == "10.0.0.1:5555"
    assert udp_answer("clientip", ("fd00::1", 5555), "pod-a") == "[fd00::1]:5555"
    assert udp_answer("what", ("10.0.0.1", 5), "pod-a") is None
