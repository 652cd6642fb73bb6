"""The node agents' network half: flannel (overlay peers) and kube-proxy (iptables) per node.

One thread watches Nodes, Services and EndpointSlices. A change is debounced briefly, then every
node's plan is rendered again and only what differs is applied: netlink entries through the
kernel layer's diff when the set of nodes changed, and ``iptables-restore --noflush`` for a node
only when its kube-proxy payload changed (what kube-proxy's change trackers achieve; the payload
itself is a full sync, so a restart or a flushed table always converges). Pods' own namespaces
are the kubelet's business, not this agent's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shlex
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from msgspec.structs import replace

from ..api.config import ClusterConfig, NodeConfig
from ..api.core import Node, Service
from ..api.discovery import EndpointSlice
from ..kernel import iptables as ipt
from ..kernel import netns as kns
from ..kernel.apply import apply_node, remove_node
from ..render.plan import Addr
from ..render.podnet import render_node_network
from ..render.proxy.iptables import base_chain_jumps, render_restore
from ..render.proxy.model import ProxyModel, build_proxy_model, rules_node_independent
from ..store.base import Store

log = logging.getLogger("kins.netagent")

WATCHED = {"Node", "Service", "EndpointSlice"}
DEBOUNCE = 0.005


def nodes_config(cfg: ClusterConfig, nodes: list[Node]) -> ClusterConfig:
    """The cluster file with its node list taken from the live Node objects (nodes come and go).
    A Node still waiting for its address or pod subnet (node IPAM) is left out until leased."""
    out = []
    for n in sorted(nodes, key=lambda n: n.name):
        if not n.internal_ip or not n.spec.podCIDR:
            continue
        out.append(NodeConfig(name=n.name, ip=n.internal_ip, podCIDR=n.spec.podCIDR, labels=n.metadata.labels))
    order = {n.name: i for i, n in enumerate(cfg.nodes)}
    out.sort(key=lambda n: (order.get(n.name, len(order)), n.name))
    return replace(cfg, nodes=out)


def ensure_base_rules(netns: str, restore_text: str) -> None:
    """What kube-proxy keeps outside its restore payload, in the order it creates it (the same
    list ``kins render --what iptables-save`` replays): its canary chains, then the jumps from
    the built-in chains into the chains the payload declares."""
    base = base_chain_jumps()
    ipt.ensure_chains(netns, [(t, c) for t, c, args in base if not args])
    declared = ipt.chains(restore_text)
    jumps = [(t, c, shlex.split(args)) for t, c, args in base if args]
    ipt.ensure_jumps(netns, [j for j in jumps if j[2][-1] in declared.get(j[0], set())])


FULL_SYNC_PERIOD = 300.0  # seconds between full syncs (kube-proxy: an hour, and after failures)


@dataclass
class NodeSync:
    restore_digest: str = ""
    applied_rv: int = 0
    last_seconds: float = 0.0
    # kube-proxy's partial sync (KEP-3453): what each Service's chains were rendered from, and
    # which nat chains the node holds (so stale ones are deleted), known from what was applied.
    fingerprints: dict[str, int] = field(default_factory=dict)
    nat_chains: set[str] = field(default_factory=set)
    last_full: float = 0.0
    partial_lines: int = 0


@dataclass
class SyncStats:
    syncs: int = 0
    applied_rv: int = 0
    nodes: dict[str, NodeSync] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)  # seconds of the last sync's phases


def _nat_chains_after(before: set[str], text: str) -> set[str]:
    """The nat chains a node holds once ``text`` is restored with --noflush."""
    out = set(before)
    in_nat = False
    for line in text.splitlines():
        if line.startswith("*"):
            in_nat = line == "*nat"
        elif in_nat and line.startswith(":"):
            out.add(line[1:].split(" ", 1)[0])
        elif in_nat and line.startswith("-X "):
            out.discard(line[3:].strip())
    return out


class NetAgent:
    def __init__(self, cfg: ClusterConfig, store: Store, state_dir: Path, kernel_lock: threading.Lock) -> None:
        self.cfg = cfg
        self.store = store
        self.state_dir = state_dir
        self.lock = kernel_lock
        self.stats = SyncStats()
        self._node_set: tuple[tuple[str, str | None, str | None], ...] = ()
        # One worker per node (up to 64): the restores wait in the kernel, not on the GIL.
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="kins-proxy")
        self._synced = threading.Condition()
        # Addresses other parts of the daemon put on a node's eth0 (LoadBalancer announcements).
        self.extra_addrs: Callable[[str], list[str]] = lambda node: []

    # --- one sync -----------------------------------------------------------------------------

    def sync(self) -> None:
        t0 = time.perf_counter()
        rv = self.store.resource_version
        nodes = [n for n in self.store.list("Node")[0] if isinstance(n, Node)]
        cfg = nodes_config(self.cfg, nodes)
        node_set = tuple((n.name, n.ip, n.podCIDR) for n in cfg.nodes)
        if node_set != self._node_set:
            self._sync_overlay(cfg, node_set)
        services = [s for s in self.store.list("Service")[0] if isinstance(s, Service)]
        slices = [s for s in self.store.list("EndpointSlice")[0] if isinstance(s, EndpointSlice)]
        names = [n.name for n in cfg.nodes if n.ip and n.podCIDR]
        # Without node-dependent rules (Local traffic policies, nodePortAddresses) every node gets
        # the same kube-proxy payload: build the model once and render each distinct payload once.
        shared = rules_node_independent(services, cfg)
        model = (
            build_proxy_model(services, slices, cfg, names[0], cfg.node(names[0]).ip or "")
            if shared and names
            else None
        )
        texts: dict[tuple[frozenset[str] | None, frozenset[str]], str] = {}
        t1 = time.perf_counter()
        list(self._pool.map(lambda n: self._sync_proxy(cfg, n, services, slices, rv, model, texts), names))
        t2 = time.perf_counter()
        with self._synced:
            self.stats.syncs += 1
            self.stats.applied_rv = rv
            self.stats.last = {"read": t1 - t0, "nodes": t2 - t1}
            self._synced.notify_all()

    def _sync_overlay(self, cfg: ClusterConfig, node_set: tuple[tuple[str, str | None, str | None], ...]) -> None:
        """Nodes joined or left: (re)apply every node's own devices and flannel peer entries."""
        gone = {n for n, _, _ in self._node_set} - {n for n, _, _ in node_set}
        with self.lock:
            for name in sorted(gone):
                remove_node(self.cfg.name, name, self.state_dir)
                self.stats.nodes.pop(name, None)
            for n in cfg.nodes:
                if not n.ip or not n.podCIDR:
                    continue
                plan = render_node_network(cfg, n.name, [])
                extra = tuple(Addr(dev="eth0", cidr=f"{ip}/32") for ip in self.extra_addrs(n.name))
                if extra:
                    plan = dataclasses.replace(plan, addrs=plan.addrs + extra)
                apply_node(self.cfg.name, plan, self.state_dir, manage_pods=False)
        self._node_set = node_set

    def _sync_proxy(
        self,
        cfg: ClusterConfig,
        node: str,
        services: list[Service],
        slices: list[EndpointSlice],
        rv: int,
        shared_model: ProxyModel | None,
        texts: dict[tuple[frozenset[str] | None, frozenset[str]], str],
    ) -> None:
        t0 = time.perf_counter()
        ip = cfg.node(node).ip or ""
        model = shared_model or build_proxy_model(services, slices, cfg, node, ip)
        st = self.stats.nodes.setdefault(node, NodeSync())
        prints: dict[str, list[object]] = {}
        for spi in model.services:
            prints.setdefault(spi.key, []).append(spi)
        fingerprints = {k: hash(tuple(v)) for k, v in prints.items()}
        full = not st.restore_digest or time.monotonic() - st.last_full > FULL_SYNC_PERIOD
        changed = {k for k, f in fingerprints.items() if st.fingerprints.get(k) != f}
        # A partial payload writes every fixed chain and KUBE-SERVICES, but the per-service chains
        # only of Services that changed: a Service change costs a small restore on each node.
        only = None if full else frozenset(changed)
        key = (only, frozenset(st.nat_chains))
        text = texts.get(key) if shared_model is not None else None
        if text is None:
            text = render_restore(
                model, cfg, only=set(only) if only is not None else None, existing_nat_chains=st.nat_chains
            )
            if shared_model is not None:
                texts[key] = text
        digest = hashlib.sha256(text.encode()).hexdigest()
        if full or changed or digest != st.restore_digest:
            netns = kns.node_ns(self.cfg.name, node)
            try:
                ipt.restore(netns, text, noflush=True, counters=True)
            except Exception:
                st.restore_digest = ""  # the next sync is a full one
                raise
            if full and not st.last_full:
                ensure_base_rules(netns, text)
            st.restore_digest = digest
            st.nat_chains = _nat_chains_after(st.nat_chains, text)
            if full:
                st.last_full = time.monotonic()
            else:
                st.partial_lines = text.count("\n")
        st.fingerprints = fingerprints
        st.applied_rv = rv
        st.last_seconds = time.perf_counter() - t0

    # --- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        # Every kind is watched, not only the ones rules come from: a write of another kind (a
        # Pod's status, an Event) moves the store's resourceVersion too, and once the agent has
        # seen it, with nothing of its own pending, the rules are as current as that version.
        with self.store.watch(None, self.store.resource_version) as w:
            ok = self._safe_sync()
            while not stop.is_set():
                ev = w.next(timeout=0.5)
                if ev is None:
                    continue
                events = [ev, *w.drain()]
                if any(e.object.kind in WATCHED for e in events):
                    # Let a burst of writes land, then sync once for all of them.
                    time.sleep(DEBOUNCE)
                    w.drain()
                    ok = self._safe_sync()
                elif ok:
                    self._caught_up(events[-1].rv)

    def _safe_sync(self) -> bool:
        try:
            self.sync()
        except Exception:  # a failed sync is retried on the next change; the daemon stays up
            log.exception("network sync failed")
            return False
        return True

    def _caught_up(self, rv: int) -> None:
        """Only writes that change no rule happened up to ``rv`` since the last (successful)
        sync: every node's rules are those of ``rv``."""
        with self._synced:
            self.stats.applied_rv = max(self.stats.applied_rv, rv)
            for st in self.stats.nodes.values():
                st.applied_rv = max(st.applied_rv, rv)
            self._synced.notify_all()

    def wait_applied(self, rv: int, timeout: float) -> bool:
        """Block until a sync that started at or after ``rv`` finished on every node."""
        deadline = time.monotonic() + timeout
        with self._synced:
            while self.stats.applied_rv < rv:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._synced.wait(left)
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=False)
