"""flanneld's ``--ip-masq``: pods reach addresses outside the pod network from their node's IP.

Outside hosts (the database of the article's appendix A, reached through a selector-less
Service) have no route to the pod network, so a pod's packet to them must leave its node
masqueraded, as flanneld's ``FLANNEL-POSTRTG`` chain does. Pod-to-pod traffic, traffic kube-proxy
already marked for SNAT and outside traffic to this node's pods (``externalTrafficPolicy:
Local`` keeps the client's address) are left alone. flanneld re-checks its rules every 5 s
(``--iptables-resync``); so does this agent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..api.config import ClusterConfig
from ..api.core import Node
from ..kernel import iptables as ipt
from ..kernel import netns as kns
from ..render.overlay.ipmasq import CHAIN, JUMP_ARGS, masq_rules
from ..store.base import Store, WatchEvent
from .loop import NotYet, Reconciler

log = logging.getLogger("kins.ipmasq")

RESYNC = 5.0


def ensure(netns: str, text: str) -> None:
    """Write the chain (a full rewrite of it, nothing else) and append the jump to POSTROUTING,
    as flanneld does (kube-proxy's own jump stays first)."""
    ipt.restore(netns, text, noflush=True, counters=False)
    ipt.ensure_appended(netns, "nat", "POSTROUTING", JUMP_ARGS)


def _chain_intact(netns: str, text: str) -> bool:
    """The chain holds exactly the rules of ``text`` and POSTROUTING still jumps to it."""
    want = [ln for ln in text.splitlines() if ln.startswith("-A ")]
    try:
        have = ipt.save(netns, table="nat")
    except Exception:
        return False
    lines = have.splitlines()
    rules = [ln for ln in lines if ln.startswith(f"-A {CHAIN} ")]
    jumped = any(ln.startswith("-A POSTROUTING ") and f"-j {CHAIN}" in ln for ln in lines)
    return jumped and len(rules) == len(want)


class IPMasq(Reconciler):
    """flanneld's masquerade chain on the nodes in ``only`` (every node when None)."""

    name = "ipmasq"
    kinds = frozenset({"Node"})
    resync = RESYNC
    after = ("overlay",)

    def __init__(self, cfg: ClusterConfig, store: Store, only: frozenset[str] | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.only = only
        self.applied: dict[str, str] = {}

    def sync(self, changes: Sequence[WatchEvent] = ()) -> None:
        nodes = [n for n in self.store.list("Node")[0] if isinstance(n, Node)]
        missing: list[str] = []
        for n in nodes:
            if not n.spec.podCIDR or not (self.only is None or n.name in self.only):
                continue
            netns = kns.node_ns(self.cfg.name, n.name)
            if not kns.exists(netns):
                missing.append(n.name)
                continue
            text = masq_rules(self.cfg.podNetwork.cidr, n.spec.podCIDR, self.cfg.masquerade_mark)
            # Like flanneld's periodic check: read the chain (no commit) and rewrite it only when
            # it is not what it should be; a rewrite is an nf_tables commit on the node.
            if self.applied.get(n.name) == text and _chain_intact(netns, text):
                continue
            # No kernel lock: an iptables-restore is one transaction, and no other writer
            # touches this chain (kube-proxy's restores run beside it just the same).
            ensure(netns, text)
            self.applied[n.name] = text
        if missing:
            raise NotYet(f"no namespace yet for node {', '.join(missing)}")
