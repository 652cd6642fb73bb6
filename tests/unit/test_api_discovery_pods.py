"""Discovery lists the pod subresources served by their own handlers (exec, attach, log,
portforward) beside the stored ones, in name order, as the API server does."""

from __future__ import annotations

from pathlib import Path

import httpx
from kubectl_bin import tls_api

from kins.store.memory import MemoryStore


def test_pod_subresources_in_discovery(tmp_path: Path) -> None:
    with tls_api(MemoryStore(history=100), tmp_path) as api:
        r = httpx.get(f"{api.url}/api/v1", headers={"Authorization": f"Bearer {api.token}"}, verify=False)
        assert r.status_code == 200
        pods = {e["name"]: e for e in r.json()["resources"] if e["name"].split("/")[0] == "pods"}
        assert list(pods) == sorted(pods)
        assert pods["pods/exec"]["kind"] == "PodExecOptions" and pods["pods/exec"]["verbs"] == ["create", "get"]
        assert pods["pods/attach"]["kind"] == "PodAttachOptions"
        assert pods["pods/portforward"]["kind"] == "PodPortForwardOptions"
        assert pods["pods/log"]["verbs"] == ["get"]
        assert {"pods", "pods/status", "pods/ephemeralcontainers"} <= set(pods)
