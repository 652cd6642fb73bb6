"""Connection tracking, just enough to undo NAT on replies.

The nat table only sees a connection's first packet; what it decided is stored in the
conntrack entry, and every later packet, in both directions, is rewritten from that entry. A
reply matches the entry's *reply* tuple (the original tuple with the NAT applied, reversed):
its destination is rewritten back before routing (undoing SNAT/MASQUERADE) and its source
after routing (undoing DNAT), so the client sees the address it talked to.
"""

from __future__ import annotations

from dataclasses import dataclass

from .packet import CT_DNAT, CT_ESTABLISHED, CT_SNAT, Packet

Tuple5 = tuple[str, int, int, int, int]  # proto, src, sport, dst, dport


@dataclass(slots=True, unsafe_hash=True)  # not frozen: cheaper to make, never mutated
class Conn:
    orig: Tuple5  # as the first packet arrived
    final: Tuple5  # as it left, after DNAT and SNAT

    @property
    def dnat(self) -> bool:
        return self.orig[3:] != self.final[3:]

    @property
    def snat(self) -> bool:
        return self.orig[1:3] != self.final[1:3]

    @property
    def reply(self) -> Tuple5:
        proto, src, sport, dst, dport = self.final
        return (proto, dst, dport, src, sport)


def conn_of(orig: Tuple5, pkt: Packet) -> Conn:
    return Conn(orig, pkt.tuple)


def is_reply(conn: Conn, pkt: Packet) -> bool:
    """Whether ``pkt`` travels the connection's reply direction, as it arrives (still addressed
    to the NATed addresses)."""
    return pkt.tuple == conn.reply


def reply_pre_routing(conn: Conn, pkt: Packet) -> bool:
    """Before routing a reply: undo the connection's SNAT (the reply is addressed to the
    masquerading address; send it to the real client). Returns whether it rewrote."""
    pkt.ct = CT_ESTABLISHED | (CT_SNAT if conn.snat else 0) | (CT_DNAT if conn.dnat else 0)
    if not conn.snat:
        return False
    _, src, sport, _, _ = conn.orig
    pkt.dst, pkt.dport = src, sport
    return True


def reply_post_routing(conn: Conn, pkt: Packet) -> bool:
    """After routing a reply: undo the DNAT (the reply comes from the endpoint; make it come
    from the Service address the client used)."""
    if not conn.dnat:
        return False
    _, _, _, dst, dport = conn.orig
    pkt.src, pkt.sport = dst, dport
    return True
