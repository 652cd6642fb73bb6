"""The DNS server on 127.0.0.1 with a random port: real UDP and TCP queries, dig, truncation,
EDNS0, live updates through a store watch and the HTTP API, upstream forwarding and hostile packets."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from api_helpers import api_server
from dnslib import EDNS0, QTYPE, RR, A, DNSRecord
from msgspec.structs import replace
from test_dns_answer import ep, eps, f1_objects, svc

from kins.api.core import Namespace
from kins.api.meta import ObjectMeta
from kins.client import Client
from kins.dns.config import DnsConfig
from kins.dns.index import MemoryDnsIndex
from kins.dns.server import DnsServer, serve
from kins.dns.sources import IndexSource, watch_api, watch_store
from kins.store.memory import MemoryStore

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP = 0, 1, 2, 3, 4


@dataclass
class Running:
    server: DnsServer
    loop: asyncio.AbstractEventLoop

    @property
    def port(self) -> int:
        return self.server.port


@contextmanager
def running(source: IndexSource | MemoryDnsIndex, cfg: DnsConfig | None = None) -> Iterator[Running]:
    """The server in a background event loop."""
    loop = asyncio.new_event_loop()
    started: list[DnsServer] = []
    ready = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            started.append(loop.run_until_complete(serve("127.0.0.1", 0, source, cfg or DnsConfig())))
        except BaseException as e:
            errors.append(e)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        started[0].close()
        loop.run_until_complete(started[0].wait_closed())
        loop.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(10)
    if errors:
        raise errors[0]
    try:
        yield Running(started[0], loop)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)


def udp(port: int, packet: bytes, timeout: float = 2.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, ("127.0.0.1", port))
        try:
            return s.recv(65535)
        except TimeoutError:
            return None


def tcp(port: int, packets: list[bytes], timeout: float = 2.0) -> list[bytes]:
    """Pipelined: every query in one write, then as many replies."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"".join(struct.pack("!H", len(p)) + p for p in packets))
        f = s.makefile("rb")
        out = []
        for _ in packets:
            n = struct.unpack("!H", f.read(2))[0]
            out.append(f.read(n))
        return out


def query(name: str, qtype: str = "A", *, edns: int | None = None, do: bool = False) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    if edns is not None:
        q.add_ar(EDNS0(udp_len=edns, flags="do" if do else ""))
    return q


def ask(port: int, name: str, qtype: str = "A") -> DNSRecord:
    raw = udp(port, query(name, qtype).pack())
    assert raw is not None
    return DNSRecord.parse(raw)


def addrs(rec: DNSRecord) -> list[str]:
    return sorted(str(rr.rdata) for rr in rec.rr if rr.rtype in (QTYPE.A, QTYPE.AAAA))


@pytest.fixture(scope="module")
def f1() -> Iterator[Running]:
    objs = f1_objects()
    objs.append(svc("big", None))
    objs.append(eps("big", [ep(f"172.1.0.{i + 1}") for i in range(40)]))
    with running(MemoryDnsIndex.from_objects(objs)) as r:
        yield r


# --- plain queries -------------------------------------------------------------------------------


def test_udp_answer(f1: Running) -> None:
    q = query("svc1.testns.svc.cluster.local")
    r = DNSRecord.parse(udp(f1.port, q.pack()) or b"")
    assert r.header.id == q.header.id and r.header.qr == 1 and r.header.aa == 1
    assert addrs(r) == ["10.0.0.1"]
    assert r.rr[0].ttl == 5


def test_udp_keeps_case_and_serves_every_spelling(f1: Running) -> None:
    for name in ("svc1.testns.svc.cluster.local", "SVC1.TESTNS.svc.cluster.local", "Svc1.testns.SVC.cluster.local"):
        r = ask(f1.port, name)
        assert str(r.q.qname) == name + "."
        assert str(r.rr[0].rname) == name + "."
        assert addrs(r) == ["10.0.0.1"]


