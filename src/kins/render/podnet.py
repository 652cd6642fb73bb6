"""A node's own network and its pods': underlay port, pod bridge, overlay, veths, pod namespaces.

The node looks like a Docker-era flannel node (the reference article's): ``eth0`` on the
underlay, the pod bridge (``docker0``; ``cni0`` in CNI setups, the same thing) holding the
subnet's ``.1``, and the overlay device. Each pod is a namespace with ``lo`` and ``eth0``, the
peer of a ``vethXXXXXXXX`` enslaved to the bridge with hairpin on, as the CNI bridge plugin wires
it. The node gets no default route: the cluster has no uplink.
"""

from __future__ import annotations

import ipaddress

from ..api.config import ClusterConfig, NodeConfig
from ..api.core import Pod
from ..model.netstate import Addr, Link, NodePlan, PodPlan, Route, Sysctl
from .names import (
    UNDERLAY_NETNS,
    bridge_mac,
    host_veth_mac,
    host_veth_name,
    node_netns,
    pod_mac,
    pod_netns,
    underlay_mac,
    underlay_port_name,
)
from .overlay.registry import overlay_for
from .podfiles import pod_hostname, render_hosts_file, render_resolv_conf

UNDERLAY_DEV = "eth0"
POD_DEV = "eth0"
LOOPBACK = Link(name="lo", kind="loopback", mtu=65536)


def connected_route(dev: str, cidr: str) -> Route | None:
    """The prefix route the kernel adds with an address; a /32 gets none."""
    iface = ipaddress.IPv4Interface(cidr)
    if iface.network.prefixlen == 32:
        return None
    return Route(dst=str(iface.network), dev=dev, src=str(iface.ip), scope="link", proto="kernel")


def node_sysctls(cfg: ClusterConfig) -> tuple[Sysctl, ...]:
    out = [
        # Pods, the overlay and the underlay are different interfaces: the node routes between them.
        Sysctl("net.ipv4.ip_forward", "1"),
        # A Service reply from a pod to a pod on the same bridge is switched, not routed; without
        # this it bypasses conntrack and never gets its DNAT undone (kube-proxy warns about it).
        Sysctl("net.bridge.bridge-nf-call-iptables", "1"),
    ]
    if cfg.kubeProxy.iptables.localhostNodePorts:
        # kube-proxy: lets 127.0.0.1:<nodePort> be DNATed to a pod and routed out.
        out.append(Sysctl("net.ipv4.conf.all.route_localnet", "1"))
    # Left out on purpose: rp_filter (routes are symmetric, loose or strict both pass), and the
    # per-device accept_ra=0 flannel and the bridge plugin set (no IPv6 router sends RAs here).
    return tuple(out)


