"""What every kind's validation shares: apimachinery's string formats (names, labels, ports,
config keys), address parsing, and the error collector that words each error as the API server
does (``Invalid value: 0: must be between 1 and 65535, inclusive``) under its field path.

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

from ..._errors import ValidationError
from ..config import ClusterConfig
from ..core import Namespace, Service
from ..meta import LabelSelector, Object
from ..rbac import ClusterRole, ClusterRoleBinding, Role, RoleBinding

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


def is_path_segment_name(value: str) -> Msgs:
    """What RBAC objects' names must be (``system:discovery`` is one): a usable URL segment."""
    if value in (".", ".."):
        return (f"may not be '{value}'",)
    return tuple(f"may not contain '{c}'" for c in "/%" if c in value)


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


PORT_RANGE_MSG = "must be between 1 and 65535, inclusive"
_IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
_CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
PROTOCOLS = ("SCTP", "TCP", "UDP")

# --- addresses -------------------------------------------------------------------------------


# Go's net.ParseIP reads octets with leading zeros as decimal (the API server's "sloppy" parse).
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]|0[0-9]{1,2})"
IPV4_RE = re.compile(r"\.".join([_OCTET] * 4))


def ipv4_int(value: str) -> int | None:
    """An IPv4 address as an int, or None when it is not one. One regex call: much cheaper than
    ipaddress for the common case."""
    m = IPV4_RE.fullmatch(value)
    if m is None:
        return None
    a, b, c, d = m.groups()
    return int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d)


def ip_version(value: str) -> int:
    """4 or 6 for a valid address, 0 otherwise."""
    if IPV4_RE.fullmatch(value) is not None:
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
    n = ipv4_int(value)
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
def parse_cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A CIDR as the API server's sloppy parser takes it (host bits allowed), or None."""
    addr, sep, plen = value.partition("/")
    if not sep or not plen.isdigit() or not plen.isascii():
        return None
    v = ip_version(addr)
    if v == 0 or int(plen) > (32 if v == 4 else 128):
        return None
    if v == 4:
        n = ipv4_int(addr)
        assert n is not None
        return ipaddress.IPv4Network((n, int(plen)), strict=False)
    return ipaddress.IPv6Network(f"{addr}/{int(plen)}", strict=False)


# --- error collection ------------------------------------------------------------------------


def format_value(value: Any) -> str:
    """A bad value as the API server prints it: strings quoted, numbers bare, the rest as JSON."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=isinstance(value, dict), ensure_ascii=False)


class Errors:
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
        self.add(field, f"Invalid value: {format_value(value)}: {detail}")

    def invalid_each(self, field: str, value: Any, msgs: Iterable[str]) -> None:
        for m in msgs:
            self.invalid(field, value, m)

    def unsupported(self, field: str, value: Any, supported: Iterable[str]) -> None:
        listed = ", ".join(json.dumps(s) for s in supported)
        self.add(field, f"Unsupported value: {format_value(value)}: supported values: {listed}")

    def duplicate(self, field: str, value: Any) -> None:
        self.add(field, f"Duplicate value: {format_value(value)}")

    def too_many(self, field: str, count: int, limit: int) -> None:
        self.add(field, f"Too many: {count}: must have at most {limit} items")

    # shared field checks

    def port_num(self, field: str, port: int) -> None:
        if not 0 < port < 65536:
            self.invalid(field, port, PORT_RANGE_MSG)

    def port_num_or_name(self, field: str, port: int | str) -> None:
        if isinstance(port, int):
            self.port_num(field, port)
        else:
            self.invalid_each(field, port, is_valid_port_name(port))

    def protocol(self, field: str, proto: str | None) -> None:
        if not proto:
            self.required(field)
        elif proto not in PROTOCOLS:
            self.unsupported(field, proto, PROTOCOLS)

    def ip(self, field: str, value: str, non_special: bool = False, msg: str = _IP_MSG) -> int:
        """Checks an address; returns its version (0 when invalid)."""
        v = ip_version(value)
        if v == 0:
            self.invalid(field, value, msg)
        elif non_special:
            self.invalid_each(field, value, _special_ip(value))
        return v

    def cidr(self, field: str, value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        net = parse_cidr(value)
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


# A kind's own checks: they add to the collector, with the cluster's config when one is given.
Check = Callable[[Errors, Any, ClusterConfig | None], None]


# --- metadata --------------------------------------------------------------------------------

NameCheck = Callable[[str], Msgs]

_NAME_CHECKS: dict[type[Object], NameCheck] = {
    Service: is_dns1035_label,
    Namespace: is_dns1123_label,
    Role: is_path_segment_name,
    ClusterRole: is_path_segment_name,
    RoleBinding: is_path_segment_name,
    ClusterRoleBinding: is_path_segment_name,
}


def _mask_trailing_dash(name: str) -> str:
    # generateName ends in "-" by convention: judge it as if a suffix followed.
    return name[:-2] + "a" if len(name) > 1 and name.endswith("-") else name


def check_metadata(e: Errors, obj: Object) -> None:
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
