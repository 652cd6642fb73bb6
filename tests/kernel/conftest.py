"""Root fixtures for the kernel layer: a unique cluster per test, torn down even on failure.

Every test gets a cluster name ``t<6 hex>`` and its own state directory. After the test the
ledger's teardown runs in a ``finally`` and the fixture fails the test if any ``kins-<name>-``
namespace is left behind.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kins.api.config import ClusterConfig, default_cluster
from kins.api.core import Pod, PodSpec, PodStatus
from kins.api.meta import ObjectMeta
from kins.kernel import netns
from kins.kernel.apply import host_plan
from kins.kernel.ledger import teardown
from kins.model.netstate import NodePlan
from kins.render.podnet import render_node_network


@dataclass(frozen=True)
class Kc:
    """A test cluster: its name and state directory."""

    name: str
    state_dir: Path

    def ns(self, plan_name: str) -> str:
        return netns.ns_name(self.name, plan_name)


def _leftovers(name: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(netns.NETNS_DIR) if n.startswith(f"kins-{name}-"))
    except FileNotFoundError:
        return []


@pytest.fixture
def kc(tmp_path: Path) -> Iterator[Kc]:
    if os.geteuid() != 0:
        pytest.fail("kernel tests need root to create network namespaces")
    c = Kc(f"t{secrets.token_hex(3)}", tmp_path / "state")
    try:
        yield c
    finally:
        teardown(c.name, c.state_dir)
        left = _leftovers(c.name)
        for n in left:  # never leak, but still fail the test
            netns.remove(n)
        assert not left, f"namespaces left behind: {left}"


def article_pods() -> dict[str, list[Pod]]:
    """Three pods per node, at the first addresses of each node's subnet."""

    def pod(name: str, ip: str, node: str) -> Pod:
        return Pod(
            metadata=ObjectMeta(name=name, namespace="default"),
            spec=PodSpec(nodeName=node),
            status=PodStatus(phase="Running", podIP=ip),
        )

    return {
        "node1": [pod(f"web-{i}", f"172.30.76.{i + 2}", "node1") for i in range(3)],
        "node2": [pod(f"api-{i}", f"172.30.9.{i + 2}", "node2") for i in range(3)],
    }


@dataclass(frozen=True)
class Article:
    cfg: ClusterConfig
    nodes: list[NodePlan]
    hosts: list[NodePlan]

    def node(self, name: str) -> NodePlan:
        return next(n for n in self.nodes if n.name == name)


@pytest.fixture
def article() -> Article:
    """The reference article's cluster: node1 192.168.0.21 (172.30.76.0/24), node2 192.168.0.22
    (172.30.9.0/24), flannel.1 VNI 1 port 8472 MTU 1450, a client host, 3 pods per node."""
    cfg = default_cluster()
    pods = article_pods()
    nodes = [render_node_network(cfg, n, pods[n]) for n in ("node1", "node2")]
    return Article(cfg, nodes, [host_plan(cfg, "client")])


def ping(ns: str, ip: str, tries: int = 3) -> bool:
    """``ping -c1 -W1`` from inside ``ns``; a few tries for the first ARP round."""
    for _ in range(tries):
        r = subprocess.run(["ip", "netns", "exec", ns, "ping", "-c1", "-W1", ip], capture_output=True, check=False)
        if r.returncode == 0:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(name="ping")
def ping_fixture() -> Callable[..., bool]:
    return ping
