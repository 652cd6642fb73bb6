"""flannel's VXLAN backend, as current flannel (v0.9.0 and later) programs a node.

One device ``flannel.<vni>`` (no learning, no multicast group, no miss callouts) holding the
node's subnet address as a /32, so the kernel adds no connected route for the overlay. Every
remote node then costs exactly three entries, installed in this order so that the kernel never
has to ARP for the gateway of a route it already uses:

1. a permanent neighbour: remote subnet ``.0`` -> remote VTEP MAC,
2. a permanent ``self`` FDB entry: remote VTEP MAC -> remote node IP (the UDP destination),
3. the route ``<remote subnet> via <remote subnet>.0 dev flannel.<vni> onlink``.

Earlier flannel (up to v0.8) gave the device a /16 and resolved neighbours on demand through
L3-miss callouts; the reference article shows that older state, kins renders the current one.
"""

from __future__ import annotations

import ipaddress

from ...api.config import ClusterConfig, NodeConfig
from ...model.netstate import Addr, Fdb, Link, Neigh, Route
from ..names import vtep_mac
from .base import OverlayPlan

UNDERLAY_DEV = "eth0"


def device_name(cfg: ClusterConfig) -> str:
    return f"flannel.{cfg.podNetwork.vni}"


def _subnet(node: NodeConfig) -> ipaddress.IPv4Network:
    if not node.podCIDR:
        raise ValueError(f"node {node.name!r} has no pod subnet")
    return ipaddress.IPv4Network(node.podCIDR)


class VXLAN:
    name = "vxlan"

    def plan(self, cfg: ClusterConfig, node: NodeConfig, peers: list[NodeConfig]) -> OverlayPlan:
        dev = device_name(cfg)
        subnet = _subnet(node)
        link = Link(
            name=dev,
            kind="vxlan",
            mtu=cfg.pod_mtu,  # underlay MTU - 50 bytes of outer Ethernet/IP/UDP/VXLAN headers
            mac=vtep_mac(cfg.name, node.name),
            vni=cfg.podNetwork.vni,
            local=node.ip,
            dev=UNDERLAY_DEV,
            port=cfg.podNetwork.port,
            learning=False,
        )
        addr = Addr(dev=dev, cidr=f"{subnet.network_address}/32")
        neighs: list[Neigh] = []
        fdb: list[Fdb] = []
        routes: list[Route] = []
        for peer in peers:
            if peer.name == node.name or not peer.ip or not peer.podCIDR:
                continue  # flannel never receives its own lease; a node without a lease has no VTEP
            remote = _subnet(peer)
            gw = str(remote.network_address)
            mac = vtep_mac(cfg.name, peer.name)
            neighs.append(Neigh(dst=gw, lladdr=mac, dev=dev, state="PERMANENT"))
            fdb.append(Fdb(mac=mac, dev=dev, dst=peer.ip, self_=True, permanent=True))
            routes.append(Route(dst=str(remote), dev=dev, via=gw, onlink=True))
        return OverlayPlan(links=(link,), addrs=(addr,), neighs=tuple(neighs), fdb=tuple(fdb), routes=tuple(routes))
