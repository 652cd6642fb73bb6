"""Validation as the Kubernetes API server does it, with its wording.

Each error names the object (``Service default/web``), the field path (``spec.ports[0].port``) and
a message in the API server's words (``Invalid value: 0: must be between 1 and 65535, inclusive``),
so what kins refuses reads the way ``kubectl apply`` would have refused it.

The checks run on objects as written, before defaulting: a field left out is only an error where
the API server's defaulting would not fill it in. The allocator checks that depend on the cluster
(clusterIP inside ``services.cidr``, nodePort inside the node-port range) run when a ClusterConfig
is given.

This runs on every object of a 10,000-Service dump, so the syntax checks are cached per distinct
string and IPv4 addresses are parsed by hand rather than through ``ipaddress``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from .._errors import MultiValidationError, ValidationError
from .apps import DaemonSet, DaemonSetUpdateStrategy, Deployment, ReplicaSet, StatefulSet, StatefulSetUpdateStrategy
from .batch import CronJob, Job, JobSpec
from .config import ClusterConfig
from .core import (
    ConfigMap,
    Container,
    Endpoints,
    Namespace,
    Node,
    Pod,
    PodSpec,
    PodTemplateSpec,
    Probe,
    Secret,
    Service,
)
from .cron import CronError, parse
from .discovery import EndpointSlice
from .meta import LabelSelector, Object, selector_matches
from .networking import (
    Ingress,
    IngressBackend,
    IngressClass,
    LegacyIngress,
    NetworkPolicy,
    NetworkPolicyPeer,
    NetworkPolicyPort,
)

__all__ = [
    "is_dns1035_label",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_qualified_name",
    "is_valid_label_value",
    "is_valid_port_name",
    "validate",
    "validate_all",
]

# --- string formats (apimachinery's pkg/util/validation) ----------------------------------------

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_WILDCARD_FMT = "\\*\\." + _DNS1123_SUBDOMAIN_FMT
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"

_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_WILDCARD_RE = re.compile(_WILDCARD_FMT)
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_CONFIG_KEY_RE = re.compile(_CONFIG_KEY_FMT)
_PORT_NAME_CHARSET_RE = re.compile("[-a-z0-9]+")
_HAS_LETTER_RE = re.compile("[a-z]")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    # The API server's RegexError, including its doubled space before " or".
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


_DNS1123_LABEL_MSG = _regex_error(
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character",
    _DNS1123_LABEL_FMT,
    "my-name",
    "123-abc",
)
_DNS1123_SUBDOMAIN_MSG = _regex_error(
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character",
    _DNS1123_SUBDOMAIN_FMT,
    "example.com",
)
_DNS1035_LABEL_MSG = _regex_error(
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character",
    _DNS1035_LABEL_FMT,
    "my-name",
    "abc-123",
)
_WILDCARD_MSG = _regex_error(
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must "
    "consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
    _WILDCARD_FMT,
    "*.example.com",
)
_QUALIFIED_NAME_MSG = _regex_error(
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    _QUALIFIED_NAME_FMT,
    "MyName",
    "my.name",
    "123-abc",
)
_LABEL_VALUE_MSG = _regex_error(
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character",
    _LABEL_VALUE_FMT,
    "MyValue",
    "my_value",
    "12345",
)
_CONFIG_KEY_MSG = _regex_error(
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
    _CONFIG_KEY_FMT,
    "key.name",
    "KEY_NAME",
    "key-name",
)

Msgs = tuple[str, ...]
_OK: Msgs = ()


@lru_cache(maxsize=65536)
def is_dns1123_label(value: str) -> Msgs:
    """Why ``value`` is not a DNS-1123 label (empty when it is one)."""
    errs: list[str] = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        # A valid subdomain that is not a label can only be wrong for its dots.
        errs.append("must not contain dots" if _DNS1123_SUBDOMAIN_RE.fullmatch(value) else _DNS1123_LABEL_MSG)
    return tuple(errs)


@lru_cache(maxsize=65536)
def is_dns1123_subdomain(value: str) -> Msgs:
    errs: list[str] = []
    if len(value) > 253:
        errs.append(_max_len(253))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_DNS1123_SUBDOMAIN_MSG)
    return tuple(errs)


@lru_cache(maxsize=65536)
def is_dns1035_label(value: str) -> Msgs:
    errs: list[str] = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(_DNS1035_LABEL_MSG)
    return tuple(errs)


def is_wildcard_dns1123_subdomain(value: str) -> Msgs:
    errs: list[str] = []
    if len(value) > 253:
        errs.append(_max_len(253))
    if not _WILDCARD_RE.fullmatch(value):
        errs.append(_WILDCARD_MSG)
    return tuple(errs)


@lru_cache(maxsize=65536)
def is_qualified_name(value: str) -> Msgs:
    """Label keys, annotation keys, appProtocol: ``[prefix/]name``."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return (
            "a qualified name "
            + _QUALIFIED_NAME_MSG
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
        )
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append("name part " + _QUALIFIED_NAME_MSG)
    return tuple(errs)


@lru_cache(maxsize=65536)
def is_valid_label_value(value: str) -> Msgs:
    errs: list[str] = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(_LABEL_VALUE_MSG)
    return tuple(errs)


@lru_cache(maxsize=4096)
def is_valid_port_name(value: str) -> Msgs:
    """IANA_SVC_NAME: container port names and named target ports."""
    errs: list[str] = []
    if len(value) > 15:
        errs.append(_max_len(15))
    if not _PORT_NAME_CHARSET_RE.fullmatch(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _HAS_LETTER_RE.search(value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return tuple(errs)


@lru_cache(maxsize=65536)
def is_config_map_key(value: str) -> Msgs:
    errs: list[str] = []
    if len(value) > 253:
        errs.append(_max_len(253))
    if not _CONFIG_KEY_RE.fullmatch(value):
        errs.append(_CONFIG_KEY_MSG)
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return tuple(errs)


def is_fqdn(value: str) -> Msgs:
    name = value.removesuffix(".")
    errs = list(is_dns1123_subdomain(name))
    if not errs and "." not in name:
        errs.append("should be a domain with at least two segments separated by dots")
    return tuple(errs)


_PORT_RANGE_MSG = "must be between 1 and 65535, inclusive"
_IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
_CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")

# --- addresses -------------------------------------------------------------------------------


# Go's net.ParseIP reads octets with leading zeros as decimal (the API server's "sloppy" parse).
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]|0[0-9]{1,2})"
_IPV4_RE = re.compile(r"\.".join([_OCTET] * 4))


