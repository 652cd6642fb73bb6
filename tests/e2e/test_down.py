"""`kins down` leaves nothing of the cluster and the host as it was."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from e2e_helpers import DATA_PRODUCT_URL, cluster_namespaces, running_cluster

pytestmark = pytest.mark.root


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def _host_state() -> dict[str, object]:
    """What a cluster must not change on the host: its addresses, routes, iptables and the
    forwarding and bridge sysctls."""
    sysctls = {}
    for line in _run("sysctl", "-a").splitlines():
        key, _, value = line.partition(" = ")
        if key == "net.ipv4.ip_forward" or key.startswith("net.bridge."):
            sysctls[key] = value
    rules = [
        re.sub(r"\[\d+:\d+\]", "", line)
        for line in _run("iptables-save").splitlines()
        if not line.startswith("#")
    ]  # fmt: skip
    return {
        "ip addr": _run("ip", "addr"),
        "ip route": _run("ip", "route"),
        "iptables-save": rules,
        "links": sorted(line.split(": ")[1].split("@")[0] for line in _run("ip", "-o", "link").splitlines()),
        "sysctl": sysctls,
    }


def test_down_leaves_nothing_and_the_host_unchanged() -> None:
    before = _host_state()
    with running_cluster() as c:
        name, state = c.name, c.state
        src = c.pods("business-manager")[0].name
        assert '"service":"data-product"' in c.curl(src, DATA_PRODUCT_URL)
        assert cluster_namespaces(name)
        during = _host_state()
    # running_cluster's exit ran `kins down` and found no namespace, process, mount or state
    # directory of the cluster; the host's own network is as before.
    assert not cluster_namespaces(name)
    assert not Path(state).exists()
    after = _host_state()
    for key in before:
        assert after[key] == before[key], f"{key} changed by the cluster"
    # Nor did the running cluster touch the host's network (everything lives in namespaces).
    assert during["ip route"] == before["ip route"]
    assert during["iptables-save"] == before["iptables-save"]
