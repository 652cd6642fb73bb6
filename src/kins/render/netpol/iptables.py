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
- a policy of both types jumps from a pod's chain once per direction, into its chain for
  ingress rules and a second chain for egress rules (kube-router has one chain and jumps to it
  unconditionally, so when both ends of a connection are selected by the same policy, say
  ``podSelector: {}`` with ``egress: [{}]`` and no ingress rule, the source's egress rule also
  admits the packet into the isolated destination);
- only pods some policy selects get a pod chain (current kube-router makes one for every
  local pod), only policies selecting a local pod get their chains and sets on a node
  (kube-router writes every policy everywhere), and chain names carry no per-sync version (see
  ``names``).

ClusterNetworkPolicy (no kube-router counterpart) extends the same layout: a ``KUBE-CNP-`` chain
per policy and direction whose rules set their action's mark (Accept 0x10000, Deny 0x40000,
Pass 0x80000) and return; a selected pod's chain jumps to the Admin tier's chains in priority
order, then to its NetworkPolicies' chains if they isolate it, else to the Baseline tier's and
the default, each jump only while nothing has decided.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...api.config import ClusterConfig
from ...model.ipset import HASH_IP, HASH_NET, IPSet
from . import names as n
from .model import ADMIN, BASELINE, BOTH, EGRESS, INGRESS, CnpInfo, PodInfo, PolicyInfo, PortSpec, RuleInfo

MARK_MATCHED = "0x10000/0x10000"
MARK_OK = "0x20000/0x20000"
# ClusterNetworkPolicy verdicts beside kube-router's "matched" (Accept): Deny and Pass
MARK_DENIED = "0x40000/0x40000"
MARK_PASSED = "0x80000/0x80000"
ACTION_MARKS = {"Accept": MARK_MATCHED, "Deny": MARK_DENIED, "Pass": MARK_PASSED}
UNDECIDED = "0x50000"  # neither accepted nor denied
UNDECIDED_OR_PASSED = "0xd0000"
ALL_MARKS = "0xd0000"
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
    jumps: list[tuple[str, str, list[str]]]  # (table, built-in chain, args) ensured at the top
    ipsets: dict[str, IPSet]
    # chain -> rule number (1-based) -> what it stands for, for the tracer's verdicts
    refs: dict[str, dict[int, RuleRef]] = field(default_factory=dict)
    # chain -> (namespace/pod) for pod chains, (namespace/policy) for policy chains
    owners: dict[str, str] = field(default_factory=dict)
    # the payload's rules by chain, in its order (the agent rewrites only chains that changed)
    chains: dict[str, list[str]] = field(default_factory=dict)
    _restore: str | None = None

    @property
    def restore(self) -> str:
        """The filter table payload for ``iptables-restore --noflush`` (written when read)."""
        if self._restore is None:
            if not self.chains:
                self._restore = ""
            else:
                lines = ["*filter", *(f":{name} - [0:0]" for name in self.chains)]
                for rules in self.chains.values():
                    lines += rules
                lines.append("COMMIT")
                self._restore = "\n".join(lines) + "\n"
        return self._restore

    @property
    def empty(self) -> bool:
        return not self.chains


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
        self.rules: dict[str, list[str]] = {}  # in the order chains were made
        self.refs: dict[str, dict[int, RuleRef]] = {}
        self.sets: dict[str, IPSet] = {}
        self.owners: dict[str, str] = {}

    def chain(self, name: str) -> None:
        if name not in self.rules:
            self.rules[name] = []

    def add(self, chain: str, args: str, ref: RuleRef | None = None) -> None:
        self.rules[chain].append(f"-A {chain} {args}")
        if ref is not None:
            self.refs.setdefault(chain, {})[len(self.rules[chain])] = ref

    def ipset(self, name: str, kind: str, members: list[str], nomatch: list[str] | None = None) -> str:
        self.sets[name] = IPSet(name, kind, tuple(dict.fromkeys(members)), tuple(dict.fromkeys(nomatch or [])))
        return name

    def merge(self, other: _Writer) -> None:
        """Take in a section written on its own (a policy's chains and sets): dict updates,
        so a node's thousand policies cost a thousand of them."""
        self.rules.update(other.rules)
        self.refs.update(other.refs)
        self.sets.update(other.sets)
        self.owners.update(other.owners)


