"""``discovery.k8s.io/v1``: EndpointSlice."""

from __future__ import annotations

from .core import ObjectReference
from .meta import Base, Object


class EndpointConditions(Base):
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


class ForZone(Base):
    name: str = ""


class ForNode(Base):
    name: str = ""


class EndpointHints(Base):
    forZones: list[ForZone] | None = None
    forNodes: list[ForNode] | None = None


class Endpoint(Base):
    addresses: list[str]
    conditions: EndpointConditions | None = None
    hostname: str | None = None
    nodeName: str | None = None
    zone: str | None = None
    targetRef: ObjectReference | None = None
    hints: EndpointHints | None = None


class EndpointSlicePort(Base):
    name: str | None = None
    protocol: str | None = "TCP"
    port: int | None = None
    appProtocol: str | None = None


class EndpointSlice(Object):
    KIND = "EndpointSlice"
    API_VERSION = "discovery.k8s.io/v1"
    PLURAL = "endpointslices"
    addressType: str = "IPv4"
    endpoints: list[Endpoint] | None = None
    ports: list[EndpointSlicePort] | None = None

    @property
    def service_name(self) -> str | None:
        return self.labels.get("kubernetes.io/service-name")
