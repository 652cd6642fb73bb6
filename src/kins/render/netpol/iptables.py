"""A node's NetworkPolicy rules and sets in kube-router's layout.

``render_policy`` gives, for one node: the ``filter`` table payload for ``iptables-restore
--noflush`` (kube-router's top-level chains, ``KUBE-NWPLCY-COMMON``/``-DEFAULT``, one chain per
NetworkPolicy, one ``KUBE-POD-FW-`` chain per local pod a policy selects), the jumps from the
built-in chains it ensures outside the payload, and the ipsets the rules match. Rule shapes,
marks and comments are kube-router's (``npc_iptables.go``, ``policy.go``, ``pod.go``); where its
reading of the API differs from the API's definition, kins follows the API and says so here:

- a rule's ipBlocks with ``except`` get a set each, so one block's ``except`` cannot hide
  addresses another block of the same rule admits;
- egress named ports match only destinations that hold the name (kube-router matches any
  destination on the number when the rule has no peers, and skips them for ipBlock peers);
- only pods some policy selects get a pod chain (current kube-router makes one for every
  local pod), and chain names carry no per-sync version (see ``names``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...api.config import ClusterConfig
from ...model.ipset import HASH_IP, HASH_NET, IPSet
from . import names as n
from .model import EGRESS, INGRESS, PodInfo, PolicyInfo, PortSpec, RuleInfo

MARK_MATCHED = "0x10000/0x10000"
MARK_OK = "0x20000/0x20000"
NFLOG_GROUP = 100


@dataclass(frozen=True, slots=True)
class RuleRef:
    """What a policy chain's rule stands for: the policy, the direction and the rule's index in
    the policy's ``ingress``/``egress`` list."""

    policy: str
    direction: str
    rule: int


@dataclass(slots=True)
class PolicyRender:
    node: str
    restore: str  # the filter table payload
    jumps: list[tuple[str, str, list[str]]]  # (table, built-in chain, args) ensured at the top
    ipsets: dict[str, IPSet]
    # chain -> rule number (1-based) -> what it stands for, for the tracer's verdicts
    refs: dict[str, dict[int, RuleRef]] = field(default_factory=dict)
    # chain -> (namespace/pod) for pod chains, (namespace/policy) for policy chains
    owners: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.restore


_STATEFUL = (
    '-m comment --comment "rule for stateful firewall for pod" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'
)
_DEFAULT_MARK = (
    '-j MARK -m comment --comment "rule to mark traffic matching a network policy" --set-xmark ' + MARK_MATCHED
)
_EXPLICIT_ACCEPT = (
    '-m comment --comment "rule to explicitly ACCEPT traffic that comply to network policies" '
    f"-m mark --mark {MARK_OK} -j ACCEPT"
)


def _q(text: str) -> str:
    return f'"{text}"'


def top_jumps() -> list[tuple[str, str, list[str]]]:
    """``-A INPUT -m comment --comment "kube-router netpol - <uuid>" -j KUBE-ROUTER-INPUT`` and
    the same for FORWARD and OUTPUT, kept first in their chains."""
    out = []
    for builtin, custom in n.TOP_CHAINS.items():
        args = ["-m", "comment", "--comment", "kube-router netpol", "-j", custom]
        uuid = n.rule_uuid(builtin, args)
        args[3] = f"kube-router netpol - {uuid}"
        out.append(("filter", builtin, args))
    return out


class _Writer:
    def __init__(self) -> None:
        self.chains: list[str] = []
        self.rules: dict[str, list[str]] = {}
        self.refs: dict[str, dict[int, RuleRef]] = {}
        self.sets: dict[str, IPSet] = {}

    def chain(self, name: str) -> None:
        if name not in self.rules:
            self.chains.append(name)
            self.rules[name] = []

    def add(self, chain: str, args: str, ref: RuleRef | None = None) -> None:
        self.rules[chain].append(f"-A {chain} {args}")
        if ref is not None:
            self.refs.setdefault(chain, {})[len(self.rules[chain])] = ref

    def ipset(self, name: str, kind: str, members: list[str], nomatch: list[str] | None = None) -> str:
        self.sets[name] = IPSet(name, kind, tuple(dict.fromkeys(members)), tuple(dict.fromkeys(nomatch or [])))
        return name


