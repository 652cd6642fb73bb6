"""``/kins/v1/policylog``: the packets NetworkPolicies denied, as the nodes' agents report them.

Agents ``POST`` batches (``{"node": NAME, "records": [...]}``); the server keeps the newest
``RING_SIZE`` records in memory, each numbered by a sequence that only grows. ``GET`` answers
``{"items": [...], "last": SEQ}`` with the records after ``since=SEQ``; with ``follow=true`` it
streams them as JSON lines and stays open for new ones, as a watch does. ``namespace=NS`` keeps
the records with either end in NS. Kubernetes has no such endpoint: kube-router leaves its
NFLOG records to whoever reads the group on each node.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Literal

import msgspec
from aiohttp import web

from .errors import ApiError
from .request import int_param, truthy

PATH = "/kins/v1/policylog"
RING_SIZE = 10_000
# How often a quiet follower checks whether its client went away.
FOLLOW_POLL_SECONDS = 2.0


class Peer(msgspec.Struct, omit_defaults=True):
    """One end of a denied packet: its address and, when it is a pod, the pod (and, for the
    destination, the port: none for ICMP)."""

    ip: str
    namespace: str | None = None
    pod: str | None = None
    port: int | None = None


class PolicyLogRecord(msgspec.Struct, omit_defaults=True):
    time: str  # RFC 3339 with fractions of a second
    source: Peer
    destination: Peer
    protocol: Literal["TCP", "UDP", "SCTP", "ICMP"]
    direction: Literal["ingress", "egress"]
    policies: list[str] = []
    node: str = ""


class PolicyLogBatch(msgspec.Struct):
    node: str
    records: list[PolicyLogRecord]


@dataclass(frozen=True)
class _Entry:
    seq: int
    namespaces: frozenset[str]
    line: bytes  # the record as served, without the newline


class PolicyLog:
    """The ring of records and the followers waiting for more. Used from the event loop only."""

    def __init__(self, size: int = RING_SIZE) -> None:
        self._ring: deque[_Entry] = deque(maxlen=size)
        self.last = 0
        self.closed = False
        self._waiters: set[asyncio.Event] = set()

    def add(self, node: str, records: Iterable[PolicyLogRecord]) -> int:
        """Append the records (``node`` filling those without one); the new last sequence."""
        for rec in records:
            self.last += 1
            doc = {"seq": self.last, **msgspec.to_builtins(rec)}
            doc["node"] = rec.node or node
            spaces = frozenset(ns for ns in (rec.source.namespace, rec.destination.namespace) if ns)
            self._ring.append(_Entry(self.last, spaces, msgspec.json.encode(doc)))
        self._wake()
        return self.last

    def after(self, since: int, namespace: str | None) -> list[bytes]:
        """The records numbered above ``since`` (of ``namespace`` when given), oldest first."""
        if not self._ring or since >= self.last:
            return []
        # Sequences are consecutive, so the first wanted record's place is known.
        start = max(0, since + 1 - self._ring[0].seq)
        return [e.line for e in islice(self._ring, start, None) if namespace is None or namespace in e.namespaces]

    async def wait(self, after: int, timeout: float) -> None:
        """Until a record numbered above ``after`` is added, the log closes or ``timeout`` passes."""
        if self.last > after or self.closed:
            return
        ev = asyncio.Event()
        self._waiters.add(ev)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), timeout)
        finally:
            self._waiters.discard(ev)

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        for ev in self._waiters:
            ev.set()


POLICYLOG_KEY = web.AppKey("policylog", PolicyLog)

_decoder = msgspec.json.Decoder(PolicyLogBatch)


def _check(rec: PolicyLogRecord, i: int) -> None:
    where = f"records[{i}]"
    try:
        datetime.fromisoformat(rec.time)
    except ValueError:
        raise ApiError(400, "BadRequest", f"{where}.time: not an RFC 3339 time: {rec.time!r}") from None
    for end, peer in (("source", rec.source), ("destination", rec.destination)):
        try:
            ipaddress.ip_address(peer.ip)
        except ValueError:
            raise ApiError(400, "BadRequest", f"{where}.{end}.ip: not an IP address: {peer.ip!r}") from None
        if peer.port is not None and not 0 <= peer.port <= 65535:
            raise ApiError(400, "BadRequest", f"{where}.{end}.port: {peer.port} is out of range")


async def _post(request: web.Request) -> web.Response:
    try:
        batch = _decoder.decode(await request.read())
    except msgspec.DecodeError as e:  # ValidationError is one: the message names the field
        raise ApiError(400, "BadRequest", f"policy log batch: {e}") from None
    if not batch.node:
        raise ApiError(400, "BadRequest", "policy log batch: node is required")
    for i, rec in enumerate(batch.records):
        _check(rec, i)
    last = request.app[POLICYLOG_KEY].add(batch.node, batch.records)
    return web.json_response({"kind": "Status", "status": "Success", "last": last})


async def _get(request: web.Request) -> web.StreamResponse:
    log = request.app[POLICYLOG_KEY]
    namespace = request.query.get("namespace") or None
    since = int_param(request, "since") or 0
    if since < 0:
        raise ApiError(400, "BadRequest", f"since must not be negative, not {since}")
    if not truthy(request, "follow"):
        last = log.last
        body = b'{"items":[' + b",".join(log.after(since, namespace)) + b'],"last":' + str(last).encode() + b"}"
        return web.Response(body=body, content_type="application/json")
    resp = web.StreamResponse(headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    await resp.prepare(request)
    sent = since
    try:
        while True:
            lines = log.after(sent, namespace)
            sent = log.last
            if lines:
                await resp.write(b"\n".join(lines) + b"\n")
            transport = request.transport
            if log.closed or transport is None or transport.is_closing():
                break
            await log.wait(sent, FOLLOW_POLL_SECONDS)
    except ConnectionResetError:
        return resp  # the client went away
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp


async def _close(app: web.Application) -> None:
    """Ends the followers' streams so that shutdown does not wait for their clients."""
    app[POLICYLOG_KEY].close()


def add_routes(app: web.Application) -> None:
    app[POLICYLOG_KEY] = PolicyLog()
    app.on_shutdown.append(_close)
    app.router.add_get(PATH, _get)
    app.router.add_post(PATH, _post)
