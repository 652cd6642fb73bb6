"""The controllers a cluster runs, in the order one round visits them."""

from __future__ import annotations

import random
from pathlib import Path

from ..api.config import ClusterConfig
from ..store.base import Store
from .apiservice import APIServiceAvailability
from .base import Controller
from .cronjob import CronJobController
from .daemonset import DaemonSetController
from .deployment import DeploymentController, ReplicaSetController
from .endpoints import EndpointsController
from .ephemeral import EphemeralVolumeController
from .events import NO_EVENTS, EventSink, shared_recorder
from .garbage import GarbageCollector
from .ipam import ServiceIPController
from .job import JobController
from .kubelet_sim import KubeletSim
from .lbipam import LoadBalancerIPController
from .localpath import LocalPathProvisioner
from .namespace import NamespaceController
from .netpolevents import NetworkPolicyEvents
from .nodeipam import NodeIPAMController
from .nodes import NodeEvents, PodGC
from .pvbinder import PersistentVolumeBinder
from .scheduler import Scheduler
from .statefulset import StatefulSetController
from .volumeprotection import VolumeProtection


def default_controllers(
    store: Store,
    cfg: ClusterConfig,
    rng: random.Random,
    *,
    kubelet: bool = True,
    frozen_endpoints: frozenset[str] = frozenset(),
    events: EventSink | None = None,
    volumes_dir: Path | None = None,
) -> list[Controller]:
    """Node leases, Service allocation (ClusterIPs, node ports, LoadBalancer addresses),
    workloads, namespace termination, garbage collection (and pods of Nodes that are gone),
    scheduling, (offline) kubelet, endpoints.

    ``kubelet=False`` leaves pod start-up to real node agents (the live daemon), which also
    records Events (into the store's shared recorder unless ``events`` is given); offline
    convergence records none unless asked to. ``volumes_dir``: where the local-path provisioner
    makes its directories (None: it plans volumes without making any).
    """
    if events is None:
        events = NO_EVENTS if kubelet else shared_recorder(store)
    ctrls: list[Controller] = [
        # First: a joining Node is leased before anything places pods on it.
        NodeIPAMController(store, cfg, events),
        ServiceIPController(store, cfg),
        LoadBalancerIPController(store, cfg, events),
        DeploymentController(store, events),
        ReplicaSetController(store, rng, events),
        CronJobController(store, events),
        JobController(store, rng, events),
        StatefulSetController(store, events, paced=not kubelet),
        DaemonSetController(store, rng, events),
        # A Terminating namespace is emptied, then the collector takes what its content owned.
        NamespaceController(store),
        GarbageCollector(store),
        PodGC(store),
        # Claims: protected, bound, provisioned; then the scheduler places their pods.
        EphemeralVolumeController(store, events),
        VolumeProtection(store),
        PersistentVolumeBinder(store, events),
        LocalPathProvisioner(store, volumes_dir, events),
        Scheduler(store, events),
    ]
    if events is not NO_EVENTS:
        ctrls.append(NodeEvents(events))
        ctrls.append(NetworkPolicyEvents(events))
    if kubelet:
        ctrls.append(KubeletSim(store))
    ctrls.append(EndpointsController(store, rng, frozen_endpoints))
    ctrls.append(APIServiceAvailability(store))  # after the endpoints it reads
    return ctrls
