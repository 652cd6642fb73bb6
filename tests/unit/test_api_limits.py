"""The API takes request lines as long as kube-apiserver does (an exec's script is in the URL)."""

from __future__ import annotations

import httpx
from api_helpers import api_server

from kins.store.memory import MemoryStore


def test_a_20_kib_request_line_is_served() -> None:
    selector = ",".join(f"k{i}=v{i}" for i in range(2000))  # ~20 KiB of query
    assert len(selector) > 16_000
    with api_server(MemoryStore()) as (url, token):
        r = httpx.get(
            f"{url}/api/v1/namespaces/default/pods",
            params={"labelSelector": selector},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []
