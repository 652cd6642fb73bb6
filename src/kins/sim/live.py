"""A ``ClusterView`` read off the running kernel: what the namespaces really hold.

Every namespace of a live cluster (nodes, pods, outside hosts) is dumped over netlink (links,
addresses, routes of all tables, neighbours, FDB), its ``iptables-save`` (and ``ipset save``
when a rule names a set) and its two forwarding sysctls are read, and the veth pairs are
matched up from the kernel's own peer indexes. A trace over this view explains what the
kernel will do, including rules and routes kins never wrote.
Object names (pods, Services) still come from the API: the kernel knows addresses, not names.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..api.config import ClusterConfig
from ..api.core import Pod
from ..model.ipset import IPSet, IPSetParseError, parse_save
from ..model.ipv4 import ip_int
from ..render.names import UNDERLAY_NETNS, pod_netns
from ..store.base import Store
from .state import HOST, NODE, POD, NodeState, from_net_state
from .view import ClusterView

_SYSCTLS = ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables")


@dataclass
class NsDump:
    """One namespace as read from the kernel. ``netns`` is the full name, ``plan`` the name
    without the cluster prefix (``node-node1``, ``pod-default-web-0``, ``underlay``)."""

    netns: str
    plan: str
    dump: dict[str, list[dict[str, Any]]]
    iptables: str
    sysctls: dict[str, bool]
    ipsets: str = ""  # ``ipset save``


def _sysctls() -> dict[str, bool]:
    # Runs inside the namespace's thread: /proc/sys/net shows the opener's namespace.
    out = {}
    for key in _SYSCTLS:
        try:
            out[key] = Path("/proc/sys", key).read_text().strip() == "1"
        except OSError:
            out[key] = False
    return out


def ipset_save(netns: str) -> str:
    """``ipset save`` in the namespace (sets belong to a network namespace); "" when the tool
    or the kernel's ipset support is missing: rules naming sets are then noted as unknown."""
    from ..kernel import netns as _netns

    _netns.check_owned(netns)
    try:
        res = subprocess.run(
            ["nsenter", f"--net={_netns.path(netns)}", "--", "ipset", "save"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return res.stdout if res.returncode == 0 else ""


def parse_ipsets(text: str) -> dict[str, IPSet]:
    """``ipset save`` output as records; nothing when it cannot be read (say, a set type whose
    entries the parser refuses)."""
    try:
        return parse_save(text)
    except IPSetParseError:
        return {}


def read_namespace(netns: str, plan: str, rules: bool = True) -> NsDump:
    """Dump one namespace (netlink, sysctls and, when ``rules``, ``iptables-save``, and
    ``ipset save`` when a rule names a set)."""
    from ..kernel import iptables
    from ..kernel.dump import dump_netns
    from ..kernel.netns import run_in

    dump = dump_netns(netns, dynamic=True)
    sysctls = run_in(netns, _sysctls)
    text = iptables.save(netns) if rules else ""
    sets = ipset_save(netns) if "--match-set" in text else ""
    return NsDump(netns, plan, dump, text, sysctls, sets)


def read_cluster(cluster: str, rules_in_pods: bool = True) -> list[NsDump]:
    """Every namespace of ``cluster``, read in parallel (each netlink dump and iptables-save
    waits on the kernel or a child process, not on Python)."""
    from ..kernel.netns import cluster_prefix, list_namespaces

    pre = cluster_prefix(cluster)
    names = list_namespaces(cluster)
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(names)))) as ex:
        futs = [
            ex.submit(read_namespace, n, n[len(pre) :], rules_in_pods or not n[len(pre) :].startswith("pod-"))
            for n in names
        ]
        return [f.result() for f in futs]


