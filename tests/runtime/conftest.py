"""Fixtures for the runtime's root tests: scratch network namespaces, always removed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_helpers import Netns, require_root

from kins.runtime import Runtime


@pytest.fixture
def netns() -> Iterator[Netns]:
    require_root()
    ns = Netns()
    try:
        yield ns
    finally:
        ns.cleanup()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    require_root()
    rt = Runtime(tmp_path / "state")
    try:
        yield rt
    finally:
        rt.shutdown()


@pytest.fixture
def pod_files(tmp_path: Path) -> tuple[Path, Path]:
    """A pod's resolv.conf and hosts as kins writes them in the cluster state dir."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(
        "nameserver 10.254.0.2\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
    )
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    return resolv, hosts
