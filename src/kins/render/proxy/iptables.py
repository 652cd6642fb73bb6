"""The ``iptables-restore`` payload kube-proxy (iptables mode) writes on a sync.

``render_restore`` follows ``syncProxyRules``: four line buffers (filter chains, filter rules,
nat chains, nat rules) joined into ``*filter … COMMIT`` and ``*nat … COMMIT``, applied by the
caller with ``iptables-restore --noflush --counters``. kube-proxy walks its service map in Go
map order; here services come sorted by service port name so the text is byte-stable.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from ...api.config import ClusterConfig
from .chains import is_service_chain
from .model import PRIMARY, Endpoint, ProxyModel, ServicePortInfo, ipv4_nodeport_addresses

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
KUBE_PROXY_CANARY = "KUBE-PROXY-CANARY"
KUBE_FIREWALL = "KUBE-FIREWALL"  # kubelet's anti-martian chain, duplicated by kube-proxy

LARGE_CLUSTER_ENDPOINTS = 1000
LOCALHOST_NODEPORT_COUNTER = "localhost_nps_accepted_pkts"
CT_INVALID_COUNTER = "ct_state_invalid_dropped_pkts"

# (table, source chain, destination chain, comment, extra args), in kube-proxy's order.
_JUMPS: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "filter",
        "INPUT",
        KUBE_EXTERNAL_SERVICES,
        "kubernetes externally-visible service portals",
        "-m conntrack --ctstate NEW",
    ),
    (
        "filter",
        "FORWARD",
        KUBE_EXTERNAL_SERVICES,
        "kubernetes externally-visible service portals",
        "-m conntrack --ctstate NEW",
    ),
    ("filter", "INPUT", KUBE_NODEPORTS, "kubernetes health check service ports", ""),
    ("filter", "FORWARD", KUBE_SERVICES, "kubernetes service portals", "-m conntrack --ctstate NEW"),
    ("filter", "OUTPUT", KUBE_SERVICES, "kubernetes service portals", "-m conntrack --ctstate NEW"),
    ("filter", "FORWARD", KUBE_FORWARD, "kubernetes forwarding rules", ""),
    ("filter", "INPUT", KUBE_PROXY_FIREWALL, "kubernetes load balancer firewall", "-m conntrack --ctstate NEW"),
    ("filter", "OUTPUT", KUBE_PROXY_FIREWALL, "kubernetes load balancer firewall", "-m conntrack --ctstate NEW"),
    ("filter", "FORWARD", KUBE_PROXY_FIREWALL, "kubernetes load balancer firewall", "-m conntrack --ctstate NEW"),
    ("nat", "OUTPUT", KUBE_SERVICES, "kubernetes service portals", ""),
    ("nat", "PREROUTING", KUBE_SERVICES, "kubernetes service portals", ""),
    ("nat", "POSTROUTING", KUBE_POSTROUTING, "kubernetes postrouting rules", ""),
    ("filter", "INPUT", KUBE_FIREWALL, "", ""),
    ("filter", "OUTPUT", KUBE_FIREWALL, "", ""),
)


def base_chain_jumps() -> list[tuple[str, str, str]]:
    """The rules kube-proxy ensures outside its restore payload, as (table, chain, rule args).

    First the KUBE-PROXY-CANARY chains its iptables monitor creates (mangle, nat, filter) with
    empty rule args, meaning "create this chain"; then the jumps from the built-in chains,
    each created with ``iptables -t TABLE -I CHAIN ARGS`` (prepended) in list order, after
    creating the jump's target chain, exactly as ``EnsureChain`` + ``EnsureRule(Prepend)`` do.
    """
    out: list[tuple[str, str, str]] = [(t, KUBE_PROXY_CANARY, "") for t in ("mangle", "nat", "filter")]
    for table, src, dst, comment, extra in _JUMPS:
        parts = [extra] if extra else []
        if comment:
            parts.append(f'-m comment --comment "{comment}"')
        parts.append(f"-j {dst}")
        out.append((table, src, " ".join(parts)))
    return out


def masquerade_mark(bit: int) -> str:
    """kube-proxy formats the mark with Go's ``%#08x``: eight digits after ``0x``."""
    return f"0x{1 << bit:08x}"


