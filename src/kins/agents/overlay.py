"""flanneld's half of a node: its namespace, devices and VXLAN peers follow the Node objects.

When nodes join or leave, each node's plan is rendered again and the kernel layer applies only
the difference (eth0 on the underlay, ``docker0``, ``flannel.1``, one neighbour, FDB entry and
onlink route per peer). The LoadBalancer addresses a node announces are part of its plan like
every other address (``eth0`` holds them as MetalLB's layer-2 speaker makes it), so one writer
owns eth0's addresses and a change of nodes never drops them.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from ..api.config import ClusterConfig
from ..api.core import Node, Service
from ..api.discovery import EndpointSlice
from ..kernel.apply import apply_node, remove_node
from ..model.netstate import Addr
from ..render.cluster import nodes_config
from ..render.podnet import render_node_network
from ..store.base import Store, WatchEvent
from .lbspeaker import UPLINK, announcements
from .loop import Reconciler

log = logging.getLogger("kins.overlay")

NodeKey = tuple[str, str | None, str | None, tuple[str, ...]]


class OverlayAgent(Reconciler):
    """The nodes in ``only`` (every node when None): devices, addresses, flannel peers."""

    name = "overlay"
    kinds = frozenset({"Node", "Service", "EndpointSlice"})
    resync = 60.0

    def __init__(
        self,
        cfg: ClusterConfig,
        store: Store,
        state_dir: Path,
        kernel_lock: threading.Lock,
        only: frozenset[str] | None = None,
        announce: Callable[[str, Sequence[str]], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.state_dir = state_dir
        self.lock = kernel_lock
        self.only = only
        self.announce = announce  # the LB speaker's gratuitous ARP for addresses eth0 just took
        self._applied: dict[str, NodeKey] = {}
        self._peers: tuple[tuple[str, str | None, str | None], ...] = ()

    def _mine(self, node: str) -> bool:
        return self.only is None or node in self.only

    def sync(self, changes: Sequence[WatchEvent] = ()) -> None:
        nodes = [n for n in self.store.list("Node")[0] if isinstance(n, Node)]
        services = [s for s in self.store.list("Service")[0] if isinstance(s, Service)]
        slices = [s for s in self.store.list("EndpointSlice")[0] if isinstance(s, EndpointSlice)]
        cfg = nodes_config(self.cfg, nodes)
        lb: dict[str, list[str]] = {}
        for ip, node in sorted(announcements(services, nodes, slices).items()):
            lb.setdefault(node, []).append(ip)
        peers = tuple((n.name, n.ip, n.podCIDR) for n in cfg.nodes)
        # A periodic sync (no changes) applies every plan again: what was changed behind the
        # agent's back is put back; otherwise only nodes whose plan inputs moved are touched.
        full = not changes or peers != self._peers
        want = {
            n.name: (n.name, n.ip, n.podCIDR, tuple(lb.get(n.name, ())))
            for n in cfg.nodes
            if n.ip and n.podCIDR and self._mine(n.name)
        }
        gone = [n for n in self._applied if n not in want and n not in {p[0] for p in peers}]
        todo = {name: key for name, key in want.items() if full or self._applied.get(name) != key}
        if not gone and not todo:
            return  # nothing to apply: the kernel lock (pods being made) is not waited for
        with self.lock:
            for name in sorted(gone):
                remove_node(self.cfg.name, name, self.state_dir)
                del self._applied[name]
            for name, key in todo.items():
                plan = render_node_network(cfg, name, [])
                extra = tuple(Addr(dev=UPLINK, cidr=f"{ip}/32") for ip in key[3])
                if extra:
                    plan = dataclasses.replace(plan, addrs=plan.addrs + extra)
                apply_node(self.cfg.name, plan, self.state_dir, manage_pods=False)
                before = self._applied.get(name)
                self._applied[name] = key
                taken = [ip for ip in key[3] if before is None or ip not in before[3]]
                if taken and self.announce is not None:
                    self.announce(name, taken)
        self._peers = peers

    def announced(self, node: str) -> tuple[str, ...]:
        """The LoadBalancer addresses the node's eth0 holds, as last applied."""
        key = self._applied.get(node)
        return key[3] if key else ()