# A policy's chains and sets, written once per resolved policy and shared by every node's render
# (and a pod's chain with its jumps, keyed apart, with what it was written from).
Sections = dict[int | str, tuple[Any, ...]]


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
    mark: str = MARK_MATCHED,
) -> None:
    """``appendRuleToPolicyChain``: set the rule's mark, and return once marked."""
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
    w.add(chain, f"{match} -j MARK --set-xmark {mark}", ref)
    w.add(chain, f"{match} -m mark --mark {mark} -j RETURN", ref)


def _ips(pods: list[PodInfo]) -> list[str]:
    return [p.ip for p in pods]


@dataclass(frozen=True, slots=True)
class _Owner:
    """Whose rules a chain holds: ``key`` for comments and references, ``ns``/``name`` for the
    set names' hashes."""

    key: str
    ns: str
    name: str


def _np_owner(p: PolicyInfo) -> _Owner:
    return _Owner(p.key, p.namespace, p.name)


def _cnp_owner(c: CnpInfo) -> _Owner:
    return _Owner(c.key, "", f"clusternetworkpolicy/{c.name}")


def _np_chain(p: PolicyInfo, direction: str) -> str:
    if p.type == BOTH and direction == EGRESS:
        return n.policy_egress_chain(p.namespace, p.name)
    return n.policy_chain(p.namespace, p.name)


def _blocks(w: _Writer, o: _Owner, direction: str, rule: RuleInfo) -> list[str]:
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
        name = n.rule_block_set(o.ns, o.name, direction, rule.index)
        members = entries([b.cidr for b in rule.ipblocks])
        nomatch = entries([e for b in rule.ipblocks for e in b.excepts])
        return [w.ipset(name, HASH_NET, members, nomatch)]
    out = []
    for i, b in enumerate(rule.ipblocks):
        name = n.rule_block_set(o.ns, o.name, direction, rule.index, None if i == 0 else i)
        out.append(w.ipset(name, HASH_NET, entries([b.cidr]), entries(list(b.excepts))))
    return out


def _rules(w: _Writer, o: _Owner, chain: str, rules: list[RuleInfo], direction: str, target: str) -> None:
    """``processIngressRules`` / ``processEgressRules`` for one direction; a ClusterNetworkPolicy
    rule sets its action's mark instead of "matched"."""
    tag = "ingress" if direction == INGRESS else "egress"

    for r in rules:
        ref = RuleRef(o.key, direction, r.index)
        mark = ACTION_MARKS[r.action]
        label = f"{o.key} {tag}" if not r.name else f"{o.key} {tag} {r.name} {r.action.lower()}"

        def put(peer: str, other: str, port: PortSpec | None, kind: str, also: str = "") -> None:
            # ingress: the peer is the source and the selected pod the destination; egress mirrored
            src, dst = (peer, other) if direction == INGRESS else (other, peer)
            _policy_rule(w, chain, f"{label} {kind}", src, dst, port, ref, also, mark)  # noqa: B023

        named_sets = [
            (w.ipset(n.named_port_set(o.ns, o.name, direction, r.index, i), HASH_IP, list(eps.ips)), eps)
            for i, eps in enumerate(r.named)
        ]
        # kube-router writes these rules only while the peers select some pod; kins keeps them
        # (an empty set matches nothing), so a label change reaches the kernel as set members
        if r.has_pod_peers:
            peers = w.ipset(n.rule_pod_set(o.ns, o.name, direction, r.index), HASH_IP, _ips(r.peer_pods))
            for port in r.ports:
                put(peers, target, port, "pods")
            for nset, eps in named_sets:
                # the named set holds just the peers (egress) or selected pods (ingress) with that name
                if direction == INGRESS:
                    put(peers, nset, PortSpec(eps.protocol, eps.port), "pods np")
                else:
                    put(nset, target, PortSpec(eps.protocol, eps.port), "pods np")
            if r.match_all_ports:
                put(peers, target, None, "pods")
        if r.match_all_peers:
            if r.match_all_ports:
                put("", target, None, "any")
            else:
                for port in r.ports:
                    put("", target, port, "any")
                for nset, eps in named_sets:
                    if direction == INGRESS:
                        put("", nset, PortSpec(eps.protocol, eps.port), "any np")
                    else:
                        put(nset, target, PortSpec(eps.protocol, eps.port), "any np")
        for block in _blocks(w, o, direction, r):
            if r.match_all_ports:
                put(block, target, None, "cidr")
                continue
            for port in r.ports:
                put(block, target, port, "cidr")
            for nset, eps in named_sets:
                np_port = PortSpec(eps.protocol, eps.port)
                if direction == INGRESS:
                    put(block, nset, np_port, "cidr np")
                else:  # in the block and holding the name (kube-router skips these)
                    put(block, target, np_port, "cidr np", nset)


