"""The controllers a cluster runs, in the order one round visits them."""

from __future__ import annotations

import random

from ..api.config import ClusterConfig
from ..store.base import Store
from .base import Controller
from .deployment import DeploymentController, GarbageCollector, ReplicaSetController
from .endpoints import EndpointsController
from .ipam import ServiceIPController
from .kubelet_sim import KubeletSim
from .scheduler import Scheduler


def default_controllers(
    store: Store,
    cfg: ClusterConfig,
    rng: random.Random,
    *,
    kubelet: bool = True,
    frozen_endpoints: frozenset[str] = frozenset(),
) -> list[Controller]:
    """Service allocation, workloads, owner cleanup, scheduling, (offline) kubelet, endpoints.

    ``kubelet=False`` leaves pod start-up to real node agents (the live daemon).
    """
    ctrls: list[Controller] = [
        ServiceIPController(store, cfg),
        DeploymentController(store),
        ReplicaSetController(store, rng),
        GarbageCollector(store),
        Scheduler(store),
    ]
    if kubelet:
        ctrls.append(KubeletSim(store))
    ctrls.append(EndpointsController(store, rng, frozen_endpoints))
    return ctrls