def _usable(pod: Pod, subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Address | None:
    """The pod's IP when it should be wired here: not hostNetwork, has an IP in the subnet."""
    if pod.spec.hostNetwork or pod.status is None or not pod.status.podIP:
        return None
    try:
        ip = ipaddress.IPv4Address(pod.status.podIP)
    except ValueError:
        return None
    return ip if ip in subnet and ip not in (subnet.network_address, subnet.broadcast_address) else None


def render_pod(cfg: ClusterConfig, node: NodeConfig, pod: Pod) -> PodPlan:
    """One pod's namespace. ``pod.status.podIP`` must lie inside the node's subnet."""
    subnet = ipaddress.IPv4Network(node.podCIDR or "")
    ip = str(pod.status.podIP if pod.status else "")
    gateway = str(subnet.network_address + 1)
    cidr = f"{ip}/{subnet.prefixlen}"
    hostname, domain = pod_hostname(pod, cfg)
    if pod.spec.setHostnameAsFQDN and domain:
        hostname = f"{hostname}.{domain}"
    eth0 = Link(
        name=POD_DEV,
        kind="veth",
        mtu=cfg.pod_mtu,
        mac=pod_mac(ip),
        peer=host_veth_name(pod.key),
        peer_netns=node_netns(node.name),
    )
    routes = [Route(dst="default", dev=POD_DEV, via=gateway)]
    conn = connected_route(POD_DEV, cidr)
    if conn:
        routes.append(conn)
    return PodPlan(
        key=pod.key,
        netns=pod_netns(pod.key),
        hostname=hostname,
        ip=ip,
        links=(LOOPBACK, eth0),
        addrs=(Addr(dev=POD_DEV, cidr=cidr),),
        routes=tuple(routes),
        resolv_conf=render_resolv_conf(pod, cfg),
        hosts_file=render_hosts_file(pod, cfg),
    )


def render_node_network(cfg: ClusterConfig, node_name: str, pods: list[Pod]) -> NodePlan:
    """Everything of ``node_name``'s network except kube-proxy's rules (``iptables_restore``).

    ``pods`` are the pods scheduled to this node; those without an IP (not started yet), on the
    host network, or with an IP outside the node's subnet get no namespace.
    """
    node = cfg.node(node_name)
    if not node.ip or not node.podCIDR:
        raise ValueError(f"node {node_name!r} has no IP or pod subnet (load the cluster file with parse_cluster)")
    subnet = ipaddress.IPv4Network(node.podCIDR)
    underlay = ipaddress.IPv4Network(cfg.underlay.cidr)
    bridge = cfg.podNetwork.bridge

    wired = sorted(((ip, p) for p in pods if (ip := _usable(p, subnet)) is not None), key=lambda t: t[0])
    pod_plans = tuple(render_pod(cfg, node, p) for _, p in wired)

    eth0 = Link(
        name=UNDERLAY_DEV,
        kind="veth",
        mtu=cfg.underlay.mtu,
        mac=underlay_mac(cfg.name, node.name),
        peer=underlay_port_name(node.name),
        peer_netns=UNDERLAY_NETNS,
    )
    br = Link(name=bridge, kind="bridge", mtu=cfg.pod_mtu, mac=bridge_mac(cfg.name, node.name))
    veths = tuple(
        Link(
            name=host_veth_name(pp.key),
            kind="veth",
            mtu=cfg.pod_mtu,
            mac=host_veth_mac(pp.key),
            master=bridge,
            peer=POD_DEV,
            peer_netns=pp.netns,
            hairpin=True,  # a pod reaching itself through its own Service
        )
        for pp in pod_plans
    )
    eth0_addr = Addr(dev=UNDERLAY_DEV, cidr=f"{node.ip}/{underlay.prefixlen}")
    br_addr = Addr(dev=bridge, cidr=f"{subnet.network_address + 1}/{subnet.prefixlen}")

    peers = [n for n in cfg.nodes if n.name != node.name]
    ov = overlay_for(cfg).plan(cfg, node, peers)

    addrs = (eth0_addr, br_addr, *ov.addrs)
    connected = tuple(r for a in addrs if (r := connected_route(a.dev, a.cidr)) is not None)
    # The article's nodes have a default route (metric 100) to the LAN's gateway. Here nothing owns
    # that address (the underlay has no uplink), but the route still matters: traffic to a Service
    # address is routed, so it reaches filter FORWARD, where kube-proxy REJECTs a Service without
    # endpoints ("connection refused") and where a ping to a ClusterIP is silently lost, as in a real
    # cluster, instead of failing early with "network unreachable".
    default = (Route(dst="default", dev=UNDERLAY_DEV, via=cfg.underlay_gateway, metric=100),)
    return NodePlan(
        name=node.name,
        ip=node.ip,
        pod_cidr=str(subnet),
        links=(LOOPBACK, eth0, br, *ov.links, *veths),
        addrs=addrs,
        routes=default + connected + ov.routes,
        neighs=ov.neighs,
        fdb=ov.fdb,
        sysctls=node_sysctls(cfg) + ov.sysctls,
        pods=pod_plans,
    )
