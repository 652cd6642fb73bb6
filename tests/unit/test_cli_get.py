"""``kins get`` as kubectl prints it: ``-o name``, several resource types at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ARTICLE = str(Path(__file__).resolve().parent.parent.parent / "examples" / "article")
KINS = [sys.executable, "-c", "from kins.cli import main; main()"]


def kins(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KINS, *args], capture_output=True, text=True, timeout=120)


def test_output_name() -> None:
    pods = kins("get", "po", "-o", "name", "-f", ARTICLE)
    assert pods.returncode == 0, pods.stderr
    lines = pods.stdout.splitlines()
    assert len(lines) == 6 and all(line.startswith("pod/") for line in lines)
    deploys = kins("get", "deploy", "-o", "name", "-f", ARTICLE).stdout.split()
    assert deploys == ["deployment.apps/business-manager", "deployment.apps/data-product"]
    assert kins("get", "svc", "data-product", "-o", "name", "-f", ARTICLE).stdout == "service/data-product\n"


def test_several_resource_types() -> None:
    res = kins("get", "svc,ep", "-f", ARTICLE)
    assert res.returncode == 0, res.stderr
    services, endpoints = res.stdout.split("\n\n")
    assert services.splitlines()[0].split()[:3] == ["NAME", "TYPE", "CLUSTER-IP"]
    assert "service/data-product " in services and "endpoints/data-product " in endpoints
    names = kins("get", "svc,deploy", "-o", "name", "-f", ARTICLE).stdout.splitlines()
    assert "service/mysql" in names and "deployment.apps/data-product" in names
    bad = kins("get", "svc,nope", "-f", ARTICLE)
    assert bad.returncode != 0 and 'resource type "nope"' in bad.stderr