def _input_whitelist(w: _Writer, cfg: ClusterConfig) -> None:
    """kube-router's first rules in KUBE-ROUTER-INPUT: the Service range and the node ports are
    left to kube-proxy (RETURN)."""
    chain = n.INPUT_CHAIN
    rules = [["-m", "comment", "--comment", "allow traffic to primary/secondary cluster IP range",
              "-d", cfg.services.cidr, "-j", "RETURN"]]  # fmt: skip
    ports = cfg.services.nodePortRange.replace("-", ":")
    for proto in ("TCP", "UDP", "SCTP"):
        comment = f"allow LOCAL {proto} traffic to node ports"
        local = ["-m", "addrtype", "--dst-type", "LOCAL"]
        rules.append(["-p", proto.lower(), "-m", "comment", "--comment", comment, *local,
                      "-m", "multiport", "--dports", ports, "-j", "RETURN"])  # fmt: skip
    for args in rules:
        i = args.index("--comment") + 1
        uuid = n.rule_uuid(chain, args)
        args[i] = _q(f"{args[i]} - {uuid}")
        w.add(chain, " ".join(args))


def _common(w: _Writer) -> None:
    c = n.COMMON_CHAIN
    w.add(c, '-m comment --comment "rule to drop invalid state for pod" -m conntrack --ctstate INVALID -j DROP')
    w.add(c, _STATEFUL)
    for kind, text in (
        ("echo-request", "allow icmp echo requests"),
        ("destination-unreachable", "allow icmp destination unreachable messages"),
        ("time-exceeded", "allow icmp time exceeded messages"),
    ):
        w.add(c, f'-m comment --comment "{text}" -p icmp --icmp-type {kind} -j ACCEPT')
    w.add(n.DEFAULT_CHAIN, _DEFAULT_MARK)


def _policy_rule(
    w: _Writer,
    chain: str,
    comment: str,
    src: str,
    dst: str,
    port: PortSpec | None,
    ref: RuleRef,
    also_dst: str = "",
) -> None:
    """``appendRuleToPolicyChain``: mark the packet matched, and return once marked."""
    args = [f"-m comment --comment {_q(comment)}"]
    if src:
        args.append(f"-m set --match-set {src} src")
    if dst:
        args.append(f"-m set --match-set {dst} dst")
    if also_dst:
        args.append(f"-m set --match-set {also_dst} dst")
    if port is not None:
        if port.protocol:
            args.append(f"-p {port.protocol}")
        if port.port:
            args.append(f"--dport {port.port}:{port.end}" if port.end else f"--dport {port.port}")
    match = " ".join(args)
    w.add(chain, f"{match} -j MARK --set-xmark {MARK_MATCHED}", ref)
    w.add(chain, f"{match} -m mark --mark {MARK_MATCHED} -j RETURN", ref)


def _ips(pods: list[PodInfo]) -> list[str]:
    return [p.ip for p in pods]


def _blocks(w: _Writer, p: PolicyInfo, direction: str, rule: RuleInfo) -> list[str]:
    """The rule's ipBlock set(s): one set for all its blocks unless two or more carry ``except``."""
    if not rule.ipblocks:
        return []

    def entries(cidrs: tuple[str, ...] | list[str]) -> list[str]:
        out = []
        for c in cidrs:
            out += ["0.0.0.0/1", "128.0.0.0/1"] if c.endswith("/0") else [c]
        return out

    shared = len(rule.ipblocks) == 1 or not any(b.excepts for b in rule.ipblocks)
    if shared:
        name = n.rule_block_set(p.namespace, p.name, direction, rule.index)
        members = entries([b.cidr for b in rule.ipblocks])
        nomatch = entries([e for b in rule.ipblocks for e in b.excepts])
        return [w.ipset(name, HASH_NET, members, nomatch)]
    out = []
    for i, b in enumerate(rule.ipblocks):
        name = n.rule_block_set(p.namespace, p.name, direction, rule.index, None if i == 0 else i)
        out.append(w.ipset(name, HASH_NET, entries([b.cidr]), entries(list(b.excepts))))
    return out


