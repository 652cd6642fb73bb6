"""flanneld's ``--ip-masq`` rules for one node (pure): the ``FLANNEL-POSTRTG`` chain.

Pods reach addresses outside the pod network (outside hosts such as the article's database)
from their node's address; pod-to-pod traffic, traffic kube-proxy already marked for SNAT and
outside traffic to this node's pods are left alone. flanneld appends the jump to POSTROUTING,
after kube-proxy's (which kube-proxy inserts at the top).
"""

from __future__ import annotations

CHAIN = "FLANNEL-POSTRTG"
COMMENT = "flanneld masq"
JUMP_ARGS = ["-m", "comment", "--comment", COMMENT, "-j", CHAIN]


def masq_rules(network: str, subnet: str, mark: str) -> str:
    """The ``iptables-restore --noflush`` payload of the chain (it flushes and rewrites the chain)."""
    c = f'-m comment --comment "{COMMENT}"'
    rules = [
        f"-A {CHAIN} -m mark --mark {mark}/{mark} {c} -j RETURN",
        f"-A {CHAIN} -s {subnet} -d {network} {c} -j RETURN",
        f"-A {CHAIN} -s {network} -d {subnet} {c} -j RETURN",
        f"-A {CHAIN} ! -s {network} -d {subnet} {c} -j RETURN",
        f"-A {CHAIN} -s {network} ! -d 224.0.0.0/4 {c} -j MASQUERADE --random-fully",
        f"-A {CHAIN} ! -s {network} -d {network} {c} -j MASQUERADE --random-fully",
    ]
    return "\n".join(["*nat", f":{CHAIN} - [0:0]", *rules, "COMMIT", ""])


def masq_with_jump(network: str, subnet: str, mark: str) -> str:
    """The chain plus flanneld's appended POSTROUTING jump, for rendering a node's full ruleset."""
    text = masq_rules(network, subnet, mark)
    jump = f'-A POSTROUTING -m comment --comment "{COMMENT}" -j {CHAIN}'
    return text.replace("COMMIT\n", f"{jump}\nCOMMIT\n")