def _probabilities(n: int) -> list[str]:
    """``%0.10f`` of 1/i for i in 0..n (index 0 unused), as kube-proxy precomputes them."""
    return ["<bad value>"] + [f"{1.0 / i:0.10f}" for i in range(1, n + 1)]


def _nodeport_ips(model: ProxyModel, cidrs: list[str]) -> list[str]:
    """Node addresses inside ``nodePortAddresses``, in interface order (lo first); ``primary``
    stands for the node's own IP, as kube-proxy reads it."""
    nets = [ipaddress.IPv4Network(c, strict=False) for c in cidrs if c != PRIMARY]
    if PRIMARY in cidrs and model.node_ip:
        nets.append(ipaddress.IPv4Network(model.node_ip))
    out: list[str] = []
    for a in ("127.0.0.1", model.node_ip, *model.node_addresses):
        if a and a not in out and any(ipaddress.IPv4Address(a) in n for n in nets):
            out.append(a)
    return out


def _write_svc_to_ep(
    out: list[str], svc: ServicePortInfo, chain: str, eps: tuple[Endpoint, ...], large: bool, probs: list[str]
) -> None:
    spn = svc.spn
    if svc.affinity_client_ip:
        recent = f" -m recent --name {{0}} --rcheck --seconds {svc.sticky_seconds} --reap -j {{0}}"
        for ep in eps:
            c = "" if large else f' -m comment --comment "{spn} -> {ep.addr}"'
            out.append(f"-A {chain}{c}" + recent.format(ep.chain))
    n = len(eps)
    for i, ep in enumerate(eps):
        c = "" if large else f' -m comment --comment "{spn} -> {ep.addr}"'
        if i < n - 1:
            out.append(f"-A {chain}{c} -m statistic --mode random --probability {probs[n - i]} -j {ep.chain}")
        else:
            out.append(f"-A {chain}{c} -j {ep.chain}")


@dataclass(slots=True)
class _Sync:
    """One sync: its settings, read once, and kube-proxy's four line buffers."""

    model: ProxyModel
    mark: str
    mark_mask: str
    masq_all: bool
    if_not_local: str  # " ! -s <cluster CIDR>", or "" without a local-traffic detector
    if_local: str
    npa: list[str]
    match_all: bool  # nodePortAddresses unset or holding 0.0.0.0/0
    localhost_nps: bool
    large: bool
    probs: list[str]
    random_fully: bool
    tcp_be_liberal: bool
    nfacct: bool
    filter_chains: list[str] = field(default_factory=list)
    filter_rules: list[str] = field(default_factory=list)
    nat_chains: list[str] = field(default_factory=list)
    nat_rules: list[str] = field(default_factory=list)
    active: set[str] = field(default_factory=set)  # the nat chains this sync writes


def _sync_settings(
    model: ProxyModel, cfg: ClusterConfig, random_fully: bool, tcp_be_liberal: bool, nfacct: bool
) -> _Sync:
    ipt = cfg.kubeProxy.iptables
    mark = masquerade_mark(ipt.masqueradeBit)
    # clusterCIDR unset falls back to the pod network; an explicit "" disables the detector.
    detect_cidr = cfg.kubeProxy.clusterCIDR if cfg.kubeProxy.clusterCIDR is not None else cfg.podNetwork.cidr
    npa = ipv4_nodeport_addresses(cfg)
    npa_nets = [ipaddress.IPv4Network(c, strict=False) for c in npa if c != PRIMARY]
    max_eps = max((len(s.reachable_endpoints) for s in model.services), default=1)
    return _Sync(
        model=model,
        mark=mark,
        mark_mask=f"{mark}/{mark}",
        masq_all=ipt.masqueradeAll,
        if_not_local=f" ! -s {detect_cidr}" if detect_cidr else "",
        if_local=f" -s {detect_cidr}" if detect_cidr else "",
        npa=npa,
        match_all=not npa or any(n.prefixlen == 0 for n in npa_nets),
        localhost_nps=ipt.localhostNodePorts
        and (not npa or any(ipaddress.IPv4Address("127.0.0.1") in n for n in npa_nets)),
        large=model.total_endpoints > LARGE_CLUSTER_ENDPOINTS,
        probs=_probabilities(max(max_eps, 1)),
        random_fully=random_fully,
        tcp_be_liberal=tcp_be_liberal,
        nfacct=nfacct,
    )