def _policy_chains(w: _Writer, o: _Owner, p: PolicyInfo | CnpInfo, chain_of: Callable[[str], str]) -> None:
    ips = _ips(p.targets)
    for direction in (INGRESS, EGRESS):
        if not p.isolates(direction):
            continue
        chain = chain_of(direction)
        w.chain(chain)
        w.owners[chain] = p.key
        make = n.target_dst_set if direction == INGRESS else n.target_src_set
        target = w.ipset(make(o.ns, o.name), HASH_IP, ips)
        rules = p.ingress if direction == INGRESS else p.egress
        _rules(w, o, chain, rules or [], direction, target)


@dataclass(slots=True)
class PolicyIndex:
    """Which policies select each pod, by address: computed once for all of a sync's nodes."""

    selecting: dict[str, list[PolicyInfo]]
    tiers: dict[str, list[CnpInfo]]

    @classmethod
    def of(cls, policies: list[PolicyInfo], cnps: list[CnpInfo]) -> PolicyIndex:
        selecting: dict[str, list[PolicyInfo]] = {}
        for p in policies:
            for t in p.targets:
                selecting.setdefault(t.ip, []).append(p)
        tiers: dict[str, list[CnpInfo]] = {}
        for c in cnps:
            for t in c.targets:
                tiers.setdefault(t.ip, []).append(c)
        return cls(selecting, tiers)


def render_policy(
    cfg: ClusterConfig,
    node: str,
    policies: list[PolicyInfo],
    local_pods: list[PodInfo],
    cnps: list[CnpInfo] | None = None,
    sections: Sections | None = None,
    index: PolicyIndex | None = None,
) -> PolicyRender:
    """One node's policy layer. ``local_pods`` are the actionable pods the node runs; ``cnps``
    the ClusterNetworkPolicies, Admin tier first (``build_cnps``' order). ``sections`` keeps
    what was written for each policy and pod, for the next node and the next sync.

    Nothing while the cluster has no policy: the chains come with the first policy and go with
    the last, so a cluster without policies shows the article's rules unchanged."""
    cnps = cnps or []
    if cfg.policy_provider != "kube-router" or not (policies or cnps):
        return PolicyRender(node, [], {})
    index = index or PolicyIndex.of(policies, cnps)
    cache: Sections = {} if sections is None else sections
    w = _Writer()
    for name in (n.INPUT_CHAIN, n.FORWARD_CHAIN, n.OUTPUT_CHAIN, n.COMMON_CHAIN, n.DEFAULT_CHAIN):
        w.chain(name)
    _input_whitelist(w, cfg)
    _common(w)

    # Only the chains some local pod's chain jumps to (kube-router writes every policy's chain
    # on every node): a node's payload grows with what it runs, not with the cluster.
    included: dict[int, PolicyInfo | CnpInfo] = {}
    for pod in local_pods:
        for q in (*index.tiers.get(pod.ip, ()), *index.selecting.get(pod.ip, ())):
            included[id(q)] = q
    # Nodes that run pods of the same policies share one merge of their sections.
    chosen = [c for c in cnps if id(c) in included] + [p for p in policies if id(p) in included]
    key = "merged:" + ",".join(map(str, map(id, chosen)))
    got = cache.get(key)
    if got is None or len(got[0]) != len(chosen) or not all(a is b for a, b in zip(got[0], chosen, strict=True)):
        merged = _Writer()
        for q in chosen:
            if isinstance(q, CnpInfo):
                merged.merge(_section(cache, q, _cnp_owner(q), functools.partial(n.cnp_chain, q.name)))
            else:
                merged.merge(_section(cache, q, _np_owner(q), functools.partial(_np_chain, q)))
        got = cache[key] = (chosen, merged)
    w.merge(got[1])

    tops: dict[str, list[str]] = {c: [] for c in n.TOP_CHAINS.values()}
    rate = cfg.networkPolicy.logLimit if cfg.networkPolicy else None
    for pod in local_pods:
        mine = index.selecting.get(pod.ip, [])
        cluster_wide = index.tiers.get(pod.ip, [])
        if not (mine or cluster_wide):
            continue
        pod_writer, jumps = _pod_section(cache, pod, mine, cluster_wide, cfg, rate)
        w.merge(pod_writer)
        for top, lines in jumps.items():
            tops[top] += lines
    for top, lines in tops.items():
        w.rules[top] += [*lines, f"-A {top} {_EXPLICIT_ACCEPT}"]

    return PolicyRender(node, top_jumps(), w.sets, w.refs, w.owners, w.rules)


