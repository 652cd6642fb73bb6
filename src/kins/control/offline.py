"""A whole cluster's state computed without a daemon: what ``kins render`` starts from."""

from __future__ import annotations

import gc
import platform
import random

from .. import __version__
from ..api.config import ClusterConfig, NodeConfig
from ..api.core import (
    Endpoints,
    Namespace,
    NamespaceSpec,
    NamespaceStatus,
    Node,
    NodeAddress,
    NodeSpec,
    NodeStatus,
    NodeSystemInfo,
    Service,
)
from ..api.defaulting import DEFAULTED, apply_defaults, namespace_labels
from ..api.discovery import EndpointSlice
from ..api.meta import Condition, Object, ObjectMeta
from ..api.storage import StorageClass
from ..store.base import Clock
from ..store.memory import MemoryStore
from .base import run_until_stable
from .defaults import default_controllers
from .ipam import ServiceAllocator, kubernetes_service
from .localpath import local_path_class

# What the node's kubelet reports about itself: kins' node agent on this machine's kernel.
NODE_INFO = NodeSystemInfo(
    kubeletVersion=f"v1.31.0-kins.{__version__}",
    kubeProxyVersion=f"v1.31.0-kins.{__version__}",
    osImage="kins network namespace",
    kernelVersion=platform.release(),
    containerRuntimeVersion=f"kins://{__version__}",
    operatingSystem="linux",
    architecture="amd64",
)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def node_object(n: NodeConfig, now: str = "") -> Node:
    labels = {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": n.name,
        **(n.labels or {}),
    }
    addresses = [NodeAddress(type="InternalIP", address=n.ip)] if n.ip else []
    addresses.append(NodeAddress(type="Hostname", address=n.name))
    ready = Condition(
        type="Ready",
        status="True",
        reason="KubeletReady",
        message="kubelet is posting ready status",
        lastHeartbeatTime=now or None,
        lastTransitionTime=now or None,
    )
    return Node(
        metadata=ObjectMeta(name=n.name, labels=labels),
        spec=NodeSpec(podCIDR=n.podCIDR, podCIDRs=[n.podCIDR] if n.podCIDR else None),
        status=NodeStatus(addresses=addresses, conditions=[ready], nodeInfo=NODE_INFO),
    )


def namespace_object(name: str) -> Namespace:
    return Namespace(
        metadata=ObjectMeta(name=name, labels=namespace_labels(name, None)),
        spec=NamespaceSpec(finalizers=["kubernetes"]),
        status=NamespaceStatus(phase="Active"),
    )


def build_offline_state(cfg: ClusterConfig, objs: list[Object], seed: int = 0) -> MemoryStore:
    """Nodes from the cluster file, the system namespaces, ``default/kubernetes``, the default
    StorageClass (unless the input has classes of its own) and the user's objects (Services
    allocated as the API server would, requested addresses first), created in one transaction;
    then every controller runs until nothing changes.

    Raises AllocationError for a Service the API server would refuse, Conflict for duplicates.
    """
    # The cyclic garbage collector would rescan the ever-growing heap of fresh objects many
    # times over (about 40% of the time for 20,000 objects); none of them form cycles.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(cfg, objs, seed)
    finally:
        if enabled:
            gc.enable()


def _build(cfg: ClusterConfig, objs: list[Object], seed: int) -> MemoryStore:
    store = MemoryStore(rng=random.Random(seed + 1))
    now = Clock().now()
    # What the API server would have stored: user Namespaces carry their name label, claims are Pending ...
    objs = [apply_defaults(o) if isinstance(o, DEFAULTED) else o for o in objs]
    alloc = ServiceAllocator(cfg)
    user_ns = {o.namespace for o in objs if o.NAMESPACED}
    declared_ns = {o.name for o in objs if isinstance(o, Namespace)}
    services = [o for o in objs if isinstance(o, Service)]
    # Addresses and ports asked for are reserved before any is picked dynamically, so the
    # order of the manifests cannot make a dynamic pick steal one.
    allocated: dict[int, Service] = {}
    for svc in services:
        if svc.spec.clusterIP or svc.spec.clusterIPs or any(p.nodePort for p in svc.spec.ports or []):
            allocated[id(svc)] = alloc.allocate(svc)
    kube = alloc.allocate(kubernetes_service())
    for svc in services:
        if id(svc) not in allocated:
            allocated[id(svc)] = alloc.allocate(svc)
    with store.transaction():
        store.bulk_create([node_object(n, now) for n in cfg.nodes])
        store.bulk_create(
            [namespace_object(ns) for ns in sorted(set(SYSTEM_NAMESPACES) | user_ns) if ns not in declared_ns]
        )
        if not any(s.key == kube.key for s in services):
            store.create(kube)
        if not any(isinstance(o, StorageClass) for o in objs):
            store.create(local_path_class())  # claims are provisioned (on paper) as live
        store.bulk_create([allocated.get(id(o), o) if isinstance(o, Service) else o for o in objs])
    run_until_stable(
        store, default_controllers(store, cfg, random.Random(seed), frozen_endpoints=given_endpoints(objs))
    )
    return store


def given_endpoints(objs: list[Object]) -> frozenset[str]:
    """Services ("ns/name") with a selector whose EndpointSlices or Endpoints the input itself
    carries, as a dump of a real cluster does: their endpoints are taken as given instead of
    computed from pods the dump does not hold."""
    selected = {o.key for o in objs if isinstance(o, Service) and o.spec.selector}
    out: set[str] = set()
    for o in objs:
        if isinstance(o, EndpointSlice) and o.service_name:
            out.add(f"{o.namespace}/{o.service_name}")
        elif isinstance(o, Endpoints):
            out.add(o.key)
    # Selector-less Services keep their hand-written Endpoints anyway (and get them mirrored).
    return frozenset(out & selected)
