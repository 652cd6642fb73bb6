"""The network agent's account of what it applied, on a cluster without nodes (no kernel needed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kins.api.config import default_cluster
from kins.api.core import ConfigMap, Service, ServicePort, ServiceSpec
from kins.api.meta import ObjectMeta
from kins.daemon.netagent import NetAgent
from kins.store.memory import MemoryStore


@dataclass
class Running:
    agent: NetAgent
    store: MemoryStore


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    cfg = default_cluster()
    store = MemoryStore()
    agent = NetAgent(cfg, store, tmp_path, threading.Lock())
    stop = threading.Event()
    t = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    t.start()
    try:
        yield Running(agent, store)
    finally:
        stop.set()
        t.join(timeout=5)
        agent.close()
    assert not t.is_alive()


def test_writes_that_change_no_rule_still_count_as_applied(running: Running) -> None:
    """A write of a kind no rule comes from (the newest resourceVersion is often a Pod status or
    an Event) must not leave waiters for that version hanging until some Service changes."""
    running.store.create(ConfigMap(metadata=ObjectMeta(name="cm", namespace="default"), data={"k": "v"}))
    rv = running.store.resource_version
    assert running.agent.wait_applied(rv, timeout=10)
    assert running.agent.stats.applied_rv >= rv


def test_a_service_write_syncs_again(running: Running) -> None:
    assert running.agent.wait_applied(0, timeout=10)
    before = running.agent.stats.syncs
    svc = Service(
        metadata=ObjectMeta(name="web", namespace="default"),
        spec=ServiceSpec(ports=[ServicePort(port=80)], clusterIP="10.254.0.10"),
    )
    running.store.create(svc)
    rv = running.store.resource_version
    assert running.agent.wait_applied(rv, timeout=10)
    assert running.agent.stats.syncs > before
