"""What an overlay backend contributes to a node's plan, and the registry of backends.

Like flannel's backend manager, the pod-network renderer looks a backend up by the network
config's type (``podNetwork.backend``) and never names one itself: adding host-gw means one
module and one entry in ``OVERLAYS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ...api.config import ClusterConfig, NodeConfig
from ...model.netstate import Addr, Fdb, Link, Neigh, Route, Sysctl


@dataclass(frozen=True, slots=True)
class OverlayPlan:
    """The overlay's share of a node: its device(s), and per remote node the entries that reach
    that node's pod subnet. ``neighs``, ``fdb`` and ``routes`` are each in peer order; an
    applier installs all neighbours and FDB entries before the routes that use them."""

    links: tuple[Link, ...] = ()
    addrs: tuple[Addr, ...] = ()
    neighs: tuple[Neigh, ...] = ()
    fdb: tuple[Fdb, ...] = ()
    routes: tuple[Route, ...] = ()
    sysctls: tuple[Sysctl, ...] = ()


class Overlay(Protocol):
    """A pod-network backend: ``plan`` is pure and sees only the cluster file."""

    name: str

    def plan(self, cfg: ClusterConfig, node: NodeConfig, peers: list[NodeConfig]) -> OverlayPlan:
        """The overlay state of ``node``, given the other nodes that hold a subnet lease."""
        ...
