"""kube-router's network-policy controller: each node's filter rules and ipsets follow the
NetworkPolicies, pods and namespaces.

On a change every node's layer is rendered again (``render/netpol``) and applied only where it
changed: sets through ``ipset restore`` (swapped in whole), rules through ``iptables-restore
--noflush`` (only the policy layer's chains), the jumps from INPUT/FORWARD/OUTPUT kept first.
Pod churn and label changes usually change set members only, so the rules are left alone.
Stale chains and sets are deleted after the rules that used them are gone; when the last
policy goes (or the cluster's provider is ``none``) the whole layer is removed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .._errors import KernelError
from ..api.config import ClusterConfig
from ..api.core import Node
from ..kernel import ipset as kipset
from ..kernel import iptables as ipt
from ..kernel import netns as kns
from ..model.ipset import IPSet
from ..render.cluster import PolicyState, nodes_config, policy_state
from ..render.netpol import names as nn
from ..render.netpol.iptables import PolicyRender, top_jumps
from ..store.base import Store, WatchEvent
from .loop import NotYet, Reconciler
from .policylog import PolicyLogForwarder, PolicyView, Post

log = logging.getLogger("kins.netpol")

FULL_SYNC_PERIOD = 300.0
OWN_CHAIN_PREFIXES = (nn.POD_FW_PREFIX, nn.POLICY_PREFIX, "KUBE-ROUTER-")
OWN_SET_PREFIXES = (nn.SRC_PREFIX, nn.DST_PREFIX)


@dataclass
class NodePolicy:
    chain_rules: dict[str, list[str]] = field(default_factory=dict)  # as last written
    sets: dict[str, IPSet] = field(default_factory=dict)
    chains: set[str] = field(default_factory=set)
    adopted: bool = False  # what the kernel held was read once (after a restart)
    last_full: float = 0.0
    rule_syncs: int = 0
    jumps_ensured: bool = False
    full_syncs: int = 0


class PolicyAgent(Reconciler):
    """kube-router's policy controller for the nodes in ``only`` (every node when None)."""

    name = "policy"
    kinds = frozenset({"Node", "Pod", "Namespace", "NetworkPolicy", "ClusterNetworkPolicy"})
    resync = FULL_SYNC_PERIOD
    after = ("overlay", "proxy")  # its jumps go in front of kube-proxy's

    def __init__(
        self, cfg: ClusterConfig, store: Store, only: frozenset[str] | None = None, post_log: Post | None = None
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.only = only
        self.nodes: dict[str, NodePolicy] = {}
        self.view = PolicyView()
        self.phases: dict[str, float] = {}  # seconds of the last sync's phases
        self._state: PolicyState | None = None
        self._post_log = post_log
        self._logs: dict[str, PolicyLogForwarder] = {}
        self._no_log: set[str] = set()
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="kins-policy")

    def sync(self, changes: Sequence[WatchEvent] = ()) -> None:
        nodes = [n for n in self.store.list("Node")[0] if isinstance(n, Node)]
        cfg = nodes_config(self.cfg, nodes)
        names = [n.name for n in cfg.nodes if n.ip and n.podCIDR and (self.only is None or n.name in self.only)]
        for gone in set(self.nodes) - set(names):
            self.nodes.pop(gone, None)
            fwd = self._logs.pop(gone, None)
            if fwd is not None:
                fwd.close()
        t0 = time.perf_counter()
        enforcing = cfg.policy_provider == "kube-router" and (
            self.store.list("NetworkPolicy")[0] or self.store.list("ClusterNetworkPolicy")[0]
        )
        if not enforcing:  # most clusters: a pod's every change need not be resolved against nothing
            self._state = None
            renders = {node: PolicyRender(node, [], {}) for node in names}
            t1 = t2 = time.perf_counter()
        else:
            state = self._state = policy_state(self.store, self._state)
            self.view.update(state.cluster.pods, state.policies, state.cnps)
            t1 = time.perf_counter()
            renders = {node: state.render(cfg, node) for node in names}
            t2 = time.perf_counter()
        errors = [e for e in self._pool.map(lambda n: self._apply(n, renders[n]), names) if e is not None]
        self.phases = {"resolve": t1 - t0, "render": t2 - t1, "apply": time.perf_counter() - t2}
        if errors:
            raise errors[0]

    def _apply(self, node: str, r: PolicyRender) -> Exception | None:
        try:
            self._apply_node(node, r)
        except Exception as e:  # surfaced to the loop (back-off) after every node had its turn
            return e
        return None

    def _apply_node(self, node: str, r: PolicyRender) -> None:
        netns = kns.node_ns(self.cfg.name, node)
        if not kns.exists(netns):
            raise NotYet(f"no namespace yet for node {node}")
        st = self.nodes.setdefault(node, NodePolicy())
        if self._post_log is not None and node not in self._logs and node not in self._no_log and not r.empty:
            try:
                self._logs[node] = PolicyLogForwarder(netns, node, self.view, self._post_log)
            except KernelError as e:  # the log is a view: enforcement goes on without it
                log.warning("node %s: denied packets will not be logged: %s", node, e)
                self._no_log.add(node)
        self._apply_to(netns, st, r)

    def _apply_to(self, netns: str, st: NodePolicy, r: PolicyRender) -> None:
        """Bring one namespace's policy layer to ``r``."""
        if not st.adopted:
            self._adopt(netns, st)
        # Everything is written the first time, after a failure, and when the periodic check
        # finds the kernel missing a chain or set kins wrote (a flushed table, a destroyed set:
        # kube-proxy's canary idea); otherwise only what changed.
        full = not st.chain_rules
        if not full and time.monotonic() - st.last_full > FULL_SYNC_PERIOD:
            full = not self._kernel_holds(netns, st)
            st.last_full = time.monotonic()
        if r.empty:
            if st.chains or st.sets:
                self._remove(netns, st)
                log.info("%s: network policy layer removed", netns)
        else:
            changed_sets = [s for name, s in r.ipsets.items() if full or st.sets.get(name) != s]
            # sets first: new rules must find their sets, and changed members apply atomically
            if changed_sets:
                kipset.restore(netns, changed_sets, None if full else st.sets)
            # Only the chains whose rules changed are written (a declared chain is flushed and
            # refilled, the others stay as they are); stale ones are flushed and deleted in the
            # same transaction that drops their last jumps.
            changed = [c for c, rules in r.chains.items() if full or st.chain_rules.get(c) != rules]
            stale = sorted(c for c in st.chains if c not in r.chains and c.startswith(OWN_CHAIN_PREFIXES))
            if changed or stale:
                lines = ["*filter", *(f":{c} - [0:0]" for c in (*changed, *stale))]
                for c in changed:
                    lines += r.chains[c]
                lines += [f"-X {c}" for c in stale]
                lines.append("COMMIT")
                try:
                    ipt.restore(netns, "\n".join(lines) + "\n", noflush=True, counters=False)
                except Exception:
                    st.chain_rules = {}  # the next sync writes every chain
                    raise
                st.chain_rules = dict(r.chains)
                st.chains = set(r.chains)
                st.rule_syncs += 1
            if full or not st.jumps_ensured:  # kube-router checks their place on its full syncs
                for table, chain, args in r.jumps:
                    ipt.ensure_first(netns, table, chain, args)
                st.jumps_ensured = True
            gone_sets = [name for name in st.sets if name not in r.ipsets]
            kipset.destroy(netns, gone_sets)
            st.sets = dict(r.ipsets)
            if full:
                st.last_full = time.monotonic()
                st.full_syncs += 1

    @staticmethod
    def _kernel_holds(netns: str, st: NodePolicy) -> bool:
        """Whether every chain and set last written is still in the kernel, and the jumps too."""
        saved = ipt.save(netns, "filter")
        have = ipt.chains(saved).get("filter", set())
        if not st.chains <= have or not all(f"-j {c}" in saved for c in nn.TOP_CHAINS.values()):
            return False
        return set(st.sets) <= set(kipset.list_names(netns))

    def _adopt(self, netns: str, st: NodePolicy) -> None:
        """After a restart: what the kernel holds of ours, so stale chains and sets go."""
        chains = ipt.chains(ipt.save(netns, "filter")).get("filter", set())
        st.chains = {c for c in chains if c.startswith(OWN_CHAIN_PREFIXES)}
        st.sets = {n: IPSet(n) for n in kipset.list_names(netns) if n.startswith(OWN_SET_PREFIXES)}
        st.adopted = True

    def _remove(self, netns: str, st: NodePolicy) -> None:
        for table, chain, args in top_jumps():
            ipt.delete_rules(netns, table, chain, args)
        ipt.delete_chains(netns, "filter", st.chains)
        kipset.destroy(netns, st.sets)
        st.chains, st.sets, st.chain_rules, st.jumps_ensured = set(), {}, {}, False

    def close(self) -> None:
        for fwd in self._logs.values():
            fwd.close()
        self._logs.clear()
        self._pool.shutdown(wait=False)
