"""SPDY/3.1 framing, the part kubectl's port forwarding speaks.

kubectl (1.31+) forwards ports with SPDY tunnelled through a WebSocket (subprotocol
``SPDY/3.1+portforward.k8s.io``): the WebSocket's binary messages carry a SPDY byte stream. The
client opens streams (SYN_STREAM) whose headers name the forwarded port; the server accepts each
with a SYN_REPLY and data flows in DATA frames. Header blocks are zlib-compressed against the
dictionary of the SPDY/3 specification, one compression context per direction per connection.
Flow control is not enforced by kubectl's SPDY library, so WINDOW_UPDATE frames are ignored.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_CANCEL = 1, 5
MAX_DATA = (1 << 24) - 1

# Header names, then values, of the SPDY/3 dictionary (each length-prefixed in it).
_WORDS = [
    *[
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
    ],
    *("200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"),
]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The SPDY/3 header dictionary: length-prefixed common words, then common value text.
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class SpdyError(Exception):
    """The peer broke the protocol: the connection is given up."""


@dataclass
class Frame:
    """One SPDY frame: a control frame (``kind`` > 0) or a DATA frame (``kind`` 0)."""

    kind: int
    flags: int = 0
    stream_id: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""  # DATA payload, or a control frame's payload after its fixed fields
    status: int = 0  # RST_STREAM / GOAWAY status
    ping_id: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


def encode_header_block(headers: dict[str, str]) -> bytes:
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        n, v = name.lower().encode(), value.encode()
        out += [struct.pack(">I", len(n)), n, struct.pack(">I", len(v)), v]
    return b"".join(out)


def decode_header_block(raw: bytes) -> dict[str, str]:
    try:
        (count,) = struct.unpack_from(">I", raw)
        pos, out = 4, {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", raw, pos)
            name = raw[pos + 4 : pos + 4 + n].decode()
            pos += 4 + n
            (n,) = struct.unpack_from(">I", raw, pos)
            out[name] = raw[pos + 4 : pos + 4 + n].decode()
            pos += 4 + n
    except (struct.error, UnicodeDecodeError) as e:
        raise SpdyError(f"bad header block: {e}") from None
    return out


class Codec:
    """Frames <-> bytes for one connection, with its two header compression contexts."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zdict=DICTIONARY)
        self._buf = bytearray()

    def _compress(self, headers: dict[str, str]) -> bytes:
        return self._deflate.compress(encode_header_block(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def _decompress(self, raw: bytes) -> dict[str, str]:
        try:
            return decode_header_block(self._inflate.decompress(raw))
        except zlib.error as e:
            raise SpdyError(f"bad compressed headers: {e}") from None

    # -- writing -------------------------------------------------------------------------------

    @staticmethod
    def _control(kind: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, *, fin: bool = False) -> bytes:
        payload = struct.pack(">I", stream_id) + self._compress(headers or {})
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0, payload)

    def syn_stream(self, stream_id: int, headers: dict[str, str], *, fin: bool = False) -> bytes:
        """A client's SYN_STREAM (the server never opens streams; tests play the client)."""
        payload = struct.pack(">IIBB", stream_id, 0, 0, 0) + self._compress(headers)
        return self._control(SYN_STREAM, FLAG_FIN if fin else 0, payload)

    def rst_stream(self, stream_id: int, status: int = RST_CANCEL) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream: int, status: int = 0) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream, status))

    @staticmethod
    def data(stream_id: int, payload: bytes, *, fin: bool = False) -> bytes:
        """DATA frames for ``payload`` (several when it is large; FIN on the last)."""
        out = []
        chunks = [payload[i : i + MAX_DATA] for i in range(0, len(payload), MAX_DATA)] or [b""]
        for i, chunk in enumerate(chunks):
            flags = FLAG_FIN if fin and i == len(chunks) - 1 else 0
            out.append(struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(chunk)) + chunk)
        return b"".join(out)

    # -- reading -------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Frame]:
        """The frames completed by ``data`` (bytes of a partial frame wait for the rest)."""
        self._buf += data
        frames = []
        while len(self._buf) >= 8:
            word, flags_len = struct.unpack_from(">II", self._buf)
            length = flags_len & 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            payload = bytes(self._buf[8 : 8 + length])
            del self._buf[: 8 + length]
            flags = flags_len >> 24
            if word & 0x80000000:
                frames.append(self._parse_control(word & 0xFFFF, (word >> 16) & 0x7FFF, flags, payload))
            else:
                frames.append(Frame(0, flags, word & 0x7FFFFFFF, data=payload))
        return frames

    def _parse_control(self, kind: int, version: int, flags: int, p: bytes) -> Frame:
        if version != VERSION:
            raise SpdyError(f"SPDY version {version} is not supported")
        try:
            if kind == SYN_STREAM:
                (sid,) = struct.unpack_from(">I", p)
                return Frame(kind, flags, sid & 0x7FFFFFFF, headers=self._decompress(p[10:]))
            if kind in (SYN_REPLY, HEADERS):
                (sid,) = struct.unpack_from(">I", p)
                return Frame(kind, flags, sid & 0x7FFFFFFF, headers=self._decompress(p[4:]))
            if kind in (RST_STREAM, GOAWAY):
                sid, status = struct.unpack_from(">II", p)
                return Frame(kind, flags, sid & 0x7FFFFFFF, status=status)
            if kind == PING:
                (pid,) = struct.unpack_from(">I", p)
                return Frame(kind, flags, ping_id=pid)
            if kind == WINDOW_UPDATE:
                (sid,) = struct.unpack_from(">I", p)
                return Frame(kind, flags, sid & 0x7FFFFFFF, data=p[4:])
        except struct.error:
            raise SpdyError(f"short control frame of type {kind}") from None
        return Frame(kind, flags, data=p)  # SETTINGS and unknown types: nothing to act on
