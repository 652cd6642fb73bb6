"""VXLAN as Linux does it for flannel: the inner frame's next hop resolves through the
device's neighbour table to a VTEP MAC, the FDB maps that MAC to the remote node's address,
and the frame leaves in a UDP datagram from the device's local address to that node, on the
device's destination port. The receiving node hands any datagram for that port to its VXLAN
device with the same VNI."""

from __future__ import annotations

from dataclasses import dataclass

from ..model.ipv4 import int_ip
from ..model.netstate import Link
from .packet import Packet
from .state import NodeState
from .sym import derived

EPHEMERAL = (32768, 60999)  # the kernel's default source port range for VXLAN (srcport 0 0)


@dataclass(slots=True, unsafe_hash=True)  # not frozen: cheaper to make, never mutated
class Encap:
    outer: Packet
    vtep_mac: str
    vni: int


def _port_hash(parts: tuple[int, ...]) -> int:
    src, dst, sport, dport = parts
    h = (src * 2654435761 ^ dst * 40503 ^ sport << 16 ^ dport) & 0xFFFFFFFF
    return EPHEMERAL[0] + h % (EPHEMERAL[1] - EPHEMERAL[0] + 1)


def flow_port(inner: Packet) -> int:
    """The outer UDP source port: a hash of the inner flow (the kernel uses it for ECMP
    entropy); deterministic here so traces are stable. A symbolic inner port gives a
    symbolic outer one (see ``sym``)."""
    return derived((inner.src, inner.dst, inner.sport, inner.dport), _port_hash)


def encapsulate(state: NodeState, dev: Link, nexthop: int, inner: Packet) -> Encap | str:
    """The outer packet for ``inner`` sent out ``dev`` towards ``nexthop``, or why it cannot go."""
    mac = state.neighs.get((dev.name, nexthop))
    if mac is None:
        return f"no neighbour entry for {int_ip(nexthop)} on {dev.name} (flannel installs one per remote node)"
    vtep = state.fdb.get((dev.name, mac))
    if not isinstance(vtep, int):
        return f"no FDB entry for {mac} on {dev.name}: the kernel does not know the remote VTEP"
    local = dev.local_ip
    if local is None:
        hit = state.routing.lookup(vtep)
        local = hit.src if hit and hit.src is not None else 0
    # The outer UDP flow is a connection of its own, new to conntrack (Packet's default).
    outer = Packet(local, vtep, "udp", flow_port(inner), dev.dstport)
    return Encap(outer, mac, dev.vni or 0)


def vxlan_listener(state: NodeState, port: int) -> Link | None:
    """The VXLAN device that receives UDP datagrams on ``port``."""
    for i in state.ifaces.values():
        if i.kind == "vxlan" and i.dstport == port:
            return i
    return None
