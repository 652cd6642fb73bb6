"""``coordination.k8s.io/v1`` Lease: what controllers (and node heartbeats) elect leaders with."""

from __future__ import annotations

import msgspec

from .meta import Base, Object


class LeaseSpec(Base):
    holderIdentity: str | None = None
    leaseDurationSeconds: int | None = None
    acquireTime: str | None = None
    renewTime: str | None = None
    leaseTransitions: int | None = None
    strategy: str | None = None
    preferredHolder: str | None = None


class Lease(Object):
    KIND = "Lease"
    API_VERSION = "coordination.k8s.io/v1"
    PLURAL = "leases"
    spec: LeaseSpec = msgspec.field(default_factory=LeaseSpec)