def _section(cache: Sections, p: PolicyInfo | CnpInfo, owner: _Owner, chain_of: Callable[[str], str]) -> _Writer:
    """A policy's chains and sets, written once while the resolved policy stays the same."""
    got = cache.get(id(p))
    if got is None or got[0] is not p:  # the PolicyInfo is kept alive beside its section
        sub = _Writer()
        _policy_chains(sub, owner, p, chain_of)
        got = cache[id(p)] = (p, sub)
    writer: _Writer = got[1]
    return writer


def _pod_section(
    cache: Sections,
    pod: PodInfo,
    policies: list[PolicyInfo],
    cnps: list[CnpInfo],
    cfg: ClusterConfig,
    rate: str | None,
) -> tuple[_Writer, dict[str, list[str]]]:
    """A pod's chain and its jumps from the top-level chains, written once while the pod and
    the policies selecting it stay the same."""
    key = f"pod:{pod.key}"
    what = (pod.ip, rate)
    selecting = (*policies, *cnps)
    got = cache.get(key)
    same = got is not None and got[0] == what and len(got[1]) == len(selecting)
    if same and got is not None and all(a is b for a, b in zip(got[1], selecting, strict=True)):
        return got[2], got[3]
    sub = _Writer()
    for c in n.TOP_CHAINS.values():
        sub.chain(c)
    if cnps:
        _tiered_pod_chain(sub, pod, policies, cnps, cfg)
    else:
        _pod_chain(sub, pod, policies, cfg)
    top = {c: sub.rules.pop(c) for c in n.TOP_CHAINS.values()}
    cache[key] = (what, selecting, sub, top)
    return sub, top


def _pod_head(w: _Writer, pod: PodInfo) -> str:
    chain = n.pod_chain(pod.namespace, pod.name)
    w.chain(chain)
    w.owners[chain] = pod.key
    w.add(chain, f'-m comment --comment "common netpol rules" -j {n.COMMON_CHAIN}')
    w.add(chain, f'-m comment --comment "from local node" -m addrtype --src-type LOCAL -d {pod.ip} -j ACCEPT')
    return chain


