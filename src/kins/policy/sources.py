"""Where a matrix's rules come from: rendered from manifests (offline), or read back from the
live nodes' kernels (``iptables-save -t filter`` and ``ipset save`` through the node exec API),
with the pods and namespaces they are about."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from .._errors import KinsError
from ..api.core import Namespace, Node, Pod
from ..client import Client
from ..clientexec import Command, node_path, run_many
from ..model.ipset import parse_save
from ..render.cluster import nodes_config, policy_state
from ..render.netpol.model import PodInfo, actionable, pod_info
from .matrix import NodeRules

Rules = tuple[list[PodInfo], dict[str, NodeRules], list[str]]


def node_addresses(ip: str | None, pod_cidr: str | None) -> list[str]:
    """The node's own addresses: eth0, docker0 (.1 of its pod subnet) and flannel.1 (.0)."""
    out = [ip] if ip else []
    if pod_cidr:
        net = ipaddress.IPv4Network(pod_cidr)
        out += [str(net.network_address), str(net.network_address + 1)]
    return out


def offline_rules(files: Sequence[str], cluster_file: str | None) -> Rules:
    from ..offline import open_offline

    oc = open_offline(files, cluster_file)
    nodes = [n for n in oc.store.list("Node")[0] if isinstance(n, Node)]
    cfg = nodes_config(oc.cfg, nodes)
    state = policy_state(oc.store)
    texts = {}
    for n in cfg.nodes:
        r = state.render(cfg, n.name)
        texts[n.name] = (r.restore, r.ipsets, node_addresses(n.ip, n.podCIDR))
    rules = NodeRules.shared(texts)
    namespaces = sorted({ns.name for ns in oc.store.list("Namespace")[0] if isinstance(ns, Namespace)})
    return state.cluster.pods, rules, namespaces


def live_rules(client: Client) -> Rules:
    """The pods and namespaces from the API; each node's filter table and sets from its kernel."""
    nodes = [n for n in client.list("Node") if isinstance(n, Node)]
    pods = [pod_info(p) for p in client.list("Pod", all_namespaces=True) if isinstance(p, Pod) and actionable(p)]
    namespaces = sorted(ns.name for ns in client.list("Namespace") if isinstance(ns, Namespace))
    cmds = []
    for n in nodes:
        cmds.append(Command(node_path(n.name), ["iptables-save", "-t", "filter"]))
        cmds.append(Command(node_path(n.name), ["ipset", "save"]))
    results = run_many(client, cmds, timeout=30)
    texts = {}
    for i, n in enumerate(nodes):
        saved, sets = results[2 * i], results[2 * i + 1]
        for what, res in (("iptables-save", saved), ("ipset save", sets)):
            if isinstance(res, BaseException):
                raise KinsError(f"node {n.name}: {what}: {res}")
            if res.code != 0:
                raise KinsError(f"node {n.name}: {what} exited {res.code}: {res.stderr.decode(errors='replace')}")
        assert not isinstance(saved, BaseException) and not isinstance(sets, BaseException)
        texts[n.name] = (
            saved.stdout.decode(),
            parse_save(sets.stdout.decode()),
            node_addresses(n.internal_ip, n.spec.podCIDR),
        )
    return pods, NodeRules.shared(texts), namespaces
