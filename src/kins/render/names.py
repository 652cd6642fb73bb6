"""Deterministic names and MAC addresses for the devices and namespaces a plan describes.

Real clusters pick these at random (flannel's VTEP MAC, the CNI bridge plugin's ``vethXXXXXXXX``).
kins derives them from stable identities instead, so that a plan renders byte for byte the same
every time and a re-apply finds the devices it made before.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

IFNAMSIZ = 15  # longest Linux interface name (IFNAMSIZ - 1)
UNDERLAY_NETNS = "underlay"  # plan-level namespace of the underlay bridge every node's eth0 plugs into
_NETNS_MAX = 48  # plan-level namespace names stay short enough to read in `ip netns`


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(parts).encode()).digest()


def _fmt_mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def hashed_mac(*parts: str) -> str:
    """A locally administered unicast MAC (bit 1 of the first octet set, bit 0 clear)."""
    raw = bytearray(_digest(*parts)[:6])
    raw[0] = (raw[0] & 0xFC) | 0x02
    return _fmt_mac(bytes(raw))


def vtep_mac(cluster: str, node: str) -> str:
    """The node's ``flannel.<vni>`` MAC. flannel draws it at random once and keeps it in the
    node annotation; a hash of cluster and node is equally stable and needs no storage."""
    return hashed_mac("vtep", cluster, node)


def underlay_mac(cluster: str, node: str) -> str:
    """MAC of the node's ``eth0`` on the underlay."""
    return hashed_mac("eth0", cluster, node)


def bridge_mac(cluster: str, node: str) -> str:
    """MAC of the pod bridge, in Docker's ``02:42:xx:xx:xx:xx`` form. It is set explicitly so the
    bridge does not take over a port's MAC as pods come and go."""
    return _fmt_mac(b"\x02\x42" + _digest("bridge", cluster, node)[:4])


def pod_mac(ip: str) -> str:
    """The pod's ``eth0`` MAC as Docker derives it: ``02:42`` followed by the four IPv4 octets
    (172.30.76.2 -> 02:42:ac:1e:4c:02). Unique because pod IPs are."""
    return _fmt_mac(b"\x02\x42" + ipaddress.IPv4Address(ip).packed)


def host_veth_name(pod_key: str) -> str:
    """Host end of a pod's veth pair: ``veth`` + 8 hex digits, the CNI bridge plugin's shape."""
    return "veth" + hashlib.sha256(pod_key.encode()).hexdigest()[:8]


def host_veth_mac(pod_key: str) -> str:
    return hashed_mac("veth", pod_key)


def node_netns(node: str) -> str:
    """Plan-level namespace name of a node (the kernel layer adds the cluster prefix)."""
    return f"node-{node}"


def underlay_port_name(node: str) -> str:
    """The underlay-side end of a node's ``eth0`` veth, on the underlay bridge: ``n-<node>``, or
    ``n-`` and a hash of the name when that would not fit in an interface name."""
    name = f"n-{node}"
    if len(name) <= IFNAMSIZ:
        return name
    return "n-" + hashlib.sha256(node.encode()).hexdigest()[: IFNAMSIZ - 2]


def pod_netns(pod_key: str) -> str:
    """Plan-level namespace name of a pod (the kernel layer adds the cluster prefix).

    ``pod-<ns>-<name>`` when that is unambiguous and short: a namespace name without ``-`` ends
    at the first ``-``, so two pods cannot map to the same name. Otherwise a readable prefix
    and 8 hex digits of the key's hash keep it unique and short.
    """
    ns, _, name = pod_key.partition("/")
    plain = f"pod-{ns}-{name}"
    if "-" not in ns and len(plain) <= _NETNS_MAX:
        return plain
    head = re.sub(r"-+$", "", plain[: _NETNS_MAX - 9])
    return f"{head}-{hashlib.sha256(pod_key.encode()).hexdigest()[:8]}"
