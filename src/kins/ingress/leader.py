"""Leader election on a coordination.k8s.io/v1 Lease named by ``--election-id``, as client-go's
leader elector does it: take the Lease when nobody holds it or its holder stopped renewing it,
renew it while leading. Only the leader writes Ingress statuses; every replica serves traffic."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import httpx

from .._errors import Conflict, KinsError, NotFound
from ..api.coordination import Lease, LeaseSpec
from ..api.meta import ObjectMeta
from ..client import Client

log = logging.getLogger("kins.ingress")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class LeaderElector:
    def __init__(self, client: Client, namespace: str, name: str, identity: str, duration: int = 30) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.leading = threading.Event()

    def try_acquire(self) -> bool:
        """One round: create, take over or renew the Lease; whether this replica leads now."""
        now = _now()
        try:
            cur = self.client.get("Lease", self.namespace, self.name)
        except NotFound:
            spec = LeaseSpec(
                holderIdentity=self.identity,
                leaseDurationSeconds=self.duration,
                acquireTime=_micro(now),
                renewTime=_micro(now),
                leaseTransitions=0,
            )
            lease = Lease(metadata=ObjectMeta(name=self.name, namespace=self.namespace), spec=spec)
            try:
                self.client.create(lease)
            except Conflict:
                return False
            return self._lead(True)
        assert isinstance(cur, Lease)
        s = cur.spec
        renewed = _parse(s.renewTime)
        expired = renewed is None or renewed + dt.timedelta(seconds=s.leaseDurationSeconds or self.duration) < now
        mine = s.holderIdentity == self.identity
        if not mine and not expired and s.holderIdentity:
            return self._lead(False)
        spec = LeaseSpec(
            holderIdentity=self.identity,
            leaseDurationSeconds=self.duration,
            acquireTime=s.acquireTime if mine else _micro(now),
            renewTime=_micro(now),
            leaseTransitions=(s.leaseTransitions or 0) + (0 if mine else 1),
        )
        try:
            self.client.update(Lease(metadata=cur.metadata, spec=spec))
        except Conflict:
            return self._lead(False)
        return self._lead(True)

    def _lead(self, leading: bool) -> bool:
        if leading and not self.leading.is_set():
            log.info("%s/%s: this replica (%s) is the leader", self.namespace, self.name, self.identity)
            self.leading.set()
        elif not leading and self.leading.is_set():
            log.info("%s/%s: leadership lost", self.namespace, self.name)
            self.leading.clear()
        return leading

    def run(self, stop: threading.Event) -> None:
        """Renew every third of the lease's duration (retry every 2 s when not leading)."""
        while not stop.is_set():
            try:
                leading = self.try_acquire()
            except (KinsError, httpx.HTTPError, OSError) as e:
                log.warning("leader election %s/%s: %s", self.namespace, self.name, e)
                leading = False
            stop.wait(self.duration / 3 if leading else 2.0)
