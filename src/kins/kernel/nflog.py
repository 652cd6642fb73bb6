"""Reading an NFLOG group (``-j NFLOG --nflog-group N``) of a network namespace: the packets
kube-router's policy chains log before rejecting them.

The reader speaks nfnetlink_log over a plain ``AF_NETLINK``/``NETLINK_NETFILTER`` socket
(pyroute2 has no NFLOG support). The socket is opened by a short-lived thread that entered the
namespace (``netns.run_in``): a socket keeps the namespace it was made in, so the rest of the
program stays where it is. Only one socket per namespace may bind a group: a second reader of
the same group gets EBUSY.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from .._errors import KernelError
from . import netns

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1
NFNETLINK_V0 = 0
PACKET_MSG = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER

# Config attributes and commands (linux/netfilter/nfnetlink_log.h).
NFULA_CFG_CMD = 1
NFULA_CFG_MODE = 2
NFULA_CFG_TIMEOUT = 4
NFULA_CFG_QTHRESH = 5
NFULNL_CFG_CMD_BIND = 1
NFULNL_CFG_CMD_UNBIND = 2
NFULNL_CFG_CMD_PF_BIND = 3
NFULNL_CFG_CMD_PF_UNBIND = 4
NFULNL_COPY_PACKET = 2

# Packet attributes.
NFULA_PACKET_HDR = 1
NFULA_MARK = 2
NFULA_TIMESTAMP = 3
NFULA_IFINDEX_INDEV = 4
NFULA_IFINDEX_OUTDEV = 5
NFULA_IFINDEX_PHYSINDEV = 6
NFULA_IFINDEX_PHYSOUTDEV = 7
NFULA_PAYLOAD = 9
NFULA_PREFIX = 10

DEFAULT_GROUP = 100  # kube-router's --nflog-group
DEFAULT_COPY_RANGE = 128  # the IP and transport headers are all a record needs
RECV_BUFFER = 1 << 20

PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP"}
_PORTED = (6, 17, 132)  # TCP, UDP and SCTP all start with source and destination ports


@dataclass(frozen=True)
class NflogRecord:
    """One logged packet. ``time`` is seconds since the epoch (the packet's timestamp when the
    kernel gives one, else when it was read); interfaces are ifindexes (0: none); ports are
    None without a TCP/UDP/SCTP header, ``icmp_type``/``icmp_code`` None unless ICMP."""

    time: float
    src: str
    dst: str
    proto: str  # TCP, UDP, SCTP, ICMP, ICMPv6, or the protocol number as text
    sport: int | None
    dport: int | None
    prefix: str
    indev: int
    outdev: int
    physindev: int
    physoutdev: int
    mark: int
    icmp_type: int | None = None
    icmp_code: int | None = None


def _attr(nla_type: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return struct.pack("=HH", length, nla_type) + data + b"\0" * (-length % 4)


def _config_msg(seq: int, family: int, group: int, attrs: bytes) -> bytes:
    msg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
    body = struct.pack("=BBH", family, NFNETLINK_V0, socket.htons(group)) + attrs
    return struct.pack("=IHHII", 16 + len(body), msg_type, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def _cmd(command: int) -> bytes:
    return _attr(NFULA_CFG_CMD, struct.pack("=B", command))


def _attrs(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    off = 0
    while off + 4 <= len(data):
        length, nla_type = struct.unpack_from("=HH", data, off)
        if length < 4:
            break
        out[nla_type & NLA_TYPE_MASK] = data[off + 4 : off + length]
        off += (length + 3) & ~3
    return out


def _be32(attrs: dict[int, bytes], key: int) -> int:
    v = attrs.get(key)
    return struct.unpack("!I", v[:4])[0] if v is not None and len(v) >= 4 else 0


def parse_packet(payload: bytes, attrs: dict[int, bytes], now: float) -> NflogRecord | None:
    """The record of one NFULNL_MSG_PACKET's attributes; None when the payload is no IP packet."""
    ts = attrs.get(NFULA_TIMESTAMP)
    when = now
    if ts is not None and len(ts) >= 16:
        sec, usec = struct.unpack("!QQ", ts[:16])
        when = sec + usec / 1e6
    parsed = _parse_ip(payload)
    if parsed is None:
        return None
    src, dst, proto, l4 = parsed
    sport = dport = icmp_type = icmp_code = None
    if proto in _PORTED and l4 is not None and len(l4) >= 4:
        sport, dport = struct.unpack("!HH", l4[:4])
    elif proto in (1, 58) and l4 is not None and len(l4) >= 2:
        icmp_type, icmp_code = l4[0], l4[1]
    return NflogRecord(
        time=when,
        src=src,
        dst=dst,
        proto=PROTOCOLS.get(proto, str(proto)),
        sport=sport,
        dport=dport,
        prefix=attrs.get(NFULA_PREFIX, b"").split(b"\0", 1)[0].decode(errors="replace"),
        indev=_be32(attrs, NFULA_IFINDEX_INDEV),
        outdev=_be32(attrs, NFULA_IFINDEX_OUTDEV),
        physindev=_be32(attrs, NFULA_IFINDEX_PHYSINDEV),
        physoutdev=_be32(attrs, NFULA_IFINDEX_PHYSOUTDEV),
        mark=_be32(attrs, NFULA_MARK),
        icmp_type=icmp_type,
        icmp_code=icmp_code,
    )


