"""Forwarding names outside the cluster zone, with a small cache that respects TTLs.

Like CoreDNS's ``forward`` + ``cache``: servers are tried in random order, each with a short
timeout, so a dead upstream costs at most ``2 * timeout`` and never hangs a client. Each query
goes out from a fresh socket (random source port) with a random ID, and the reply must match
both the ID and the question. Cached records come back with their TTLs aged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
import time
from dataclasses import dataclass

from dnslib import QTYPE, DNSHeader, DNSLabel, DNSQuestion, DNSRecord

from .wire import NOERROR, NXDOMAIN, RD, header, opt_record

log = logging.getLogger("kins.dns")

MAX_TTL = 3600
NEG_TTL_CAP = 300
NEG_TTL_DEFAULT = 5
_rng = random.SystemRandom()


@dataclass
class _Cached:
    expires: float
    stored: float
    record: DNSRecord


def _question_bytes(qname: tuple[bytes, ...], qtype: int, qclass: int) -> bytes:
    out = bytearray()
    for label in qname:
        out.append(len(label))
        out += label
    out.append(0)
    return bytes(out) + struct.pack("!HH", qtype, qclass)


def _cache_ttl(rec: DNSRecord) -> int:
    rcode = rec.header.rcode
    if rcode == NOERROR and rec.rr:
        return min(MAX_TTL, *(rr.ttl for rr in rec.rr))
    if rcode in (NOERROR, NXDOMAIN):
        soas = [rr for rr in rec.auth if rr.rtype == QTYPE.SOA]
        if soas:
            return min(NEG_TTL_CAP, soas[0].ttl, soas[0].rdata.times[-1])
        return NEG_TTL_DEFAULT
    return 0  # SERVFAIL, REFUSED ...: not cached


class Upstream:
    def __init__(self, servers: tuple[tuple[str, int], ...], timeout: float = 1.0, cache_size: int = 10_000) -> None:
        self.servers = servers
        self.timeout = timeout
        self.cache_size = cache_size
        self._cache: dict[tuple[bytes, int, int], _Cached] = {}

    def __bool__(self) -> bool:
        return bool(self.servers)

    async def resolve(self, qname: tuple[bytes, ...], qtype: int, qclass: int = 1) -> DNSRecord | None:
        """The upstream's answer (TTLs aged when cached), or None when no server answered."""
        key = (b".".join(qname).lower(), qtype, qclass)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None:
            if hit.expires > now:
                return _aged(hit.record, int(now - hit.stored))
            del self._cache[key]
        question = _question_bytes(qname, qtype, qclass)
        rec = await self._ask(question)
        if rec is None:
            return None
        ttl = _cache_ttl(rec)
        if ttl > 0:
            if len(self._cache) >= self.cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = _Cached(now + ttl, now, rec)
        return rec

    async def _ask(self, question: bytes) -> DNSRecord | None:
        servers = list(self.servers)
        _rng.shuffle(servers)
        deadline = time.monotonic() + 2 * self.timeout
        for host, port in servers:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                rec = await asyncio.wait_for(self._udp(host, port, question), min(self.timeout, left))
                if rec is not None and rec.header.tc:
                    rec = await asyncio.wait_for(self._tcp(host, port, question), min(self.timeout, left))
            except (TimeoutError, OSError) as e:
                log.debug("upstream %s:%d failed: %s", host, port, e)
                continue
            if rec is not None:
                return rec
        return None

    @staticmethod
    def _request(question: bytes) -> tuple[int, bytes]:
        qid = _rng.randrange(1 << 16)
        return qid, header(qid, RD, 1, 0, 0, 1) + question + opt_record(1232)

    @staticmethod
    def _check(data: bytes, qid: int, question: bytes) -> DNSRecord | None:
        if len(data) < 12 + len(question) or int.from_bytes(data[:2], "big") != qid:
            return None
        if data[12 : 12 + len(question)].lower() != question.lower():
            return None
        try:
            rec = DNSRecord.parse(data)
        except Exception:  # a broken upstream reply is just no reply
            return None
        rec.ar = [rr for rr in rec.ar if rr.rtype != QTYPE.OPT]
        return rec

    async def _udp(self, host: str, port: int, question: bytes) -> DNSRecord | None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        qid, msg = self._request(question)
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, (host, port))
            await loop.sock_sendall(sock, msg)
            while True:  # skip stray datagrams until the matching reply (or the timeout)
                data = await loop.sock_recv(sock, 65535)
                rec = self._check(data, qid, question)
                if rec is not None:
                    return rec

    async def _tcp(self, host: str, port: int, question: bytes) -> DNSRecord | None:
        qid, msg = self._request(question)
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(len(msg).to_bytes(2, "big") + msg)
            await writer.drain()
            n = int.from_bytes(await reader.readexactly(2), "big")
            return self._check(await reader.readexactly(n), qid, question)
        except asyncio.IncompleteReadError:
            return None
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _aged(rec: DNSRecord, elapsed: int) -> DNSRecord:
    out = DNSRecord(DNSHeader(id=0, qr=1, ra=rec.header.ra, rcode=rec.header.rcode), q=rec.q)
    for src, add in ((rec.rr, out.add_answer), (rec.auth, out.add_auth), (rec.ar, out.add_ar)):
        for rr in src:
            copy = type(rr)(rr.rname, rr.rtype, rr.rclass, max(0, rr.ttl - elapsed), rr.rdata)
            add(copy)
    return out


def reply_from(
    rec: DNSRecord, qid: int, qflags: int, question_labels: tuple[bytes, ...], qtype: int, qclass: int
) -> DNSRecord:
    """An upstream answer dressed as the reply to the client's query (its ID, RD bit, case)."""
    out = DNSRecord(
        DNSHeader(id=qid, qr=1, rd=1 if qflags & RD else 0, ra=1, rcode=rec.header.rcode),
        q=DNSQuestion(DNSLabel(question_labels), qtype, qclass),
    )
    out.rr, out.auth, out.ar = list(rec.rr), list(rec.auth), list(rec.ar)
    return out