def test_negative_answers_over_udp(f1: Running) -> None:
    nx = ask(f1.port, "nope.testns.svc.cluster.local")
    assert nx.header.rcode == NXDOMAIN and nx.rr == [] and nx.auth[0].rtype == QTYPE.SOA
    nodata = ask(f1.port, "svc1.testns.svc.cluster.local", "AAAA")
    assert nodata.header.rcode == NOERROR and nodata.rr == [] and nodata.auth[0].rtype == QTYPE.SOA


def test_srv_and_ptr_over_udp(f1: Running) -> None:
    name = "_http._tcp.hdls1.testns.svc.cluster.local"
    # Over 512 bytes without EDNS0: the additional records go, the answer stays, no TC.
    r = ask(f1.port, name, "SRV")
    assert len(r.rr) == 5 and {rr.rdata.weight for rr in r.rr} == {16}
    assert r.ar == [] and r.header.tc == 0
    full = DNSRecord.parse(udp(f1.port, query(name, "SRV", edns=1232).pack()) or b"")
    assert len(full.rr) == 5 and len([rr for rr in full.ar if rr.rtype != QTYPE.OPT]) == 6
    p = ask(f1.port, "2.0.0.172.in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in p.rr] == ["172-0-0-2.hdls1.testns.svc.cluster.local."]


def test_tcp_pipelined(f1: Running) -> None:
    qs = [query(n) for n in ("svc1.testns.svc.cluster.local", "hdls1.testns.svc.cluster.local", "x.cluster.local")]
    replies = [DNSRecord.parse(r) for r in tcp(f1.port, [q.pack() for q in qs])]
    assert [r.header.id for r in replies] == [q.header.id for q in qs]
    assert addrs(replies[0]) == ["10.0.0.1"]
    assert len(replies[1].rr) == 4
    assert replies[2].header.rcode == NXDOMAIN


def dig(port: int, *args: str) -> str:
    out = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(port), "+time=2", "+tries=1", *args],
        capture_output=True,
        text=True,
        timeout=20,
    )
    return out.stdout


def test_dig_parses_the_answer(f1: Running) -> None:
    out = dig(f1.port, "svc1.testns.svc.cluster.local", "A")
    assert "status: NOERROR" in out and "flags: qr aa rd" in out
    lines = [ln.split() for ln in dig(f1.port, "+noall", "+answer", "hdls1.testns.svc.cluster.local").splitlines()]
    assert sorted(w[4] for w in lines) == ["172.0.0.2", "172.0.0.3", "172.0.0.4", "172.0.0.5"]
    assert {(w[0], w[1], w[2], w[3]) for w in lines} == {("hdls1.testns.svc.cluster.local.", "5", "IN", "A")}
    srv = dig(f1.port, "+short", "_http._tcp.svc1.testns.svc.cluster.local", "SRV").split()
    assert srv == ["0", "100", "80", "svc1.testns.svc.cluster.local."]
    assert dig(f1.port, "+short", "-x", "10.0.0.3").split() == ["svc-dual-stack.testns.svc.cluster.local."]
    assert dig(f1.port, "+short", "dns-version.cluster.local", "TXT").split() == ['"1.1.0"']
    assert "status: NXDOMAIN" in dig(f1.port, "missing.testns.svc.cluster.local")


# --- size limits and EDNS0 ---------------------------------------------------------------------------


def test_big_answer_truncates_over_udp_then_tcp_gives_all(f1: Running) -> None:
    q = query("big.testns.svc.cluster.local")
    raw = udp(f1.port, q.pack()) or b""
    assert len(raw) <= 512
    r = DNSRecord.parse(raw)
    assert r.header.tc == 1 and r.rr == []
    full = DNSRecord.parse(tcp(f1.port, [q.pack()])[0])
    assert full.header.tc == 0 and len(full.rr) == 40
    out = dig(f1.port, "+noedns", "big.testns.svc.cluster.local")
    assert "Truncated, retrying in TCP mode" in out and "ANSWER: 40" in out


