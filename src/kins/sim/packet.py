"""What a trace is made of: the packet, the steps each namespace takes, the result.

The shape follows the packet tracers people already read (Batfish, Cisco ``packet-tracer``):
a trace is a list of hops, one per namespace the packet crosses, each a numbered list of
steps, and a final disposition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..model.ipv4 import int_ip
from .sym import MARK, SymPort, resolver

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


_PORTED: set[Callable[..., str]] = set()


def with_ports(fmt: Callable[..., str]) -> Callable[..., str]:
    """Marks a step text's writer whose arguments include ports (possibly symbolic ones): a
    step bound to a real source port gives them their values before writing, once."""
    _PORTED.add(fmt)
    return fmt


class Step:
    """``action``: received, route, rule, policy, nat, masquerade, bridged, hairpin, arp,
    encapsulated, decapsulated, transmitted, delivered, accepted, dropped, rejected, no-route,
    note. ``table``/``chain``/``rule`` are set for iptables steps (rule numbers are 1-based, as
    ``iptables -L --line-numbers`` shows them).

    A hashable value type, never mutated. ``Step.later`` makes one whose ``detail`` is
    written only when it is first read: a walk makes dozens of steps, and most callers of
    ``trace`` print or serialise the result once (or not at all, when it is only compared)."""

    __slots__ = ("_args", "_detail", "_fmt", "_port", "action", "chain", "rule", "table")

    def __init__(
        self,
        action: str,
        detail: str,
        table: str | None = None,
        chain: str | None = None,
        rule: int | None = None,
    ) -> None:
        self.action = action
        self._detail: str | None = detail
        self._fmt: Callable[..., str] | None = None
        self._args: tuple[Any, ...] = ()
        self._port: int | None = None
        self.table, self.chain, self.rule = table, chain, rule

    @classmethod
    def later(cls, action: str, fmt: Callable[..., str], args: tuple[Any, ...], port: int | None = None) -> Step:
        """A step whose detail is ``fmt(*args)``, written when first read. ``args`` are
        values (ints, strings, frozen objects), never something that changes later; with
        ``port``, the symbolic ports among them (``sym.SymPort``) stand for their values for
        that real source port."""
        s = cls.__new__(cls)
        s.action, s._detail, s._fmt, s._args, s._port = action, None, fmt, args, port
        s.table = s.chain = s.rule = None
        return s

    @property
    def detail(self) -> str:
        d = self._detail
        if d is None:
            fmt = self._fmt
            assert fmt is not None
            args = self._args
            port = self._port
            if port is not None and fmt in _PORTED:
                d = fmt(*[a.derive(port) if type(a) is SymPort else a for a in args])
            else:
                d = fmt(*args)
                if port is not None and MARK in d:  # a symbol where none was expected: its value
                    d = fmt(*[a.derive(port) if type(a) is SymPort else a for a in args])
            self._detail = d
        return d

    def _key(self) -> tuple[str, str, str | None, str | None, int | None]:
        return (self.action, self.detail, self.table, self.chain, self.rule)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Step):
            return NotImplemented
        return self is other or self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Step(action={self.action!r}, detail={self.detail!r}, table={self.table!r}, "
            f"chain={self.chain!r}, rule={self.rule!r})"
        )


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


# Steps as a walk records them: (namespace, Step), (namespace, (Step, ...)) (a hook's rules),
# or (namespace, action, fmt, args) (see ``Step.later``).
Entry = tuple[Any, ...]


class Walked:
    """How a trace's hops are made when they are first read: the steps of the walk as it
    recorded them, and the real source port its symbols stand for (None: the walk used real
    ports, or this is the template itself), and the packet's and notes' text as the walk wrote
    them (with markers for symbols)."""

    __slots__ = ("notes", "packet", "port", "reply", "syms", "trail")

    def __init__(
        self,
        trail: Sequence[Entry],
        reply: Sequence[Entry],
        syms: dict[int, SymPort],
        port: int | None,
        packet: str = "",
        notes: tuple[str, ...] = (),
    ) -> None:
        self.trail, self.reply, self.syms, self.port = trail, reply, syms, port
        self.packet, self.notes = packet, notes

    def bound(self, port: int) -> Walked:
        return Walked(self.trail, self.reply, self.syms, port, self.packet, self.notes)

    def text(self, text: str) -> str:
        """``text`` with its markers replaced by their values for the port."""
        if self.port is None or MARK not in text:
            return text
        return resolver(self.port, self.syms)(text)

    def hops(self, trail: Sequence[Entry]) -> tuple[Hop, ...]:
        """The steps grouped by namespace, symbols given their values for the port."""
        port = self.port
        new = Step.__new__
        hops: list[Hop] = []
        cur: str | None = None
        steps: list[Step] = []
        for e in trail:
            name = e[0]
            if name != cur:
                if cur is not None:
                    hops.append(Hop(cur, tuple(steps)))
                cur, steps = name, []
            if len(e) == 4:  # Step.later, made in line (a trace has dozens)
                st = new(Step)
                st.action, st._detail, st._fmt, st._args, st._port = e[1], None, e[2], e[3], port
                st.table = st.chain = st.rule = None
                steps.append(st)
                continue
            got = e[1]
            if type(got) is tuple:  # a hook's rule steps: written when the rules were compiled
                steps.extend(got)
                continue
            if port is not None and MARK in got.detail:
                got = Step(got.action, self.text(got.detail), got.table, got.chain, got.rule)
            steps.append(got)
        if cur is not None:
            hops.append(Hop(cur, tuple(steps)))
        return tuple(hops)


_TRACE_FIELDS = (
    "src",
    "dst",
    "packet",
    "disposition",
    "hops",
    "service",
    "endpoints",
    "masquerade",
    "branch",
    "reply",
    "reply_disposition",
    "notes",
)


class Trace:
    """A packet's path and fate. A hashable value, never mutated; a trace made by a walk
    (``Trace.walked``) groups and writes its steps only when ``hops`` or ``reply`` is read."""

    __slots__ = (
        "_hops",
        "_notes",
        "_packet",
        "_reply",
        "_walked",
        "branch",
        "disposition",
        "dst",
        "endpoints",
        "masquerade",
        "policy",
        "reply_disposition",
        "service",
        "src",
    )

    def __init__(
        self,
        src: str,  # how FROM was understood, in words
        dst: str,
        packet: str,  # the first packet as sent
        disposition: str,
        hops: tuple[Hop, ...],
        service: str | None = None,  # ns/name:port
        endpoints: tuple[EndpointChoice, ...] = (),
        masquerade: bool = False,
        branch: str | None = None,  # the endpoint whose branch the hops follow
        reply: tuple[Hop, ...] = (),  # the reply's path back (conntrack undoes the NAT)
        reply_disposition: str | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        self.src, self.dst, self.disposition = src, dst, disposition
        self.service, self.endpoints, self.masquerade, self.branch = service, endpoints, masquerade, branch
        self.reply_disposition = reply_disposition
        self._packet: str | None = packet
        self._notes: tuple[str, ...] | None = notes
        self._hops: tuple[Hop, ...] | None = hops
        self._reply: tuple[Hop, ...] | None = reply
        self._walked: Walked | None = None
        # NetworkPolicy verdicts on the way (``sim.policy.annotate``), one per pod chain visited
        self.policy: tuple[dict[str, Any], ...] = ()

    @classmethod
    def walked(
        cls,
        walked: Walked,
        src: str,
        dst: str,
        packet: str,
        disposition: str,
        service: str | None,
        endpoints: tuple[EndpointChoice, ...],
        masquerade: bool,
        branch: str | None,
        reply_disposition: str | None,
        notes: tuple[str, ...],
    ) -> Trace:
        """A trace whose hops come from ``walked`` when first read."""
        t = cls(src, dst, packet, disposition, (), service, endpoints, masquerade, branch, (), reply_disposition, notes)
        t._hops = t._reply = None
        walked.packet, walked.notes = packet, notes
        t._walked = walked
        if walked.port is not None:
            t._packet = t._notes = None
        return t

    def bound(self, port: int) -> Trace:
        """This trace (walked with a symbolic source port) for the real source port ``port``."""
        w = self._walked
        assert w is not None
        t = Trace.__new__(Trace)
        t.src, t.dst, t.disposition, t.service = self.src, self.dst, self.disposition, self.service
        t.endpoints, t.masquerade, t.branch = self.endpoints, self.masquerade, self.branch
        t.reply_disposition = self.reply_disposition
        t._hops = t._reply = None
        t._walked = w.bound(port)
        t._packet = t._notes = None  # written when read, from the template's
        t.policy = self.policy
        return t

    @property
    def packet(self) -> str:
        p = self._packet
        if p is None:
            w = self._walked
            assert w is not None
            p = self._packet = w.text(w.packet)
        return p

    @property
    def notes(self) -> tuple[str, ...]:
        notes = self._notes
        if notes is None:
            w = self._walked
            assert w is not None
            notes = self._notes = tuple(w.text(n) for n in w.notes)
        return notes

    @property
    def hops(self) -> tuple[Hop, ...]:
        h = self._hops
        if h is None:
            w = self._walked
            assert w is not None
            h = self._hops = w.hops(w.trail)
        return h

    @property
    def reply(self) -> tuple[Hop, ...]:
        r = self._reply
        if r is None:
            w = self._walked
            assert w is not None
            r = self._reply = w.hops(w.reply)
        return r

    def _key(self) -> tuple[Any, ...]:
        return (
            self.src,
            self.dst,
            self.packet,
            self.disposition,
            self.hops,
            self.service,
            self.endpoints,
            self.masquerade,
            self.branch,
            self.reply,
            self.reply_disposition,
            self.notes,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Trace:
            return NotImplemented
        return self is other or self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Trace(" + ", ".join(f"{n}={v!r}" for n, v in zip(_TRACE_FIELDS, self._key(), strict=True)) + ")"
