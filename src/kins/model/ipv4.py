"""IPv4 addresses as integers: the simulator compares and masks millions of them."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

MASKS = tuple(((0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF) for n in range(33))


@lru_cache(maxsize=1 << 16)
def ip_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


@lru_cache(maxsize=1 << 16)  # traces print the same few addresses over and over
def int_ip(value: int) -> str:
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


@lru_cache(maxsize=1 << 12)  # a view asks for its nodes' pod subnets per trace
def net_int(text: str) -> tuple[int, int]:
    """``"10.0.0.0/8"`` (or a bare address, /32; or ``default``) -> (network as int, prefix length)."""
    if text == "default":
        return 0, 0
    net = ipaddress.IPv4Network(text, strict=False)
    return int(net.network_address), net.prefixlen


def is_ip(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True