def _ipv4_int(value: str) -> int | None:
    """An IPv4 address as an int, or None when it is not one. One regex call: much cheaper than
    ipaddress for the common case."""
    m = _IPV4_RE.fullmatch(value)
    if m is None:
        return None
    a, b, c, d = m.groups()
    return int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d)


def _ip_version(value: str) -> int:
    """4 or 6 for a valid address, 0 otherwise."""
    if _IPV4_RE.fullmatch(value) is not None:
        return 4
    if ":" in value:
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            return 0
        return 6
    return 0


def _special_ip(value: str) -> list[str]:
    """ValidateNonSpecialIP: addresses that may not be endpoints or external IPs."""
    n = _ipv4_int(value)
    if n is not None:
        if n == 0:
            return [f"may not be unspecified ({value})"]
        first = n >> 24
        if first == 127:
            return ["may not be in the loopback range (127.0.0.0/8, ::1/128)"]
        if n >> 16 == 0xA9FE:
            return ["may not be in the link-local range (169.254.0.0/16, fe80::/10)"]
        if n >> 8 == 0xE00000:
            return ["may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"]
        return []
    ip = ipaddress.IPv6Address(value)
    if ip.is_unspecified:
        return [f"may not be unspecified ({value})"]
    if ip.is_loopback:
        return ["may not be in the loopback range (127.0.0.0/8, ::1/128)"]
    if ip.is_link_local:
        return ["may not be in the link-local range (169.254.0.0/16, fe80::/10)"]
    if int(ip) >> 112 & 0xFF0F == 0xFF02:
        return ["may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"]
    return []


@lru_cache(maxsize=4096)
def _cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A CIDR as the API server's sloppy parser takes it (host bits allowed), or None."""
    addr, sep, plen = value.partition("/")
    if not sep or not plen.isdigit() or not plen.isascii():
        return None
    v = _ip_version(addr)
    if v == 0 or int(plen) > (32 if v == 4 else 128):
        return None
    if v == 4:
        n = _ipv4_int(addr)
        assert n is not None
        return ipaddress.IPv4Network((n, int(plen)), strict=False)
    return ipaddress.IPv6Network(f"{addr}/{int(plen)}", strict=False)


@lru_cache(maxsize=64)
def _service_range(cidr: str) -> tuple[int, int, int] | ipaddress.IPv6Network | None:
    """services.cidr as (network int, mask int, 4) for a fast containment test."""
    net = _cidr(cidr)
    if net is None:
        return None
    if isinstance(net, ipaddress.IPv4Network):
        return int(net.network_address), int(net.netmask), 4
    return net


def _in_service_range(ip: str, cidr: str) -> bool:
    rng = _service_range(cidr)
    if rng is None:
        return True  # the cluster file is checked on its own
    if isinstance(rng, tuple):
        n = _ipv4_int(ip)
        return n is not None and n & rng[1] == rng[0]
    return _ip_version(ip) == 6 and ipaddress.IPv6Address(ip) in rng


# --- error collection ------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    """A bad value as the API server prints it: strings quoted, numbers bare, the rest as JSON."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=isinstance(value, dict), ensure_ascii=False)


