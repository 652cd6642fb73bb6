"""Namespace limits (core ``v1``): ResourceQuota and LimitRange. Stored and served; kins
enforces neither."""

from __future__ import annotations

from typing import Any

import msgspec

from .core import Quantity
from .meta import Base, Object


class ResourceQuotaSpec(Base):
    hard: dict[str, Quantity] | None = None
    scopes: list[str] | None = None
    scopeSelector: dict[str, Any] | None = None


class ResourceQuotaStatus(Base):
    hard: dict[str, Quantity] | None = None
    used: dict[str, Quantity] | None = None


class ResourceQuota(Object):
    KIND = "ResourceQuota"
    PLURAL = "resourcequotas"
    spec: ResourceQuotaSpec = msgspec.field(default_factory=ResourceQuotaSpec)
    status: ResourceQuotaStatus | None = None


class LimitRangeItem(Base):
    type: str = ""
    max: dict[str, Quantity] | None = None
    min: dict[str, Quantity] | None = None
    default: dict[str, Quantity] | None = None
    defaultRequest: dict[str, Quantity] | None = None
    maxLimitRequestRatio: dict[str, Quantity] | None = None


class LimitRangeSpec(Base):
    limits: list[LimitRangeItem] = msgspec.field(default_factory=list)


class LimitRange(Object):
    KIND = "LimitRange"
    PLURAL = "limitranges"
    spec: LimitRangeSpec = msgspec.field(default_factory=LimitRangeSpec)