def _write_fixed_chains(s: _Sync) -> None:
    """The chains every sync declares, KUBE-POSTROUTING's masquerade rules, KUBE-MARK-MASQ and,
    with localhost node ports, kubelet's anti-martian KUBE-FIREWALL."""
    s.filter_chains.extend(
        f":{c} - [0:0]"
        for c in (KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL)
    )
    s.nat_chains.extend(f":{c} - [0:0]" for c in (KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ))
    s.nat_rules.extend(
        (
            f"-A {KUBE_POSTROUTING} -m mark ! --mark {s.mark_mask} -j RETURN",
            f"-A {KUBE_POSTROUTING} -j MARK --xor-mark {s.mark}",
            f'-A {KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE'
            + (" --random-fully" if s.random_fully else ""),
            f"-A {KUBE_MARK_MASQ} -j MARK --or-mark {s.mark}",
        )
    )
    if s.localhost_nps:
        s.filter_chains.append(f":{KUBE_FIREWALL} - [0:0]")
        s.filter_rules.append(
            f'-A {KUBE_FIREWALL} -m comment --comment "block incoming localnet connections"'
            " -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"
        )


@dataclass(slots=True)
class _Targets:
    """Where one service port's traffic goes, as ``syncProxyRules`` works it out."""

    pm: str  # "-m tcp -p tcp"
    internal_chain: str
    has_internal: bool
    external_policy_chain: str
    has_external: bool
    uses_ext_chain: bool
    uses_fw: bool
    lb_chain: str
    int_target: str  # REJECT or DROP when there is no internal chain to jump to
    int_comment: str
    ext_target: str
    ext_comment: str
    cip_match: str  # the cluster IP rule's match, shared by the SVC/SVL masquerade rule


def _targets(svc: ServicePortInfo) -> _Targets:
    spn = svc.spn
    pm = f"-m {svc.protocol} -p {svc.protocol}"
    local_eps = svc.local_endpoints
    has_eps = svc.has_endpoints
    internal_chain = svc.svc_chain
    has_internal = has_eps
    if svc.internal_policy_local:
        internal_chain = svc.svl_chain
        if not local_eps:
            has_internal = False
    external_policy_chain = svc.svc_chain
    has_external = has_eps
    if svc.external_policy_local:
        external_policy_chain = svc.svl_chain
        if not local_eps:
            has_external = False
    uses_fw = has_eps and bool(svc.lb_ips) and bool(svc.source_ranges)
    int_target = int_comment = ext_target = ext_comment = ""
    if not has_eps:
        int_target = ext_target = "REJECT"
        int_comment = ext_comment = f'"{spn} has no endpoints"'
    else:
        if not has_internal:
            int_target, int_comment = "DROP", f'"{spn} has no local endpoints"'
        if not has_external:
            ext_target, ext_comment = "DROP", f'"{spn} has no local endpoints"'
    return _Targets(
        pm=pm,
        internal_chain=internal_chain,
        has_internal=has_internal,
        external_policy_chain=external_policy_chain,
        has_external=has_external,
        uses_ext_chain=has_eps and svc.externally_accessible,
        uses_fw=uses_fw,
        lb_chain=svc.fw_chain if uses_fw else svc.ext_chain,
        int_target=int_target,
        int_comment=int_comment,
        ext_target=ext_target,
        ext_comment=ext_comment,
        cip_match=f'-m comment --comment "{spn} cluster IP" {pm} -d {svc.cluster_ip} --dport {svc.port}',
    )


