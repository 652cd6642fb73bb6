"""The cluster DNS server: UDP and TCP on one port, answers from a watched index.

Hot path: a reply for a cluster name is ``header + the client's question + a precomputed body``
keyed by (lowercased name, type, class); the bodies are dropped whenever the index changes.
Only misses go through ``resolve`` and dnslib. UDP is read straight off a non-blocking socket,
draining up to a batch of datagrams per wake-up, which costs far less than one event-loop turn
per packet. Several processes may share the port with SO_REUSEPORT (``workers``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dnslib import DNSHeader, DNSLabel, DNSQuestion, DNSRecord

from .answer import Result, resolve
from .config import POD_MODES, DnsConfig, parse_hostport
from .index import MemoryDnsIndex
from .sources import IndexSource, StaticSource, watch_api
from .upstream import Upstream, reply_from
from .wire import (
    BADVERS,
    SERVFAIL,
    TC,
    Malformed,
    Query,
    error_reply,
    header,
    name_labels,
    opt_record,
    parse_query,
    reply_flags,
    simple_reply,
)

log = logging.getLogger("kins.dns")

UDP_BATCH = 64
FAST_CACHE_MAX = 50_000


@dataclass(frozen=True, slots=True)
class _Body:
    """A cluster answer minus header and question; names in ``data`` may point at offset 12."""

    flags: int  # AA and rcode (QR, RD, RA, TC are added per query)
    an: int
    ns: int
    ar: int
    data: bytes
    ar_offset: int  # where the additional section starts in ``data``


# Cached for names whose answer ends in a CNAME out of the zone (the upstream adds the rest).
_CHASE = _Body(0, 0, 0, 0, b"", 0)


@dataclass(frozen=True, slots=True)
class _Pending:
    """A query that needs the upstream (a name outside the zone, or an ExternalName target)."""

    query: Query
    result: Result | None  # None: forward the whole question


class _RejectLog:
    """At most one line per interval about what was rejected (hostile floods must not flood logs)."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self._last = 0.0
        self._count = 0

    def __call__(self, reason: str, peer: object) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._last >= self.interval:
            log.warning("rejected %d malformed packet(s); latest from %s: %s", self._count, peer, reason)
            self._last = now
            self._count = 0


class Handler:
    """Packets in, packets out; shared by the UDP and TCP sides."""

    def __init__(self, index: MemoryDnsIndex, cfg: DnsConfig, upstream: Upstream | None = None) -> None:
        self.index = index
        self.cfg = cfg
        self.upstream = upstream if upstream else None
        self.ra = self.upstream is not None
        self._cache: dict[tuple[bytes, int, int], _Body | None] = {}
        self._gen = -1
        self.reject = _RejectLog()

    def handle(self, data: bytes, tcp: bool, peer: object = None) -> bytes | _Pending | None:
        """The reply, or what still needs the upstream, or None (drop)."""
        try:
            q = parse_query(data)
        except Malformed as e:
            self.reject(e.reason, peer)
            return None if e.rcode is None else error_reply(e, ra=self.ra)
        if q.edns_size and q.edns_version:
            return simple_reply(q, BADVERS, ra=self.ra, max_udp=self.cfg.max_udp)
        gen = self.index.generation
        if gen != self._gen:
            self._cache.clear()
            self._gen = gen
        key = (q.qname.lower(), q.qtype, q.qclass)
        try:
            body = self._cache[key]
        except KeyError:
            body = self._build(q, key)
        if body is None:
            return _Pending(q, None)
        if body is _CHASE:  # rare: resolve again so the CNAME owner keeps the query's case
            return _Pending(q, resolve(self.index.snapshot(), q.labels(), q.qtype, self.cfg, q.qclass))
        return self._assemble(q, body, tcp)

    def _build(self, q: Query, key: tuple[bytes, int, int]) -> _Body | None:
        labels = name_labels(key[0])
        res = resolve(self.index.snapshot(), labels, q.qtype, self.cfg, q.qclass)
        body: _Body | None
        if res.forward:
            body = None
        elif res.chase:
            body = _CHASE
        else:
            body = _encode(res, labels, q.qtype, q.qclass)
        if len(self._cache) >= FAST_CACHE_MAX:
            self._cache.clear()  # a flood of random names: start over rather than grow
        self._cache[key] = body
        return body

    def _assemble(self, q: Query, body: _Body, tcp: bool) -> bytes:
        flags = reply_flags(q.flags, 0, aa=False, ra=self.ra) | body.flags
        if q.edns_size:
            opt = opt_record(self.cfg.max_udp, 0, q.do)
            out = header(q.id, flags, 1, body.an, body.ns, body.ar + 1) + q.question + body.data + opt
            limit = min(q.edns_size, self.cfg.max_udp) if self.cfg.max_udp >= 512 else 512
        else:
            opt = b""
            out = header(q.id, flags, 1, body.an, body.ns, body.ar) + q.question + body.data
            limit = 512
        if not tcp and len(out) > max(limit, 512):
            # Additional records may go silently (RFC 2181 §9); if the rest is still too big, the
            # question alone with TC set, so the client asks again over TCP.
            ar = 1 if opt else 0
            out = header(q.id, flags, 1, body.an, body.ns, ar) + q.question + body.data[: body.ar_offset] + opt
            if len(out) > max(limit, 512):
                out = header(q.id, flags | TC, 1, 0, 0, ar) + q.question + opt
        return out

    async def complete(self, p: _Pending, tcp: bool) -> bytes:
        q = p.query
        if self.upstream is None:
            if p.result is not None:  # an ExternalName pointing outside: the CNAME alone
                return self._finish_record(q, p.result, tcp)
            return simple_reply(q, SERVFAIL, ra=False, max_udp=self.cfg.max_udp)
        labels = q.labels()
        if p.result is None:
            rec = await self.upstream.resolve(labels, q.qtype, q.qclass)
            if rec is None:
                return simple_reply(q, SERVFAIL, ra=True, max_udp=self.cfg.max_udp)
            return self._wire(reply_from(rec, q.id, q.flags, labels, q.qtype, q.qclass), q, tcp)
        res = p.result
        target = tuple(res.chase.encode("latin-1").split(b"."))
        rec = await self.upstream.resolve(target, q.qtype, q.qclass)
        if rec is not None:
            res = Result(rec.header.rcode, res.answer + list(rec.rr), list(rec.auth))
        return self._finish_record(q, res, tcp)

    def _finish_record(self, q: Query, res: Result, tcp: bool) -> bytes:
        rec = DNSRecord(
            DNSHeader(id=q.id, qr=1, aa=1, rd=1 if q.flags & 0x100 else 0, ra=1 if self.ra else 0, rcode=res.rcode),
            q=DNSQuestion(DNSLabel(q.labels()), q.qtype, q.qclass),
        )
        rec.rr, rec.auth, rec.ar = list(res.answer), list(res.authority), list(res.additional)
        return self._wire(rec, q, tcp)

    def _wire(self, rec: DNSRecord, q: Query, tcp: bool) -> bytes:
        body = _encode_record(rec, len(q.question))
        return self._assemble(q, body, tcp)


def _encode(res: Result, labels: tuple[bytes, ...], qtype: int, qclass: int) -> _Body:
    hdr = DNSHeader(id=0, qr=1, aa=1 if res.authoritative else 0, rcode=res.rcode)
    rec = DNSRecord(hdr, q=DNSQuestion(DNSLabel(labels), qtype, qclass))
    rec.rr, rec.auth, rec.ar = list(res.answer), list(res.authority), list(res.additional)
    qlen = sum(len(x) + 1 for x in labels) + 1 + 4
    return _encode_record(rec, qlen)


def _encode_record(rec: DNSRecord, qlen: int) -> _Body:
    """``rec`` minus header and question, plus where its additional section begins."""
    data = bytes(rec.pack())
    additional = rec.ar
    rec.ar = []
    ar_offset = len(rec.pack()) - 12 - qlen
    rec.ar = additional
    flags = int.from_bytes(data[2:4], "big") & 0x040F  # AA and rcode
    return _Body(flags, len(rec.rr), len(rec.auth), len(rec.ar), data[12 + qlen :], ar_offset)


# --- transports ------------------------------------------------------------------------------------


class DnsServer:
    """A running server: ``port``, ``index``; ``close()`` and ``await wait_closed()``."""

    def __init__(self, handler: Handler, source: IndexSource) -> None:
        self.handler = handler
        self.source = source
        self.index = source.index
        self.port = 0
        self._udp: socket.socket | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._source_task: asyncio.Task[None] | None = None
        self._conns = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    # UDP
    def _on_udp(self) -> None:
        sock = self._udp
        assert sock is not None
        handle = self.handler.handle
        for _ in range(UDP_BATCH):
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            try:
                out = handle(data, False, addr)
            except Exception:  # a bug must cost one answer, never the server
                log.exception("failed to answer a query from %s", addr)
                continue
            if out is None:
                continue
            if isinstance(out, bytes):
                with contextlib.suppress(OSError):
                    sock.sendto(out, addr)
            else:
                self._spawn(self._udp_later(out, addr))

    async def _udp_later(self, p: _Pending, addr: tuple[str, int]) -> None:
        out = await self.handler.complete(p, False)
        if self._udp is not None:
            with contextlib.suppress(OSError):
                self._udp.sendto(out, addr)

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # TCP
    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cfg = self.handler.cfg
        if self._conns >= cfg.tcp_max_connections:
            writer.close()
            return
        self._conns += 1
        peer = writer.get_extra_info("peername")
        try:
            while True:
                n = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), cfg.tcp_idle), "big")
                if n == 0:
                    break
                data = await asyncio.wait_for(reader.readexactly(n), cfg.tcp_idle)
                try:
                    out = self.handler.handle(data, True, peer)
                except Exception:
                    log.exception("failed to answer a query from %s", peer)
                    break
                if out is None:
                    break  # not a query: hang up
                if isinstance(out, bytes):
                    writer.write(len(out).to_bytes(2, "big") + out)
                else:
                    # Pipelined queries may be answered out of order (RFC 7766 §6.2.1.1).
                    self._spawn(self._tcp_later(out, writer))
                await asyncio.wait_for(writer.drain(), cfg.tcp_idle)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._conns -= 1
            writer.close()

    async def _tcp_later(self, p: _Pending, writer: asyncio.StreamWriter) -> None:
        out = await self.handler.complete(p, True)
        if not writer.is_closing():
            writer.write(len(out).to_bytes(2, "big") + out)

    # lifecycle
    async def start(self, host: str, port: int, *, reuse_port: bool = False, sync_timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        for _ in range(50):
            udp = _udp_socket(host, port, reuse_port)
            try:
                tcp_sock = _tcp_socket(host, udp.getsockname()[1], reuse_port)
            except OSError as e:
                udp.close()
                if port == 0 and e.errno == errno.EADDRINUSE:
                    continue  # the random UDP port is taken for TCP: pick another
                raise
            break
        else:
            raise OSError(errno.EADDRINUSE, "no free port for both UDP and TCP")
        self._udp = udp
        self.port = udp.getsockname()[1]
        loop.add_reader(udp.fileno(), self._on_udp)
        self._tcp = await asyncio.start_server(self._on_tcp, sock=tcp_sock)
        self._source_task = asyncio.ensure_future(self.source.run())
        deadline = loop.time() + sync_timeout
        while not self.index.synced and loop.time() < deadline:
            if self._source_task.done():
                self._source_task.result()  # raise what stopped it
            await asyncio.sleep(0.01)

    def close(self) -> None:
        if self._udp is not None and self._loop is not None:
            self._loop.remove_reader(self._udp.fileno())
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
        if self._source_task is not None:
            self._source_task.cancel()
        for t in list(self._tasks):
            t.cancel()

    async def wait_closed(self) -> None:
        if self._tcp is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 1.0)
        if self._source_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._source_task

    async def __aenter__(self) -> DnsServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _udp_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    s = socket.socket(_family(host), socket.SOCK_DGRAM)
    if reuse_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    with contextlib.suppress(OSError):  # bursts of queries: a roomier receive queue drops fewer
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((host, port))
    s.setblocking(False)
    return s


