"""A Secret as the API server stores it: Opaque unless typed, its stringData merged into data
(kubectl 1.27 writes JSON, 1.33 protobuf)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubectl_bin import NEWEST, OLDEST, tls_api

from kins.api.core import Secret
from kins.api.defaulting import apply_defaults
from kins.api.meta import ObjectMeta
from kins.store.memory import MemoryStore

MANIFEST = """
apiVersion: v1
kind: Secret
metadata: {name: mixed}
data: {a: b2xk, keep: eA==}
stringData: {a: new, plain: text}
"""


def test_defaults_offline() -> None:
    s = apply_defaults(Secret(metadata=ObjectMeta(name="s"), stringData={"k": "v"}))
    assert isinstance(s, Secret)
    assert (s.type, s.data, s.stringData) == ("Opaque", {"k": "dg=="}, None)
    tls = Secret(metadata=ObjectMeta(name="t"), type="kubernetes.io/tls", data={"x": "eQ=="})
    assert apply_defaults(tls) is tls


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_kubectl_reads_what_the_api_server_stores(tmp_path: Path, version: str) -> None:
    with tls_api(MemoryStore(history=100), tmp_path / "state") as api:
        k = api.kubectl(version)
        k("create", "secret", "generic", "gen", "--from-literal=user=admin")
        gen = json.loads(k("get", "secret", "gen", "-o", "json"))
        assert gen["type"] == "Opaque" and gen["data"] == {"user": "YWRtaW4="}
        k("apply", "-f", "-", input=MANIFEST)
        mixed = json.loads(k("get", "secret", "mixed", "-o", "json"))
        assert mixed["type"] == "Opaque" and "stringData" not in mixed
        assert mixed["data"] == {"a": "bmV3", "keep": "eA==", "plain": "dGV4dA=="}
        # The manifest applied again is no change (stringData is compared as data).
        assert k.run("diff", "-f", "-", input=MANIFEST, check=False).returncode == 0
        assert k("get", "secret").split()[:4] == ["NAME", "TYPE", "DATA", "AGE"]
