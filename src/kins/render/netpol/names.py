"""kube-router's chain and ipset names: ``PREFIX`` + the first 16 characters of the base32
SHA-256 of the identity string, as ``networkPolicyChainName`` and friends compute them.

kube-router folds a per-sync version (a timestamp) into the chain names, so every full sync
renames every chain. kins names chains by identity alone (version ""): a pod's chain keeps its
name across syncs, and pod churn and label changes reach the kernel as set members only.
"""

from __future__ import annotations

import base64
import functools
import hashlib

FAMILY = "IPv4"

POD_FW_PREFIX = "KUBE-POD-FW-"
POLICY_PREFIX = "KUBE-NWPLCY-"
SRC_PREFIX = "KUBE-SRC-"
DST_PREFIX = "KUBE-DST-"

INPUT_CHAIN = "KUBE-ROUTER-INPUT"
FORWARD_CHAIN = "KUBE-ROUTER-FORWARD"
OUTPUT_CHAIN = "KUBE-ROUTER-OUTPUT"
DEFAULT_CHAIN = "KUBE-NWPLCY-DEFAULT"
COMMON_CHAIN = "KUBE-NWPLCY-COMMON"
TOP_CHAINS = {"INPUT": INPUT_CHAIN, "FORWARD": FORWARD_CHAIN, "OUTPUT": OUTPUT_CHAIN}


@functools.lru_cache(maxsize=1 << 16)
def b32(text: str) -> str:
    """Remembered: a node's render names every chain and set again on each sync."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def pod_chain(namespace: str, pod: str, version: str = "") -> str:
    return POD_FW_PREFIX + b32(namespace + pod + version)


def policy_chain(namespace: str, policy: str, version: str = "") -> str:
    return POLICY_PREFIX + b32(namespace + policy + version + FAMILY)


CNP_PREFIX = "KUBE-CNP-"


def policy_egress_chain(namespace: str, policy: str) -> str:
    """The egress rules' chain of a policy of both types (a policy name holds no '/')."""
    return policy_chain(namespace, f"{policy}/egress")


def cnp_chain(name: str, direction: str) -> str:
    return CNP_PREFIX + b32(f"clusternetworkpolicy/{name}{direction}{FAMILY}")


def target_src_set(namespace: str, policy: str) -> str:
    """The policy's selected pods, matched as sources (its egress rules)."""
    return SRC_PREFIX + b32(namespace + policy + FAMILY)


def target_dst_set(namespace: str, policy: str) -> str:
    """The policy's selected pods, matched as destinations (its ingress rules)."""
    return DST_PREFIX + b32(namespace + policy + FAMILY)


def rule_pod_set(namespace: str, policy: str, direction: str, rule: int) -> str:
    """An ingress rule's source pods (KUBE-SRC-) or an egress rule's destination pods (KUBE-DST-)."""
    prefix = SRC_PREFIX if direction == "ingress" else DST_PREFIX
    return prefix + b32(f"{namespace}{policy}{direction}rule{rule}{FAMILY}pod")


def rule_block_set(namespace: str, policy: str, direction: str, rule: int, peer: int | None = None) -> str:
    """A rule's ipBlock CIDRs (``hash:net``). ``peer`` numbers one ipBlock of several when a
    rule's blocks with ``except`` cannot share one set (kube-router always shares one, which
    lets one block's ``except`` hide another block's addresses)."""
    prefix = SRC_PREFIX if direction == "ingress" else DST_PREFIX
    tail = "" if peer is None else f"peer{peer}"
    return prefix + b32(f"{namespace}{policy}{direction}rule{rule}{FAMILY}ipblock{tail}")


def named_port_set(namespace: str, policy: str, direction: str, rule: int, index: int) -> str:
    return DST_PREFIX + b32(f"{namespace}{policy}{direction}rule{rule}{index}{FAMILY}namedport")


def rule_uuid(chain: str, args: list[str]) -> str:
    """The suffix kube-router appends to its positioned rules' comments (``addUUIDForRuleSpec``)."""
    return b32(chain + "".join(args))
