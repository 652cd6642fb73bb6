"""The NFLOG reader against the kernel: a rule in a throwaway namespace logs a datagram sent in it."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from kins._errors import KernelError
from kins.kernel import netns
from kins.kernel.nflog import NflogReader

pytestmark = pytest.mark.root


def _in_ns(ns: str, *argv: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, *argv], check=True, capture_output=True)


@pytest.fixture
def ns(kc) -> Iterator[str]:
    name = kc.ns("node-nflog")
    netns.create(name)
    try:
        _in_ns(name, "ip", "link", "set", "lo", "up")
        _in_ns(name, "iptables", "-A", "OUTPUT", "-p", "udp", "--dport", "9", "-j", "NFLOG",
               "--nflog-group", "100", "--nflog-prefix", "test")  # fmt: skip
        _in_ns(name, "iptables", "-A", "OUTPUT", "-p", "icmp", "--icmp-type", "echo-request", "-j", "NFLOG",
               "--nflog-group", "100")  # fmt: skip
        yield name
    finally:
        netns.remove(name)


def _send_udp(ns: str, sport: int) -> None:
    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", sport))
            s.sendto(b"hello", ("127.0.0.1", 9))

    netns.run_in(ns, send)


def test_reads_a_logged_udp_datagram(ns: str) -> None:
    with NflogReader(ns, 100) as reader:
        assert reader.read(timeout=0.1) is None  # nothing logged yet
        before = time.time()
        _send_udp(ns, 40000)
        rec = reader.read(timeout=5)
    assert rec is not None
    assert (rec.src, rec.dst, rec.proto, rec.sport, rec.dport) == ("127.0.0.1", "127.0.0.1", "UDP", 40000, 9)
    assert rec.prefix == "test"
    lo = netns.run_in(ns, lambda: socket.if_nametoindex("lo"))
    assert (rec.indev, rec.outdev, rec.physindev, rec.physoutdev) == (0, lo, 0, 0)
    assert rec.mark == 0
    assert before - 1 <= rec.time <= time.time() + 1
    assert rec.icmp_type is None


def test_icmp_type_and_mark(ns: str) -> None:
    _in_ns(ns, "iptables", "-I", "OUTPUT", "-p", "icmp", "-j", "MARK", "--set-mark", "0x20000")
    with NflogReader(ns, 100) as reader:
        subprocess.run(["ip", "netns", "exec", ns, "ping", "-c1", "-W1", "127.0.0.1"], capture_output=True, check=False)
        rec = reader.read(timeout=5)
    assert rec is not None
    assert (rec.proto, rec.icmp_type, rec.icmp_code, rec.sport, rec.dport) == ("ICMP", 8, 0, None, None)
    assert rec.mark == 0x20000
    assert rec.prefix == ""


def test_one_reader_per_group_and_close_frees_it(ns: str) -> None:
    first = NflogReader(ns, 100)
    try:
        with pytest.raises(KernelError, match="already bound"):
            NflogReader(ns, 100)
    finally:
        first.close()
    with NflogReader(ns, 100) as second:
        _send_udp(ns, 40001)
        rec = second.read(timeout=5)
        assert rec is not None and rec.sport == 40001


def test_iterating_ends_when_closed_from_another_thread(ns: str) -> None:
    reader = NflogReader(ns, 100)
    got: list[object] = []
    t = threading.Thread(target=lambda: got.extend(reader))
    t.start()
    _send_udp(ns, 40002)
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    reader.close()
    t.join(5)
    assert not t.is_alive()
    assert [r.sport for r in got] == [40002]  # type: ignore[attr-defined]
