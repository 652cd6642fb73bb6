"""The API token file."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kins.apiserver.auth import ensure_tls, ensure_token, generate_token, read_token, token_path, write_token


def test_tokens_are_random_and_long() -> None:
    tokens = {generate_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) >= 40 for t in tokens)


def test_written_token_is_private_and_readable(tmp_path: Path) -> None:
    state = tmp_path / "state"
    path = write_token(state, "secret-1")
    assert path == token_path(state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_token(state) == "secret-1"
    write_token(state, "secret-2")
    assert read_token(state) == "secret-2"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in state.iterdir()) == ["token"]  # no temporary files left


def test_ensure_token_generates_once(tmp_path: Path) -> None:
    first = ensure_token(tmp_path)
    assert first and ensure_token(tmp_path) == first
    assert stat.S_IMODE(token_path(tmp_path).stat().st_mode) == 0o600


def test_ensure_token_concurrent_callers_agree(tmp_path: Path) -> None:
    results: list[str] = []
    lock = threading.Lock()

    def grab() -> None:
        t = ensure_token(tmp_path)
        with lock:
            results.append(t)

    threads = [threading.Thread(target=grab) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and results[0] == read_token(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token"]


def test_empty_token_file_is_replaced(tmp_path: Path) -> None:
    token_path(tmp_path).write_text("\n")
    token = ensure_token(tmp_path)
    assert token and read_token(tmp_path) == token


def test_tls_certificate_and_key(tmp_path: Path) -> None:
    cert, key = ensure_tls(tmp_path / "state")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    before = cert.read_bytes()
    assert ensure_tls(tmp_path / "state") == (cert, key)
    assert cert.read_bytes() == before  # kept, not regenerated
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["apiserver.crt", "apiserver.key"]


def test_tls_certificate_names_and_key_type(tmp_path: Path) -> None:
    cert_path, key_path = ensure_tls(tmp_path)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert cert.subject == cert.issuer and cert.subject.rfc4514_string() == "CN=kins-apiserver"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 3650
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca  # its own CA
    assert stat.S_IMODE(cert_path.stat().st_mode) == 0o644