def _rules(w: _Writer, p: PolicyInfo, direction: str, target: str) -> None:
    """``processIngressRules`` / ``processEgressRules`` for one direction."""
    chain = n.policy_chain(p.namespace, p.name)
    rules = p.ingress if direction == INGRESS else p.egress
    tag = "ingress" if direction == INGRESS else "egress"

    def put(peer: str, other: str, port: PortSpec | None, kind: str, ref: RuleRef) -> None:
        # ingress: the peer is the source and the selected pod the destination; egress mirrored
        src, dst = (peer, other) if direction == INGRESS else (other, peer)
        _policy_rule(w, chain, f"{p.key} {tag} {kind}", src, dst, port, ref)

    for r in rules or []:
        ref = RuleRef(p.key, direction, r.index)
        named_sets = [
            (w.ipset(n.named_port_set(p.namespace, p.name, direction, r.index, i), HASH_IP, list(eps.ips)), eps)
            for i, eps in enumerate(r.named)
        ]
        # kube-router writes these rules only while the peers select some pod; kins keeps them
        # (an empty set matches nothing), so a label change reaches the kernel as set members
        if r.has_pod_peers:
            peers = w.ipset(n.rule_pod_set(p.namespace, p.name, direction, r.index), HASH_IP, _ips(r.peer_pods))
            for port in r.ports:
                put(peers, target, port, "pods", ref)
            for nset, eps in named_sets:
                # the named set holds just the peers (egress) or selected pods (ingress) with that name
                if direction == INGRESS:
                    put(peers, nset, PortSpec(eps.protocol, eps.port), "pods np", ref)
                else:
                    put(nset, target, PortSpec(eps.protocol, eps.port), "pods np", ref)
            if r.match_all_ports:
                put(peers, target, None, "pods", ref)
        if r.match_all_peers:
            if r.match_all_ports:
                put("", target, None, "any", ref)
            else:
                for port in r.ports:
                    put("", target, port, "any", ref)
                for nset, eps in named_sets:
                    if direction == INGRESS:
                        put("", nset, PortSpec(eps.protocol, eps.port), "any np", ref)
                    else:
                        put(nset, target, PortSpec(eps.protocol, eps.port), "any np", ref)
        for block in _blocks(w, p, direction, r):
            if r.match_all_ports:
                put(block, target, None, "cidr", ref)
                continue
            for port in r.ports:
                put(block, target, port, "cidr", ref)
            for nset, eps in named_sets:
                np_port = PortSpec(eps.protocol, eps.port)
                if direction == INGRESS:
                    put(block, nset, np_port, "cidr np", ref)
                else:  # in the block and holding the name (kube-router skips these)
                    _policy_rule(w, chain, f"{p.key} egress cidr np", target, block, np_port, ref, nset)