def _write_service_entry_rules(s: _Sync, svc: ServicePortInfo, t: _Targets) -> None:
    """The service's rules in the shared chains: its cluster IP, external IPs and load-balancer
    IPs in KUBE-SERVICES, its node port in KUBE-NODEPORTS, and the REJECT/DROP rules of
    filter's KUBE-SERVICES, KUBE-EXTERNAL-SERVICES and KUBE-PROXY-FIREWALL."""
    spn, pm, port = svc.spn, t.pm, svc.port
    has_eps = svc.has_endpoints
    nat_rules, filter_rules = s.nat_rules, s.filter_rules
    if t.has_internal:
        nat_rules.append(f"-A {KUBE_SERVICES} {t.cip_match} -j {t.internal_chain}")
    else:
        filter_rules.append(
            f"-A {KUBE_SERVICES} -m comment --comment {t.int_comment} {pm}"
            f" -d {svc.cluster_ip} --dport {port} -j {t.int_target}"
        )

    for eip in svc.external_ips:
        if has_eps:
            nat_rules.append(
                f'-A {KUBE_SERVICES} -m comment --comment "{spn} external IP" {pm}'
                f" -d {eip} --dport {port} -j {svc.ext_chain}"
            )
        if not t.has_external:
            filter_rules.append(
                f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {t.ext_comment} {pm}"
                f" -d {eip} --dport {port} -j {t.ext_target}"
            )

    for lbip in svc.lb_ips:
        if has_eps:
            nat_rules.append(
                f'-A {KUBE_SERVICES} -m comment --comment "{spn} loadbalancer IP" {pm}'
                f" -d {lbip} --dport {port} -j {t.lb_chain}"
            )
        if t.uses_fw:
            filter_rules.append(
                f'-A {KUBE_PROXY_FIREWALL} -m comment --comment "{spn} traffic not accepted by {svc.fw_chain}"'
                f" {pm} -d {lbip} --dport {port} -j DROP"
            )
    if not t.has_external:
        for lbip in svc.lb_ips:
            filter_rules.append(
                f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {t.ext_comment} {pm}"
                f" -d {lbip} --dport {port} -j {t.ext_target}"
            )

    if svc.node_port:
        if has_eps:
            if s.localhost_nps and s.nfacct:
                nat_rules.append(
                    f"-A {KUBE_NODEPORTS} -m comment --comment {spn} {pm} -d 127.0.0.0/8"
                    f" --dport {svc.node_port} -m nfacct --nfacct-name {LOCALHOST_NODEPORT_COUNTER} -j {svc.ext_chain}"
                )
            nat_rules.append(
                f"-A {KUBE_NODEPORTS} -m comment --comment {spn} {pm} --dport {svc.node_port} -j {svc.ext_chain}"
            )
        if not t.has_external:
            filter_rules.append(
                f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {t.ext_comment} -m addrtype --dst-type LOCAL"
                f" {pm} --dport {svc.node_port} -j {t.ext_target}"
            )

    if svc.health_check_node_port:
        filter_rules.append(
            f'-A {KUBE_NODEPORTS} -m comment --comment "{spn} health check node port"'
            f" -m tcp -p tcp --dport {svc.health_check_node_port} -j ACCEPT"
        )


def _write_ext_chain(s: _Sync, svc: ServicePortInfo, t: _Targets, nc: list[str], nr: list[str]) -> None:
    """KUBE-EXT-*: masquerade what comes from outside, then on to the service's chain."""
    spn, ext_chain = svc.spn, svc.ext_chain
    nc.append(f":{ext_chain} - [0:0]")
    s.active.add(ext_chain)
    if not svc.external_policy_local:
        nr.append(
            f'-A {ext_chain} -m comment --comment "masquerade traffic for {spn} external destinations"'
            f" -j {KUBE_MARK_MASQ}"
        )
    else:
        if s.if_local:
            nr.append(
                f'-A {ext_chain} -m comment --comment "pod traffic for {spn} external destinations"'
                f"{s.if_local} -j {svc.svc_chain}"
            )
        nr.append(
            f'-A {ext_chain} -m comment --comment "masquerade LOCAL traffic for {spn} external destinations"'
            f" -m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}"
        )
        nr.append(
            f'-A {ext_chain} -m comment --comment "route LOCAL traffic for {spn} external destinations"'
            f" -m addrtype --src-type LOCAL -j {svc.svc_chain}"
        )
    if t.has_external:
        nr.append(f"-A {ext_chain} -j {t.external_policy_chain}")


