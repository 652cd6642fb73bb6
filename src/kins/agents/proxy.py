"""kube-proxy, iptables mode: each node's rules follow the Services and EndpointSlices.

On a change every node's payload is rendered again and ``iptables-restore --noflush`` runs for a
node only when its payload changed (what kube-proxy's change trackers achieve; a full payload
every ``FULL_SYNC_PERIOD``, so a restart or a flushed table always converges). Between full
syncs a payload rewrites only the chains of the Services that changed (kube-proxy's partial
sync). Nodes' devices and flannel peers are the overlay agent's business, pods' the kubelet's.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..api.config import ClusterConfig
from ..api.core import Node, Service
from ..api.discovery import EndpointSlice
from ..kernel import iptables as ipt
from ..kernel import netns as kns
from ..render.cluster import nodes_config
from ..render.proxy.iptables import base_chain_jumps, render_restore
from ..render.proxy.model import ProxyModel, build_proxy_model, rules_node_independent
from ..store.base import Store, WatchEvent
from .loop import NotYet, Reconciler

log = logging.getLogger("kins.proxy")


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


class ProxyAgent(Reconciler):
    """kube-proxy for the nodes in ``only`` (every node when None)."""

    name = "proxy"
    kinds = frozenset({"Node", "Service", "EndpointSlice"})
    resync = FULL_SYNC_PERIOD
    after = ("overlay",)

    def __init__(self, cfg: ClusterConfig, store: Store, only: frozenset[str] | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.only = only
        self.stats = SyncStats()
        # One worker per node (up to 64): the restores wait in the kernel, not on the GIL.
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="kins-proxy")

    def sync(self, changes: Sequence[WatchEvent] = ()) -> None:
        t0 = time.perf_counter()
        rv = self.store.resource_version
        nodes = [n for n in self.store.list("Node")[0] if isinstance(n, Node)]
        cfg = nodes_config(self.cfg, nodes)
        services = [s for s in self.store.list("Service")[0] if isinstance(s, Service)]
        slices = [s for s in self.store.list("EndpointSlice")[0] if isinstance(s, EndpointSlice)]
        names = [n.name for n in cfg.nodes if n.ip and n.podCIDR and (self.only is None or n.name in self.only)]
        for gone in set(self.stats.nodes) - set(names):
            del self.stats.nodes[gone]
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
        list(self._pool.map(lambda n: self._sync_node(cfg, n, services, slices, rv, model, texts), names))
        t2 = time.perf_counter()
        self.stats.syncs += 1
        self.stats.applied_rv = rv
        self.stats.last = {"read": t1 - t0, "nodes": t2 - t1}

    def _sync_node(
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
            if not kns.exists(netns):
                raise NotYet(f"no namespace yet for node {node}")
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

    def close(self) -> None:
        self._pool.shutdown(wait=False)
