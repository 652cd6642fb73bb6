"""NFLOG packet messages parsed without a kernel: attributes and the headers of the payload."""

from __future__ import annotations

import socket
import struct

from kins.kernel import nflog


def _ipv4(proto: int, l4: bytes, src: str = "10.244.1.5", dst: str = "10.244.2.7", frag: int = 0) -> bytes:
    return (
        struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(l4), 1, frag, 64, proto, 0)
        + socket.inet_aton(src)
        + socket.inet_aton(dst)
        + l4
    )


def _message(payload: bytes, **extra: bytes) -> bytes:
    """An NFULNL_MSG_PACKET body: nfgenmsg, then attributes (NLA_F_NET_BYTEORDER on some, as
    the kernel may set it)."""
    attrs = nflog._attr(nflog.NFULA_PAYLOAD, payload)
    attrs += nflog._attr(nflog.NFULA_PREFIX, b"KUBE-ROUTER\0")
    attrs += nflog._attr(nflog.NFULA_MARK | 0x4000, struct.pack("!I", 0x10000))
    attrs += nflog._attr(nflog.NFULA_IFINDEX_INDEV, struct.pack("!I", 7))
    attrs += nflog._attr(nflog.NFULA_IFINDEX_OUTDEV, struct.pack("!I", 9))
    attrs += nflog._attr(nflog.NFULA_IFINDEX_PHYSINDEV, struct.pack("!I", 11))
    attrs += nflog._attr(nflog.NFULA_TIMESTAMP, struct.pack("!QQ", 1_700_000_000, 250_000))
    for v in extra.values():
        attrs += v
    return struct.pack("=BBH", socket.AF_INET, 0, socket.htons(100)) + attrs


def _parse(body: bytes) -> nflog.NflogRecord | None:
    attrs = nflog._attrs(body[4:])
    return nflog.parse_packet(attrs.get(nflog.NFULA_PAYLOAD, b""), attrs, 0.0)


def test_tcp_packet_all_fields() -> None:
    tcp = struct.pack("!HHIIBBHHH", 43210, 80, 0, 0, 0x50, 0x02, 1024, 0, 0)
    rec = _parse(_message(_ipv4(6, tcp)))
    assert rec == nflog.NflogRecord(
        time=1_700_000_000.25,
        src="10.244.1.5",
        dst="10.244.2.7",
        proto="TCP",
        sport=43210,
        dport=80,
        prefix="KUBE-ROUTER",
        indev=7,
        outdev=9,
        physindev=11,
        physoutdev=0,
        mark=0x10000,
    )


def test_sctp_ports_icmp_type_other_protocols() -> None:
    sctp = _parse(_message(_ipv4(132, struct.pack("!HHI", 5000, 5001, 0))))
    assert sctp is not None and (sctp.proto, sctp.sport, sctp.dport) == ("SCTP", 5000, 5001)
    icmp = _parse(_message(_ipv4(1, bytes([3, 3, 0, 0]))))
    assert icmp is not None and (icmp.proto, icmp.icmp_type, icmp.icmp_code, icmp.dport) == ("ICMP", 3, 3, None)
    gre = _parse(_message(_ipv4(47, b"\0" * 4)))
    assert gre is not None and (gre.proto, gre.sport, gre.dport) == ("47", None, None)


def test_later_fragment_and_cut_header_have_no_ports() -> None:
    frag = _parse(_message(_ipv4(17, struct.pack("!HHHH", 1, 2, 8, 0), frag=185)))
    assert frag is not None and (frag.proto, frag.sport, frag.dport) == ("UDP", None, None)
    cut = _parse(_message(_ipv4(17, b"\x00\x01")))  # copy range ended inside the UDP header
    assert cut is not None and cut.sport is None


def test_no_timestamp_uses_the_read_time_and_non_ip_is_skipped() -> None:
    body = struct.pack("=BBH", socket.AF_INET, 0, 0) + nflog._attr(nflog.NFULA_PAYLOAD, _ipv4(17, b"\0\1\0\2"))
    attrs = nflog._attrs(body[4:])
    rec = nflog.parse_packet(attrs[nflog.NFULA_PAYLOAD], attrs, 12.5)
    assert rec is not None and (rec.time, rec.prefix, rec.mark, rec.indev) == (12.5, "", 0, 0)
    assert nflog.parse_packet(b"\x00" * 20, {}, 0.0) is None


def test_ipv6() -> None:
    src, dst = socket.inet_pton(socket.AF_INET6, "fd00::1"), socket.inet_pton(socket.AF_INET6, "fd00::2")
    p = struct.pack("!IHBB", 6 << 28, 8, 17, 64) + src + dst + struct.pack("!HHHH", 1234, 53, 8, 0)
    rec = _parse(_message(p))
    assert rec is not None and (rec.src, rec.dst, rec.proto, rec.sport, rec.dport) == (
        "fd00::1",
        "fd00::2",
        "UDP",
        1234,
        53,
    )
