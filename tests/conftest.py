"""Suite-wide rules: tests marked ``root`` need root and fail (never skip) without it; kinds
registered at run time do not outlive their test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") is not None and os.geteuid() != 0:
        pytest.fail("this test builds real network namespaces and needs root: run the suite as root")


@pytest.fixture(autouse=True)
def _forget_custom_kinds() -> Iterator[None]:
    """The registry of kinds is process-wide: the kinds a test's CustomResourceDefinitions
    registered go with the test."""
    yield
    from kins.api import registry

    for kind in [k for k in registry.STORED if k not in registry.BUILTIN_KINDS]:
        registry.unregister(kind)
