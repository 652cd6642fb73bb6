"""The discovery API group: EndpointSlice."""

from __future__ import annotations

from ..config import ClusterConfig
from ..discovery import EndpointSlice
from ..meta import Object
from .common import (
    IPV4_RE,
    PROTOCOLS,
    Check,
    Errors,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_fqdn,
    is_qualified_name,
)

_ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")


def _endpointslice(e: Errors, es: EndpointSlice, cfg: ClusterConfig | None) -> None:
    at = es.addressType
    if not at:
        e.required("addressType")
    elif at not in _ADDRESS_TYPES:
        e.unsupported("addressType", at, _ADDRESS_TYPES)
    endpoints = es.endpoints or []
    if len(endpoints) > 1000:
        e.too_many("endpoints", len(endpoints), 1000)
    ipv4 = IPV4_RE.fullmatch
    for i, ep in enumerate(endpoints):
        if not ep.addresses:
            e.required(f"endpoints[{i}].addresses", "must contain at least 1 address")
        elif len(ep.addresses) > 100:
            e.too_many(f"endpoints[{i}].addresses", len(ep.addresses), 100)
        for j, addr in enumerate(ep.addresses):
            if at == "IPv4":
                m = ipv4(addr)
                # The common, valid case costs one regex call; anything else gets the full story.
                if m is None or int(m.group(1)) in (0, 127, 169, 224):
                    ap = f"endpoints[{i}].addresses[{j}]"
                    if e.ip(ap, addr, non_special=True) == 6:
                        e.invalid(ap, addr, "must be an IPv4 address")
            elif at == "IPv6":
                ap = f"endpoints[{i}].addresses[{j}]"
                if e.ip(ap, addr, non_special=True) == 4:
                    e.invalid(ap, addr, "must be an IPv6 address")
            elif at == "FQDN":
                e.invalid_each(f"endpoints[{i}].addresses[{j}]", addr, is_fqdn(addr))
        if ep.nodeName and (msgs := is_dns1123_subdomain(ep.nodeName)):
            e.invalid_each(f"endpoints[{i}].nodeName", ep.nodeName, msgs)
        if ep.hostname and (msgs := is_dns1123_label(ep.hostname)):
            e.invalid_each(f"endpoints[{i}].hostname", ep.hostname, msgs)
    ports = es.ports or []
    if len(ports) > 20000:
        e.too_many("ports", len(ports), 20000)
    names: set[str] = set()
    for i, p in enumerate(ports):
        pp = f"ports[{i}]"
        if p.name:
            if msgs := is_dns1123_label(p.name):
                e.invalid_each(f"{pp}.name", p.name, msgs)
            if p.name in names:
                e.duplicate(f"{pp}.name", p.name)
        names.add(p.name or "")
        if p.protocol not in PROTOCOLS:
            e.protocol(f"{pp}.protocol", p.protocol)
        if p.port is not None and not 0 < p.port < 65536:
            e.port_num(f"{pp}.port", p.port)
        if p.appProtocol is not None:
            e.invalid_each(f"{pp}.appProtocol", p.appProtocol, is_qualified_name(p.appProtocol))


CHECKS: dict[type[Object], Check] = {
    EndpointSlice: _endpointslice,
}