def test_edns0_size_lets_big_answers_through_udp(f1: Running) -> None:
    raw = udp(f1.port, query("big.testns.svc.cluster.local", edns=4096, do=True).pack()) or b""
    r = DNSRecord.parse(raw)
    assert r.header.tc == 0 and len(r.rr) == 40
    opt = [rr for rr in r.ar if rr.rtype == QTYPE.OPT]
    assert len(opt) == 1 and opt[0].edns_do == 1 and opt[0].rclass == 1232
    small = DNSRecord.parse(udp(f1.port, query("svc1.testns.svc.cluster.local", edns=1232).pack()) or b"")
    assert [rr.rtype for rr in small.ar] == [QTYPE.OPT] and small.ar[0].edns_do == 0


def test_edns0_size_below_the_answer_truncates(f1: Running) -> None:
    many = [ep(f"172.2.0.{i + 1}") for i in range(100)]  # 100 A records: > 1232 bytes
    idx = MemoryDnsIndex.from_objects([Namespace(metadata=ObjectMeta(name="testns")), svc("h", None), eps("h", many)])
    with running(idx) as r:
        rec = DNSRecord.parse(udp(r.port, query("h.testns.svc.cluster.local", edns=4096).pack()) or b"")
        assert rec.header.tc == 1 and [rr.rtype for rr in rec.ar] == [QTYPE.OPT]


def test_unknown_edns_version_is_badvers(f1: Running) -> None:
    q = query("svc1.testns.svc.cluster.local", edns=1232)
    q.ar[0].ttl = 1 << 16  # version 1
    r = DNSRecord.parse(udp(f1.port, q.pack()) or b"")
    assert r.rr == [] and r.ar[0].rtype == QTYPE.OPT and (r.ar[0].ttl >> 24) == 1  # 16 = 1 << 4 | 0


# --- hostile packets ---------------------------------------------------------------------------------


