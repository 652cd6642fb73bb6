"""DNS messages on the wire: a strict question parser and reply assembly from raw bytes.

Client packets are never handed to a general DNS parser: only the header, one question (no
compression allowed, at most 255 bytes of name) and an optional OPT record are read, so
hostile input (pointer loops, bogus counts, huge names) is rejected by a few bounds checks.
A reply is ``header + the client's own question bytes + a body`` whose names may point into
the question; that keeps the question's case and lets one body serve every spelling.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
OPCODE_MASK = 0x7800

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
BADVERS = 16
T_OPT = 41

_HDR = struct.Struct("!HHHHHH")
_QTAIL = struct.Struct("!HH")
_OPT = struct.Struct("!HHIH")


class Malformed(Exception):
    """A packet we do not answer normally. ``rcode`` None: drop it silently."""

    def __init__(self, reason: str, rcode: int | None, qid: int = 0, flags: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rcode = rcode
        self.qid = qid
        self.flags = flags


class Query(NamedTuple):
    id: int
    flags: int
    qname: bytes  # wire form as sent (length-prefixed labels, final zero byte)
    qtype: int
    qclass: int
    question: bytes  # qname + type + class, exactly as sent
    edns_size: int  # 0: no OPT in the query
    edns_version: int
    do: bool

    @property
    def key(self) -> tuple[bytes, int]:
        """The cache key: the lowercased name (ASCII only, as DNS compares) and the type."""
        return self.qname.lower(), self.qtype

    def labels(self) -> tuple[bytes, ...]:
        return name_labels(self.qname)


def name_labels(wire: bytes) -> tuple[bytes, ...]:
    """The labels of an uncompressed wire-form name (one ``parse_query`` accepted)."""
    out = []
    i = 0
    while wire[i]:
        n = wire[i]
        out.append(wire[i + 1 : i + 1 + n])
        i += 1 + n
    return tuple(out)


def parse_query(data: bytes) -> Query:
    """The query in ``data``, or Malformed (with the rcode to answer, or None to drop)."""
    if len(data) < 12:
        raise Malformed("short header", None)
    qid, flags, qd, an, ns, ar = _HDR.unpack_from(data)
    if flags & QR:
        raise Malformed("a response, not a query", None)  # never answer answers: no loops
    if flags & OPCODE_MASK:
        raise Malformed(f"opcode {(flags & OPCODE_MASK) >> 11}", NOTIMP, qid, flags)
    if qd != 1:
        raise Malformed(f"{qd} questions", FORMERR, qid, flags)
    if an or ns or ar > 1:
        raise Malformed(f"unexpected records an={an} ns={ns} ar={ar}", FORMERR, qid, flags)
    i = 12
    end = len(data)
    while True:
        if i >= end:
            raise Malformed("truncated name", FORMERR, qid, flags)
        n = data[i]
        if n == 0:
            i += 1
            break
        if n > 63:
            raise Malformed("compressed or invalid label in the question", FORMERR, qid, flags)
        i += 1 + n
        if i - 12 > 254:
            raise Malformed("name longer than 255 bytes", FORMERR, qid, flags)
    if i + 4 > end:
        raise Malformed("truncated question", FORMERR, qid, flags)
    qtype, qclass = _QTAIL.unpack_from(data, i)
    qend = i + 4
    edns_size = 0
    version = 0
    do = False
    if ar:
        if qend + 11 > end or data[qend] != 0:
            raise Malformed("additional record is not an OPT", FORMERR, qid, flags)
        rtype, size, ttl, rdlen = _OPT.unpack_from(data, qend + 1)
        if rtype != T_OPT or qend + 11 + rdlen != end:
            raise Malformed("bad OPT record", FORMERR, qid, flags)
        edns_size = max(size, 512)
        version = (ttl >> 16) & 0xFF
        do = bool(ttl & 0x8000)
    elif qend != end:
        raise Malformed("trailing bytes", FORMERR, qid, flags)
    if qtype == T_OPT:
        raise Malformed("OPT as the question type", FORMERR, qid, flags)
    return Query(qid, flags, data[12:i], qtype, qclass, data[12:qend], edns_size, version, do)


def reply_flags(qflags: int, rcode: int, *, aa: bool, ra: bool, tc: bool = False) -> int:
    f = QR | (qflags & (OPCODE_MASK | RD)) | (rcode & 0xF)
    if aa:
        f |= AA
    if ra:
        f |= RA
    if tc:
        f |= TC
    return f


def opt_record(size: int, rcode: int = 0, do: bool = False) -> bytes:
    """Our OPT: payload size, the high bits of an extended rcode, DO echoed (RFC 3225)."""
    return b"\x00" + _OPT.pack(T_OPT, size, ((rcode >> 4) << 24) | (0x8000 if do else 0), 0)


def header(qid: int, flags: int, qd: int, an: int, ns: int, ar: int) -> bytes:
    return _HDR.pack(qid, flags, qd, an, ns, ar)


def error_reply(exc: Malformed, *, ra: bool) -> bytes:
    """Header-only reply for a rejected query (FORMERR, NOTIMP)."""
    assert exc.rcode is not None
    return header(exc.qid, reply_flags(exc.flags, exc.rcode, aa=False, ra=ra), 0, 0, 0, 0)


def simple_reply(q: Query, rcode: int, *, ra: bool, aa: bool = False, max_udp: int = 1232) -> bytes:
    """The question echoed with an rcode and no records (SERVFAIL, REFUSED, BADVERS)."""
    opt = opt_record(max_udp, rcode, q.do) if q.edns_size else b""
    flags = reply_flags(q.flags, rcode, aa=aa, ra=ra)
    return header(q.id, flags, 1, 0, 0, 1 if opt else 0) + q.question + opt
