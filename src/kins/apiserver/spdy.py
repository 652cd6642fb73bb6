"""SPDY/3.1, the server's side of the sessions kubectl opens for exec, attach and port forwarding.

kubectl 1.27-1.29 (and later ones when WebSockets are refused or turned off) upgrade an HTTP/1.1
request to SPDY/3.1 (``spdyupgrade``); kubectl 1.31+ forwards ports with SPDY tunnelled through a
WebSocket (subprotocol ``SPDY/3.1+portforward.k8s.io``). Either way the client opens streams
(SYN_STREAM) whose headers say what each is for (``streamType``, and ``port``/``requestID`` for
port forwarding); the server accepts each with a SYN_REPLY and data flows in DATA frames, a FIN
flag ending one direction of a stream. Header blocks are zlib-compressed against the dictionary of
the SPDY/3 specification, one compression context per direction per connection. Flow control is
not enforced by kubectl's SPDY library, so WINDOW_UPDATE frames are ignored.

``Codec`` turns frames into bytes and back; ``Session`` is one connection's streams over a
``Carrier`` (the upgraded TCP/TLS connection, or a WebSocket).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_INVALID_STREAM, RST_REFUSED_STREAM, RST_CANCEL, RST_STREAM_ALREADY_CLOSED = 1, 2, 3, 5, 9
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR = 0, 1
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


# --- a session: one connection's streams, the server's side ----------------------------------

# Bytes received but not yet read by the session's user, past which the carrier stops reading.
READ_HIGH_WATER = 1 << 22


class Carrier(Protocol):
    """What a session's bytes travel on: the upgraded connection, or a WebSocket."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...


class Stream:
    """A stream the client opened. ``read`` returns b"" once the client's side has ended (FIN,
    reset or the connection gone); ``write``/``close`` are the server's side."""

    def __init__(self, session: Session, stream_id: int, headers: dict[str, str]) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self.remote_closed = False
        self.local_closed = False
        self.was_reset = False
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()

    @property
    def type(self) -> str:
        return self.headers.get("streamtype", "")

    def _deliver(self, data: bytes) -> None:
        if data and not self.remote_closed:
            self.session._buffered += len(data)
            self._inbox.put_nowait(data)
            if self.session._buffered > READ_HIGH_WATER:
                self.session._pause()

    def _end(self) -> None:
        if not self.remote_closed:
            self.remote_closed = True
            self._inbox.put_nowait(b"")

    async def read(self) -> bytes:
        data = await self._inbox.get()
        if not data:
            self._inbox.put_nowait(b"")  # every later read sees the end too
            return b""
        self.session._consumed(len(data))
        return data

    async def write(self, data: bytes) -> None:
        if self.local_closed or self.was_reset or self.session.closed:
            return
        self.session._write(self.session.codec.data(self.id, data))
        await self.session.drain()

    async def close(self) -> None:
        """The server's side ends (DATA with FIN); the stream goes once both sides have."""
        if self.local_closed or self.was_reset or self.session.closed:
            return
        self.local_closed = True
        self.session._write(self.session.codec.data(self.id, b"", fin=True))
        self.session._forget_if_done(self)
        await self.session.drain()

    def reset(self, status: int = RST_CANCEL) -> None:
        if self.was_reset:
            return
        self.was_reset = True
        if not self.session.closed:
            self.session._write(self.session.codec.rst_stream(self.id, status))
        self._end()
        self.session.streams.pop(self.id, None)


# Whether to accept a stream, given its headers: None to accept, else why not (it is reset).
Check = Callable[[Mapping[str, str]], str | None]


