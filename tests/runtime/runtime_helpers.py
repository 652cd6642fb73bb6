"""Helpers for the runtime's root tests: scratch network namespaces, pod files."""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
import struct
import subprocess

from kins.runtime import socket_in_netns

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def require_root() -> None:
    # These tests must fail, not skip, where they cannot run: CI runs them as root.
    assert os.geteuid() == 0, "runtime tests need root (network, mount and UTS namespaces)"


def ip(*args: str, input: str | None = None) -> None:
    subprocess.run(["ip", *args], check=True, input=input, text=True, capture_output=True)


def loopback_up(netns: str) -> None:
    """`ip link set lo up` without a fork: an ioctl on a socket made inside the namespace."""
    with socket_in_netns(f"/run/netns/{netns}", socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, req + b"\0" * 14)[:18])[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP) + b"\0" * 14)


class Netns:
    """Creates uniquely named `kins-t<random>-N` namespaces and deletes them all at the end."""

    def __init__(self) -> None:
        self.prefix = f"kins-t{secrets.token_hex(3)}"
        self.names: list[str] = []

    def make(self, count: int = 1) -> list[str]:
        names = [f"{self.prefix}-{len(self.names) + i}" for i in range(count)]
        self.names.extend(names)
        ip("-batch", "-", input="".join(f"netns add {n}\n" for n in names))
        for n in names:
            loopback_up(n)
        return names

    def path(self, name: str) -> str:
        return f"/run/netns/{name}"

    def cleanup(self) -> None:
        if self.names:
            subprocess.run(
                ["ip", "-force", "-batch", "-"],
                input="".join(f"netns del {n}\n" for n in self.names),
                text=True,
                capture_output=True,
                check=False,
            )
        left = [n for n in self.names if os.path.exists(f"/run/netns/{n}")]
        self.names.clear()
        assert not left, f"namespaces left behind: {left}"