def header(qid: int = 0x1234, flags: int = 0x0100, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


QUESTION = b"\x04svc1\x06testns\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01"


@pytest.mark.parametrize(
    ("packet", "rcode"),
    [
        (b"", None),
        (b"\x12", None),
        (b"\x12\x34\x01\x00\x00\x01\x00", None),  # truncated header
        (header(flags=0x8180) + QUESTION, None),  # a response: never answered
        (header(qd=0), FORMERR),
        (header(qd=2) + QUESTION + QUESTION, FORMERR),
        (header() + b"\xc0\x0c\x00\x01\x00\x01", FORMERR),  # pointer to itself
        (header() + b"\x03abc\xc0\x0c\x00\x01\x00\x01", FORMERR),  # compression loop
        (
            header()
            + b"\x3f"
            + b"a" * 63
            + b"\x3f"
            + b"b" * 63
            + b"\x3f"
            + b"c" * 63
            + b"\x3f"
            + b"d" * 63
            + b"\x00\x00\x01\x00\x01",
            FORMERR,
        ),  # a 257-byte name
        (header() + b"\x04svc1\x06tes", FORMERR),  # truncated name
        (header() + b"\x04svc1\x00\x00", FORMERR),  # truncated question
        (header() + QUESTION + b"junk", FORMERR),
        (header(ar=1) + QUESTION + b"\x00\x00\x29", FORMERR),  # truncated OPT
        (header(ar=1) + QUESTION + b"\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00", FORMERR),  # A, not OPT
        (header(an=1) + QUESTION, FORMERR),
        (header(flags=0x2800) + QUESTION, NOTIMP),  # UPDATE
        (header() + b"\x00\x00\x29\x00\x01", FORMERR),  # OPT as the question type
    ],
)
def test_malformed_packets(f1: Running, packet: bytes, rcode: int | None) -> None:
    raw = udp(f1.port, packet, timeout=0.3)
    if rcode is None:
        assert raw is None
    else:
        assert raw is not None
        r = DNSRecord.parse(raw)
        assert r.header.qr == 1 and r.header.rcode == rcode and r.header.id == 0x1234
    assert addrs(ask(f1.port, "svc1.testns.svc.cluster.local")) == ["10.0.0.1"]  # still serving


def test_garbage_over_tcp_closes_only_that_connection(f1: Running) -> None:
    with socket.create_connection(("127.0.0.1", f1.port), timeout=2) as s:
        s.sendall(b"\x00\x05" + header(flags=0x8000)[:5])
        assert s.recv(10) == b""  # hung up
    assert len(tcp(f1.port, [query("svc1.testns.svc.cluster.local").pack()])) == 1


def test_many_concurrent_tcp_and_udp_clients(f1: Running) -> None:
    def client(i: int) -> int:
        qs = [query("svc1.testns.svc.cluster.local").pack() for _ in range(10)]
        ok = sum(addrs(DNSRecord.parse(r)) == ["10.0.0.1"] for r in tcp(f1.port, qs))
        return ok + (addrs(ask(f1.port, "hdls1.testns.svc.cluster.local")) != [])

    with ThreadPoolExecutor(50) as pool:
        assert sum(pool.map(client, range(100))) == 100 * 11


def test_idle_tcp_connections_are_closed() -> None:
    with running(MemoryDnsIndex.from_objects(f1_objects()), DnsConfig(tcp_idle=0.3)) as r:
        with socket.create_connection(("127.0.0.1", r.port), timeout=3) as s:
            t0 = time.monotonic()
            assert s.recv(10) == b""
            assert time.monotonic() - t0 < 2
        with socket.create_connection(("127.0.0.1", r.port), timeout=3) as s:
            s.sendall(b"\x00\x40abc")  # a length, then silence: also timed out
            assert s.recv(10) == b""


# --- live updates ------------------------------------------------------------------------------------


def eventually(check: Callable[[], bool], within: float = 1.0, why: Callable[[], str] = str) -> float:
    """Seconds until ``check()`` held; on a timeout the message ends with ``why()``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        if check():
            return time.monotonic() - t0
        time.sleep(0.01)
    raise AssertionError(f"not within {within}s {why()}".rstrip())


def test_watch_store_updates_within_a_second() -> None:
    store = MemoryStore()
    store.create(Namespace(metadata=ObjectMeta(name="testns")))
    store.create(svc("web", None))
    store.create(eps("web", [ep("172.0.0.2")]))
    with running(watch_store(store)) as r:
        name = "web.testns.svc.cluster.local"
        assert addrs(ask(r.port, name)) == ["172.0.0.2"]
        # scale up: the slice gains endpoints
        sl = store.get("EndpointSlice", "testns", "web-a")
        store.update(replace(sl, endpoints=[ep("172.0.0.2"), ep("172.0.0.3"), ep("172.0.0.4")]))
        eventually(lambda: addrs(ask(r.port, name)) == ["172.0.0.2", "172.0.0.3", "172.0.0.4"])
        # scale to zero: a headless service without endpoints is NXDOMAIN
        store.update(replace(store.get("EndpointSlice", "testns", "web-a"), endpoints=[]))
        eventually(lambda: ask(r.port, name).header.rcode == NXDOMAIN)
        # a new ClusterIP service
        store.create(svc("api", ["10.254.0.7"]))
        eventually(lambda: addrs(ask(r.port, "api.testns.svc.cluster.local")) == ["10.254.0.7"])
        eventually(
            lambda: (
                [str(x.rdata) for x in ask(r.port, "7.0.254.10.in-addr.arpa", "PTR").rr]
                == ["api.testns.svc.cluster.local."]
            )
        )
        # turned into an ExternalName
        old = store.get("Service", "testns", "api")
        spec = replace(old.spec, type="ExternalName", externalName="web.example.org", clusterIP=None, clusterIPs=None)  # type: ignore[attr-defined]
        store.update(replace(old, spec=spec))
        eventually(
            lambda: [str(x.rdata) for x in ask(r.port, "api.testns.svc.cluster.local").rr] == ["web.example.org."]
        )
        # deleted
        store.delete("Service", "testns", "api")
        eventually(lambda: ask(r.port, "api.testns.svc.cluster.local").header.rcode == NXDOMAIN)


def test_watch_api_updates_within_a_second() -> None:
    store = MemoryStore()
    store.create(Namespace(metadata=ObjectMeta(name="testns")))
    store.create(svc("svc1", ["10.254.0.5"]))
    with api_server(store) as (url, token), running(watch_api(lambda: Client(url, token, timeout=10))) as r:
        assert addrs(ask(r.port, "svc1.testns.svc.cluster.local")) == ["10.254.0.5"]
        client = Client(url, token)
        client.create(svc("svc2", ["10.254.0.6"]))
        took = eventually(lambda: addrs(ask(r.port, "svc2.testns.svc.cluster.local")) == ["10.254.0.6"])
        assert took < 1.0
        client.create(svc("hd", None))
        client.create(eps("hd", [ep("172.0.0.8", "db-0")]))
        eventually(lambda: addrs(ask(r.port, "db-0.hd.testns.svc.cluster.local")) == ["172.0.0.8"])
        client.delete("Service", "testns", "svc1")
        eventually(lambda: ask(r.port, "svc1.testns.svc.cluster.local").header.rcode == NXDOMAIN)
        client.close()


# --- upstream ----------------------------------------------------------------------------------------


@dataclass
class FakeUpstream:
    """A tiny authoritative server on loopback: fixed A records, counts what it is asked."""

    records: dict[str, tuple[str, int]]
    asked: list[str] = field(default_factory=list)
    silent: bool = False

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            q = DNSRecord.parse(data)
            name = str(q.q.qname).lower()
            self.asked.append(name)
            if self.silent:
                continue
            reply = q.reply()
            if name in self.records:
                ip, ttl = self.records[name]
                reply.add_answer(RR(q.q.qname, QTYPE.A, ttl=ttl, rdata=A(ip)))
            else:
                reply.header.rcode = NXDOMAIN
            self.sock.sendto(reply.pack(), addr)

    def close(self) -> None:
        self._stop.set()
        self._t.join(2)
        self.sock.close()


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    u = FakeUpstream({"www.example.org.": ("192.0.2.7", 60), "ext.interwebs.test.": ("1.2.3.4", 60)})
    yield u
    u.close()


def test_no_upstream_servfails_at_once(f1: Running) -> None:
    t0 = time.monotonic()
    r = ask(f1.port, "www.example.org")
    assert r.header.rcode == SERVFAIL and time.monotonic() - t0 < 1.0  # nothing waited for an upstream
    assert ask(f1.port, "9.9.9.9.in-addr.arpa", "PTR").header.rcode == SERVFAIL


def test_forwarding_and_cache(upstream: FakeUpstream) -> None:
    cfg = DnsConfig(upstream=(("127.0.0.1", upstream.port),))
    with running(MemoryDnsIndex.from_objects(f1_objects()), cfg) as r:
        first = ask(r.port, "WWW.example.org")
        assert addrs(first) == ["192.0.2.7"] and first.header.ra == 1 and first.header.aa == 0
        assert str(first.q.qname) == "WWW.example.org."
        time.sleep(1.1)
        second = ask(r.port, "www.example.org")
        assert addrs(second) == ["192.0.2.7"]
        assert upstream.asked == ["www.example.org."]  # the second came from the cache
        assert 0 < second.rr[0].ttl < 60  # aged
        assert ask(r.port, "nothing.example.org").header.rcode == NXDOMAIN
        # TCP clients are forwarded as well
        t = DNSRecord.parse(tcp(r.port, [query("www.example.org").pack()])[0])
        assert addrs(t) == ["192.0.2.7"]
        # an ExternalName's target is resolved upstream and follows the CNAME
        ext = ask(r.port, "external.testns.svc.cluster.local")
        assert [rr.rtype for rr in ext.rr] == [QTYPE.CNAME, QTYPE.A] and addrs(ext) == ["1.2.3.4"]
        # cluster names never go upstream
        ask(r.port, "nope.testns.svc.cluster.local")
        assert "nope.testns.svc.cluster.local." not in upstream.asked


def test_dead_upstream_servfails_quickly(upstream: FakeUpstream) -> None:
    upstream.silent = True
    cfg = DnsConfig(upstream=(("127.0.0.1", upstream.port),), upstream_timeout=0.3)
    with running(MemoryDnsIndex.from_objects(f1_objects()), cfg) as r:
        t0 = time.monotonic()
        assert ask(r.port, "www.example.org").header.rcode == SERVFAIL
        assert time.monotonic() - t0 < 1.0
        # the cluster zone is unaffected meanwhile
        assert addrs(ask(r.port, "svc1.testns.svc.cluster.local")) == ["10.0.0.1"]


# --- the pod's entry point -----------------------------------------------------------------------


LISTENING = re.compile(r"cluster DNS for \S+ on \S+:(\d+) ")


class Child:
    """A child process whose stderr is read as it comes (a full pipe would stall it), so that
    failures can say how it ended and what it logged."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def stop(self) -> int:
        self.proc.terminate()
        try:
            code = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9
        finally:
            self._reader.join(5)
        return code

    def __str__(self) -> str:
        code = self.proc.poll()
        state = "still running" if code is None else f"exited {code}"
        return f"(the child {state}; its stderr:\n{''.join(self.lines)})"


@pytest.mark.parametrize("via", ["http", "unix"])
def test_main_serves_from_the_api(tmp_path: pytest.TempPathFactory, via: str) -> None:
    import os
    import sys
    from pathlib import Path

    tmp = Path(str(tmp_path))
    store = MemoryStore()
    store.create(Namespace(metadata=ObjectMeta(name="testns")))
    store.create(svc("svc1", ["10.254.0.5"]))
    with contextlib.ExitStack() as stack:
        unix = str(tmp / "api.sock") if via == "unix" else None
        url, token = stack.enter_context(api_server(store, unix=unix))
        (tmp / "token").write_text(token + "\n")
        # Port 0: the server picks a port free for both UDP and TCP. A port the test picked by
        # binding UDP alone may still be held for TCP (a loopback connection in TIME_WAIT from an
        # earlier test), and then the server fails to bind it and exits 1.
        cmd = [
            sys.executable,
            "-m",
            "kins.dns",
            "--api",
            url,
            "--token-file",
            str(tmp / "token"),
            "--listen",
            "127.0.0.1:0",
            "--zone",
            "cluster.local",
            "--ttl",
            "7",
            "--pods",
            "insecure",
        ]
        child = Child(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            ports: list[int] = []

            def listening() -> bool:
                ports[:] = [int(m[1]) for ln in list(child.lines) if (m := LISTENING.search(ln))]
                return bool(ports) or child.proc.poll() is not None

            eventually(listening, within=30, why=child.__str__)
            assert ports, child
            port = ports[0]

            def answered() -> bool:
                raw = udp(port, query("svc1.testns.svc.cluster.local").pack(), timeout=0.2)
                return raw is not None and addrs(DNSRecord.parse(raw)) == ["10.254.0.5"]

            eventually(answered, within=10, why=child.__str__)
            assert ask(port, "svc1.testns.svc.cluster.local").rr[0].ttl == 7
            assert addrs(ask(port, "10-1-2-3.testns.pod.cluster.local")) == ["10.1.2.3"]
            store.create(svc("svc2", ["10.254.0.6"]))
            eventually(lambda: addrs(ask(port, "svc2.testns.svc.cluster.local")) == ["10.254.0.6"], why=child.__str__)
        finally:
            code = child.stop()
        assert code == 0, child
