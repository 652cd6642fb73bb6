"""Fuzzing the packet handling: random bytes and mutated valid queries never raise, and always
give a well-formed reply (QR set, the query's ID, one echoed question at most) or nothing."""

from __future__ import annotations

import struct

from dnslib import EDNS0, QTYPE, DNSHeader, DNSQuestion, DNSRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_dns_answer import ep, eps, f1_objects, svc

from kins.dns.config import DnsConfig
from kins.dns.index import MemoryDnsIndex
from kins.dns.server import Handler, _Pending

_objs = f1_objects()
_objs += [svc("big", None), eps("big", [ep(f"172.1.0.{i + 1}") for i in range(60)])]
HANDLER = Handler(MemoryDnsIndex.from_objects(_objs), DnsConfig())

NAMES = [
    "svc1.testns.svc.cluster.local",
    "big.testns.svc.cluster.local",
    "_http._tcp.hdls1.testns.svc.cluster.local",
    "1.0.0.10.in-addr.arpa",
    "external.testns.svc.cluster.local",
    "dns-version.cluster.local",
    "example.com",
]
TYPES = ["A", "AAAA", "SRV", "PTR", "TXT", "CNAME", "SOA", "NS", "ANY", "MX"]


def valid_query(name: str, qtype: str, edns: bool) -> bytes:
    # A fixed id, built without DNSRecord.question (which draws one from the random module):
    # hypothesis wants no hidden randomness inside a strategy.
    q = DNSRecord(DNSHeader(id=0x4B1D, rd=1), q=DNSQuestion(name, getattr(QTYPE, qtype)))
    if edns:
        q.add_ar(EDNS0(udp_len=1232))
    return bytes(q.pack())


def check(packet: bytes, tcp: bool) -> None:
    out = HANDLER.handle(packet, tcp)
    if out is None:
        return
    if isinstance(out, _Pending):
        return  # goes upstream; the query it carries was parsed strictly already
    assert isinstance(out, bytes) and len(out) >= 12
    if not tcp:
        assert len(out) <= 1232
    qid, flags, qd = struct.unpack_from("!HHH", out)
    assert flags & 0x8000  # a response
    assert qid == struct.unpack_from("!H", packet)[0]
    assert qd <= 1
    well_formed(out)
    if qd:
        n = _qlen(out)
        assert out[12 : 12 + n] == packet[12 : 12 + n]  # the question echoed as sent
    if all(b < 0x80 for b in out[12 : 12 + _qlen(out)]):
        DNSRecord.parse(out)  # dnslib only parses names that decode as UTF-8


def _name_end(msg: bytes, i: int) -> int:
    """The offset after a name at ``i``; pointers must point backwards (no loops)."""
    start = i
    while True:
        n = msg[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            assert ((n & 0x3F) << 8 | msg[i + 1]) < start
            return i + 2
        assert n <= 63
        i += 1 + n


def _qlen(msg: bytes) -> int:
    if struct.unpack_from("!H", msg, 4)[0] == 0:
        return 0
    return _name_end(msg, 12) + 4 - 12


def well_formed(msg: bytes) -> None:
    """Every count matches a complete section and nothing trails."""
    _, _, qd, an, ns, ar = struct.unpack_from("!HHHHHH", msg)
    i = 12
    for _ in range(qd):
        i = _name_end(msg, i) + 4
    for _ in range(an + ns + ar):
        i = _name_end(msg, i)
        rdlen = struct.unpack_from("!H", msg, i + 8)[0]
        i += 10 + rdlen
    assert i == len(msg)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.booleans())
def test_random_bytes(packet: bytes, tcp: bool) -> None:
    check(packet, tcp)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(valid_query(draw(st.sampled_from(NAMES)), draw(st.sampled_from(TYPES)), draw(st.booleans())))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "dup"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[i] = draw(st.sampled_from([0, 1, 0x3F, 0x40, 0xC0, 0xFF, 0x29]))
        elif op == "cut":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "dup":
            data += data[12:]
    return bytes(data)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.booleans())
def test_mutated_queries(packet: bytes, tcp: bool) -> None:
    if len(packet) >= 2:
        check(packet, tcp)
    else:
        assert HANDLER.handle(packet, tcp) is None


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(NAMES), st.sampled_from(TYPES), st.booleans(), st.booleans())
def test_valid_queries_answer_their_question(name: str, qtype: str, edns: bool, tcp: bool) -> None:
    packet = valid_query(name, qtype, edns)
    out = HANDLER.handle(packet, tcp)
    if isinstance(out, _Pending):
        return
    assert isinstance(out, bytes)
    reply = DNSRecord.parse(out)
    query = DNSRecord.parse(packet)
    assert reply.header.id == query.header.id and reply.q == query.q
    assert bool([r for r in reply.ar if r.rtype == 41]) == edns
