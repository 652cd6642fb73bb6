"""The shared kubectl harness itself: a real kubectl reaches an in-process API over TLS."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubectl_bin import NEWEST, OLDEST, tls_api

from kins.store.memory import MemoryStore


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_kubectl_gets_namespaces(tmp_path: Path, version: str) -> None:
    with tls_api(MemoryStore(history=100), tmp_path) as api:
        k = api.kubectl(version)
        out = k("get", "--raw", "/version")
        assert '"gitVersion"' in out