class _Errors:
    """Collects one object's errors; the object's description is built only when needed."""

    __slots__ = ("_where", "errs", "obj")

    def __init__(self, obj: Object) -> None:
        self.obj = obj
        self.errs: list[ValidationError] = []
        self._where: str | None = None

    @property
    def where(self) -> str:
        if self._where is None:
            self._where = describe(self.obj)
        return self._where

    def add(self, field: str, message: str) -> None:
        self.errs.append(ValidationError(self.where, field, message))

    def required(self, field: str, detail: str = "") -> None:
        self.add(field, f"Required value: {detail}" if detail else "Required value")

    def forbidden(self, field: str, detail: str) -> None:
        self.add(field, f"Forbidden: {detail}")

    def invalid(self, field: str, value: Any, detail: str) -> None:
        self.add(field, f"Invalid value: {_fmt(value)}: {detail}")

    def invalid_each(self, field: str, value: Any, msgs: Iterable[str]) -> None:
        for m in msgs:
            self.invalid(field, value, m)

    def unsupported(self, field: str, value: Any, supported: Iterable[str]) -> None:
        listed = ", ".join(json.dumps(s) for s in supported)
        self.add(field, f"Unsupported value: {_fmt(value)}: supported values: {listed}")

    def duplicate(self, field: str, value: Any) -> None:
        self.add(field, f"Duplicate value: {_fmt(value)}")

    def too_many(self, field: str, count: int, limit: int) -> None:
        self.add(field, f"Too many: {count}: must have at most {limit} items")

    # shared field checks

    def port_num(self, field: str, port: int) -> None:
        if not 0 < port < 65536:
            self.invalid(field, port, _PORT_RANGE_MSG)

    def port_num_or_name(self, field: str, port: int | str) -> None:
        if isinstance(port, int):
            self.port_num(field, port)
        else:
            self.invalid_each(field, port, is_valid_port_name(port))

    def protocol(self, field: str, proto: str | None) -> None:
        if not proto:
            self.required(field)
        elif proto not in _PROTOCOLS:
            self.unsupported(field, proto, _PROTOCOLS)

    def ip(self, field: str, value: str, non_special: bool = False, msg: str = _IP_MSG) -> int:
        """Checks an address; returns its version (0 when invalid)."""
        v = _ip_version(value)
        if v == 0:
            self.invalid(field, value, msg)
        elif non_special:
            self.invalid_each(field, value, _special_ip(value))
        return v

    def cidr(self, field: str, value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        net = _cidr(value)
        if net is None:
            self.invalid(field, value, _CIDR_MSG)
        return net

    def labels(self, field: str, labels: dict[str, str] | None) -> None:
        for k, v in (labels or {}).items():
            if msgs := is_qualified_name(k):
                self.invalid_each(field, k, msgs)
            if msgs := is_valid_label_value(v):
                self.invalid_each(field, v, msgs)

    def label_selector(self, field: str, sel: LabelSelector) -> bool:
        """Checks a LabelSelector; True when it is usable for matching."""
        before = len(self.errs)
        self.labels(f"{field}.matchLabels", sel.matchLabels)
        for i, req in enumerate(sel.matchExpressions or []):
            p = f"{field}.matchExpressions[{i}]"
            if req.operator in ("In", "NotIn"):
                if not req.values:
                    self.required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'")
            elif req.operator in ("Exists", "DoesNotExist"):
                if req.values:
                    self.forbidden(f"{p}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
            else:
                self.invalid(f"{p}.operator", req.operator, "not a valid selector operator")
            self.invalid_each(f"{p}.key", req.key, is_qualified_name(req.key))
            for j, val in enumerate(req.values or []):
                self.invalid_each(f"{p}.values[{j}]", val, is_valid_label_value(val))
        return len(self.errs) == before


def describe(obj: Object) -> str:
    """``Service default/web``, ``Node node1``: how errors name an object."""
    name = obj.metadata.name or obj.metadata.generateName or "<unnamed>"
    kind = obj.kind or obj.KIND
    return f"{kind} {obj.namespace}/{name}" if obj.NAMESPACED else f"{kind} {name}"


# --- metadata --------------------------------------------------------------------------------

NameCheck = Callable[[str], Msgs]

_NAME_CHECKS: dict[type[Object], NameCheck] = {
    Service: is_dns1035_label,
    Namespace: is_dns1123_label,
}


def _mask_trailing_dash(name: str) -> str:
    # generateName ends in "-" by convention: judge it as if a suffix followed.
    return name[:-2] + "a" if len(name) > 1 and name.endswith("-") else name


def _metadata(e: _Errors, obj: Object) -> None:
    m = obj.metadata
    check = _NAME_CHECKS.get(type(obj), is_dns1123_subdomain)
    if m.name:
        if (msgs := check(m.name)) != _OK:
            e.invalid_each("metadata.name", m.name, msgs)
    elif m.generateName:
        e.invalid_each("metadata.generateName", m.generateName, check(_mask_trailing_dash(m.generateName)))
    else:
        e.required("metadata.name", "name or generateName is required")
    if obj.NAMESPACED:
        if m.namespace and (msgs := is_dns1123_label(m.namespace)) != _OK:
            e.invalid_each("metadata.namespace", m.namespace, msgs)
    elif m.namespace:
        e.forbidden("metadata.namespace", "not allowed on this type")
    if m.labels:
        e.labels("metadata.labels", m.labels)
    for k in m.annotations or ():
        e.invalid_each("metadata.annotations", k, is_qualified_name(k.lower()))


# --- Service ---------------------------------------------------------------------------------


def _node_port_range_msg(cfg: ClusterConfig) -> str:
    return f"provided port is not in the valid range. The range of valid ports is {cfg.services.nodePortRange}"


def _service(e: _Errors, svc: Service, cfg: ClusterConfig | None) -> None:
    spec = svc.spec
    typ = spec.type
    ports = spec.ports or []
    headless = spec.clusterIP == "None"
    external = typ in ("NodePort", "LoadBalancer")

    if not typ:
        e.required("spec.type")
    elif typ not in _SERVICE_TYPES:
        e.unsupported("spec.type", typ, _SERVICE_TYPES)

    if not ports and not headless and typ != "ExternalName":
        e.required("spec.ports")

    if typ == "ExternalName":
        if spec.clusterIP or spec.clusterIPs:
            e.forbidden("spec.clusterIP", "may not be set for ExternalName services")
        cname = (spec.externalName or "").removesuffix(".")
        if cname:
            e.invalid_each("spec.externalName", cname, is_dns1123_subdomain(cname))
        else:
            e.required("spec.externalName")
    else:
        if headless and external:
            e.invalid("spec.clusterIP", "None", f"may not be set to 'None' for {typ} services")
        _cluster_ip(e, svc, cfg)

    # ports
    names: set[str] = set()
    require_name = len(ports) > 1
    seen: set[tuple[str, int]] = set()
    node_ports: set[tuple[str, int]] = set()
    lo, hi = cfg.node_port_range if cfg is not None else (1, 65535)
    for i, p in enumerate(ports):
        # Paths are only built when something is wrong: this loop is hot.
        pp = f"spec.ports[{i}]"
        if p.name:
            if msgs := is_dns1123_label(p.name):
                e.invalid_each(f"{pp}.name", p.name, msgs)
            if p.name in names:
                e.duplicate(f"{pp}.name", p.name)
            names.add(p.name)
        elif require_name:
            e.required(f"{pp}.name")
        if not 0 < p.port < 65536:
            e.port_num(f"{pp}.port", p.port)
        if p.protocol not in _PROTOCOLS:
            e.protocol(f"{pp}.protocol", p.protocol)
        # targetPort 0 or "" is defaulted to port by the API server.
        tp = p.targetPort
        if tp and (is_valid_port_name(tp) if isinstance(tp, str) else not 0 < tp < 65536):
            e.port_num_or_name(f"{pp}.targetPort", tp)
        if p.appProtocol is not None:
            e.invalid_each(f"{pp}.appProtocol", p.appProtocol, is_qualified_name(p.appProtocol))
        if p.nodePort:
            if not external:
                e.forbidden(f"{pp}.nodePort", f"may not be used when `type` is '{typ}'")
            elif not lo <= p.nodePort <= hi:
                if cfg is not None:
                    e.invalid(f"{pp}.nodePort", p.nodePort, _node_port_range_msg(cfg))
                else:
                    e.port_num(f"{pp}.nodePort", p.nodePort)
            key = (p.protocol, p.nodePort)
            if key in node_ports:
                e.duplicate(f"{pp}.nodePort", p.nodePort)
            node_ports.add(key)
        key = (p.protocol, p.port)
        if key in seen:
            # The API server prints its internal port key as JSON, in Go's field order.
            e.add(
                pp,
                f'Duplicate value: {{"Name":"","Protocol":{_fmt(p.protocol)},"AppProtocol":null,'
                f'"Port":{p.port},"TargetPort":0,"NodePort":0}}',
            )
        seen.add(key)

    if spec.selector:
        e.labels("spec.selector", spec.selector)

    # session affinity
    affinity = spec.sessionAffinity
    if affinity is not None and affinity not in ("ClientIP", "None"):
        e.unsupported("spec.sessionAffinity", affinity, ("ClientIP", "None"))
    cfg_aff = spec.sessionAffinityConfig
    if affinity == "ClientIP":
        timeout = cfg_aff.clientIP.timeoutSeconds if cfg_aff and cfg_aff.clientIP else None
        if timeout is not None and not 0 < timeout <= 86400:
            e.invalid(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                timeout,
                "must be greater than 0 and less than 86400",
            )
    elif cfg_aff is not None and affinity in (None, "None"):
        e.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")

    for i, ip in enumerate(spec.externalIPs or []):
        e.ip(f"spec.externalIPs[{i}]", ip, non_special=True)

    if spec.loadBalancerSourceRanges:
        if typ != "LoadBalancer":
            e.forbidden("spec.loadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'")
        for i, r in enumerate(spec.loadBalancerSourceRanges):
            # Historically space-padded values are accepted.
            e.cidr(f"spec.loadBalancerSourceRanges[{i}]", r.strip())
    if spec.loadBalancerIP and typ == "LoadBalancer":
        e.ip("spec.loadBalancerIP", spec.loadBalancerIP)
    if spec.allocateLoadBalancerNodePorts is not None and typ != "LoadBalancer":
        e.forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'")
    if spec.loadBalancerClass is not None:
        if typ != "LoadBalancer":
            e.forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'")
        else:
            e.invalid_each("spec.loadBalancerClass", spec.loadBalancerClass, is_qualified_name(spec.loadBalancerClass))

    # traffic policies
    etp = spec.externalTrafficPolicy
    if etp:
        if not (external or (typ == "ClusterIP" and spec.externalIPs)):
            e.invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services")
        elif etp not in ("Cluster", "Local"):
            e.unsupported("spec.externalTrafficPolicy", etp, ("Cluster", "Local"))
    hc = spec.healthCheckNodePort
    if hc:
        if typ != "LoadBalancer" or etp != "Local":
            e.invalid(
                "spec.healthCheckNodePort",
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            )
        elif not 0 < hc < 65536:
            e.invalid("spec.healthCheckNodePort", hc, _PORT_RANGE_MSG)
        elif cfg is not None and not lo <= hc <= hi:
            e.invalid("spec.healthCheckNodePort", hc, _node_port_range_msg(cfg))
    itp = spec.internalTrafficPolicy
    if itp is not None and itp not in ("Cluster", "Local"):
        e.unsupported("spec.internalTrafficPolicy", itp, ("Cluster", "Local"))
    if spec.ipFamilyPolicy is not None and spec.ipFamilyPolicy not in _FAMILY_POLICIES:
        e.unsupported("spec.ipFamilyPolicy", spec.ipFamilyPolicy, _FAMILY_POLICIES)
    for i, fam in enumerate(spec.ipFamilies or []):
        if fam not in ("IPv4", "IPv6"):
            e.unsupported(f"spec.ipFamilies[{i}]", fam, ("IPv4", "IPv6"))
    if spec.trafficDistribution is not None and spec.trafficDistribution not in _TRAFFIC_DISTRIBUTIONS:
        e.unsupported("spec.trafficDistribution", spec.trafficDistribution, _TRAFFIC_DISTRIBUTIONS)


_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
_TRAFFIC_DISTRIBUTIONS = ("PreferClose", "PreferSameZone", "PreferSameNode")


def _cluster_ip(e: _Errors, svc: Service, cfg: ClusterConfig | None) -> None:
    spec = svc.spec
    ip = spec.clusterIP
    ips = spec.clusterIPs or []
    if ips and ip and ips[0] != ip:
        e.invalid("spec.clusterIPs", ips, "first value must match `clusterIP`")
    if len(ips) > 2:
        e.invalid("spec.clusterIPs", ips, "may only hold up to 2 values")
    for i, extra in enumerate(ips[1:], start=1):
        if extra == "None":
            e.invalid("spec.clusterIPs", ips, "'None' must be the first and only value")
        elif e.ip(f"spec.clusterIPs[{i}]", extra) and cfg is not None:
            _check_in_range(e, f"spec.clusterIPs[{i}]", extra, cfg)
    if not ip or ip == "None":
        return
    if e.ip("spec.clusterIP", ip) and cfg is not None:
        _check_in_range(e, "spec.clusterIP", ip, cfg)


def _check_in_range(e: _Errors, field: str, ip: str, cfg: ClusterConfig) -> None:
    if not _in_service_range(ip, cfg.services.cidr):
        e.invalid(
            field,
            ip,
            f"failed to allocate IP {ip}: provided IP is not in the valid range. "
            f"The range of valid IPs is {cfg.services.cidr}",
        )


# --- Pod -------------------------------------------------------------------------------------

_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
_PROBE_FIELDS = ("exec", "httpGet", "tcpSocket", "grpc")


def _probe(e: _Errors, path: str, probe: Probe) -> None:
    handlers = [h for h in _PROBE_FIELDS if getattr(probe, h) is not None]
    if not handlers:
        e.required(path, "must specify a handler type")
    for extra in handlers[1:]:
        e.forbidden(f"{path}.{extra}", "may not specify more than 1 handler type")
    if probe.httpGet is not None:
        e.port_num_or_name(f"{path}.httpGet.port", probe.httpGet.port)
        scheme = probe.httpGet.scheme
        if scheme is not None and scheme not in ("HTTP", "HTTPS"):
            e.unsupported(f"{path}.httpGet.scheme", scheme, ("HTTP", "HTTPS"))
    if probe.tcpSocket is not None:
        e.port_num_or_name(f"{path}.tcpSocket.port", probe.tcpSocket.port)
    for name in ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold"):
        val = getattr(probe, name)
        if val is not None and val < 0:
            e.invalid(f"{path}.{name}", val, "must be greater than or equal to 0")


def _container(e: _Errors, path: str, c: Container, names: set[str]) -> None:
    if not c.name:
        e.required(f"{path}.name")
    else:
        e.invalid_each(f"{path}.name", c.name, is_dns1123_label(c.name))
        if c.name in names:
            e.duplicate(f"{path}.name", c.name)
        names.add(c.name)
    if not c.image:
        e.required(f"{path}.image")
    port_names: set[str] = set()
    for i, p in enumerate(c.ports or []):
        pp = f"{path}.ports[{i}]"
        if p.name:
            msgs = is_valid_port_name(p.name)
            if msgs:
                e.invalid_each(f"{pp}.name", p.name, msgs)
            elif p.name in port_names:
                e.duplicate(f"{pp}.name", p.name)
            port_names.add(p.name)
        if p.containerPort == 0:
            e.required(f"{pp}.containerPort")
        else:
            e.port_num(f"{pp}.containerPort", p.containerPort)
        if p.hostPort:
            e.port_num(f"{pp}.hostPort", p.hostPort)
        if p.hostIP:
            e.ip(f"{pp}.hostIP", p.hostIP)
        e.protocol(f"{pp}.protocol", p.protocol)
    for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = getattr(c, probe_name)
        if probe is not None:
            _probe(e, f"{path}.{probe_name}", probe)
    for i, env in enumerate(c.env or []):
        if not env.name:
            e.required(f"{path}.env[{i}].name")
    if c.imagePullPolicy is not None and c.imagePullPolicy not in ("Always", "IfNotPresent", "Never"):
        e.unsupported(f"{path}.imagePullPolicy", c.imagePullPolicy, ("Always", "IfNotPresent", "Never"))


def _pod_spec(e: _Errors, path: str, spec: PodSpec, restart_policies: tuple[str, ...] = _RESTART_POLICIES) -> None:
    names: set[str] = set()
    for i, c in enumerate(spec.initContainers or []):
        _container(e, f"{path}.initContainers[{i}]", c, names)
    if not spec.containers:
        e.required(f"{path}.containers")
    for i, c in enumerate(spec.containers):
        _container(e, f"{path}.containers[{i}]", c, names)
    if spec.restartPolicy is not None and spec.restartPolicy not in restart_policies:
        e.unsupported(f"{path}.restartPolicy", spec.restartPolicy, restart_policies)
    if spec.dnsPolicy is not None and spec.dnsPolicy not in _DNS_POLICIES:
        e.unsupported(f"{path}.dnsPolicy", spec.dnsPolicy, _DNS_POLICIES)
    dns = spec.dnsConfig
    if spec.dnsPolicy == "None":
        if dns is None:
            e.required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None")
        elif not dns.nameservers:
            e.required(
                f"{path}.dnsConfig.nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None"
            )
    if dns is not None:
        servers = dns.nameservers or []
        if len(servers) > 3:
            e.invalid(f"{path}.dnsConfig.nameservers", servers, "must not have more than 3 nameservers")
        for i, ns in enumerate(servers):
            e.ip(f"{path}.dnsConfig.nameservers[{i}]", ns, msg="must be a valid IP address")
        searches = dns.searches or []
        if len(searches) > 32:
            e.invalid(f"{path}.dnsConfig.searches", searches, "must not have more than 32 search paths")
        for i, s in enumerate(searches):
            if s != ".":
                e.invalid_each(f"{path}.dnsConfig.searches[{i}]", s, is_dns1123_subdomain(s.removesuffix(".")))
    if spec.hostname:
        e.invalid_each(f"{path}.hostname", spec.hostname, is_dns1123_label(spec.hostname))
    if spec.subdomain:
        e.invalid_each(f"{path}.subdomain", spec.subdomain, is_dns1123_label(spec.subdomain))
    if spec.nodeName:
        e.invalid_each(f"{path}.nodeName", spec.nodeName, is_dns1123_subdomain(spec.nodeName))
    for i, alias in enumerate(spec.hostAliases or []):
        e.ip(f"{path}.hostAliases[{i}].ip", alias.ip, msg="must be valid IP address")
    if spec.terminationGracePeriodSeconds is not None and spec.terminationGracePeriodSeconds < 0:
        e.invalid(
            f"{path}.terminationGracePeriodSeconds",
            spec.terminationGracePeriodSeconds,
            "must be greater than or equal to 0",
        )


def _pod(e: _Errors, pod: Pod, cfg: ClusterConfig | None) -> None:
    _pod_spec(e, "spec", pod.spec)


# --- Deployment / ReplicaSet -----------------------------------------------------------------


def _workload(e: _Errors, replicas: int | None, selector: LabelSelector | None, template: PodTemplateSpec) -> None:
    if replicas is not None and replicas < 0:
        e.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
    labels = template.metadata.labels or {}
    if selector is None:
        e.required("spec.selector")
    elif e.label_selector("spec.selector", selector):
        if not selector.matchLabels and not selector.matchExpressions:
            e.invalid("spec.selector", {}, "empty selector is invalid for deployment")
        elif not selector_matches(selector, labels):
            e.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    e.labels("spec.template.metadata.labels", template.metadata.labels)
    _pod_spec(e, "spec.template.spec", template.spec, restart_policies=("Always",))


def _deployment(e: _Errors, d: Deployment, cfg: ClusterConfig | None) -> None:
    _workload(e, d.spec.replicas, d.spec.selector, d.spec.template)
    strategy = d.spec.strategy.type if d.spec.strategy else None
    if strategy is not None and strategy not in ("Recreate", "RollingUpdate"):
        e.unsupported("spec.strategy.type", strategy, ("Recreate", "RollingUpdate"))


def _replicaset(e: _Errors, rs: ReplicaSet, cfg: ClusterConfig | None) -> None:
    _workload(e, rs.spec.replicas, rs.spec.selector, rs.spec.template)


# --- StatefulSet / DaemonSet -----------------------------------------------------------------


def _set_selector(e: _Errors, what: str, selector: LabelSelector | None, template: PodTemplateSpec) -> None:
    labels = template.metadata.labels or {}
    if selector is None:
        e.required("spec.selector")
    elif e.label_selector("spec.selector", selector):
        if not selector.matchLabels and not selector.matchExpressions:
            e.invalid("spec.selector", {}, f"empty selector is invalid for {what}")
        elif not selector_matches(selector, labels):
            e.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    e.labels("spec.template.metadata.labels", template.metadata.labels)
    _pod_spec(e, "spec.template.spec", template.spec, restart_policies=("Always",))


def _update_strategy(e: _Errors, strategy: StatefulSetUpdateStrategy | DaemonSetUpdateStrategy | None) -> str:
    kind = (strategy.type if strategy else None) or "RollingUpdate"
    if kind not in ("RollingUpdate", "OnDelete"):
        e.unsupported("spec.updateStrategy.type", kind, ("OnDelete", "RollingUpdate"))
    elif kind == "OnDelete" and strategy is not None and strategy.rollingUpdate is not None:
        e.invalid(
            "spec.updateStrategy.rollingUpdate",
            msgspec.to_builtins(strategy.rollingUpdate),
            "only allowed for updateStrategy 'RollingUpdate'",
        )
    return kind


def _statefulset(e: _Errors, sts: StatefulSet, cfg: ClusterConfig | None) -> None:
    spec = sts.spec
    # serviceName is optional; when given it becomes each pod's subdomain, so it must be a label.
    if spec.serviceName:
        e.invalid_each("spec.serviceName", spec.serviceName, is_dns1123_label(spec.serviceName))
    policy = spec.podManagementPolicy
    if policy is not None and policy not in ("OrderedReady", "Parallel"):
        e.unsupported("spec.podManagementPolicy", policy, ("OrderedReady", "Parallel"))
    if _update_strategy(e, spec.updateStrategy) == "RollingUpdate":
        rolling = spec.updateStrategy.rollingUpdate if spec.updateStrategy else None
        partition = rolling.partition if rolling else None
        if isinstance(partition, int) and partition < 0:
            e.invalid("spec.updateStrategy.rollingUpdate.partition", partition, "must be greater than or equal to 0")
    for field in ("replicas", "minReadySeconds"):
        v = getattr(spec, field)
        if v is not None and v < 0:
            e.invalid(f"spec.{field}", v, "must be greater than or equal to 0")
    _set_selector(e, "statefulset", spec.selector, spec.template)


def _daemonset(e: _Errors, ds: DaemonSet, cfg: ClusterConfig | None) -> None:
    spec = ds.spec
    _update_strategy(e, spec.updateStrategy)
    if spec.minReadySeconds is not None and spec.minReadySeconds < 0:
        e.invalid("spec.minReadySeconds", spec.minReadySeconds, "must be greater than or equal to 0")
    _set_selector(e, "daemonset", spec.selector, spec.template)


# --- Job ------------------------------------------------------------------------------------

_JOB_RESTART_POLICIES = ("OnFailure", "Never")


def _job_spec(e: _Errors, path: str, spec: JobSpec) -> None:
    for field in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        v = getattr(spec, field)
        if v is not None and v < 0:
            e.invalid(f"{path}.{field}", v, "must be greater than or equal to 0")
    mode = spec.completionMode
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        e.unsupported(f"{path}.completionMode", mode, ("NonIndexed", "Indexed"))
    if mode == "Indexed" and spec.completions is None:
        e.required(f"{path}.completions", "when completion mode is Indexed")
    labels = spec.template.metadata.labels or {}
    sel = spec.selector
    if sel is not None and e.label_selector(f"{path}.selector", sel) and not selector_matches(sel, labels):
        e.invalid(f"{path}.template.metadata.labels", labels, "`selector` does not match template `labels`")
    e.labels(f"{path}.template.metadata.labels", spec.template.metadata.labels)
    # The API server defaults an unset restartPolicy to Always, which a Job refuses.
    policy = spec.template.spec.restartPolicy or "Always"
    if policy not in _JOB_RESTART_POLICIES:
        e.unsupported(f"{path}.template.spec.restartPolicy", policy, _JOB_RESTART_POLICIES)
    _pod_spec(e, f"{path}.template.spec", spec.template.spec, restart_policies=(*_JOB_RESTART_POLICIES, "Always"))


def _job(e: _Errors, job: Job, cfg: ClusterConfig | None) -> None:
    _job_spec(e, "spec", job.spec)


def _cronjob(e: _Errors, cj: CronJob, cfg: ClusterConfig | None) -> None:
    spec = cj.spec
    # Its Jobs append 11 characters (-<minutes since the epoch>) to the name.
    if len(cj.name) > 52:
        e.invalid("metadata.name", cj.name, "must be no more than 52 characters")
    if not spec.schedule:
        e.required("spec.schedule")
    elif "TZ" in spec.schedule:
        e.invalid("spec.schedule", spec.schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    else:
        try:
            parse(spec.schedule)
        except CronError as err:
            e.invalid("spec.schedule", spec.schedule, str(err))
    if spec.timeZone is not None:
        try:
            ZoneInfo(spec.timeZone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            e.invalid("spec.timeZone", spec.timeZone, f"unknown time zone {spec.timeZone}")
    policy = spec.concurrencyPolicy
    if policy is not None and policy not in ("Allow", "Forbid", "Replace"):
        e.unsupported("spec.concurrencyPolicy", policy, ("Allow", "Forbid", "Replace"))
    for field in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        v = getattr(spec, field)
        if v is not None and v < 0:
            e.invalid(f"spec.{field}", v, "must be greater than or equal to 0")
    _job_spec(e, "spec.jobTemplate.spec", spec.jobTemplate.spec)


# --- EndpointSlice / Endpoints ---------------------------------------------------------------

_ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")


def _endpointslice(e: _Errors, es: EndpointSlice, cfg: ClusterConfig | None) -> None:
    at = es.addressType
    if not at:
        e.required("addressType")
    elif at not in _ADDRESS_TYPES:
        e.unsupported("addressType", at, _ADDRESS_TYPES)
    endpoints = es.endpoints or []
    if len(endpoints) > 1000:
        e.too_many("endpoints", len(endpoints), 1000)
    ipv4 = _IPV4_RE.fullmatch
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
        if p.protocol not in _PROTOCOLS:
            e.protocol(f"{pp}.protocol", p.protocol)
        if p.port is not None and not 0 < p.port < 65536:
            e.port_num(f"{pp}.port", p.port)
        if p.appProtocol is not None:
            e.invalid_each(f"{pp}.appProtocol", p.appProtocol, is_qualified_name(p.appProtocol))


def _endpoints(e: _Errors, ep: Endpoints, cfg: ClusterConfig | None) -> None:
    for i, ss in enumerate(ep.subsets or []):
        sp = f"subsets[{i}]"
        if not ss.addresses and not ss.notReadyAddresses:
            e.required(sp, "must specify `addresses` or `notReadyAddresses`")
        for group in ("addresses", "notReadyAddresses"):
            for j, a in enumerate(getattr(ss, group) or []):
                ap = f"{sp}.{group}[{j}]"
                e.ip(f"{ap}.ip", a.ip, non_special=True, msg="must be a valid IP address")
                if a.hostname:
                    e.invalid_each(f"{ap}.hostname", a.hostname, is_dns1123_label(a.hostname))
                if a.nodeName:
                    e.invalid_each(f"{ap}.nodeName", a.nodeName, is_dns1123_subdomain(a.nodeName))
        ports = ss.ports or []
        for j, p in enumerate(ports):
            pp = f"{sp}.ports[{j}]"
            if p.name:
                e.invalid_each(f"{pp}.name", p.name, is_dns1123_label(p.name))
            elif len(ports) > 1:
                e.required(f"{pp}.name")
            e.port_num(f"{pp}.port", p.port)
            e.protocol(f"{pp}.protocol", p.protocol)


# --- Ingress ---------------------------------------------------------------------------------

_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_BAD_PATH_PARTS = ("//", "/./", "/../", "%2f", "%2F")
_BAD_PATH_ENDS = ("/..", "/.")


def _ingress_backend(e: _Errors, path: str, b: IngressBackend) -> None:
    if b.resource is not None and b.service is not None:
        e.invalid(path, "", "cannot set both resource and service backends")
        return
    if b.resource is not None:
        return
    if b.service is None:
        e.invalid(path, "", "resource or service backend is required")
        return
    svc = b.service
    if not svc.name:
        e.required(f"{path}.service.name")
    else:
        e.invalid_each(f"{path}.service.name", svc.name, is_dns1035_label(svc.name))
    name = svc.port.name if svc.port else None
    number = svc.port.number if svc.port else None
    if name and number:
        e.invalid(path, "", "cannot set both port name & port number")
    elif name:
        e.invalid_each(f"{path}.service.port.name", name, is_valid_port_name(name))
    elif number:
        e.port_num(f"{path}.service.port.number", number)
    else:
        e.required(path, "port name or number is required")


def _host(e: _Errors, field: str, host: str, reject_ip: bool) -> None:
    if reject_ip and _ip_version(host):
        e.invalid(field, host, "must be a DNS name, not an IP address")
    if "*" in host:
        e.invalid_each(field, host, is_wildcard_dns1123_subdomain(host))
    else:
        e.invalid_each(field, host, is_dns1123_subdomain(host))


def _ingress(e: _Errors, ing: Ingress, cfg: ClusterConfig | None) -> None:
    spec = ing.spec
    if not spec.rules and spec.defaultBackend is None:
        e.invalid("spec", spec.rules, "either `defaultBackend` or `rules` must be specified")
    if spec.defaultBackend is not None:
        _ingress_backend(e, "spec.defaultBackend", spec.defaultBackend)
    if spec.ingressClassName is not None:
        e.invalid_each("spec.ingressClassName", spec.ingressClassName, is_dns1123_subdomain(spec.ingressClassName))
    for i, tls in enumerate(spec.tls or []):
        for j, h in enumerate(tls.hosts or []):
            _host(e, f"spec.tls[{i}].hosts[{j}]", h, reject_ip=False)
        if tls.secretName:
            e.invalid_each(f"spec.tls[{i}].secretName", tls.secretName, is_dns1123_subdomain(tls.secretName))
    for i, rule in enumerate(spec.rules or []):
        rp = f"spec.rules[{i}]"
        if rule.host:
            _host(e, f"{rp}.host", rule.host, reject_ip=True)
        if rule.http is None:
            continue
        if not rule.http.paths:
            e.required(f"{rp}.http.paths")
        for j, p in enumerate(rule.http.paths):
            pp = f"{rp}.http.paths[{j}]"
            path = p.path or ""
            if p.pathType is None:
                e.required(f"{pp}.pathType", "pathType must be specified")
                continue
            if p.pathType in ("Exact", "Prefix"):
                if not path.startswith("/"):
                    e.invalid(f"{pp}.path", path, "must be an absolute path")
                for bad in _BAD_PATH_PARTS:
                    if bad in path:
                        e.invalid(f"{pp}.path", path, f"must not contain '{bad}'")
                for bad in _BAD_PATH_ENDS:
                    if path.endswith(bad):
                        e.invalid(f"{pp}.path", path, f"cannot end with '{bad}'")
            elif p.pathType == "ImplementationSpecific":
                if path and not path.startswith("/"):
                    e.invalid(f"{pp}.path", path, "must be an absolute path")
            else:
                e.unsupported(f"{pp}.pathType", p.pathType, _PATH_TYPES)
            _ingress_backend(e, f"{pp}.backend", p.backend)


def _legacy_ingress(e: _Errors, ing: LegacyIngress, cfg: ClusterConfig | None) -> None:
    # The API server validates the legacy form after converting it, as the loader does.
    _ingress(e, ing.to_v1(), cfg)


def _ingressclass(e: _Errors, ic: IngressClass, cfg: ClusterConfig | None) -> None:
    ctl = ic.spec.controller
    if not ctl:
        e.required("spec.controller")
    elif "/" not in ctl:
        e.invalid("spec.controller", ctl, 'must be a domain-prefixed path (such as "acme.io/foo")')


# --- NetworkPolicy ---------------------------------------------------------------------------


def _np_port(e: _Errors, path: str, p: NetworkPolicyPort) -> None:
    if p.protocol is not None and p.protocol not in _PROTOCOLS:
        e.unsupported(f"{path}.protocol", p.protocol, _PROTOCOLS)
    if p.port is None:
        if p.endPort is not None:
            e.forbidden(f"{path}.endPort", "may not be specified when `port` is not specified")
    elif isinstance(p.port, int):
        e.port_num(f"{path}.port", p.port)
        if p.endPort is not None:
            if p.endPort < p.port:
                e.invalid(f"{path}.endPort", p.endPort, "must be greater than or equal to `port`")
            e.port_num(f"{path}.endPort", p.endPort)
    else:
        if p.endPort is not None:
            e.forbidden(f"{path}.endPort", "may not be specified when `port` is non-numeric")
        e.invalid_each(f"{path}.port", p.port, is_valid_port_name(p.port))


def _np_peer(e: _Errors, path: str, peer: NetworkPolicyPeer) -> None:
    count = 0
    if peer.podSelector is not None:
        count += 1
        e.label_selector(f"{path}.podSelector", peer.podSelector)
    if peer.namespaceSelector is not None:
        count += 1
        e.label_selector(f"{path}.namespaceSelector", peer.namespaceSelector)
    if peer.ipBlock is not None:
        count += 1
        ib = peer.ipBlock
        bp = f"{path}.ipBlock"
        if not ib.cidr:
            e.required(f"{bp}.cidr")
        else:
            net = e.cidr(f"{bp}.cidr", ib.cidr)
            if net is not None:
                for i, ex in enumerate(ib.except_ or []):
                    sub = e.cidr(f"{bp}.except[{i}]", ex)
                    if sub is None:
                        continue
                    if sub.version != net.version or sub.network_address not in net or net.prefixlen >= sub.prefixlen:
                        e.invalid(f"{bp}.except[{i}]", ex, "must be a strict subset of `cidr`")
    if count == 0:
        e.required(path, "must specify a peer")
    elif count > 1 and peer.ipBlock is not None:
        e.forbidden(path, "may not specify both ipBlock and another peer")


def _networkpolicy(e: _Errors, np: NetworkPolicy, cfg: ClusterConfig | None) -> None:
    spec = np.spec
    e.label_selector("spec.podSelector", spec.podSelector)
    for i, rule in enumerate(spec.ingress or []):
        for j, port in enumerate(rule.ports or []):
            _np_port(e, f"spec.ingress[{i}].ports[{j}]", port)
        for j, peer in enumerate(rule.from_ or []):
            _np_peer(e, f"spec.ingress[{i}].from[{j}]", peer)
    for i, erule in enumerate(spec.egress or []):
        for j, port in enumerate(erule.ports or []):
            _np_port(e, f"spec.egress[{i}].ports[{j}]", port)
        for j, peer in enumerate(erule.to or []):
            _np_peer(e, f"spec.egress[{i}].to[{j}]", peer)
    types = spec.policyTypes or []
    for i, t in enumerate(types):
        if t not in ("Ingress", "Egress"):
            e.unsupported(f"spec.policyTypes[{i}]", t, ("Ingress", "Egress"))
    if len(types) > 2:
        e.invalid("spec.policyTypes", types, "may not specify more than two policyTypes")


# --- Node, Namespace, Secret, ConfigMap ------------------------------------------------------


def _node(e: _Errors, node: Node, cfg: ClusterConfig | None) -> None:
    spec = node.spec
    if spec.podCIDR:
        e.cidr("spec.podCIDR", spec.podCIDR)
    cidrs = spec.podCIDRs or []
    for i, c in enumerate(cidrs):
        e.cidr(f"spec.podCIDRs[{i}]", c)
    if len(cidrs) > 2:
        e.invalid("spec.podCIDRs", cidrs, "may specify no more than one CIDR for each IP family")
    if spec.podCIDR and cidrs and cidrs[0] != spec.podCIDR:
        e.invalid("spec.podCIDRs", cidrs, "first value must match `podCIDR`")
    for i, t in enumerate(spec.taints or []):
        if t.effect not in ("NoExecute", "NoSchedule", "PreferNoSchedule"):
            e.unsupported(f"spec.taints[{i}].effect", t.effect, ("NoExecute", "NoSchedule", "PreferNoSchedule"))
        e.invalid_each(f"spec.taints[{i}].key", t.key, is_qualified_name(t.key))
    for i, a in enumerate((node.status.addresses if node.status else None) or []):
        if a.type in ("InternalIP", "ExternalIP"):
            e.ip(f"status.addresses[{i}].address", a.address)


def _namespace(e: _Errors, ns: Namespace, cfg: ClusterConfig | None) -> None:
    pass  # the name is all there is


_SECRET_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
}


def _data_keys(e: _Errors, keys: Iterable[str]) -> None:
    for k in keys:
        e.invalid_each(f"data[{k}]", k, is_config_map_key(k))


def _secret(e: _Errors, s: Secret, cfg: ClusterConfig | None) -> None:
    # stringData is merged into data before the API server validates.
    keys = {**(s.data or {}), **(s.stringData or {})}
    _data_keys(e, keys)
    for k in _SECRET_KEYS.get(s.type or "", ()):
        if k not in keys:
            e.required(f"data[{k}]")


def _configmap(e: _Errors, cm: ConfigMap, cfg: ClusterConfig | None) -> None:
    _data_keys(e, cm.data or {})
    for k in cm.binaryData or {}:
        e.invalid_each(f"binaryData[{k}]", k, is_config_map_key(k))
        if cm.data and k in cm.data:
            e.invalid(f"data[{k}]", k, "duplicate of key present in binaryData")


# --- entry points ----------------------------------------------------------------------------

_KIND_CHECKS: dict[type[Object], Callable[[_Errors, Any, ClusterConfig | None], None]] = {
    Service: _service,
    EndpointSlice: _endpointslice,
    Endpoints: _endpoints,
    Pod: _pod,
    Deployment: _deployment,
    ReplicaSet: _replicaset,
    StatefulSet: _statefulset,
    DaemonSet: _daemonset,
    Job: _job,
    CronJob: _cronjob,
    Ingress: _ingress,
    LegacyIngress: _legacy_ingress,
    IngressClass: _ingressclass,
    NetworkPolicy: _networkpolicy,
    Node: _node,
    Namespace: _namespace,
    Secret: _secret,
    ConfigMap: _configmap,
}


def validate(obj: Object, cfg: ClusterConfig | None = None) -> list[ValidationError]:
    """Every reason the API server would refuse ``obj`` (empty when it would accept it).

    With ``cfg``, the allocator checks too: clusterIP inside ``services.cidr`` and nodePort /
    healthCheckNodePort inside ``services.nodePortRange``.
    """
    e = _Errors(obj)
    _metadata(e, obj)
    check = _KIND_CHECKS.get(type(obj))
    if check is not None:
        check(e, obj, cfg)
    return e.errs


def validate_all(objs: list[Object], cfg: ClusterConfig | None = None) -> None:
    """Validates every object; raises MultiValidationError with all errors, including any
    object (same kind, namespace and name) that appears twice in the input."""
    errors: list[ValidationError] = []
    first: dict[tuple[str, str, str], int] = {}
    for i, obj in enumerate(objs):
        errors.extend(validate(obj, cfg))
        name = obj.metadata.name
        if not name:
            continue
        key = (obj.KIND, obj.namespace, name)
        if key in first:
            errors.append(
                ValidationError(
                    describe(obj),
                    "metadata.name",
                    f"Duplicate value: {_fmt(name)}: the same {obj.KIND} is already object "
                    f"#{first[key] + 1} of the input",
                )
            )
        else:
            first[key] = i
    errors.extend(_requested_twice(objs))
    if errors:
        raise MultiValidationError(errors)


def _requested_twice(objs: list[Object]) -> list[ValidationError]:
    """Two Services of one input asking for the same ClusterIP or node port: the API server would
    refuse the second, so the input is refused as a whole before anything is written."""
    errors: list[ValidationError] = []
    ips: dict[str, str] = {}
    ports: dict[tuple[int, str], str] = {}
    for obj in objs:
        if not isinstance(obj, Service):
            continue
        who = describe(obj)
        ip = obj.spec.clusterIP
        if ip and ip != "None":
            if ip in ips and ips[ip] != who:
                errors.append(
                    ValidationError(
                        who, "spec.clusterIP", f"Invalid value: {_fmt(ip)}: also requested by {ips[ip]} in this input"
                    )
                )
            ips.setdefault(ip, who)
        for i, p in enumerate(obj.spec.ports or []):
            if not p.nodePort:
                continue
            k = (p.nodePort, (p.protocol or "TCP").upper())
            if k in ports and ports[k] != who:
                errors.append(
                    ValidationError(
                        who,
                        f"spec.ports[{i}].nodePort",
                        f"Invalid value: {p.nodePort}: provided port is already allocated (requested by "
                        f"{ports[k]} in this input)",
                    )
                )
            ports.setdefault(k, who)
    return errors