def _pair_veths(dumps: list[NsDump]) -> dict[tuple[str, str], tuple[str, str]]:
    """(plan netns, device) -> (peer's plan netns, peer device), from each veth's peer ifindex.

    Two veths are a pair when each one's peer index is the other's index; ifindexes repeat
    across namespaces, so when several namespaces fit, the namespace ids the kernel hands out
    (``link_netnsid``) decide."""
    from .._errors import KernelError
    from ..kernel.dump import peer_ids

    by_index: dict[int, list[tuple[NsDump, dict[str, Any]]]] = {}
    for d in dumps:
        for link in d.dump.get("links", []):
            if link.get("link_kind") == "veth":
                by_index.setdefault(int(link["ifindex"]), []).append((d, link))
    full_to_plan = {d.netns: d.plan for d in dumps}
    nsid_cache: dict[str, dict[int, str]] = {}
    pairs: dict[tuple[str, str], tuple[str, str]] = {}
    for d in dumps:
        for link in d.dump.get("links", []):
            if link.get("link_kind") != "veth" or link.get("link_index") is None:
                continue
            cands = [
                (o, ol)
                for o, ol in by_index.get(int(link["link_index"]), [])
                if o is not d and ol.get("link_index") == link["ifindex"]
            ]
            if len(cands) > 1 and link.get("link_netnsid") is not None:
                ids = nsid_cache.get(d.netns)
                if ids is None:
                    try:
                        ids = peer_ids(d.netns, full_to_plan)
                    except KernelError:  # gone since it was read: its veths stay unpaired
                        ids = {}
                    nsid_cache[d.netns] = ids
                want = full_to_plan.get(ids.get(int(link["link_netnsid"]), ""))
                cands = [(o, ol) for o, ol in cands if o.plan == want]
            if len(cands) == 1:
                o, ol = cands[0]
                pairs[(d.plan, str(link["ifname"]))] = (o.plan, str(ol["ifname"]))
    return pairs


def states_from_dumps(dumps: Iterable[NsDump], cfg: ClusterConfig, pods: Iterable[Pod] = ()) -> list[NodeState]:
    """``NodeState`` of every node, pod and host namespace (the underlay is only a wire)."""
    from ..kernel.dump import net_state

    dumps = list(dumps)
    pairs = _pair_veths(dumps)
    pod_by_netns = {pod_netns(p.key): p for p in pods}
    cidrs = {n.name: n.podCIDR for n in cfg.nodes}
    states = []
    for d in dumps:
        if d.plan == UNDERLAY_NETNS:
            continue
        kind, _, rest = d.plan.partition("-")
        if kind not in (NODE, POD, HOST):
            continue
        st = from_net_state(rest, net_state(d.dump), iptables_save=d.iptables, ipsets=parse_ipsets(d.ipsets))
        ifaces = {}
        for name, i in st.ifaces.items():
            peer = pairs.get((d.plan, name))
            ifaces[name] = replace(i, peer=peer[1], peer_netns=peer[0]) if peer else i
        node: str | None = None
        name = rest
        if kind == POD:
            p = pod_by_netns.get(d.plan)
            if p is not None:
                name, node = p.key, p.spec.nodeName
            eth = ifaces.get("eth0")
            if eth is not None and eth.peer_netns and eth.peer_netns.startswith("node-"):
                node = eth.peer_netns[len("node-") :]  # where the wire really goes
        st = replace(
            st,
            name=name,
            kind=kind,
            netns=d.plan,
            ifaces=ifaces,
            node=node,
            forwarding=d.sysctls.get("net/ipv4/ip_forward", False),
            bridge_nf=d.sysctls.get("net/bridge/bridge-nf-call-iptables", False),
            pod_cidr=cidrs.get(rest) if kind == NODE else None,
        )
        states.append(st)
    return states


def name_services(view: ClusterView, store: Store) -> None:
    """Let traces name the Service an address:port belongs to (from the API's objects)."""
    from ..api.core import Service

    objs, _ = store.list("Service")
    for s in objs:
        if isinstance(s, Service) and s.spec.clusterIP and not s.headless:
            for p in s.spec.ports or []:
                ref = f"{s.key}:{p.name}" if p.name else s.key
                view.services[(ip_int(s.spec.clusterIP), (p.protocol or "TCP").lower(), p.port)] = ref


def live_view(cluster: str, cfg: ClusterConfig, store: Store, dumps: list[NsDump] | None = None) -> ClusterView:
    """The cluster as its kernel holds it now (``dumps`` to reuse a reading)."""
    if dumps is None:
        dumps = read_cluster(cluster)
    pods = [p for p in store.list("Pod")[0] if isinstance(p, Pod)]
    view = ClusterView.from_states(states_from_dumps(dumps, cfg, pods), cfg.underlay.cidr)
    name_services(view, store)
    return view
