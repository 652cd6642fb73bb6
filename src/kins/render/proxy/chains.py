"""kube-proxy's iptables chain names.

Per-service chains are ``KUBE-SVC-``/``KUBE-SVL-``/``KUBE-EXT-``/``KUBE-FW-`` plus the first 16
characters of base32(sha256(service port name + protocol)); endpoint chains hash the endpoint's
``ip:port`` in as well. Names must match a real node's so that rules can be diffed against it
(iptables limits chain names to 28 characters, hence the truncation).
"""

from __future__ import annotations

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


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# Two base32 digits per 10 bits: the 80 bits behind the first 16 digits take 8 lookups.
_B32_PAIRS = [a + b for a in _B32 for b in _B32]


def _hash16(text: str) -> str:
    """The first 16 base32 digits of sha256(text), as kube-proxy names chains.

    base64.b32encode is pure Python and encodes the whole digest; only 80 bits are needed, and a
    10,000-Service ruleset hashes 100,000 endpoint chains."""
    n = int.from_bytes(hashlib.sha256(text.encode()).digest()[:10], "big")
    p = _B32_PAIRS
    return (
        p[n >> 70]
        + p[(n >> 60) & 1023]
        + p[(n >> 50) & 1023]
        + p[(n >> 40) & 1023]
        + p[(n >> 30) & 1023]
        + p[(n >> 20) & 1023]
        + p[(n >> 10) & 1023]
        + p[n & 1023]
    )


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
