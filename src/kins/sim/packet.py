"""What a trace is made of: the packet, the steps each namespace takes, the result.

The shape follows the packet tracers people already read (Batfish, Cisco ``packet-tracer``):
a trace is a list of hops, one per namespace the packet crosses, each a numbered list of
steps, and a final disposition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .addr import int_ip

# Final dispositions, from best to worst (the worst one wins when load-balanced branches differ).
DELIVERED = "delivered"
ACCEPTED = "accepted"  # taken by the node itself (INPUT accepted it)
FORWARDED = "forwarded"  # left the one node a node-limited trace looks at
REJECTED = "rejected"
DROPPED = "dropped"
NO_ROUTE = "no-route"
SEVERITY = {DELIVERED: 0, ACCEPTED: 0, FORWARDED: 0, REJECTED: 1, DROPPED: 2, NO_ROUTE: 3}

# conntrack states as a bit set (xt_conntrack's --ctstate)
CT_INVALID = 1
CT_NEW = 2
CT_RELATED = 4
CT_ESTABLISHED = 8
CT_UNTRACKED = 16
CT_SNAT = 32
CT_DNAT = 64
CT_BITS = {
    "INVALID": CT_INVALID,
    "NEW": CT_NEW,
    "RELATED": CT_RELATED,
    "ESTABLISHED": CT_ESTABLISHED,
    "UNTRACKED": CT_UNTRACKED,
    "SNAT": CT_SNAT,
    "DNAT": CT_DNAT,
}


@dataclass(slots=True)
class Packet:
    """One IPv4 packet's header fields. ``icmp`` packets are echo requests (ports 0)."""

    src: int
    dst: int
    proto: str  # tcp, udp, sctp, icmp
    sport: int = 0
    dport: int = 0
    mark: int = 0
    ct: int = CT_NEW

    def copy(self) -> Packet:
        return Packet(self.src, self.dst, self.proto, self.sport, self.dport, self.mark, self.ct)

    @property
    def tuple(self) -> tuple[str, int, int, int, int]:
        return (self.proto, self.src, self.sport, self.dst, self.dport)

    def describe(self) -> str:
        if self.proto in ("tcp", "udp", "sctp"):
            return f"{self.proto} {int_ip(self.src)}:{self.sport} -> {int_ip(self.dst)}:{self.dport}"
        return f"{self.proto} {int_ip(self.src)} -> {int_ip(self.dst)}"


# Step and Hop are made per packet and per hop: hashable value types, but not frozen (a frozen
# dataclass sets every field through object.__setattr__, several times slower). Never mutated.
@dataclass(slots=True, unsafe_hash=True)
class Step:
    """``action``: received, route, rule, policy, nat, masquerade, bridged, hairpin, arp,
    encapsulated, decapsulated, transmitted, delivered, accepted, dropped, rejected, no-route,
    note. ``table``/``chain``/``rule`` are set for iptables steps (rule numbers are 1-based, as
    ``iptables -L --line-numbers`` shows them)."""

    action: str
    detail: str
    table: str | None = None
    chain: str | None = None
    rule: int | None = None


@dataclass(slots=True, unsafe_hash=True)
class Hop:
    node: str  # the namespace: a node name, a pod's ns/name, or a host name
    steps: tuple[Step, ...]


@dataclass(slots=True, unsafe_hash=True)  # not frozen: cheaper to make, never mutated
class EndpointChoice:
    """One DNAT destination a load-balanced Service may pick, and what happens on that branch."""

    address: str  # "ip:port"
    probability: float
    node: str | None  # the node whose pod subnet holds the address
    pod: str | None  # ns/name of the pod with that IP, when known
    disposition: str
    masquerade: bool


@dataclass(slots=True, unsafe_hash=True)  # not frozen: cheaper to make, never mutated
class Trace:
    src: str  # how FROM was understood, in words
    dst: str
    packet: str  # the first packet as sent
    disposition: str
    hops: tuple[Hop, ...]
    service: str | None = None  # ns/name:port
    endpoints: tuple[EndpointChoice, ...] = ()
    masquerade: bool = False
    branch: str | None = None  # the endpoint whose branch the hops follow
    reply: tuple[Hop, ...] = ()  # the reply's path back (conntrack undoes the NAT)
    reply_disposition: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
