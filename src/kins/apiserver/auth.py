"""The API's bearer token and TLS certificate: generated once per cluster, kept in the state
directory.

The file is created with mode 0600 under a temporary name and renamed into place, so another
process never reads a half-written or world-readable token.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import ssl
import subprocess
import tempfile
from pathlib import Path

from .._errors import KinsError

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
    path = token_path(state_dir)
    tmp = _write_private(path, token)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


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


def ensure_tls(state_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The API's certificate and key, created (openssl, ECDSA P-256, 10 years) if missing.

    Both are made in a private temporary directory and renamed into place; the key is 0600.
    """
    state = Path(state_dir)
    cert, key = state / CERT_FILE, state / KEY_FILE
    if cert.exists() and key.exists():
        return cert, key
    state.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=state, prefix=".tls-") as tmp:
        tcert, tkey = Path(tmp) / CERT_FILE, Path(tmp) / KEY_FILE
        cmd = [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "3650", "-subj", "/CN=kins-apiserver",
            "-addext", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost",
            "-keyout", str(tkey), "-out", str(tcert),
        ]  # fmt: skip
        old_umask = os.umask(0o077)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        finally:
            os.umask(old_umask)
        if done.returncode != 0:
            raise KinsError(f"cannot create the API certificate: {done.stderr.strip()}")
        os.chmod(tkey, 0o600)
        os.chmod(tcert, 0o644)
        os.replace(tkey, key)
        os.replace(tcert, cert)
    return cert, key


def server_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx
