"""The flattened service model kube-proxy renders from (its ServicePortMap and EndpointsMap).

Services and EndpointSlices are folded into one frozen record per service port, with the
chain names and endpoint categories computed once, so the rule writer never touches API
objects and can stay a tight string-building loop.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ...api.config import ClusterConfig
from ...api.core import Service
from ...api.discovery import EndpointSlice
from . import chains

DEFAULT_STICKY_SECONDS = 10800  # v1.DefaultClientIPServiceAffinitySeconds
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One backend of one service port (kube-proxy's BaseEndpointInfo plus its SEP chain)."""

    ip: str
    port: int
    ready: bool
    serving: bool
    terminating: bool
    node_name: str | None
    is_local: bool
    addr: str  # "ip:port", the sort key and DNAT destination
    chain: str  # KUBE-SEP-...


@dataclass(frozen=True, slots=True)
class ServicePortInfo:
    namespace: str
    name: str
    port_name: str
    spn: str  # "ns/name:port" or "ns/name"
    protocol: str  # lower case, as in "-p tcp"
    cluster_ip: str
    port: int
    node_port: int
    external_ips: tuple[str, ...]
    lb_ips: tuple[str, ...]
    source_ranges: tuple[str, ...]
    external_policy_local: bool
    internal_policy_local: bool
    affinity_client_ip: bool
    sticky_seconds: int
    health_check_node_port: int
    svc_chain: str
    svl_chain: str
    ext_chain: str
    fw_chain: str
    endpoints: tuple[Endpoint, ...]  # every endpoint known for the port, sorted by "ip:port"
    cluster_endpoints: tuple[Endpoint, ...]
    local_endpoints: tuple[Endpoint, ...]
    reachable_endpoints: tuple[Endpoint, ...]  # union of the two, sorted: the SEP chains to write
    has_endpoints: bool  # usable endpoints anywhere in the cluster

    @property
    def key(self) -> str:
        """``namespace/name`` of the Service (what partial syncs are keyed by)."""
        return f"{self.namespace}/{self.name}"

    @property
    def externally_accessible(self) -> bool:
        return self.node_port != 0 or bool(self.lb_ips) or bool(self.external_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        # External traffic needs the cluster chain even with eTP=Local, for short-circuiting.
        return not self.internal_policy_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        return self.internal_policy_local or (self.external_policy_local and self.externally_accessible)


@dataclass(frozen=True, slots=True)
class ProxyModel:
    node_name: str
    node_ip: str
    node_addresses: tuple[str, ...]  # addresses of the node's interfaces, for nodePortAddresses
    services: tuple[ServicePortInfo, ...]  # sorted by (spn, protocol): byte-stable output
    total_endpoints: int  # drives kube-proxy's large-cluster mode


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_V4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")


def _ipv4(value: str | None) -> str | None:
    """The canonical dotted quad, or None. Canonical input (the usual case) skips ipaddress."""
    if not value:
        return None
    if _CANONICAL_V4.fullmatch(value):
        return value
    try:
        return str(ipaddress.IPv4Address(value.strip()))
    except ValueError:
        return None


def _ipv4_net(value: str) -> str | None:
    try:
        return str(ipaddress.IPv4Network(value.strip(), strict=False))
    except ValueError:
        return None


def _cluster_ip(svc: Service) -> str | None:
    for ip in [svc.spec.clusterIP, *(svc.spec.clusterIPs or [])]:
        v4 = _ipv4(ip)
        if v4:
            return v4
    return None


def _lb_ips(svc: Service) -> tuple[str, ...]:
    lb = svc.status.loadBalancer if svc.status else None
    out: list[str] = []
    for ing in (lb.ingress if lb else None) or []:
        # ipMode Proxy means the load balancer proxies; kube-proxy must not capture the VIP.
        if ing.ipMode == "Proxy":
            continue
        ip = _ipv4(ing.ip)
        if ip:
            out.append(ip)
    return tuple(out)


def _slice_endpoints(
    slices: Iterable[EndpointSlice], node_name: str
) -> dict[tuple[str, str, str, str], dict[str, tuple[str, int, bool, bool, bool, str | None]]]:
    """(ns, service, port name, PROTOCOL) -> {"ip:port": fields}, like the EndpointSliceCache."""
    out: dict[tuple[str, str, str, str], dict[str, tuple[str, int, bool, bool, bool, str | None]]] = {}
    for es in slices:
        svc_name = es.labels.get(SERVICE_NAME_LABEL)
        if not svc_name or es.addressType != "IPv4":
            continue
        for p in es.ports or []:
            if p.port is None:
                continue
            key = (es.namespace, svc_name, p.name or "", (p.protocol or "TCP").upper())
            bucket = out.setdefault(key, {})
            for ep in es.endpoints or []:
                if not ep.addresses:
                    continue
                ip = _ipv4(ep.addresses[0])
                if ip is None:
                    continue
                c = ep.conditions
                # Unset conditions mean ready/serving; unset terminating means not terminating.
                ready = c is None or c.ready is None or c.ready
                serving = c is None or c.serving is None or c.serving
                terminating = c is not None and bool(c.terminating)
                bucket[f"{ip}:{p.port}"] = (ip, p.port, ready, serving, terminating, ep.nodeName)
    return out


def _categorize(
    info_flags: tuple[bool, bool], endpoints: tuple[Endpoint, ...]
) -> tuple[tuple[Endpoint, ...], tuple[Endpoint, ...], tuple[Endpoint, ...], bool]:
    """proxy.CategorizeEndpoints without topology: ready endpoints first, else serving and
    terminating ones (separately for the cluster and the local set), never non-serving ones."""
    uses_cluster, uses_local = info_flags
    cluster: tuple[Endpoint, ...] = ()
    local: tuple[Endpoint, ...] = ()
    has_any = False
    if uses_cluster:
        cluster = tuple(e for e in endpoints if e.ready)
        if not cluster:
            cluster = tuple(e for e in endpoints if e.serving and e.terminating)
        has_any = bool(cluster)
    if not uses_local:
        return cluster, local, cluster, has_any
    local_ready = local_term = False
    for e in endpoints:
        if e.ready:
            has_any = True
            local_ready = local_ready or e.is_local
        elif e.serving and e.terminating:
            has_any = True
            local_term = local_term or e.is_local
    if local_ready:
        local = tuple(e for e in endpoints if e.is_local and e.ready)
    elif local_term:
        local = tuple(e for e in endpoints if e.is_local and e.serving and e.terminating)
    if not uses_cluster:
        return cluster, local, local, has_any
    merged = {e.addr: e for e in cluster}
    merged.update((e.addr, e) for e in local)
    reachable = tuple(merged[k] for k in sorted(merged))
    return cluster, local, reachable, has_any


def build_proxy_model(
    services: Sequence[Service],
    slices: Sequence[EndpointSlice],
    cfg: ClusterConfig,
    node_name: str,
    node_ip: str,
    node_addresses: Sequence[str] = (),
) -> ProxyModel:
    """Fold Services and EndpointSlices into the per-node model (IPv4 only).

    Headless and ExternalName services and services without a cluster IP are skipped, as
    kube-proxy's ShouldSkipService does. ``node_addresses`` lists further interface addresses
    of the node (besides ``127.0.0.1`` and ``node_ip``) that ``nodePortAddresses`` may select.
    """
    del cfg  # the model is settings-free; rendering applies the kube-proxy settings
    by_port = _slice_endpoints(slices, node_name)
    infos: list[ServicePortInfo] = []
    total = 0
    for svc in services:
        spec = svc.spec
        if spec.type == "ExternalName" or svc.headless:
            continue
        cluster_ip = _cluster_ip(svc)
        if cluster_ip is None:
            continue
        ns, name = svc.namespace, svc.name
        externally = spec.type in ("NodePort", "LoadBalancer") or bool(spec.externalIPs)
        etp_local = externally and spec.externalTrafficPolicy == "Local"
        itp_local = spec.internalTrafficPolicy == "Local"
        affinity = spec.sessionAffinity == "ClientIP"
        sticky = DEFAULT_STICKY_SECONDS
        cfg_ip = spec.sessionAffinityConfig.clientIP if spec.sessionAffinityConfig else None
        if affinity and cfg_ip and cfg_ip.timeoutSeconds:
            sticky = cfg_ip.timeoutSeconds
        ext_ips = tuple(ip for ip in (_ipv4(x) for x in spec.externalIPs or []) if ip)
        lb_ips = _lb_ips(svc)
        ranges = tuple(r for r in (_ipv4_net(x) for x in spec.loadBalancerSourceRanges or []) if r)
        for sp in spec.ports or []:
            port_name = sp.name or ""
            spn = chains.service_port_name(ns, name, port_name)
            proto = (sp.protocol or "TCP").lower()
            eps_raw = by_port.get((ns, name, port_name, proto.upper()), {})
            eps = tuple(
                Endpoint(
                    ip=f[0],
                    port=f[1],
                    ready=f[2],
                    serving=f[3],
                    terminating=f[4],
                    node_name=f[5],
                    is_local=f[5] is not None and f[5] == node_name,
                    addr=addr,
                    chain=chains.sep_chain(spn, proto, addr),
                )
                for addr, f in sorted(eps_raw.items())
            )
            total += len(eps)
            h = chains.port_proto_hash(spn, proto)
            node_port = sp.nodePort or 0
            ext_access = node_port != 0 or bool(lb_ips) or bool(ext_ips)
            uses_cluster = not itp_local or ext_access
            uses_local = itp_local or (etp_local and ext_access)
            cluster, local, reachable, has_any = _categorize((uses_cluster, uses_local), eps)
            infos.append(
                ServicePortInfo(
                    namespace=ns,
                    name=name,
                    port_name=port_name,
                    spn=spn,
                    protocol=proto,
                    cluster_ip=cluster_ip,
                    port=sp.port,
                    node_port=node_port,
                    external_ips=ext_ips,
                    lb_ips=lb_ips,
                    source_ranges=ranges,
                    external_policy_local=etp_local,
                    internal_policy_local=itp_local,
                    affinity_client_ip=affinity,
                    sticky_seconds=sticky,
                    health_check_node_port=(spec.healthCheckNodePort or 0) if etp_local else 0,
                    svc_chain=chains.SVC_PREFIX + h,
                    svl_chain=chains.SVL_PREFIX + h,
                    ext_chain=chains.EXT_PREFIX + h,
                    fw_chain=chains.FW_PREFIX + h,
                    endpoints=eps,
                    cluster_endpoints=cluster,
                    local_endpoints=local,
                    reachable_endpoints=reachable,
                    has_endpoints=has_any,
                )
            )
    infos.sort(key=lambda i: (i.spn, i.protocol))
    return ProxyModel(
        node_name=node_name,
        node_ip=node_ip,
        node_addresses=tuple(node_addresses),
        services=tuple(infos),
        total_endpoints=total,
    )


# In nodePortAddresses: the node's primary IP (kube-proxy's ``--nodeport-addresses primary``).
PRIMARY = "primary"


def ipv4_nodeport_addresses(cfg: ClusterConfig) -> list[str]:
    """``nodePortAddresses`` as kube-proxy's IPv4 proxier reads it: the IPv6 CIDRs dropped.
    With none left it matches every address, as when the list is empty."""
    return [a for a in cfg.kubeProxy.nodePortAddresses if ":" not in a]


def rules_node_independent(services: Iterable[Service], cfg: ClusterConfig) -> bool:
    """True when every node gets the same kube-proxy payload: only Local traffic policies (local
    endpoints) and ``nodePortAddresses`` (the node's own addresses) make rules differ by node."""
    return not ipv4_nodeport_addresses(cfg) and not any(
        s.spec.externalTrafficPolicy == "Local" or s.spec.internalTrafficPolicy == "Local" for s in services
    )
