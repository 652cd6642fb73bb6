"""The API's bearer token and TLS certificate: generated once per cluster, kept in the state
directory.

The file is created with mode 0600 under a temporary name and renamed into place, so another
process never reads a half-written or world-readable token.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

TOKEN_FILE = "token"
TOKEN_BYTES = 32


def generate_token() -> str:
    """A fresh random token (URL-safe text, 256 bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_path(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / TOKEN_FILE


def _write_private(path: Path, token: str) -> Path:
    """``token`` in a new 0600 file next to ``path`` (not yet visible under ``path``)."""
    return _write_private_text(path, token + "\n")


def _write_private_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_token(state_dir: str | os.PathLike[str], token: str) -> Path:
    """Store ``token`` atomically with mode 0600, replacing any previous one; returns the path."""
    return write_private_file(token_path(state_dir), token + "\n")


def write_private_file(path: str | os.PathLike[str], text: str) -> Path:
    """``text`` stored atomically at ``path`` with mode 0600 (for files holding the token)."""
    path = Path(path)
    tmp = _write_private_text(path, text)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_token(state_dir: str | os.PathLike[str]) -> str:
    """The stored token. FileNotFoundError when the cluster has none yet."""
    return token_path(state_dir).read_text().strip()


def ensure_token(state_dir: str | os.PathLike[str]) -> str:
    """The stored token, generating one first if there is none.

    The new file is hard-linked into place, which fails if another process got there first;
    then both use that process's token.
    """
    path = token_path(state_dir)
    with contextlib.suppress(FileNotFoundError):
        token = read_token(state_dir)
        if token:
            return token
    tmp = _write_private(path, generate_token())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    token = read_token(state_dir)
    if not token:  # an empty file left by something else: replace it
        token = generate_token()
        write_token(state_dir, token)
    return token


# --- TLS ----------------------------------------------------------------------------------------
# kubectl (client-go) sends a bearer token only over TLS, so the API is served over HTTPS with a
# self-signed certificate for 127.0.0.1/localhost that the kubeconfig names as its CA.

CERT_FILE = "apiserver.crt"
KEY_FILE = "apiserver.key"


CERT_NAME = "kins-apiserver"
CERT_DAYS = 3650


def ensure_tls(state_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The API's certificate and key, created (ECDSA P-256, 10 years) if missing.

    Both are written in a private temporary directory and renamed into place; the key is 0600.
    """
    state = Path(state_dir)
    cert, key = state / CERT_FILE, state / KEY_FILE
    if cert.exists() and key.exists():
        return cert, key
    state.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = _self_signed()
    with tempfile.TemporaryDirectory(dir=state, prefix=".tls-") as tmp:
        tcert, tkey = Path(tmp) / CERT_FILE, Path(tmp) / KEY_FILE
        _write_new(tkey, key_pem, 0o600)
        _write_new(tcert, cert_pem, 0o644)
        os.replace(tkey, key)
        os.replace(tcert, cert)
    return cert, key


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, mode)  # whatever the umask took away


def _self_signed() -> tuple[bytes, bytes]:
    """A self-signed certificate for the loopback names and its key (PKCS#8), both PEM.

    The extensions are those ``openssl req -x509`` adds: the certificate is its own CA, which
    is how the kubeconfig names it.
    """
    # Imported here: only a cluster's first start makes a certificate, and the import would
    # cost every daemon start and every command that reads the token ~50 ms.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CERT_NAME)])
    now = datetime.now(UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    san = x509.SubjectAlternativeName(
        [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
            x509.DNSName("localhost"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=CERT_DAYS))
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(san, critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx
