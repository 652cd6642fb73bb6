"""The policy.networking.k8s.io group: ClusterNetworkPolicy.

A custom resource: the API server checks it against its CRD's OpenAPI schema (required fields,
enums, bounds, item and property counts) and CEL rules, with the words of the apiextensions
server (``spec.priority in body should be less than or equal to 1000``), not with a built-in
kind's hand-written validation. Label selectors get no more than their shape checked (key and
operator present, which decoding already requires), as the schema does.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ..config import ClusterConfig
from ..meta import Object
from ..policy import (
    ACTIONS,
    TIERS,
    ClusterNetworkPolicy,
    ClusterNetworkPolicyEgressPeer,
    ClusterNetworkPolicyIngressPeer,
    ClusterNetworkPolicyProtocol,
    NamespacedPod,
    Port,
)
from .common import Check, Errors

MAX_RULES = 25
MAX_PEERS = 25
MAX_PROTOCOLS = 25
MAX_NETWORKS = 25
MAX_DOMAIN_NAMES = 25
MAX_RULE_NAME = 100
MAX_CIDR_LENGTH = 43
PRIORITY_RANGE = (0, 1000)

_DOMAIN_NAME_FMT = r"^(\*\.)?([a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+[a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?$"
_DOMAIN_NAME_RE = re.compile(_DOMAIN_NAME_FMT)
_START_BEFORE_END = "Start port must be less than End port"
_NAMED_PORT_PEERS = (
    "networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for "
    "networks/nodes/domainNames"
)


def _set_fields(obj: Any, names: tuple[str, ...]) -> int:
    # An empty string is omitted (omitempty), so it does not count as set.
    return sum(1 for n in names if getattr(obj, n) not in (None, ""))


def _one_of(e: Errors, path: str, obj: Any, names: tuple[str, ...]) -> None:
    """``minProperties: 1`` and ``maxProperties: 1``."""
    n = _set_fields(obj, names)
    if n == 0:
        e.invalid(path, 0, f"{path} in body should have at least 1 properties")
    elif n > 1:
        e.too_many(path, n, 1)


def _items(e: Errors, path: str, items: list[Any] | None, *, required: bool, most: int, least: int = 1) -> list[Any]:
    """Required, ``minItems`` and ``maxItems``; the items to look into."""
    if items is None:
        if required:
            e.required(path)
        return []
    if len(items) < least:
        e.invalid(path, len(items), f"{path} in body should have at least {least} items")
    elif len(items) > most:
        e.too_many(path, len(items), most)
    return items


def _bounded(e: Errors, path: str, value: int, low: int, high: int) -> None:
    if value < low:
        e.invalid(path, value, f"{path} in body should be greater than or equal to {low}")
    elif value > high:
        e.invalid(path, value, f"{path} in body should be less than or equal to {high}")


def _pods(e: Errors, path: str, pods: NamespacedPod) -> None:
    if pods.podSelector is None:
        e.required(f"{path}.podSelector")


def _port(e: Errors, path: str, port: Port) -> None:
    _one_of(e, path, port, ("number", "range"))
    if port.number is not None:
        _bounded(e, f"{path}.number", port.number, 1, 65535)
    r = port.range
    if r is None:
        return
    rp = f"{path}.range"
    if r.start is None:
        e.required(f"{rp}.start")
    else:
        _bounded(e, f"{rp}.start", r.start, 1, 65535)
    if r.end is None:
        e.required(f"{rp}.end")
    else:
        _bounded(e, f"{rp}.end", r.end, 1, 65535)
    if r.start is not None and r.end is not None and not r.start < r.end:
        e.invalid(rp, "object", _START_BEFORE_END)


def _protocol(e: Errors, path: str, proto: ClusterNetworkPolicyProtocol) -> None:
    _one_of(e, path, proto, ("tcp", "udp", "sctp", "destinationNamedPort"))
    for name in ("tcp", "udp", "sctp"):
        match = getattr(proto, name)
        if match is None:
            continue
        if match.destinationPort is None:
            e.invalid(f"{path}.{name}", 0, f"{path}.{name} in body should have at least 1 properties")
        else:
            _port(e, f"{path}.{name}.destinationPort", match.destinationPort)


def _cidr(e: Errors, path: str, value: str) -> None:
    if len(value) > MAX_CIDR_LENGTH:
        e.add(path, f"Too long: may not be more than {MAX_CIDR_LENGTH} bytes")
    if not is_cidr(value):
        e.invalid(path, "string", "Invalid CIDR format provided")


def is_cidr(value: str) -> bool:
    """CEL's ``isCIDR``: an address and a prefix length (host bits allowed), no IPv4-mapped
    IPv6 address, no zone."""
    addr, sep, plen = value.partition("/")
    if not sep or not plen.isascii() or not plen.isdigit() or (len(plen) > 1 and plen[0] == "0") or "%" in addr:
        return False
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return not (isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None)


def _set(e: Errors, path: str, values: list[str]) -> None:
    """``listType: set``: no value twice."""
    seen: set[str] = set()
    for i, v in enumerate(values):
        if v in seen:
            e.duplicate(f"{path}[{i}]", v)
        seen.add(v)


def _peer(e: Errors, path: str, peer: ClusterNetworkPolicyIngressPeer | ClusterNetworkPolicyEgressPeer) -> None:
    if isinstance(peer, ClusterNetworkPolicyEgressPeer):
        _one_of(e, path, peer, ("namespaces", "pods", "nodes", "networks", "domainNames"))
        nets = _items(e, f"{path}.networks", peer.networks, required=False, most=MAX_NETWORKS)
        for i, net in enumerate(nets):
            _cidr(e, f"{path}.networks[{i}]", net)
        _set(e, f"{path}.networks", nets)
        names = _items(e, f"{path}.domainNames", peer.domainNames, required=False, most=MAX_DOMAIN_NAMES)
        for i, name in enumerate(names):
            if not _DOMAIN_NAME_RE.match(name):
                np = f"{path}.domainNames[{i}]"
                e.invalid(np, name, f"{np} in body should match '{_DOMAIN_NAME_FMT}'")
        _set(e, f"{path}.domainNames", names)
    else:
        _one_of(e, path, peer, ("namespaces", "pods"))
    if peer.pods is not None:
        _pods(e, f"{path}.pods", peer.pods)


def _rule_head(e: Errors, path: str, name: str | None, action: str) -> None:
    if name is not None and len(name.encode()) > MAX_RULE_NAME:
        e.add(f"{path}.name", f"Too long: may not be more than {MAX_RULE_NAME} bytes")
    if not action:
        e.required(f"{path}.action")
    elif action not in ACTIONS:
        e.unsupported(f"{path}.action", action, ACTIONS)


def _protocols(e: Errors, path: str, protocols: list[ClusterNetworkPolicyProtocol] | None) -> None:
    for i, proto in enumerate(_items(e, path, protocols, required=False, most=MAX_PROTOCOLS)):
        _protocol(e, f"{path}[{i}]", proto)


def _clusternetworkpolicy(e: Errors, cnp: ClusterNetworkPolicy, cfg: ClusterConfig | None) -> None:
    spec = cnp.spec
    if not spec.tier:
        e.required("spec.tier")
    elif spec.tier not in TIERS:
        e.unsupported("spec.tier", spec.tier, TIERS)
    if spec.priority is None:
        e.required("spec.priority")
    else:
        _bounded(e, "spec.priority", spec.priority, *PRIORITY_RANGE)
    subject = spec.subject
    if subject is None:
        e.required("spec.subject")
    else:
        _one_of(e, "spec.subject", subject, ("namespaces", "pods"))
        if subject.pods is not None:
            _pods(e, "spec.subject.pods", subject.pods)
    for i, rule in enumerate(_items(e, "spec.ingress", spec.ingress, required=False, most=MAX_RULES, least=0)):
        rp = f"spec.ingress[{i}]"
        _rule_head(e, rp, rule.name, rule.action)
        for j, peer in enumerate(_items(e, f"{rp}.from", rule.from_, required=True, most=MAX_PEERS)):
            _peer(e, f"{rp}.from[{j}]", peer)
        _protocols(e, f"{rp}.protocols", rule.protocols)
    for i, erule in enumerate(_items(e, "spec.egress", spec.egress, required=False, most=MAX_RULES, least=0)):
        rp = f"spec.egress[{i}]"
        _rule_head(e, rp, erule.name, erule.action)
        peers = _items(e, f"{rp}.to", erule.to, required=True, most=MAX_PEERS)
        for j, epeer in enumerate(peers):
            _peer(e, f"{rp}.to[{j}]", epeer)
        _protocols(e, f"{rp}.protocols", erule.protocols)
        outside = any(p.networks is not None or p.nodes is not None or p.domainNames is not None for p in peers)
        if outside and any(p.destinationNamedPort for p in erule.protocols or []):
            e.invalid(rp, "object", _NAMED_PORT_PEERS)


CHECKS: dict[type[Object], Check] = {
    ClusterNetworkPolicy: _clusternetworkpolicy,
}