def render_policy(cfg: ClusterConfig, node: str, policies: list[PolicyInfo], local_pods: list[PodInfo]) -> PolicyRender:
    """One node's policy layer. ``local_pods`` are the actionable pods the node runs.

    Nothing while the cluster has no NetworkPolicy: the chains come with the first policy and
    go with the last, so a cluster without policies shows the article's rules unchanged."""
    if cfg.policy_provider != "kube-router" or not policies:
        return PolicyRender(node, "", [], {})
    w = _Writer()
    for name in (n.INPUT_CHAIN, n.FORWARD_CHAIN, n.OUTPUT_CHAIN, n.COMMON_CHAIN, n.DEFAULT_CHAIN):
        w.chain(name)
    _input_whitelist(w, cfg)
    _common(w)
    owners: dict[str, str] = {}

    for p in policies:
        chain = n.policy_chain(p.namespace, p.name)
        w.chain(chain)
        owners[chain] = p.key
        ips = _ips(p.targets)
        if p.isolates(INGRESS):
            dst = w.ipset(n.target_dst_set(p.namespace, p.name), HASH_IP, ips)
            _rules(w, p, INGRESS, dst)
        if p.isolates(EGRESS):
            src = w.ipset(n.target_src_set(p.namespace, p.name), HASH_IP, ips)
            _rules(w, p, EGRESS, src)

    selecting: dict[str, list[PolicyInfo]] = {}
    for p in policies:
        for t in p.targets:
            selecting.setdefault(t.ip, []).append(p)
    for pod in local_pods:
        mine = selecting.get(pod.ip)
        if not mine:
            continue
        _pod_chain(w, pod, mine, cfg, owners)

    for chain in n.TOP_CHAINS.values():
        w.add(chain, _EXPLICIT_ACCEPT)

    lines = ["*filter"]
    lines += [f":{c} - [0:0]" for c in w.chains]
    for c in w.chains:
        lines += w.rules[c]
    lines.append("COMMIT")
    return PolicyRender(node, "\n".join(lines) + "\n", top_jumps(), w.sets, w.refs, owners)


def _pod_chain(
    w: _Writer, pod: PodInfo, policies: list[PolicyInfo], cfg: ClusterConfig, owners: dict[str, str]
) -> None:
    """``syncPodFirewallChains`` for one pod, rules in the order kube-router's inserts leave them."""
    chain = n.pod_chain(pod.namespace, pod.name)
    w.chain(chain)
    owners[chain] = pod.key
    ip = pod.ip
    w.add(chain, f'-m comment --comment "common netpol rules" -j {n.COMMON_CHAIN}')
    w.add(chain, f'-m comment --comment "from local node" -m addrtype --src-type LOCAL -d {ip} -j ACCEPT')
    if not any(p.isolates(EGRESS) for p in policies):
        w.add(chain, f'-s {ip} -m comment --comment "default egress" -j {n.DEFAULT_CHAIN}')
    if not any(p.isolates(INGRESS) for p in policies):
        w.add(chain, f'-d {ip} -m comment --comment "default ingress" -j {n.DEFAULT_CHAIN}')
    for p in policies:
        target = n.policy_chain(p.namespace, p.name)
        comment = _q(f"{p.key} policy")
        if p.type == "both":
            w.add(chain, f"-m comment --comment {comment} -j {target}")
        elif p.type == INGRESS:
            w.add(chain, f"-d {ip} -m comment --comment {comment} -j {target}")
        else:
            w.add(chain, f"-s {ip} -m comment --comment {comment} -j {target}")
    rate = cfg.networkPolicy.logLimit if cfg.networkPolicy else None
    limit = f" -m limit --limit {rate} --limit-burst 10" if rate else ""
    unmarked = f"-m mark ! --mark {MARK_MATCHED}"
    w.add(chain, f'-m comment --comment "{pod.key} log-drop" {unmarked} -j NFLOG --nflog-group {NFLOG_GROUP}{limit}')
    w.add(chain, f'-m comment --comment "{pod.key} reject" -m mark ! --mark {MARK_MATCHED} -j REJECT')
    w.add(chain, "-j MARK --set-mark 0/0x10000")
    w.add(chain, f'-m comment --comment "set netpol-ok mark" -j MARK --set-mark {MARK_OK}')

    jin = _q(f"{pod.key} in")
    jout = _q(f"{pod.key} out")
    w.add(n.FORWARD_CHAIN, f"-m comment --comment {jin} -d {ip} -j {chain}")
    w.add(n.OUTPUT_CHAIN, f"-m comment --comment {jin} -d {ip} -j {chain}")
    w.add(n.FORWARD_CHAIN, f"-m physdev --physdev-is-bridged -m comment --comment {jin} -d {ip} -j {chain}")
    for top in n.TOP_CHAINS.values():
        w.add(top, f"-m comment --comment {jout} -s {ip} -j {chain}")
    w.add(n.FORWARD_CHAIN, f"-m physdev --physdev-is-bridged -m comment --comment {jout} -s {ip} -j {chain}")
