"""Teardown removes exactly what the ledger lists, is idempotent, and leaves the host alone."""

from __future__ import annotations

import re
import subprocess

import pytest

from kins.kernel import netns
from kins.kernel.apply import apply_cluster
from kins.kernel.ledger import LEDGER_FILE, Ledger, teardown

pytestmark = pytest.mark.root


def _host_view() -> dict[str, str]:
    """What the host's own namespace looks like to iproute2 and iptables (counters stripped)."""

    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    return {
        "ip link": run("ip", "-o", "link", "show"),
        "ip route": run("ip", "route", "show", "table", "all"),
        "ip neigh": run("ip", "neigh", "show", "nud", "permanent"),
        "iptables-save": re.sub(r"\[\d+:\d+\]", "[0:0]", run("iptables-save")),
    }


def _strip_comments(save: str) -> str:
    return "\n".join(line for line in save.splitlines() if not line.startswith("#"))


def test_teardown_leaves_nothing_and_host_unchanged(kc, article) -> None:
    before = _host_view()
    apply_cluster(kc.name, article.nodes, kc.state_dir, article.hosts)
    made = netns.list_namespaces(kc.name)
    assert len(made) == 1 + 2 + 1 + 6  # underlay, nodes, host, pods
    during = _host_view()
    removed = teardown(kc.name, kc.state_dir)
    assert sorted(removed) == sorted(f"netns {n}" for n in made)
    assert netns.list_namespaces(kc.name) == []
    assert not (kc.state_dir / LEDGER_FILE).exists()
    after = _host_view()
    for key in before:
        assert _strip_comments(during[key]) == _strip_comments(before[key]), f"host {key} changed during apply"
        assert _strip_comments(after[key]) == _strip_comments(before[key]), f"host {key} changed by teardown"
    assert teardown(kc.name, kc.state_dir) == []  # idempotent


def test_teardown_removes_only_ledger_entries(kc, article) -> None:
    apply_cluster(kc.name, article.nodes[:1], kc.state_dir)
    # A namespace with the cluster's prefix that kins did not record is not kins' to remove.
    stranger = kc.ns("node-stranger")
    netns.create(stranger)
    try:
        removed = teardown(kc.name, kc.state_dir)
        assert f"netns {kc.ns('node-node1')}" in removed
        assert f"netns {stranger}" not in removed
        assert netns.exists(stranger)
    finally:
        netns.remove(stranger)


def test_teardown_removes_recorded_files(kc, tmp_path) -> None:
    led = Ledger.load(kc.name, kc.state_dir)
    d = kc.state_dir / "pods" / "p1"
    d.mkdir(parents=True)
    (d / "resolv.conf").write_text("nameserver 10.254.0.2\n")
    led.add_file(d)
    outside = tmp_path / "keep.txt"
    outside.write_text("x")
    with pytest.raises(ValueError):
        led.add_file(outside)
    assert teardown(kc.name, kc.state_dir) == [f"file {d}"]
    assert not d.exists() and outside.exists()
