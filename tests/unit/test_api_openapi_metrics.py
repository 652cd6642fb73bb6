"""The Metrics API's kinds are in the OpenAPI documents (read-only: get and list), so
``kubectl explain nodemetrics|podmetrics`` works with kubectl 1.27 (v2) and 1.33 (v3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubectl_bin import NEWEST, OLDEST, tls_api

from kins.store.memory import MemoryStore


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_explain_metrics_kinds(tmp_path: Path, version: str) -> None:
    with tls_api(MemoryStore(history=100), tmp_path) as api:
        k = api.kubectl(version)
        out = k("explain", "nodemetrics")
        assert "KIND:       NodeMetrics" in out and "VERSION:    v1beta1" in out
        assert "usage\t<map[string]string>" in out and "window\t<string>" in out
        containers = k("explain", "podmetrics.containers")
        assert "name\t<string>" in containers and "usage\t<map[string]string>" in containers


def test_metrics_paths_are_read_only(tmp_path: Path) -> None:
    with tls_api(MemoryStore(history=100), tmp_path) as api:
        doc = json.loads(api.kubectl(NEWEST)("get", "--raw", "/openapi/v3/apis/metrics.k8s.io/v1beta1"))
        paths = doc["paths"]
        assert set(paths) == {
            "/apis/metrics.k8s.io/v1beta1/nodes",
            "/apis/metrics.k8s.io/v1beta1/nodes/{name}",
            "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods",
            "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{name}",
            "/apis/metrics.k8s.io/v1beta1/pods",
        }
        for item in paths.values():
            assert set(item) - {"parameters"} == {"get"}