def _write_fw_chain(s: _Sync, svc: ServicePortInfo, nc: list[str], nr: list[str]) -> None:
    """KUBE-FW-*: only loadBalancerSourceRanges (and the node itself, when inside one) go on."""
    fw, ext_chain = svc.fw_chain, svc.ext_chain
    nc.append(f":{fw} - [0:0]")
    s.active.add(fw)
    head = f'-A {fw} -m comment --comment "{svc.spn} loadbalancer IP"'
    node_ip = ipaddress.IPv4Address(s.model.node_ip) if s.model.node_ip else None
    allow_from_node = False
    for cidr in svc.source_ranges:
        nr.append(f"{head} -s {cidr} -j {ext_chain}")
        if node_ip is not None and node_ip in ipaddress.IPv4Network(cidr):
            allow_from_node = True
    if allow_from_node:
        for lbip in svc.lb_ips:
            nr.append(f"{head} -s {lbip} -j {ext_chain}")
    nr.append(f'-A {fw} -m comment --comment "other traffic to {svc.spn} will be dropped by KUBE-PROXY-FIREWALL"')


def _write_sep_chains(s: _Sync, svc: ServicePortInfo, pm: str, nc: list[str], nr: list[str]) -> None:
    """KUBE-SEP-*: one per endpoint, masquerading hairpin traffic and DNATing to the endpoint."""
    sep_comment = "" if s.large else f" -m comment --comment {svc.spn}"
    affinity = svc.affinity_client_ip
    for ep in svc.reachable_endpoints:
        sep = ep.chain
        nc.append(f":{sep} - [0:0]")
        s.active.add(sep)
        nr.append(f"-A {sep}{sep_comment} -s {ep.ip} -j {KUBE_MARK_MASQ}")
        rec = f" -m recent --name {sep} --set" if affinity else ""
        nr.append(f"-A {sep}{sep_comment}{rec} {pm} -j DNAT --to-destination {ep.addr}")


def _write_service_chains(s: _Sync, svc: ServicePortInfo, t: _Targets, nc: list[str], nr: list[str]) -> None:
    """The service's own nat chains (SVC/SVL, EXT, FW, SEP), into ``nc``/``nr``."""
    if t.has_internal:
        if s.masq_all:
            nr.append(f"-A {t.internal_chain} {t.cip_match} -j {KUBE_MARK_MASQ}")
        elif s.if_not_local:
            nr.append(f"-A {t.internal_chain} {t.cip_match}{s.if_not_local} -j {KUBE_MARK_MASQ}")
    if t.uses_ext_chain:
        _write_ext_chain(s, svc, t, nc, nr)
    if t.uses_fw:
        _write_fw_chain(s, svc, nc, nr)
    cluster_eps, local_eps = svc.cluster_endpoints, svc.local_endpoints
    if cluster_eps and svc.uses_cluster_endpoints:
        nc.append(f":{svc.svc_chain} - [0:0]")
        s.active.add(svc.svc_chain)
        _write_svc_to_ep(nr, svc, svc.svc_chain, cluster_eps, s.large, s.probs)
    if local_eps and svc.uses_local_endpoints:
        nc.append(f":{svc.svl_chain} - [0:0]")
        s.active.add(svc.svl_chain)
        _write_svc_to_ep(nr, svc, svc.svl_chain, local_eps, s.large, s.probs)
    _write_sep_chains(s, svc, t.pm, nc, nr)


