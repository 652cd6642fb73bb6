"""The ``iptables-restore`` payload kube-proxy (iptables mode) writes on a sync.

``render_restore`` follows ``syncProxyRules``: four line buffers (filter chains, filter rules,
nat chains, nat rules) joined into ``*filter … COMMIT`` and ``*nat … COMMIT``, applied by the
caller with ``iptables-restore --noflush --counters``. kube-proxy walks its service map in Go
map order; here services come sorted by service port name so the text is byte-stable.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ...api.config import ClusterConfig
from .chains import is_service_chain
from .model import Endpoint, ProxyModel, ServicePortInfo

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
    """Node addresses inside ``nodePortAddresses``, in interface order (lo first)."""
    nets = [ipaddress.IPv4Network(c, strict=False) for c in cidrs]
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
    ipt = cfg.kubeProxy.iptables
    mark = masquerade_mark(ipt.masqueradeBit)
    mark_mask = f"{mark}/{mark}"
    masq_all = ipt.masqueradeAll
    # clusterCIDR unset falls back to the pod network; an explicit "" disables the detector.
    detect_cidr = cfg.kubeProxy.clusterCIDR if cfg.kubeProxy.clusterCIDR is not None else cfg.podNetwork.cidr
    if_not_local = f" ! -s {detect_cidr}" if detect_cidr else ""
    if_local = f" -s {detect_cidr}" if detect_cidr else ""
    npa = list(cfg.kubeProxy.nodePortAddresses)
    npa_nets = [ipaddress.IPv4Network(c, strict=False) for c in npa]
    match_all = not npa or any(n.prefixlen == 0 for n in npa_nets)
    localhost_nps = ipt.localhostNodePorts and (
        not npa or any(ipaddress.IPv4Address("127.0.0.1") in n for n in npa_nets)
    )
    large = model.total_endpoints > LARGE_CLUSTER_ENDPOINTS
    max_eps = max((len(s.reachable_endpoints) for s in model.services), default=1)
    probs = _probabilities(max(max_eps, 1))

    filter_chains = [
        f":{c} - [0:0]"
        for c in (KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL)
    ]
    filter_rules: list[str] = []
    nat_chains = [f":{c} - [0:0]" for c in (KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ)]
    nat_rules = [
        f"-A {KUBE_POSTROUTING} -m mark ! --mark {mark_mask} -j RETURN",
        f"-A {KUBE_POSTROUTING} -j MARK --xor-mark {mark}",
        f'-A {KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE'
        + (" --random-fully" if random_fully else ""),
        f"-A {KUBE_MARK_MASQ} -j MARK --or-mark {mark}",
    ]
    if localhost_nps:
        filter_chains.append(f":{KUBE_FIREWALL} - [0:0]")
        filter_rules.append(
            f'-A {KUBE_FIREWALL} -m comment --comment "block incoming localnet connections"'
            " -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"
        )

    active: set[str] = set()
    skipped_chains: list[str] = []
    skipped_rules: list[str] = []
    for svc in model.services:
        spn = svc.spn
        proto = svc.protocol
        pm = f"-m {proto} -p {proto}"
        cluster_eps = svc.cluster_endpoints
        local_eps = svc.local_endpoints
        has_eps = svc.has_endpoints
        uses_cluster_chain = bool(cluster_eps) and svc.uses_cluster_endpoints
        uses_local_chain = bool(local_eps) and svc.uses_local_endpoints

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
        ext_chain = svc.ext_chain
        uses_ext_chain = has_eps and svc.externally_accessible
        uses_fw = has_eps and bool(svc.lb_ips) and bool(svc.source_ranges)
        lb_chain = svc.fw_chain if uses_fw else ext_chain

        int_target = int_comment = ext_target = ext_comment = ""
        if not has_eps:
            int_target = ext_target = "REJECT"
            int_comment = ext_comment = f'"{spn} has no endpoints"'
        else:
            if not has_internal:
                int_target, int_comment = "DROP", f'"{spn} has no local endpoints"'
            if not has_external:
                ext_target, ext_comment = "DROP", f'"{spn} has no local endpoints"'

        cip_match = f'-m comment --comment "{spn} cluster IP" {pm} -d {svc.cluster_ip} --dport {svc.port}'
        if has_internal:
            nat_rules.append(f"-A {KUBE_SERVICES} {cip_match} -j {internal_chain}")
        else:
            filter_rules.append(
                f"-A {KUBE_SERVICES} -m comment --comment {int_comment} {pm}"
                f" -d {svc.cluster_ip} --dport {svc.port} -j {int_target}"
            )

        for eip in svc.external_ips:
            if has_eps:
                nat_rules.append(
                    f'-A {KUBE_SERVICES} -m comment --comment "{spn} external IP" {pm}'
                    f" -d {eip} --dport {svc.port} -j {ext_chain}"
                )
            if not has_external:
                filter_rules.append(
                    f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {ext_comment} {pm}"
                    f" -d {eip} --dport {svc.port} -j {ext_target}"
                )

        for lbip in svc.lb_ips:
            if has_eps:
                nat_rules.append(
                    f'-A {KUBE_SERVICES} -m comment --comment "{spn} loadbalancer IP" {pm}'
                    f" -d {lbip} --dport {svc.port} -j {lb_chain}"
                )
            if uses_fw:
                filter_rules.append(
                    f'-A {KUBE_PROXY_FIREWALL} -m comment --comment "{spn} traffic not accepted by {svc.fw_chain}"'
                    f" {pm} -d {lbip} --dport {svc.port} -j DROP"
                )
        if not has_external:
            for lbip in svc.lb_ips:
                filter_rules.append(
                    f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {ext_comment} {pm}"
                    f" -d {lbip} --dport {svc.port} -j {ext_target}"
                )

        if svc.node_port:
            if has_eps:
                if localhost_nps and nfacct:
                    nat_rules.append(
                        f"-A {KUBE_NODEPORTS} -m comment --comment {spn} {pm} -d 127.0.0.0/8"
                        f" --dport {svc.node_port} -m nfacct --nfacct-name {LOCALHOST_NODEPORT_COUNTER} -j {ext_chain}"
                    )
                nat_rules.append(
                    f"-A {KUBE_NODEPORTS} -m comment --comment {spn} {pm} --dport {svc.node_port} -j {ext_chain}"
                )
            if not has_external:
                filter_rules.append(
                    f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {ext_comment} -m addrtype --dst-type LOCAL"
                    f" {pm} --dport {svc.node_port} -j {ext_target}"
                )

        if svc.health_check_node_port:
            filter_rules.append(
                f'-A {KUBE_NODEPORTS} -m comment --comment "{spn} health check node port"'
                f" -m tcp -p tcp --dport {svc.health_check_node_port} -j ACCEPT"
            )

        # Per-service chains; on a partial sync unchanged services go to throwaway buffers.
        if only is None or svc.key in only:
            nc, nr = nat_chains, nat_rules
        else:
            nc, nr = skipped_chains, skipped_rules

        if has_internal:
            if masq_all:
                nr.append(f"-A {internal_chain} {cip_match} -j {KUBE_MARK_MASQ}")
            elif if_not_local:
                nr.append(f"-A {internal_chain} {cip_match}{if_not_local} -j {KUBE_MARK_MASQ}")

        if uses_ext_chain:
            nc.append(f":{ext_chain} - [0:0]")
            active.add(ext_chain)
            if not svc.external_policy_local:
                nr.append(
                    f'-A {ext_chain} -m comment --comment "masquerade traffic for {spn} external destinations"'
                    f" -j {KUBE_MARK_MASQ}"
                )
            else:
                if if_local:
                    nr.append(
                        f'-A {ext_chain} -m comment --comment "pod traffic for {spn} external destinations"'
                        f"{if_local} -j {svc.svc_chain}"
                    )
                nr.append(
                    f'-A {ext_chain} -m comment --comment "masquerade LOCAL traffic for {spn} external destinations"'
                    f" -m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}"
                )
                nr.append(
                    f'-A {ext_chain} -m comment --comment "route LOCAL traffic for {spn} external destinations"'
                    f" -m addrtype --src-type LOCAL -j {svc.svc_chain}"
                )
            if has_external:
                nr.append(f"-A {ext_chain} -j {external_policy_chain}")

        if uses_fw:
            fw = svc.fw_chain
            nc.append(f":{fw} - [0:0]")
            active.add(fw)
            head = f'-A {fw} -m comment --comment "{spn} loadbalancer IP"'
            node_ip = ipaddress.IPv4Address(model.node_ip) if model.node_ip else None
            allow_from_node = False
            for cidr in svc.source_ranges:
                nr.append(f"{head} -s {cidr} -j {ext_chain}")
                if node_ip is not None and node_ip in ipaddress.IPv4Network(cidr):
                    allow_from_node = True
            if allow_from_node:
                for lbip in svc.lb_ips:
                    nr.append(f"{head} -s {lbip} -j {ext_chain}")
            nr.append(f'-A {fw} -m comment --comment "other traffic to {spn} will be dropped by KUBE-PROXY-FIREWALL"')

        if uses_cluster_chain:
            nc.append(f":{svc.svc_chain} - [0:0]")
            active.add(svc.svc_chain)
            _write_svc_to_ep(nr, svc, svc.svc_chain, cluster_eps, large, probs)
        if uses_local_chain:
            nc.append(f":{svc.svl_chain} - [0:0]")
            active.add(svc.svl_chain)
            _write_svc_to_ep(nr, svc, svc.svl_chain, local_eps, large, probs)

        sep_comment = "" if large else f" -m comment --comment {spn}"
        affinity = svc.affinity_client_ip
        for ep in svc.reachable_endpoints:
            sep = ep.chain
            nc.append(f":{sep} - [0:0]")
            active.add(sep)
            nr.append(f"-A {sep}{sep_comment} -s {ep.ip} -j {KUBE_MARK_MASQ}")
            rec = f" -m recent --name {sep} --set" if affinity else ""
            nr.append(f"-A {sep}{sep_comment}{rec} {pm} -j DNAT --to-destination {ep.addr}")

    for chain in sorted(set(existing_nat_chains) - active):
        if is_service_chain(chain):
            nat_chains.append(f":{chain} - [0:0]")
            nat_rules.append(f"-X {chain}")

    nodeports_comment = (
        '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"'
    )
    if match_all:
        dest = "-m addrtype --dst-type LOCAL" + ("" if localhost_nps else " ! -d 127.0.0.0/8")
        nat_rules.append(f"-A {KUBE_SERVICES} {nodeports_comment} {dest} -j {KUBE_NODEPORTS}")
    else:
        for ip in _nodeport_ips(model, npa):
            if ip.startswith("127.") and not localhost_nps:
                continue
            nat_rules.append(f"-A {KUBE_SERVICES} {nodeports_comment} -d {ip} -j {KUBE_NODEPORTS}")

    if not tcp_be_liberal:
        acct = f" -m nfacct --nfacct-name {CT_INVALID_COUNTER}" if nfacct else ""
        filter_rules.append(f"-A {KUBE_FORWARD} -m conntrack --ctstate INVALID{acct} -j DROP")
    filter_rules.append(
        f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules" -m mark --mark {mark_mask} -j ACCEPT'
    )
    filter_rules.append(
        f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule"'
        " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    )

    parts = ["*filter", *filter_chains, *filter_rules, "COMMIT", "*nat", *nat_chains, *nat_rules, "COMMIT", ""]
    return "\n".join(parts)
