"""The API's bearer token: generated once per cluster, kept in the state directory.

The file is created with mode 0600 under a temporary name and renamed into place, so another
process never reads a half-written or world-readable token.
"""

from __future__ import annotations

import contextlib
import os
import secrets
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
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
