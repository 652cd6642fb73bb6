"""The shared cluster fixture of the end-to-end tests (helpers live in e2e_helpers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_helpers import Cluster, running_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """One cluster with the article's apps, shared by the tests of a module."""
    with running_cluster() as c:
        yield c