def _write_services(s: _Sync, only: set[str] | None) -> None:
    """Every service port's rules and chains. On a partial sync (``only``) the chains of the
    services not listed are written to throwaway buffers: their rules in the shared chains are
    still written, and which chains are active is still known."""
    skipped_chains: list[str] = []
    skipped_rules: list[str] = []
    for svc in s.model.services:
        t = _targets(svc)
        _write_service_entry_rules(s, svc, t)
        if only is None or svc.key in only:
            _write_service_chains(s, svc, t, s.nat_chains, s.nat_rules)
        else:
            _write_service_chains(s, svc, t, skipped_chains, skipped_rules)


def _delete_stale_chains(s: _Sync, existing_nat_chains: Iterable[str]) -> None:
    """Service chains on the node that this sync no longer writes: flushed, then deleted."""
    for chain in sorted(set(existing_nat_chains) - s.active):
        if is_service_chain(chain):
            s.nat_chains.append(f":{chain} - [0:0]")
            s.nat_rules.append(f"-X {chain}")


def _write_nodeports_jump(s: _Sync) -> None:
    """KUBE-SERVICES' last rule: what is left, sent to a node address, goes to KUBE-NODEPORTS."""
    nodeports_comment = (
        '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"'
    )
    if s.match_all:
        dest = "-m addrtype --dst-type LOCAL" + ("" if s.localhost_nps else " ! -d 127.0.0.0/8")
        s.nat_rules.append(f"-A {KUBE_SERVICES} {nodeports_comment} {dest} -j {KUBE_NODEPORTS}")
        return
    for ip in _nodeport_ips(s.model, s.npa):
        if ip.startswith("127.") and not s.localhost_nps:
            continue
        s.nat_rules.append(f"-A {KUBE_SERVICES} {nodeports_comment} -d {ip} -j {KUBE_NODEPORTS}")


def _write_forward_rules(s: _Sync) -> None:
    """KUBE-FORWARD: drop INVALID (unless the kernel is liberal), accept marked and replies."""
    if not s.tcp_be_liberal:
        acct = f" -m nfacct --nfacct-name {CT_INVALID_COUNTER}" if s.nfacct else ""
        s.filter_rules.append(f"-A {KUBE_FORWARD} -m conntrack --ctstate INVALID{acct} -j DROP")
    s.filter_rules.append(
        f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules" -m mark --mark {s.mark_mask} -j ACCEPT'
    )
    s.filter_rules.append(
        f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule"'
        " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    )


def _payload(s: _Sync) -> str:
    """The buffers joined into ``*filter … COMMIT`` and ``*nat … COMMIT``."""
    parts = ["*filter", *s.filter_chains, *s.filter_rules, "COMMIT", "*nat", *s.nat_chains, *s.nat_rules, "COMMIT", ""]
    return "\n".join(parts)


def render_restore(
    model: ProxyModel,
    cfg: ClusterConfig,
    *,
    only: set[str] | None = None,
    random_fully: bool = True,
    tcp_be_liberal: bool = False,
    nfacct: bool = False,
    existing_nat_chains: Iterable[str] = (),
) -> str:
    """The full ``iptables-restore --noflush`` input of one kube-proxy sync.

    ``only``: a partial sync; only the listed services (``namespace/name``) get their
    SVC/SVL/EXT/FW/SEP chains written, every other line is written as on a full sync.
    ``random_fully``: iptables supports ``--random-fully`` (any iptables since 1.6.2).
    ``tcp_be_liberal``: ``nf_conntrack_tcp_be_liberal`` is set, so no INVALID drop rule.
    ``nfacct``: the nfacct counters exist, so two rules also count packets.
    ``existing_nat_chains``: nat chains present on the node; stale service chains among them
    are flushed and deleted (kube-proxy reads them with ``iptables-save``).
    """
    s = _sync_settings(model, cfg, random_fully, tcp_be_liberal, nfacct)
    _write_fixed_chains(s)
    _write_services(s, only)
    _delete_stale_chains(s, existing_nat_chains)
    _write_nodeports_jump(s)
    _write_forward_rules(s)
    return _payload(s)
