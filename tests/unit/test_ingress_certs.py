"""Certificate checks and the default certificate, with both backends (the cryptography
package and the openssl CLI)."""

from __future__ import annotations

import pytest

from kins.ingress import certs
from kins.ingress.certs import CertError, CertInfo, check_pair, self_signed


@pytest.fixture(params=["cryptography", "openssl"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "openssl":
        monkeypatch.setattr(certs, "_have_cryptography", lambda: False)
    check_pair.cache_clear()
    return str(request.param)


def test_good_pair_and_names(backend: str) -> None:
    crt, key = self_signed("foo.bar.com", ["foo.bar.com", "*.foo.com"])
    info = check_pair(crt, key)
    assert info == CertInfo("foo.bar.com", ("foo.bar.com", "*.foo.com"))
    assert info.covers("FOO.bar.com") and info.covers("x.foo.com")
    assert not info.covers("a.x.foo.com") and not info.covers("foo.com") and not info.covers("bar.com")


def test_broken_pairs(backend: str) -> None:
    crt, key = self_signed("a.example", ["a.example"])
    _, other_key = self_signed("b.example", ["b.example"])
    with pytest.raises(CertError, match="does not match"):
        check_pair(crt, other_key)
    with pytest.raises(CertError, match="not a PEM certificate"):
        check_pair(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", key)
    with pytest.raises(CertError, match="not a PEM private key"):
        check_pair(crt, b"garbage")


def test_fake_certificate_is_ingress_nginx_s(backend: str) -> None:
    pem = certs.fake_certificate()
    crt, _, rest = pem.partition(b"-----END CERTIFICATE-----\n")
    info = check_pair(crt + b"-----END CERTIFICATE-----\n", rest)
    assert info == CertInfo("Kubernetes Ingress Controller Fake Certificate", ("ingress.local",))


def test_common_name_counts_only_without_dns_names() -> None:
    assert CertInfo("a.example", ()).covers("a.example")
    assert not CertInfo("a.example", ("b.example",)).covers("a.example")
