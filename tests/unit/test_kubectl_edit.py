"""`kubectl edit` (its editor a script that changes one value) writes through the API with
kubectl 1.27 and 1.33."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from kubectl_bin import NEWEST, OLDEST, tls_api

from kins.store.memory import MemoryStore


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_edit_a_configmap(tmp_path: Path, version: str) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/greeting: hello/greeting: bonjour/' \"$1\"\n")
    editor.chmod(0o755)
    with tls_api(MemoryStore(history=100), tmp_path / "state") as api:
        k = api.kubectl(version)
        k("create", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {greeting: hello}\n")
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(api.kubeconfig)}
        p = subprocess.run(
            [str(k.binary), "edit", "configmap", "x"],
            env={**env, "KUBE_EDITOR": str(editor)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == "configmap/x edited"
        assert k("get", "configmap", "x", "-o", "jsonpath={.data.greeting}") == "bonjour"