def _pod_tail(w: _Writer, pod: PodInfo, chain: str, cfg: ClusterConfig, reset: str) -> None:
    rate = cfg.networkPolicy.logLimit if cfg.networkPolicy else None
    limit = f" -m limit --limit {rate} --limit-burst 10" if rate else ""
    unmarked = f"-m mark ! --mark {MARK_MATCHED}"
    w.add(chain, f'-m comment --comment "{pod.key} log-drop" {unmarked} -j NFLOG --nflog-group {NFLOG_GROUP}{limit}')
    w.add(chain, f'-m comment --comment "{pod.key} reject" -m mark ! --mark {MARK_MATCHED} -j REJECT')
    w.add(chain, f"-j MARK --set-mark 0/{reset}")
    w.add(chain, f'-m comment --comment "set netpol-ok mark" -j MARK --set-mark {MARK_OK}')

    ip = pod.ip
    jin = _q(f"{pod.key} in")
    jout = _q(f"{pod.key} out")
    w.add(n.FORWARD_CHAIN, f"-m comment --comment {jin} -d {ip} -j {chain}")
    w.add(n.OUTPUT_CHAIN, f"-m comment --comment {jin} -d {ip} -j {chain}")
    w.add(n.FORWARD_CHAIN, f"-m physdev --physdev-is-bridged -m comment --comment {jin} -d {ip} -j {chain}")
    for top in n.TOP_CHAINS.values():
        w.add(top, f"-m comment --comment {jout} -s {ip} -j {chain}")
    w.add(n.FORWARD_CHAIN, f"-m physdev --physdev-is-bridged -m comment --comment {jout} -s {ip} -j {chain}")


def _np_jumps(w: _Writer, chain: str, ip: str, policies: list[PolicyInfo], guard: str = "") -> None:
    for p in policies:
        comment = _q(f"{p.key} policy")
        if p.isolates(INGRESS):
            w.add(chain, f"-d {ip}{guard} -m comment --comment {comment} -j {_np_chain(p, INGRESS)}")
        if p.isolates(EGRESS):
            w.add(chain, f"-s {ip}{guard} -m comment --comment {comment} -j {_np_chain(p, EGRESS)}")


def _pod_chain(w: _Writer, pod: PodInfo, policies: list[PolicyInfo], cfg: ClusterConfig) -> None:
    """``syncPodFirewallChains`` for one pod, rules in the order kube-router's inserts leave them
    (a policy of both types jumps once per direction, to the chain of that direction's rules)."""
    chain = _pod_head(w, pod)
    ip = pod.ip
    if not any(p.isolates(EGRESS) for p in policies):
        w.add(chain, f'-s {ip} -m comment --comment "default egress" -j {n.DEFAULT_CHAIN}')
    if not any(p.isolates(INGRESS) for p in policies):
        w.add(chain, f'-d {ip} -m comment --comment "default ingress" -j {n.DEFAULT_CHAIN}')
    _np_jumps(w, chain, ip, policies)
    _pod_tail(w, pod, chain, cfg, "0x10000")


def _tiered_pod_chain(
    w: _Writer, pod: PodInfo, policies: list[PolicyInfo], cnps: list[CnpInfo], cfg: ClusterConfig
) -> None:
    """A pod some ClusterNetworkPolicy selects: per direction the Admin tier (first decisive
    rule wins: Accept, Deny, or Pass on to the next tier), then its NetworkPolicies when they
    isolate it, else the Baseline tier and the default. Each jump waits for no decision yet."""
    chain = _pod_head(w, pod)
    ip = pod.ip
    for direction, addr in ((INGRESS, f"-d {ip}"), (EGRESS, f"-s {ip}")):

        def jump(guard: str, comment: str, target: str, addr: str = addr) -> None:
            w.add(chain, f"{addr} -m mark --mark 0x0/{guard} -m comment --comment {_q(comment)} -j {target}")

        for c in cnps:
            if c.tier == ADMIN and c.isolates(direction):
                jump(UNDECIDED_OR_PASSED, f"{c.key} admin {direction}", n.cnp_chain(c.name, direction))
        isolating = [p for p in policies if p.isolates(direction)]
        if isolating:
            for p in isolating:
                jump(UNDECIDED, f"{p.key} policy", _np_chain(p, direction))
            continue
        for c in cnps:
            if c.tier == BASELINE and c.isolates(direction):
                jump(UNDECIDED, f"{c.key} baseline {direction}", n.cnp_chain(c.name, direction))
        jump(UNDECIDED, f"default {direction}", n.DEFAULT_CHAIN)
    _pod_tail(w, pod, chain, cfg, ALL_MARKS)
