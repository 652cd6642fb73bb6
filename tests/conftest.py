"""Suite-wide rules: tests marked ``root`` need root and fail (never skip) without it."""

from __future__ import annotations

import os

import pytest


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") is not None and os.geteuid() != 0:
        pytest.fail("this test builds real network namespaces and needs root: run the suite as root")
