"""Node addresses and pod subnets: what a Node lacks is leased when it joins.

A Node may come with its underlay address (``status.addresses`` InternalIP) and its pod subnet
(``spec.podCIDR``), or without: this controller fills in what is missing with the same choices
the cluster file makes for its nodes (``api.config``): the lowest free underlay address from
``.21`` on (nodes' and outside hosts' addresses are taken), and flannel's next free subnet of the
pod network (never the first). A value given that cannot be (outside its network, the gateway,
or already another node's or host's; an older Node keeps what it has) and a network with nothing
left are refused with a Warning Event, and the Node stays without its lease: the network agent
and the scheduler leave such a Node alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from msgspec.structs import replace

from .._errors import Conflict, NotFound
from ..api.config import ClusterConfig, free_node_ip, free_pod_subnet
from ..api.core import Node, NodeAddress, NodeStatus
from ..store.base import DELETED, Store, WatchEvent
from .events import NO_EVENTS, WARNING, EventSink

COMPONENT = "node-ipam-controller"
IP_REASON = "AddressNotAvailable"
CIDR_REASON = "CIDRNotAvailable"


def leased(node: Node) -> bool:
    """The Node has both its underlay address and its pod subnet."""
    return bool(node.internal_ip and node.spec.podCIDR)


def _age(n: Node) -> tuple[str, str]:
    return (n.metadata.creationTimestamp or "", n.name)


def ip_problem(cfg: ClusterConfig, ip: str, older: list[Node]) -> str | None:
    """Why a Node cannot have the underlay address ``ip`` (None if it can)."""
    try:
        addr = ipaddress.IPv4Address(ip)
    except ValueError:
        return f"{ip} is not an IPv4 address"
    underlay = ipaddress.IPv4Network(cfg.underlay.cidr)
    if addr not in underlay:
        return f"{ip} is outside underlay.cidr {underlay}"
    if ip == cfg.underlay_gateway:
        return f"{ip} is the underlay's gateway address"
    for h in cfg.hosts:
        if h.ip == ip:
            return f"{ip} is already used by {h.name}"
    for n in older:
        if n.internal_ip == ip:
            return f"{ip} is already used by {n.name}"
    return None


def cidr_problem(cfg: ClusterConfig, cidr: str, older: list[Node]) -> str | None:
    """Why a Node cannot have the pod subnet ``cidr`` (None if it can)."""
    try:
        sub = ipaddress.IPv4Network(cidr)
    except ValueError:
        return f"{cidr} is not an IPv4 CIDR"
    podnet = ipaddress.IPv4Network(cfg.podNetwork.cidr)
    if not sub.subnet_of(podnet):
        return f"{sub} is outside podNetwork.cidr {podnet}"
    for n in older:
        other = n.spec.podCIDR
        try:
            if other and sub.overlaps(ipaddress.IPv4Network(other)):
                return f"{sub} overlaps node {n.name}'s podCIDR {other}"
        except ValueError:
            continue
    return None


def with_lease(node: Node, ip: str, cidr: str) -> Node:
    st = node.status or NodeStatus()
    addrs = [NodeAddress(type="InternalIP", address=ip)]
    addrs += [a for a in st.addresses or [] if a.type != "InternalIP"]
    if not any(a.type == "Hostname" for a in addrs):
        addrs.append(NodeAddress(type="Hostname", address=node.name))
    return replace(
        node,
        spec=replace(node.spec, podCIDR=cidr, podCIDRs=[cidr]),
        status=replace(st, addresses=addrs),
    )


class NodeIPAMController:
    """Leases the underlay address and the pod subnet of Nodes that lack them, and checks the
    ones they come with."""

    name = "node-ipam"
    kinds = frozenset({"Node"})

    def __init__(self, store: Store, cfg: ClusterConfig, events: EventSink = NO_EVENTS) -> None:
        self.store = store
        self.cfg = cfg
        self.events = events
        self._seen: dict[str, tuple[str | None, str | None]] = {}  # name -> (ip, podCIDR) checked
        self.refused: dict[str, str] = {}  # name -> why, reported once

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        node = ev.object
        assert isinstance(node, Node)
        if ev.type == DELETED:
            self._seen.pop(node.name, None)
            self.refused.pop(node.name, None)
            return list(self.refused)  # what it held may be free now
        if self._seen.get(node.name) == (node.internal_ip, node.spec.podCIDR):
            return ()
        return (node.name,)

    def start_keys(self) -> Iterable[str]:
        return list(self.refused)  # what was missing may have been freed while nobody watched

    def reconcile(self, key: str) -> bool:
        try:
            node = self.store.get("Node", None, key)
        except NotFound:
            return False
        assert isinstance(node, Node)
        others = [n for n in self.store.list("Node")[0] if isinstance(n, Node) and n.name != key]
        older = [n for n in others if _age(n) < _age(node)]
        ip, cidr = node.internal_ip, node.spec.podCIDR
        if ip and (why := ip_problem(self.cfg, ip, older)):
            return self._refuse(node, IP_REASON, why)
        if cidr and (why := cidr_problem(self.cfg, cidr, older)):
            return self._refuse(node, CIDR_REASON, why)
        if not ip:
            ip = free_node_ip(
                self.cfg, {n.internal_ip for n in others if n.internal_ip} | {h.ip for h in self.cfg.hosts}
            )
            if ip is None:
                return self._refuse(node, IP_REASON, f"no free address left in underlay.cidr {self.cfg.underlay.cidr}")
        if not cidr:
            taken = []
            for n in others:
                try:
                    taken.append(ipaddress.IPv4Network(n.spec.podCIDR or ""))
                except ValueError:
                    continue
            sub = free_pod_subnet(self.cfg, taken)
            if sub is None:
                pn = self.cfg.podNetwork
                return self._refuse(node, CIDR_REASON, f"no free /{pn.subnetLength} left in podNetwork.cidr {pn.cidr}")
            cidr = str(sub)
        self.refused.pop(key, None)
        self._seen[key] = (ip, cidr)
        if (ip, cidr) == (node.internal_ip, node.spec.podCIDR) and node.spec.podCIDRs:
            return False
        try:
            self.store.update(with_lease(node, ip, cidr))
        except (Conflict, NotFound):
            self._seen.pop(key, None)  # changed meanwhile: its watch event brings it back
            return False
        return True

    def _refuse(self, node: Node, reason: str, why: str) -> bool:
        self._seen[node.name] = (node.internal_ip, node.spec.podCIDR)
        if self.refused.get(node.name) != why:
            self.refused[node.name] = why
            self.events.event(node, WARNING, reason, f"Node {node.name}: {why}", component=COMPONENT)
        return False
