"""Make NodePlans real: namespaces, the underlay, node/host/pod devices, tables, sysctls, iptables.

Physical layout of cluster C:

- ``kins-C-underlay``: bridge ``br0``, the L2 segment every node and host ``eth0`` plugs into
  (``n-<node>`` / ``h-<host>`` ports). No uplink, so nothing leaves the cluster's namespaces.
- ``kins-C-node-<node>``: the node plan (eth0, docker0, flannel.1, routes, neigh, fdb, sysctls,
  kube-proxy's iptables).
- ``kins-C-host-<host>``: an outside machine on the underlay.
- ``kins-C-pod-...``: a pod's ``lo`` and ``eth0``; the other end of the veth sits on the node's
  bridge with hairpin on.

Each apply dumps what is there, diffs it against the plan and changes only the difference, so a
repeated apply is a no-op and never flaps a link. For the overlay, entries are added neigh -> fdb
-> route (route last, as flannel does, so the kernel never ARPs for the onlink gateway) and stale
ones are removed in the reverse order.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import ipaddress
import os
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from .._errors import KernelError
from ..api.config import ClusterConfig
from ..model.netstate import Addr, Link, NodePlan, PodPlan, Sysctl
from . import iptables as _ipt
from . import netns as _ns
from .ledger import Ledger
from .netlink import OWNED_KINDS, ApplyReport, LinkState, Netlink, Session

UNDERLAY_BRIDGE = "br0"
UPLINK = "eth0"
_LO = Link("lo", "loopback")
_KIND_ORDER = {"bridge": 0, "vxlan": 1, "dummy": 2, "veth": 3}

__all__ = [
    "ApplyReport",
    "apply_cluster",
    "apply_host",
    "apply_node",
    "apply_pod",
    "ensure_underlay",
    "host_plan",
    "remove_node",
    "remove_pod",
]


# --- small helpers ---------------------------------------------------------------------------


@contextlib.contextmanager
def _session(session: Session | None) -> Iterator[Session]:
    if session is not None:
        yield session
        return
    with Session() as s:
        yield s


# kins clusters are IPv4. With IPv6 off before any device exists, the kernel adds no link-local
# addresses and sends no MLD/router solicitations, so a namespace's state depends only on the plan.
_NS_SYSCTLS = (Sysctl("net.ipv6.conf.all.disable_ipv6", "1"), Sysctl("net.ipv6.conf.default.disable_ipv6", "1"))


def _ensure_ns(led: Ledger, name: str, kind: str, owner: str | None, report: ApplyReport) -> None:
    led.add_netns(name, kind, owner)  # recorded before it exists: teardown can never miss it
    if _ns.create(name):
        report.note(name, "netns add")
        apply_sysctls(name, _NS_SYSCTLS, report)


def _pair_ok(a: Netlink, la: LinkState, b: Netlink, lb: LinkState) -> str | None:
    if la.kind != "veth" or lb.kind != "veth":
        return f"kind: {la.kind}/{lb.kind} vs veth/veth"
    if la.link != lb.index or lb.link != la.index:
        return f"peer: {a.netns}/{la.name} and {b.netns}/{lb.name} are not one veth pair"
    if (a.netns != b.netns) != (la.link_netnsid is not None):
        return "peer: in the wrong namespace"
    return None


def ensure_veth(sess: Session, ns_a: str, want_a: Link, ns_b: str, want_b: Link, report: ApplyReport) -> str | None:
    """One veth pair, ``want_a`` in ``ns_a`` and ``want_b`` in ``ns_b``, each end configured.

    The pair is created from ``ns_a`` with the peer born directly in ``ns_b`` under its final
    name (no rename, no window in which it sits in the wrong namespace). Returns why an existing
    pair had to be recreated, if it had to.
    """
    a, b = sess(ns_a), sess(ns_b)
    la, lb = a.links().get(want_a.name), b.links().get(want_b.name)
    reason: str | None = None
    if la is not None and lb is not None:
        reason = _pair_ok(a, la, b, lb)
        if reason is None:
            a.configure_link(want_a, report)
            b.configure_link(want_b, report)
            return None
    elif la is not None or lb is not None:
        reason = "peer: missing"
    if la is not None:
        a.delete_link(want_a.name)
        report.note(ns_a, f"link del {want_a.name} ({reason})")
    if b.refresh(want_b.name) is not None:
        b.delete_link(want_b.name)
        report.note(ns_b, f"link del {want_b.name} ({reason})")
    peer_ns = ns_b if ns_b != ns_a else None
    a.create_link(replace(want_a, kind="veth", peer=want_b.name), peer_netns=peer_ns, peer=want_b)
    b.refresh(want_b.name)
    report.note(ns_a, f"link add {want_a.name} type veth peer {want_b.name} netns {ns_b}")
    a.configure_link(want_a, report)
    b.configure_link(want_b, report)
    return reason


_br_netfilter_tried = False


def _sysctl_path(key: str) -> str:
    if "/" in key:
        return "/proc/sys/" + key.strip("/")
    parts = key.split(".")
    # net.ipv4.conf.<dev>.<leaf>: device names may contain dots (flannel.1)
    if len(parts) > 5 and parts[0] == "net" and parts[2] in ("conf", "neigh"):
        parts = [*parts[:3], ".".join(parts[3:-1]), parts[-1]]
    return "/proc/sys/" + "/".join(parts)


def _write_sysctls(netns: str, items: list[tuple[str, str, str]]) -> tuple[list[str], list[tuple[str, str]]]:
    """Inside the namespace: (bridge keys that do not exist, keys written)."""
    missing = [k for k, p, _ in items if k.startswith("net.bridge.") and not os.path.exists(p)]
    if missing:
        return missing, []
    written = []
    for key, p, value in items:
        try:
            with open(p) as f:
                cur = f.read()
        except FileNotFoundError as e:
            raise KernelError("sysctl", netns, f"{key}: no such key") from e
        if cur.split() != value.split():
            with open(p, "w") as f:
                f.write(value)
            written.append((key, value))
    return [], written


def apply_sysctls(netns: str, sysctls: Iterable[Sysctl], report: ApplyReport) -> None:
    """Write sysctls through /proc/sys from a thread inside ``netns`` (never the host's values).

    ``net.bridge.*`` needs br_netfilter: the module is loaded once when those keys are missing.
    Since Linux 5.3 its sysctls are per namespace, so setting them here leaves the host alone.
    """
    global _br_netfilter_tried
    items = [(s.key, _sysctl_path(s.key), str(s.value)) for s in sysctls]
    if not items:
        return
    missing, written = _ns.run_in(netns, lambda: _write_sysctls(netns, items))
    if missing and not _br_netfilter_tried:
        _br_netfilter_tried = True
        subprocess.run(["modprobe", "br_netfilter"], capture_output=True, check=False)
        missing, written = _ns.run_in(netns, lambda: _write_sysctls(netns, items))
    if missing:
        raise KernelError("sysctl", netns, f"{missing[0]}: br_netfilter is not loaded and could not be")
    for key, value in written:
        report.note(netns, f"sysctl -w {key}={value}")


def _uplink(plan: NodePlan, mtu: int = 1500) -> Link:
    for link in plan.links:
        if link.name == UPLINK:
            return replace(link, kind="veth", master=None)
    return Link(UPLINK, "veth", mtu=mtu)


def _is_pod_veth(link: Link) -> bool:
    return link.kind == "veth" and link.name != UPLINK and bool(link.peer_netns)


def _pod_eth0(pod: PodPlan) -> Link:
    for link in pod.links:
        if link.kind == "veth":
            return link
    return Link("eth0", "veth", mtu=1500)


def pod_host_link(node: NodePlan, pod: PodPlan) -> Link:
    """The node-side end of a pod's veth: from the node plan if it lists one, else named
    ``veth<8 hex of the pod key>`` on the node's bridge with hairpin on (the CNI bridge's way)."""
    eth0 = _pod_eth0(pod)
    for link in node.links:
        if link.kind == "veth" and (link.peer_netns == pod.netns or (eth0.peer and link.name == eth0.peer)):
            return replace(link, peer=eth0.name)
    bridge = next((link.name for link in node.links if link.kind == "bridge"), None)
    name = eth0.peer or "veth" + hashlib.sha256(pod.key.encode()).hexdigest()[:8]
    return Link(name, "veth", mtu=eth0.mtu, master=bridge, hairpin=True, peer=eth0.name)


# --- machines: nodes and hosts ---------------------------------------------------------------


def _ensure_underlay(cluster: str, led: Ledger, sess: Session, report: ApplyReport) -> str:
    name = _ns.underlay_ns(cluster)
    _ensure_ns(led, name, "underlay", None, report)
    h = sess(name)
    h.configure_link(_LO, report)
    h.ensure_link(Link(UNDERLAY_BRIDGE, "bridge"), report)
    return name


def _apply_machine(
    cluster: str,
    led: Ledger,
    sess: Session,
    netns: str,
    plan: NodePlan,
    port: str,
    report: ApplyReport,
    pods: bool,
    keep_pod_links: bool = False,
) -> None:
    underlay = _ensure_underlay(cluster, led, sess, report)
    h = sess(netns)
    h.configure_link(_LO, report)
    uplink = _uplink(plan)
    ensure_veth(
        sess,
        netns,
        uplink,
        underlay,
        Link(uplink.peer or port, "veth", mtu=uplink.mtu, master=UNDERLAY_BRIDGE),
        report,
    )
    own = [link for link in plan.links if link.name != UPLINK and not _is_pod_veth(link) and link.kind != "loopback"]
    for link in sorted(own, key=lambda lk: _KIND_ORDER.get(lk.kind, 9)):
        if link.kind == "veth":  # both ends in this namespace
            ensure_veth(sess, netns, link, netns, Link(link.peer or f"{link.name}-p", "veth", mtu=link.mtu), report)
        else:
            h.ensure_link(link, report)
    wanted_links = {UPLINK, *(lk.name for lk in own), *(lk.peer for lk in own if lk.kind == "veth" and lk.peer)}

    if pods:
        for pod in plan.pods:
            report.extend(_apply_pod(cluster, led, sess, plan, pod))
            wanted_links.add(pod_host_link(plan, pod).name)

    h.sync_addrs(plan.addrs, {UPLINK, *(lk.name for lk in own)}, report)
    keep_n = h.add_neighs(plan.neighs, report)
    keep_f = h.add_fdb(plan.fdb, report)
    keep_r = h.add_routes(plan.routes, report)
    h.del_stale_routes(keep_r, report)
    h.del_stale_fdb(keep_f, report)
    h.del_stale_neighs(keep_n, report)

    if pods:
        live = {_ns.pod_ns(cluster, p.netns) for p in plan.pods}
        for stale in led.pods_of(plan.name):
            if stale not in live:
                report.extend(_remove_pod(led, sess, stale))
    h.invalidate()
    for name, s in h.links().items():
        if s.kind in OWNED_KINDS and name not in wanted_links:
            if keep_pod_links and s.kind == "veth" and name.startswith("veth"):
                continue  # a pod's port: the kubelet owns it
            h.delete_link(name)
            report.note(netns, f"link del {name} (not in plan)")

    apply_sysctls(netns, plan.sysctls, report)
    if plan.iptables_restore:
        digest = hashlib.sha256(plan.iptables_restore.encode()).hexdigest()
        _ipt.restore(netns, plan.iptables_restore, noflush=True, counters=True)
        inserted = _ipt.ensure_jumps(netns, _ipt.jumps_for(plan.iptables_restore))
        if led.data.get(f"iptables:{netns}") != digest:
            led.set_data(f"iptables:{netns}", digest)
            report.note(netns, f"iptables-restore --noflush ({plan.iptables_restore.count(chr(10))} lines)")
        for table, chain, args in inserted:
            report.note(netns, f"iptables -t {table} -I {chain} {' '.join(args)}")


def apply_node(
    cluster: str,
    plan: NodePlan,
    state_dir: str | Path,
    *,
    session: Session | None = None,
    manage_pods: bool = True,
) -> ApplyReport:
    """Apply one node's plan and its pods; remove pods of this node the plan no longer has.

    With ``manage_pods=False`` the node's own devices and tables are applied and pods (their
    namespaces and bridge ports) are left alone: the live kubelet adds and removes those."""
    t0 = time.perf_counter()
    report = ApplyReport()
    led = Ledger.load(cluster, state_dir)
    netns = _ns.node_ns(cluster, plan.name)
    with _session(session) as sess:
        _ensure_ns(led, netns, "node", plan.name, report)
        _apply_machine(
            cluster,
            led,
            sess,
            netns,
            plan,
            _ns.ifname("n-", plan.name),
            report,
            pods=manage_pods,
            keep_pod_links=not manage_pods,
        )
    report.elapsed = time.perf_counter() - t0
    return report


def ensure_underlay(cluster: str, state_dir: str | Path) -> ApplyReport:
    """The underlay namespace and its bridge (what every node's and host's eth0 plugs into):
    made once before agents that may run side by side plug into it."""
    report = ApplyReport()
    led = Ledger.load(cluster, state_dir)
    with _session(None) as sess:
        _ensure_underlay(cluster, led, sess, report)
    return report


def apply_host(cluster: str, plan: NodePlan, state_dir: str | Path, *, session: Session | None = None) -> ApplyReport:
    """Apply an outside host (see ``host_plan``): its eth0 on the underlay, addresses, routes."""
    t0 = time.perf_counter()
    report = ApplyReport()
    led = Ledger.load(cluster, state_dir)
    netns = _ns.host_ns(cluster, plan.name)
    with _session(session) as sess:
        _ensure_ns(led, netns, "host", plan.name, report)
        _apply_machine(cluster, led, sess, netns, plan, _ns.ifname("h-", plan.name), report, pods=False)
    report.elapsed = time.perf_counter() - t0
    return report


def host_plan(cfg: ClusterConfig, host: str) -> NodePlan:
    """The plan of an outside host: ``eth0`` with its underlay address, nothing else."""
    h = next((x for x in cfg.hosts if x.name == host), None)
    if h is None:
        raise KeyError(host)
    prefix = ipaddress.ip_network(cfg.underlay.cidr).prefixlen
    return NodePlan(
        name=h.name,
        ip=h.ip,
        pod_cidr="",
        links=(Link(UPLINK, "veth", mtu=cfg.underlay.mtu),),
        addrs=(Addr(UPLINK, f"{h.ip}/{prefix}"),),
    )


def remove_node(cluster: str, node: str, state_dir: str | Path, *, kind: str = "node") -> ApplyReport:
    """Remove a node (or ``kind="host"``) namespace and its pods; the underlay port goes with it."""
    t0 = time.perf_counter()
    report = ApplyReport()
    led = Ledger.load(cluster, state_dir)
    with Session() as sess:
        for pod in led.pods_of(node):
            report.extend(_remove_pod(led, sess, pod))
        name = _ns.node_ns(cluster, node) if kind == "node" else _ns.host_ns(cluster, node)
        if _ns.exists(name):
            # The kernel dismantles a namespace asynchronously; deleting the uplink first takes
            # the node off the underlay at once.
            sess(name).delete_link(UPLINK)
            report.note(name, f"link del {UPLINK}")
            sess.drop(name)
            _ns.remove(name)
            report.note(name, "netns del")
    led.drop_netns(name)
    report.elapsed = time.perf_counter() - t0
    return report


# --- pods -------------------------------------------------------------------------------------


def _apply_pod(cluster: str, led: Ledger, sess: Session, node: NodePlan, pod: PodPlan) -> ApplyReport:
    report = ApplyReport()
    node_netns = _ns.node_ns(cluster, node.name)
    if not _ns.exists(node_netns):
        raise KernelError("pod add", node_netns, f"node {node.name} is not applied yet")
    netns = _ns.pod_ns(cluster, pod.netns)
    _ensure_ns(led, netns, "pod", node.name, report)
    eth0 = _pod_eth0(pod)
    host = pod_host_link(node, pod)
    ensure_veth(sess, node_netns, host, netns, replace(eth0, master=None, peer=host.name), report)
    h = sess(netns)
    h.configure_link(_LO, report)
    h.sync_addrs(pod.addrs, {eth0.name}, report)
    keep = h.add_routes(pod.routes, report)
    h.del_stale_routes(keep, report)
    apply_sysctls(netns, pod.sysctls, report)
    return report


def apply_pod(
    cluster: str, node_plan: NodePlan, pod_plan: PodPlan, state_dir: str | Path, *, session: Session | None = None
) -> ApplyReport:
    """Give one pod its namespace, eth0 (veth to the node's bridge), addresses and routes."""
    t0 = time.perf_counter()
    led = Ledger.load(cluster, state_dir)
    with _session(session) as sess:
        report = _apply_pod(cluster, led, sess, node_plan, pod_plan)
    report.elapsed = time.perf_counter() - t0
    return report


def _remove_pod(led: Ledger, sess: Session, netns: str) -> ApplyReport:
    report = ApplyReport()
    if _ns.exists(netns):
        # Deleting the pod's veth takes the node-side end with it even if a process still holds
        # the namespace open.
        h = sess(netns)
        for name, s in h.links(refresh=True).items():
            if s.kind == "veth":
                h.call(f"link del {name}", h.ipr.link, "del", index=s.index, ok=(errno.ENODEV,))
                report.note(netns, f"link del {name}")
        sess.drop(netns)
        _ns.remove(netns)
        report.note(netns, "netns del")
    led.drop_netns(netns)
    return report


def remove_pod(
    cluster: str, node: str, pod_netns: str, state_dir: str | Path, *, session: Session | None = None
) -> ApplyReport:
    """Remove a pod's namespace and veth (``pod_netns`` is ``PodPlan.netns``). Idempotent."""
    t0 = time.perf_counter()
    led = Ledger.load(cluster, state_dir)
    netns = _ns.pod_ns(cluster, pod_netns)
    entry = led.netns.get(netns)
    if entry is not None and entry.owner != node:
        raise KernelError("pod del", netns, f"pod runs on {entry.owner}, not {node}")
    with _session(session) as sess:
        report = _remove_pod(led, sess, netns)
    report.elapsed = time.perf_counter() - t0
    return report


# --- whole cluster ----------------------------------------------------------------------------


def apply_cluster(
    cluster: str, nodes: Iterable[NodePlan], state_dir: str | Path, hosts: Iterable[NodePlan] = ()
) -> ApplyReport:
    """Apply every node and host over one set of netlink handles; nodes and hosts the ledger
    knows but the plans no longer list are removed."""
    t0 = time.perf_counter()
    report = ApplyReport()
    nodes, hosts = list(nodes), list(hosts)
    with Session() as sess:
        for n in nodes:
            report.extend(apply_node(cluster, n, state_dir, session=sess))
        for h in hosts:
            report.extend(apply_host(cluster, h, state_dir, session=sess))
    led = Ledger.load(cluster, state_dir)
    want = {_ns.node_ns(cluster, n.name) for n in nodes} | {_ns.host_ns(cluster, h.name) for h in hosts}
    for name, entry in sorted(led.netns.items()):
        if entry.kind in ("node", "host") and name not in want and entry.owner:
            report.extend(remove_node(cluster, entry.owner, state_dir, kind=entry.kind))
    report.elapsed = time.perf_counter() - t0
    return report
