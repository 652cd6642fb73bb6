"""``apiregistration.k8s.io/v1`` APIService: which group version the API serves itself
(``Local``, no service) and which an extension server would (metrics-server's
``v1beta1.metrics.k8s.io``). kins proxies to no extension server: such services are stored
and reported unavailable."""

from __future__ import annotations

import msgspec

from .meta import Base, Condition, Object


class APIServiceReference(Base):
    namespace: str | None = None
    name: str | None = None
    port: int | None = None


class APIServiceSpec(Base):
    service: APIServiceReference | None = None
    group: str | None = None
    version: str | None = None
    insecureSkipTLSVerify: bool | None = None
    caBundle: str | None = None
    groupPriorityMinimum: int = 0
    versionPriority: int = 0


class APIServiceStatus(Base):
    conditions: list[Condition] | None = None


class APIService(Object):
    KIND = "APIService"
    API_VERSION = "apiregistration.k8s.io/v1"
    NAMESPACED = False
    PLURAL = "apiservices"
    spec: APIServiceSpec = msgspec.field(default_factory=APIServiceSpec)
    status: APIServiceStatus | None = None