class Session:
    """The server's side of a SPDY/3.1 connection: streams the client opens are replied to (or
    refused by ``check``) and handed out by ``accept``; PINGs are answered; a protocol error,
    the client's GOAWAY or the carrier's end stop it. Incoming bytes arrive through ``feed``
    and ``lost``, called by the carrier."""

    def __init__(self, carrier: Carrier, check: Check | None = None) -> None:
        self.carrier = carrier
        self.check = check
        self.codec = Codec()
        self.streams: dict[int, Stream] = {}
        self.closed = False  # the server sends nothing more
        self.ended = asyncio.Event()  # the client's side is over: connection lost or GOAWAY
        self.refused: list[tuple[int, str]] = []  # (stream id, why) of refused streams
        self._new: asyncio.Queue[Stream | None] = asyncio.Queue()
        self._last_id = 0
        self._buffered = 0
        self._paused = False

    # -- from the carrier -----------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self.ended.is_set():
            return
        try:
            for f in self.codec.feed(data):
                self._on_frame(f)
        except SpdyError:
            self.close(GOAWAY_PROTOCOL_ERROR)
            self.lost()

    def lost(self) -> None:
        """The connection is gone (or the client said GOAWAY and closes it): every stream ends."""
        if self.ended.is_set():
            return
        self.ended.set()
        for s in list(self.streams.values()):
            s._end()
        self._new.put_nowait(None)

    def _on_frame(self, f: Frame) -> None:
        if f.kind == SYN_STREAM:
            self._open(f)
        elif f.kind == 0:
            s = self.streams.get(f.stream_id)
            if s is None:
                self._write(self.codec.rst_stream(f.stream_id, RST_INVALID_STREAM))
                return
            if s.remote_closed:
                s.reset(RST_STREAM_ALREADY_CLOSED)
                return
            s._deliver(f.data)
            if f.fin:
                s._end()
                self._forget_if_done(s)
        elif f.kind == RST_STREAM:
            s = self.streams.pop(f.stream_id, None)
            if s is not None:
                s.was_reset = True
                s._end()
        elif f.kind == PING:
            if f.ping_id % 2 == 1:  # the client's ping (odd id): echoed; even ids answer ours
                self._write(self.codec.ping(f.ping_id))
        elif f.kind == GOAWAY:
            self.lost()
        # SETTINGS, WINDOW_UPDATE, HEADERS: nothing the server needs from them.

    def _open(self, f: Frame) -> None:
        if f.stream_id % 2 == 0 or f.stream_id <= self._last_id:
            # Client streams are odd and increasing (SPDY/3 section 2.3.2).
            self._write(self.codec.rst_stream(f.stream_id, RST_PROTOCOL_ERROR))
            return
        self._last_id = f.stream_id
        why = self.check(f.headers) if self.check is not None else None
        if why is not None:
            self.refused.append((f.stream_id, why))
            self._write(self.codec.rst_stream(f.stream_id, RST_REFUSED_STREAM))
            return
        s = Stream(self, f.stream_id, f.headers)
        self.streams[f.stream_id] = s
        self._write(self.codec.syn_reply(f.stream_id))
        if f.fin:
            s._end()
        self._new.put_nowait(s)

    # -- to the carrier -------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if not self.closed:
            self.carrier.write(data)

    async def drain(self) -> None:
        if not self.closed:
            with contextlib.suppress(ConnectionError):
                await self.carrier.drain()

    def _forget_if_done(self, s: Stream) -> None:
        if s.remote_closed and s.local_closed:
            self.streams.pop(s.id, None)

    def _pause(self) -> None:
        if not self._paused:
            self._paused = True
            self.carrier.pause_reading()

    def _consumed(self, n: int) -> None:
        self._buffered -= n
        if self._paused and self._buffered < READ_HIGH_WATER // 2:
            self._paused = False
            self.carrier.resume_reading()

    # -- for the session's user -----------------------------------------------------------------

    async def accept(self) -> Stream | None:
        """The next stream the client opens; None once the session is over."""
        s = await self._new.get()
        if s is None:
            self._new.put_nowait(None)
        return s

    def close(self, status: int = GOAWAY_OK) -> None:
        """GOAWAY, then the carrier is closed (what was written still goes out first)."""
        if self.closed:
            return
        self._write(self.codec.goaway(self._last_id, status))
        self.closed = True
        self.carrier.close()