def _parse_ip(p: bytes) -> tuple[str, str, int, bytes | None] | None:
    """(src, dst, protocol, transport header or None for a later fragment) of an IP packet."""
    if len(p) < 1:
        return None
    version = p[0] >> 4
    if version == 4 and len(p) >= 20:
        ihl = (p[0] & 0x0F) * 4
        frag_offset = struct.unpack_from("!H", p, 6)[0] & 0x1FFF
        src, dst = str(ipaddress.IPv4Address(p[12:16])), str(ipaddress.IPv4Address(p[16:20]))
        return src, dst, p[9], None if frag_offset else p[ihl:]
    if version == 6 and len(p) >= 40:
        # Extension headers are not followed: the next header then names no transport.
        src, dst = str(ipaddress.IPv6Address(p[8:24])), str(ipaddress.IPv6Address(p[24:40]))
        return src, dst, p[6], p[40:]
    return None


class NflogReader:
    """The packets logged to NFLOG ``group`` in network namespace ``ns`` (a kins namespace;
    None: the caller's own), headers only (``copy_range`` bytes of each packet).

    ``read(timeout)`` returns the next record or None once ``timeout`` seconds pass; iterating
    blocks until ``close()``. ``dropped`` counts the times the kernel found the socket's buffer
    full and dropped messages.
    """

    def __init__(self, ns: str | None, group: int = DEFAULT_GROUP, copy_range: int = DEFAULT_COPY_RANGE) -> None:
        self.ns = ns
        self.group = group
        self.dropped = 0
        self._seq = 0
        self._pending: deque[NflogRecord] = deque()
        self._closed = False
        self._sock = netns.run_in(ns, self._open) if ns is not None else self._open()
        try:
            self._configure(copy_range)
        except BaseException:
            self._sock.close()
            raise

    @staticmethod
    def _open() -> socket.socket:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
            s.bind((0, 0))
        except BaseException:
            s.close()
            raise
        return s

    def _configure(self, copy_range: int) -> None:
        inet = socket.AF_INET
        self._request(inet, 0, _cmd(NFULNL_CFG_CMD_PF_UNBIND))
        self._request(inet, 0, _cmd(NFULNL_CFG_CMD_PF_BIND))
        self._request(socket.AF_UNSPEC, self.group, _cmd(NFULNL_CFG_CMD_BIND))
        mode = struct.pack("!IBB", copy_range, NFULNL_COPY_PACKET, 0)
        # Deliver every packet at once (threshold 1) instead of batching for up to a second.
        extra = _attr(NFULA_CFG_QTHRESH, struct.pack("!I", 1)) + _attr(NFULA_CFG_TIMEOUT, struct.pack("!I", 1))
        self._request(socket.AF_UNSPEC, self.group, _attr(NFULA_CFG_MODE, mode) + extra)

    def _request(self, family: int, group: int, attrs: bytes) -> None:
        """Send one config message and wait for its acknowledgement (KernelError on refusal)."""
        self._seq += 1
        seq = self._seq
        self._sock.send(_config_msg(seq, family, group, attrs))
        deadline = time.monotonic() + 5.0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._sock], [], [], remaining)[0]:
                raise KernelError("nflog", self.ns or "", f"no answer to the config of group {group}")
            for msg_type, msg_seq, body in self._messages(self._sock.recv(RECV_BUFFER)):
                if msg_type == NLMSG_ERROR and msg_seq == seq:
                    code = -struct.unpack_from("=i", body)[0]
                    if code:
                        # The kernel answers EPERM when another socket holds the group.
                        held = code in (errno.EPERM, errno.EBUSY)
                        what = f"group {group}" + (
                            " (already bound by another reader, or no CAP_NET_ADMIN)" if held else ""
                        )
                        raise KernelError("nflog", self.ns or "", f"{what}: {os.strerror(code)}")
                    return
                if msg_type == PACKET_MSG:
                    self._take(body)

    @staticmethod
    def _messages(buf: bytes) -> Iterator[tuple[int, int, bytes]]:
        off = 0
        while off + 16 <= len(buf):
            length, msg_type, _flags, seq, _pid = struct.unpack_from("=IHHII", buf, off)
            if length < 16:
                return
            yield msg_type, seq, buf[off + 16 : off + length]
            off += (length + 3) & ~3

    def _take(self, body: bytes) -> None:
        attrs = _attrs(body[4:])  # after the nfgenmsg header
        rec = parse_packet(attrs.get(NFULA_PAYLOAD, b""), attrs, time.time())
        if rec is not None:
            self._pending.append(rec)

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def closed(self) -> bool:
        return self._closed

    def read(self, timeout: float | None = None) -> NflogRecord | None:
        """The next record; None if none came within ``timeout`` seconds (None: wait on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            if self._closed:
                return None
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            # Bounded waits so that a close() from another thread ends a blocking read.
            wait = 0.5 if remaining is None else min(remaining, 0.5)
            try:
                ready = select.select([self._sock], [], [], wait)[0]
                buf = self._sock.recv(RECV_BUFFER) if ready else None
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    self.dropped += 1
                    continue
                if self._closed:
                    return None
                raise
            except ValueError:  # closed meanwhile: the socket has no descriptor any more
                if self._closed:
                    return None
                raise
            if buf is None:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            for msg_type, _seq, body in self._messages(buf):
                if msg_type == PACKET_MSG:
                    self._take(body)
        return self._pending.popleft()

    def __iter__(self) -> Iterator[NflogRecord]:
        while (rec := self.read()) is not None:
            yield rec

    def close(self) -> None:
        """Unbind the group (so another reader may take it) and close the socket."""
        if self._closed:
            return
        self._closed = True
        try:
            msg = _config_msg(self._seq + 1, socket.AF_UNSPEC, self.group, _cmd(NFULNL_CFG_CMD_UNBIND))
            self._sock.send(msg)
        except OSError:
            pass  # closing the socket unbinds it as well
        finally:
            self._sock.close()

    def __enter__(self) -> NflogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
