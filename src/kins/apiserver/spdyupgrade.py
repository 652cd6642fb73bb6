"""An HTTP/1.1 request upgraded to SPDY/3.1, as kubectl's SPDY round tripper asks for it.

The client sends ``Connection: Upgrade``, ``Upgrade: SPDY/3.1`` and the stream protocols it
speaks, most preferred first, in ``X-Stream-Protocol-Version`` headers. The server picks the
first it also speaks and answers ``101 Switching Protocols`` naming it; from then on the
connection carries a SPDY session. aiohttp's HTTP parser knows only WebSocket upgrades, so the
connection is taken from it: the transport gets a protocol of ours (``TransportCarrier``)
before the 101 goes out, and aiohttp closes the transport when the handler returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiohttp import web

from . import spdy
from .errors import ApiError

UPGRADE = "SPDY/3.1"
PROTOCOL_HEADER = "X-Stream-Protocol-Version"


def wants_spdy(request: web.Request) -> bool:
    connection = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    return "upgrade" in connection and request.headers.get("Upgrade", "").strip().lower() == UPGRADE.lower()


def offered(request: web.Request) -> list[str]:
    return [p.strip() for h in request.headers.getall(PROTOCOL_HEADER, []) for p in h.split(",") if p.strip()]


def negotiate(request: web.Request, supported: Sequence[str]) -> str:
    """The client's most preferred protocol the server speaks; "" when it names none (the
    oldest protocol of each subresource); 403 as the kubelet words it when none fits."""
    client = offered(request)
    if not client:
        return ""
    for p in client:
        if p in supported:
            return p
    raise ApiError(
        403,
        "Forbidden",
        f"unable to upgrade: unable to negotiate protocol: client supports {client}, server supports {list(supported)}",
    )


class TransportCarrier(asyncio.Protocol):
    """The upgraded connection's protocol: bytes in go to the session, bytes out to the transport."""

    def __init__(self, transport: asyncio.Transport, previous: asyncio.BaseProtocol) -> None:
        self.transport = transport
        self.previous = previous  # aiohttp's: told when the connection ends, so it lets go of it
        self.session: spdy.Session | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._lost = False
        self._early = bytearray()  # bytes that came before the session was attached

    def attach(self, session: spdy.Session) -> None:
        self.session = session
        if self._early:
            session.feed(bytes(self._early))
            self._early.clear()
        if self._lost:
            session.lost()

    # asyncio.Protocol
    def data_received(self, data: bytes) -> None:
        if self.session is None:
            self._early += data
        else:
            self.session.feed(data)

    def eof_received(self) -> bool | None:
        return None  # the transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._writable.set()
        if self.session is not None:
            self.session.lost()
        self.previous.connection_lost(exc)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # spdy.Carrier
    def write(self, data: bytes) -> None:
        if not self._lost and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        await self._writable.wait()

    def pause_reading(self) -> None:
        if not self._lost:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self._lost and not self.transport.is_closing():
            self.transport.resume_reading()

    def close(self) -> None:
        self.transport.close()


async def accept(
    request: web.Request, protocol: str, check: spdy.Check | None = None
) -> tuple[spdy.Session, web.StreamResponse]:
    """Answers 101 with ``protocol``: the connection's SPDY session, and the response for the
    handler to return once the session is over."""
    transport = request.transport
    if transport is None or not isinstance(transport, asyncio.Transport):
        raise ConnectionResetError("the connection is gone")
    carrier = TransportCarrier(transport, transport.get_protocol())
    # Ours before the 101 leaves: the client's first frames must not reach aiohttp's parser.
    transport.set_protocol(carrier)
    request.protocol.keep_alive(False)
    headers = {"Connection": "Upgrade", "Upgrade": UPGRADE}
    if protocol:
        headers[PROTOCOL_HEADER] = protocol
    resp = web.StreamResponse(status=101, reason="Switching Protocols", headers=headers)
    await resp.prepare(request)
    session = spdy.Session(carrier, check)
    carrier.attach(session)
    return session, resp