def _tcp_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    s = socket.socket(_family(host), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        s.bind((host, port))
        s.listen(1024)
    except OSError:
        s.close()
        raise
    s.setblocking(False)
    return s


async def serve(
    host: str,
    port: int,
    index_source: IndexSource | MemoryDnsIndex,
    cfg: DnsConfig,
    *,
    reuse_port: bool = False,
    sync_timeout: float = 5.0,
) -> DnsServer:
    """Start answering on ``host:port`` (UDP and TCP; port 0 picks one) and keep the index
    current from ``index_source``. Returns once the index has synced (or ``sync_timeout``)."""
    source = StaticSource(index_source) if isinstance(index_source, MemoryDnsIndex) else index_source
    upstream = Upstream(cfg.upstream, cfg.upstream_timeout, cfg.cache_size) if cfg.upstream else None
    server = DnsServer(Handler(source.index, cfg, upstream), source)
    await server.start(host, port, reuse_port=reuse_port, sync_timeout=sync_timeout)
    return server


# --- the pod's entry point ---------------------------------------------------------------------------


def _client_factory(api: str, token_file: str, ca_file: str | None) -> object:
    from ..client import connect

    # The token is read from its file again as it changes (a projected token is renewed).
    return lambda: connect(api, "", ca_file, token_file=token_file)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kins.dns", description="The cluster DNS server of kins.")
    p.add_argument("--api", required=True, help="API URL, or unix:/path/to/api.sock")
    p.add_argument("--token-file", required=True, help="file holding the API bearer token")
    p.add_argument("--ca-file", help="CA certificate of an https:// API")
    p.add_argument("--listen", default="0.0.0.0:53", help="address:port for UDP and TCP")
    p.add_argument("--zone", default="cluster.local")
    p.add_argument("--ttl", type=int, default=5)
    p.add_argument("--pods", choices=POD_MODES, default="disabled")
    p.add_argument("--upstream", nargs="*", default=[], metavar="IP:PORT")
    p.add_argument("--ns-ip", action="append", default=[], help="address(es) of ns.dns.<zone>")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    host, port = parse_hostport(args.listen)
    Path(args.token_file).read_text()  # unreadable: fail now, not in every informer
    cfg = DnsConfig(
        zone=args.zone,
        ttl=args.ttl,
        pods=args.pods,
        upstream=tuple(parse_hostport(u) for u in args.upstream),
        ns_ips=tuple(args.ns_ip),
    )
    factory = _client_factory(args.api, args.token_file, args.ca_file)
    workers = max(1, args.workers)
    children: list[int] = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            children = []
            break
        children.append(pid)

    async def run() -> None:
        # Handlers first: a SIGTERM that arrives while the index syncs still ends in a clean exit.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        source = watch_api(factory, pods=cfg.pods)  # type: ignore[arg-type]
        server = await serve(host, port, source, cfg, reuse_port=workers > 1)
        # What start-up left alive (modules, clients, the first index) is never scanned again,
        # so the collector's full passes stay short and add no milliseconds to answers.
        gc.collect()
        gc.freeze()
        log.info("cluster DNS for %s on %s:%d (pid %d)", cfg.zone, host, server.port, os.getpid())
        await stop.wait()
        server.close()
        await server.wait_closed()

    try:
        asyncio.run(run())
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
