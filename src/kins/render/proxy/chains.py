"""kube-proxy's iptables chain names.

Per-service chains are ``KUBE-SVC-``/``KUBE-SVL-``/``KUBE-EXT-``/``KUBE-FW-`` plus the first 16
characters of base32(sha256(service port name + protocol)); endpoint chains hash the endpoint's
``ip:port`` in as well. Names must match a real node's so that rules can be diffed against it
(iptables limits chain names to 28 characters, hence the truncation).
"""

from __future__ import annotations

import base64
import hashlib

SVC_PREFIX = "KUBE-SVC-"
SVL_PREFIX = "KUBE-SVL-"
EXT_PREFIX = "KUBE-EXT-"
FW_PREFIX = "KUBE-FW-"
SEP_PREFIX = "KUBE-SEP-"
SERVICE_CHAIN_PREFIXES = (SVC_PREFIX, SVL_PREFIX, EXT_PREFIX, FW_PREFIX, SEP_PREFIX)


def service_port_name(namespace: str, name: str, port_name: str | None) -> str:
    """``ns/name:port``, or ``ns/name`` for an unnamed port (kube-proxy's ServicePortName.String)."""
    return f"{namespace}/{name}:{port_name}" if port_name else f"{namespace}/{name}"


def _hash16(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def port_proto_hash(spn: str, proto: str) -> str:
    return _hash16(spn + proto.lower())


def svc_chain(spn: str, proto: str) -> str:
    return SVC_PREFIX + port_proto_hash(spn, proto)


def svl_chain(spn: str, proto: str) -> str:
    return SVL_PREFIX + port_proto_hash(spn, proto)


def ext_chain(spn: str, proto: str) -> str:
    return EXT_PREFIX + port_proto_hash(spn, proto)


def fw_chain(spn: str, proto: str) -> str:
    return FW_PREFIX + port_proto_hash(spn, proto)


def sep_chain(spn: str, proto: str, endpoint: str) -> str:
    """``endpoint`` is ``ip:port``."""
    return SEP_PREFIX + _hash16(spn + proto.lower() + endpoint)


def is_service_chain(name: str) -> bool:
    """True for the per-service chains kube-proxy owns and may delete when stale."""
    return name.startswith(SERVICE_CHAIN_PREFIXES)
