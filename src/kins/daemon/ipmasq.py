"""flanneld's ``--ip-masq``: pods reach addresses outside the pod network from their node's IP.

Outside hosts (the database of the article's appendix A, reached through a selector-less
Service) have no route to the pod network, so a pod's packet to them must leave its node
masqueraded, as flanneld's ``FLANNEL-POSTRTG`` chain does. Pod-to-pod traffic, traffic kube-proxy
already marked for SNAT and outside traffic to this node's pods (``externalTrafficPolicy:
Local`` keeps the client's address) are left alone. flanneld re-checks its rules every 5 s
(``--iptables-resync``); so does ``run``.
"""

from __future__ import annotations

import logging
import threading

from ..api.config import ClusterConfig
from ..api.core import Node
from ..kernel import iptables as ipt
from ..kernel import netns as kns
from ..store.base import Store

log = logging.getLogger("kins.ipmasq")

CHAIN = "FLANNEL-POSTRTG"
COMMENT = "flanneld masq"
RESYNC = 5.0


def masq_rules(network: str, subnet: str, mark: str) -> str:
    """The ``iptables-restore --noflush`` payload of flanneld's masquerade chain for one node."""
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


def ensure(netns: str, text: str) -> None:
    """Write the chain (a full rewrite of it, nothing else) and the jump from POSTROUTING. The
    chain returns kube-proxy-marked packets first, so its place next to KUBE-POSTROUTING does
    not matter."""
    ipt.restore(netns, text, noflush=True, counters=False)
    ipt.ensure_jumps(netns, [("nat", "POSTROUTING", ["-m", "comment", "--comment", COMMENT, "-j", CHAIN])])


class IPMasq:
    def __init__(self, cfg: ClusterConfig, store: Store, kernel_lock: threading.Lock) -> None:
        self.cfg = cfg
        self.store = store
        self.lock = kernel_lock

    def sync(self) -> None:
        nodes = [n for n in self.store.list("Node")[0] if isinstance(n, Node)]
        for n in nodes:
            if not n.spec.podCIDR:
                continue
            netns = kns.node_ns(self.cfg.name, n.name)
            if not kns.exists(netns):
                continue
            text = masq_rules(self.cfg.podNetwork.cidr, n.spec.podCIDR, self.cfg.masquerade_mark)
            with self.lock:
                ensure(netns, text)

    def run(self, stop: threading.Event) -> None:
        with self.store.watch({"Node"}, self.store.resource_version) as w:
            while not stop.is_set():
                try:
                    self.sync()
                except Exception:
                    log.exception("ip-masq sync failed")
                w.next(timeout=RESYNC)
                w.drain()
