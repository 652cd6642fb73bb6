"""A pod's network as the kubelet makes it: its address (CNI host-local style, the lowest free of
the node's pod subnet), its namespace and veth through the kernel layer, and its resolv.conf and
hosts files; and their removal."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from ...api.config import ClusterConfig, NodeConfig
from ...api.core import Node, Pod
from ...control.ipam import allocate_pod_ip
from ...kernel import netns as kns
from ...kernel.apply import apply_pod, remove_pod
from ...kernel.ledger import Ledger
from ...kernel.netlink import ApplyReport
from ...model.netstate import NodePlan, PodPlan
from ...render.cluster import nodes_config
from ...render.names import pod_netns
from ...render.podnet import render_node_network, render_pod
from ...runtime.runtime import pod_dir_name
from ...store.base import Store

log = logging.getLogger("kins.kubelet")


class PodNetwork:
    """Pods' addresses and namespaces on every node; kernel writes hold ``kernel_lock``."""

    def __init__(self, cfg: ClusterConfig, store: Store, state_dir: Path, kernel_lock: threading.Lock) -> None:
        self.cfg = cfg
        self.store = store
        self.state_dir = state_dir
        self.kernel_lock = kernel_lock
        self._lock = threading.Lock()  # guards the addresses held
        self._node_plans: dict[str, NodePlan] = {}
        self._ips: dict[str, set[str]] = {}  # node -> addresses held
        self._ips_loaded: set[str] = set()

    def config(self) -> ClusterConfig:
        """The cluster's configuration with the nodes the API has now."""
        nodes = [n for n in self.store.list("Node")[0] if isinstance(n, Node)]
        return nodes_config(self.cfg, nodes)

    # --- addresses ----------------------------------------------------------------------------

    def allocate_ip(self, cfg: ClusterConfig, node: str, pod: Pod) -> str:
        """The pod's address: the one its status holds, else the lowest free of the node's."""
        held = pod.status.podIP if pod.status else None
        cidr = cfg.node(node).podCIDR or ""
        with self._lock:
            used = self._used_ips(node)
            if held and held in used and held != "":
                return held
            ip = held or allocate_pod_ip(cidr, used, node)
            used.add(ip)
            return ip

    def hold(self, node: str, ip: str) -> None:
        """``ip`` is taken on ``node`` (by a pod that runs from before)."""
        with self._lock:
            self._used_ips(node).add(ip)

    def release(self, node: str, ip: str) -> None:
        with self._lock:
            self._ips.get(node, set()).discard(ip)

    def _used_ips(self, node: str) -> set[str]:
        """Addresses held on ``node``: loaded from the pods' status once, then kept. Lock held."""
        used = self._ips.setdefault(node, set())
        if node not in self._ips_loaded:
            self._ips_loaded.add(node)
            for p in self.store.list("Pod")[0]:
                if isinstance(p, Pod) and p.spec.nodeName == node and p.status and p.status.podIP:
                    used.add(p.status.podIP)
        return used

    # --- namespaces ---------------------------------------------------------------------------

    def plan(self, cfg: ClusterConfig, node: NodeConfig, pod: Pod) -> PodPlan:
        """The pod's namespace as the kernel layer makes it (``pod.status.podIP`` set)."""
        return render_pod(cfg, node, pod)

    def namespace(self, plan: PodPlan) -> str:
        """The kernel's name of the pod's namespace."""
        return kns.pod_ns(self.cfg.name, plan.netns)

    def namespace_of(self, key: str) -> str:
        return kns.pod_ns(self.cfg.name, pod_netns(key))

    def apply(self, cfg: ClusterConfig, node: str, plan: PodPlan) -> ApplyReport:
        """Make (or repair) the pod's namespace and veth; KernelError if the node's network is
        not made yet."""
        with self.kernel_lock:
            return apply_pod(self.cfg.name, self._node_plan(cfg, node), plan, self.state_dir)

    def repair(self, key: str, node: str, pod: Pod) -> None:
        """Heal the link of a pod that runs from before if something broke it; a no-op when it
        is right."""
        cfg = self.config()
        report = self.apply(cfg, node, self.plan(cfg, cfg.node(node), pod))
        if report.changes:
            log.info("%s: pod network repaired: %s", key, report.changes)

    def write_files(self, key: str, plan: PodPlan) -> tuple[Path, Path]:
        """The pod's resolv.conf and hosts files (the sandbox mounts them)."""
        pdir = self.state_dir / "pods" / pod_dir_name(key)
        pdir.mkdir(parents=True, exist_ok=True)
        resolv, hosts = pdir / "resolv.conf", pdir / "hosts"
        resolv.write_text(plan.resolv_conf)
        hosts.write_text(plan.hosts_file)
        return resolv, hosts

    def remove(self, node: str, netns: str) -> None:
        """Remove a pod's namespace and veth (``netns``: the kernel's name)."""
        with self.kernel_lock:
            remove_pod(self.cfg.name, node, netns[len(kns.cluster_prefix(self.cfg.name)) :], self.state_dir)

    def wanted(self, pods: Iterable[Pod]) -> set[str]:
        """The namespaces ``pods`` need (those bound to a node)."""
        return {self.namespace_of(p.key) for p in pods if p.spec.nodeName}

    def remove_unclaimed(
        self, wanted: set[str], claimed: Callable[[str], bool], nodes: frozenset[str] | None = None
    ) -> None:
        """Remove the pod namespaces the kernel layer made that neither ``wanted`` names nor
        ``claimed`` (asked at the time, as pods may start meanwhile) says a pod holds; only on
        ``nodes`` when given (other nodes' kubelets look after theirs)."""
        led = Ledger.load(self.cfg.name, self.state_dir)
        prefix = kns.cluster_prefix(self.cfg.name)
        for name, entry in sorted(led.netns.items()):
            if entry.kind != "pod" or name in wanted or not entry.owner:
                continue
            if nodes is not None and entry.owner not in nodes:
                continue
            if claimed(name):
                continue
            log.info("removing pod namespace %s: no pod claims it", name)
            with self.kernel_lock:
                remove_pod(self.cfg.name, entry.owner, name[len(prefix) :], self.state_dir)

    def _node_plan(self, cfg: ClusterConfig, node: str) -> NodePlan:
        plan = self._node_plans.get(node)
        if plan is None:
            plan = render_node_network(cfg, node, [])
            self._node_plans[node] = plan
        return plan
