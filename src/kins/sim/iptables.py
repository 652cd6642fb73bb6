"""Evaluate iptables chains for one packet, exploring every random load-balancing branch.

kube-proxy's own tests trace a packet through its rules (``tracePacket``); this is the same
idea grown into an evaluator for whatever ``iptables-save`` a node holds. Rules come from
``parse_restore`` (typed matches and targets), are compiled once per node, and big chains
(``KUBE-SERVICES`` with one rule per Service port) are indexed by the exact (destination,
protocol, destination port) their rules carry, so a lookup touches a handful of rules while
keeping rule order. ``-m statistic`` does not sample: both outcomes are followed, each with
its probability, so a Service's endpoints come out as a set of branches whose probabilities
multiply along the path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ..model.ipset import HASH_IP, TYPES, IPSet
from ..model.ipv4 import MASKS, ip_int, net_int
from ..render.proxy.restore import (
    AddrTypeMatch,
    Comment,
    ConntrackMatch,
    Dnat,
    Dump,
    GenericMatch,
    GenericTarget,
    Jump,
    Mark,
    MarkMatch,
    Masquerade,
    MultiportMatch,
    NfacctMatch,
    PortMatch,
    RecentMatch,
    Reject,
    Rule,
    Snat,
    StatisticMatch,
    Verdict,
    parse_restore,
)
from .packet import CT_BITS, Packet, Step
from .sym import SymPort, touched

INDEX_MIN_RULES = 16  # below this a plain scan is as fast as the index
INDEX_MIN_KEYED = 3  # ...unless this many rules are keyed on their destination address
MAX_DEPTH = 64  # the kernel refuses deeper jump nesting (loops) too
ALWAYS_TRUE_MODULES = frozenset({"limit", "nfacct", "hashlimit", "length", "tcpmss", "conntrack-helper"})


@dataclass(frozen=True, slots=True)
class Nat:
    """A NAT target that fired: ``kind`` is dnat, snat, masquerade or redirect."""

    kind: str
    ip: int | None = None
    port: int | None = None
    text: str = ""


@dataclass(slots=True, unsafe_hash=True)  # not frozen: cheaper to make, never mutated
class Outcome:
    """One way a packet leaves a chain (or a hook's base chain). ``service`` is the first
    kube-proxy Service a rule on the way names, ``masq`` whether a rule jumped to
    KUBE-MARK-MASQ."""

    prob: float
    mark: int
    verdict: str  # ACCEPT, DROP, REJECT, or "" (fell off a user chain) / RETURN
    nat: Nat | None
    steps: tuple[Step, ...]
    reject_with: str | None = None
    service: str | None = None
    masq: bool = False


# The tables each hook runs, in the kernel's order (by netfilter priority).
HOOK_TABLES = {
    "PREROUTING": ("raw", "mangle", "nat"),
    "INPUT": ("mangle", "filter", "nat"),
    "FORWARD": ("mangle", "filter"),
    "OUTPUT": ("raw", "mangle", "nat", "filter"),
    "POSTROUTING": ("mangle", "nat"),
}
SERVICE_CHAINS = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-")
MASQ_JUMP = "jump to KUBE-MARK-MASQ"


def service_of(detail: str) -> str | None:
    """``ns/name:port`` from a kube-proxy rule comment quoted in a step's detail."""
    if '"' not in detail:
        return None
    text = detail.split('"', 2)[1]
    head = text.split(" ", 1)[0]
    return head if "/" in head and ":" in head else None


def step_service(s: Step) -> tuple[str | None, bool]:
    """What a step tells about the walk: the Service its rule names, if any, and whether it
    marks the packet for masquerading."""
    if s.action != "rule" or s.chain is None:
        return None, False
    d = s.detail
    svc = None
    if (" to KUBE-" in d and any(f"to {c}" in d for c in SERVICE_CHAINS)) or " has no " in d:
        svc = service_of(d)
    return svc, d.startswith(MASQ_JUMP)


class RuleStep(Step):
    """A rule's step, made once with the rule; ``about`` is what ``step_service`` tells of it,
    worked out the first time a walk ends with it."""

    __slots__ = ("about",)

    def __init__(self, action: str, detail: str, table: str, chain: str, rule: int) -> None:
        super().__init__(action, detail, table, chain, rule)
        self.about: tuple[str | None, bool] | None = None


Check = Callable[[Packet, str | None, str | None, int], bool]  # (packet, in, out, mark) -> matched

# What a rule's target does, sorted out at compile time.
SIDE, VERDICT, REJECT, NAT, JUMP, LOG = range(6)  # mark or nothing / ends / ends / NATs / jumps / logs

# br_netfilter's record of a frame: the bridge port it came in by, and the port the bridge
# switches it out of (None until the bridge has decided, or when the packet is routed).
Phys = tuple[str, str | None]


class _Bridged(threading.local):
    """The ``Phys`` of the packet a ``Ruleset`` with physdev matches is walking, or None when
    the packet came in through no bridge port (or the bridge does not call iptables): what
    xt_physdev reads from the skb. Per thread, as walks are."""

    def __init__(self) -> None:
        self.ports: Phys | None = None


BRIDGED = _Bridged()
# ``-m set`` options that only update the set's counters: no bearing on the match
_SET_COUNTER_OPTS = frozenset({"--update-counters", "--update-subcounters"})


def _iface_match(pattern: str, name: str | None) -> bool:
    if name is None:
        return False
    if pattern.endswith("+"):
        return name.startswith(pattern[:-1])
    return name == pattern


def _in_ranges(port: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= port <= hi for lo, hi in ranges)


def _ct_mask(states: tuple[str, ...] | list[str]) -> int:
    m = 0
    for s in states:
        m |= CT_BITS.get(s.upper(), 0)
    return m


class CRule:
    """A rule compiled for fast matching."""

    __slots__ = (
        "checks",
        "comment",
        "dst",
        "dst_mask",
        "dst_neg",
        "goto",
        "iif",
        "iif_neg",
        "jump",
        "key",
        "match",
        "missing_step",
        "num",
        "oif",
        "oif_neg",
        "phys",
        "proto",
        "proto_neg",
        "reject_with",
        "rule",
        "src",
        "src_mask",
        "src_neg",
        "stat",
        "step",
        "target",
        "tkind",
        "tnat",
        "unknown",
        "unknown_step",
        "verdict",
    )

    def __init__(
        self,
        num: int,
        rule: Rule,
        addr_type: Callable[[int], str],
        table: str = "",
        chain: str = "",
        ipsets: Mapping[str, IPSet] | None = None,
    ) -> None:
        self.num = num
        self.rule = rule
        self.comment = rule.comment
        self.src = self.src_mask = self.dst = self.dst_mask = None
        if rule.src is not None:
            n, p = net_int(rule.src)
            self.src, self.src_mask = n, MASKS[p]
        if rule.dst is not None:
            n, p = net_int(rule.dst)
            self.dst, self.dst_mask = n, MASKS[p]
        self.src_neg, self.dst_neg = rule.src_neg, rule.dst_neg
        self.iif, self.iif_neg = rule.in_iface, rule.in_neg
        self.oif, self.oif_neg = rule.out_iface, rule.out_neg
        proto = rule.proto if rule.proto not in ("all", "0") else None
        self.proto, self.proto_neg = proto, rule.proto_neg
        self.stat: float | None = None
        self.unknown: str | None = None  # a match the simulator cannot evaluate (assumed not to match)
        self.phys = False  # reads the bridge ports (``BRIDGED``)
        checks: list[Check] = []
        dport_exact: int | None = None
        for m in rule.matches:
            c = self._compile(m, addr_type, ipsets)
            if c is not None:
                checks.append(c)
            if isinstance(m, PortMatch) and m.dport and m.dport[0] == m.dport[1] and not m.dport_neg:
                dport_exact = m.dport[0]
        self.checks = tuple(checks)
        # what the walk calls: None for no condition at all (a plain "-j CHAIN")
        self.match = self._matcher()
        self.key: tuple[int, str | None, int | None] | None = None
        if self.dst is not None and self.dst_mask == 0xFFFFFFFF and not self.dst_neg:
            exact = proto is not None and not self.proto_neg and dport_exact is not None
            self.key = (self.dst, proto, dport_exact) if exact else (self.dst, None, None)
        self._compile_target(table, chain)

    def _compile_target(self, table: str, chain: str) -> None:
        """The target's effect and the step it prints, worked out once instead of per packet."""
        t = self.target = self.rule.target
        self.tnat: Nat | None = None
        self.verdict: str | None = None
        text = target_text(self.rule)
        detail = f'{text} "{self.comment}"' if self.comment else text
        self.step: Step | None = RuleStep("rule", detail, table, chain, self.num)
        self.unknown_step = Step("note", self.unknown, table, chain, self.num) if self.unknown else None
        if t is None:
            self.tkind, self.step = SIDE, None
        elif isinstance(t, Mark):
            self.tkind = SIDE
        elif isinstance(t, GenericTarget) and t.name == "NFLOG":
            # logs the packet to userspace (kube-router's denied packets) and lets it go on
            self.tkind = LOG
            self.step = Step("nflog", detail, table, chain, self.num)
        elif isinstance(t, GenericTarget):
            self.tkind = SIDE
            self.step = RuleStep("rule", f"{detail} (no effect on the path)", table, chain, self.num)
        elif isinstance(t, Verdict):
            self.tkind, self.verdict = VERDICT, "DROP" if t.name == "QUEUE" else t.name
        elif isinstance(t, Reject):
            self.tkind, self.verdict = REJECT, "REJECT"
        elif isinstance(t, Dnat):
            self.tkind, self.tnat = NAT, Nat("dnat", ip_int(t.ip), t.port, t.to)
        elif isinstance(t, Snat):
            ip, _, port = t.to.partition(":")
            self.tkind = NAT
            self.tnat = Nat("snat", ip_int(ip.split("-")[0]), int(port.split("-")[0]) if port else None, t.to)
        elif isinstance(t, Masquerade):
            self.tkind, self.tnat = NAT, Nat("masquerade", None, None, "MASQUERADE")
        else:
            assert isinstance(t, Jump)
            self.tkind = JUMP
        self.reject_with = t.with_ if isinstance(t, Reject) else None
        self.goto = isinstance(t, Jump) and t.goto
        self.jump: CChain | None = None  # the chain jumped (or gone) to, once all are known
        self.missing_step: Step | None = None  # the note when that chain does not exist

    def _compile(self, m: object, addr_type: Callable[[int], str], ipsets: Mapping[str, IPSet] | None) -> Check | None:
        if isinstance(m, Comment | NfacctMatch):
            return None
        if isinstance(m, PortMatch):
            proto, sp, spn, dp, dpn = m.proto, m.sport, m.sport_neg, m.dport, m.dport_neg

            if sp is None and dp is None and proto == self.proto and not self.proto_neg:
                return None  # "-p tcp -m tcp": the rule's own protocol test says it all

            def port_check(p: Packet, _i: str | None, _o: str | None, _mark: int) -> bool:
                if p.proto != proto:
                    return False
                if sp is not None:
                    if type(p.sport) is SymPort:
                        touched()
                    if (sp[0] <= p.sport <= sp[1]) == spn:
                        return False
                if dp is None:
                    return True
                if type(p.dport) is SymPort:
                    touched()
                return (dp[0] <= p.dport <= dp[1]) != dpn

            return port_check
        if isinstance(m, MultiportMatch):
            kind, ranges, neg = m.kind, m.ports, m.neg

            def multiport(p: Packet, _i: str | None, _o: str | None, _mark: int) -> bool:
                if p.proto not in ("tcp", "udp", "sctp", "udplite", "dccp"):
                    return False
                if type(p.sport) is SymPort or type(p.dport) is SymPort:
                    touched()
                if kind == "dports":
                    hit = _in_ranges(p.dport, ranges)
                elif kind == "sports":
                    hit = _in_ranges(p.sport, ranges)
                else:
                    hit = _in_ranges(p.sport, ranges) or _in_ranges(p.dport, ranges)
                return hit != neg

            return multiport
        if isinstance(m, MarkMatch):
            value, mask, mneg = m.value, m.mask, m.neg

            def mark_check(_p: Packet, _i: str | None, _o: str | None, mark: int) -> bool:
                return ((mark & mask) == value) != mneg

            return mark_check
        if isinstance(m, StatisticMatch):
            if m.mode == "random":
                chance = m.chance
            else:  # nth: one packet in every N
                chance = 1.0 / m.every if m.every else 1.0
            self.stat = 1.0 - chance if m.neg else chance
            return None
        if isinstance(m, ConntrackMatch):
            return self._ct(_ct_mask(m.states), m.neg)
        if isinstance(m, AddrTypeMatch):
            src_types = tuple(m.src_type.split(",")) if m.src_type else None
            dst_types = tuple(m.dst_type.split(",")) if m.dst_type else None
            sneg, dneg = m.src_neg, m.dst_neg

            def addrtype(p: Packet, _i: str | None, _o: str | None, _mark: int) -> bool:
                if src_types is not None and (addr_type(p.src) in src_types) == sneg:
                    return False
                return dst_types is None or (addr_type(p.dst) in dst_types) != dneg

            return addrtype
        if isinstance(m, RecentMatch):
            # A traced packet is a connection's first: the recent lists hold nothing yet, so
            # --rcheck/--update/--remove miss and --set matches (and would record the source).
            result = (m.command == "set") != m.neg

            def recent(_p: Packet, _i: str | None, _o: str | None, _mark: int) -> bool:
                return result

            return recent
        if isinstance(m, GenericMatch):
            if m.module == "set":
                return self._set(m.args, ipsets)
            if m.module == "physdev":
                return self._physdev(m.args)
            return self._generic(m)
        return None

    @staticmethod
    def _ct(mask: int, neg: bool) -> Check:
        return lambda p, _i, _o, _mark: bool(p.ct & mask) != neg

    def _not_modelled(self, why: str) -> Check:
        self.unknown = why
        return lambda _p, _i, _o, _mark: False

    def _set(self, args: tuple[str, ...], ipsets: Mapping[str, IPSet] | None) -> Check:
        """``-m set [!] --match-set NAME src|dst`` against the namespace's sets. Only the
        one-dimensional types NetworkPolicy uses are modelled: their first flag names the
        address, and the most specific entry decides (``nomatch`` entries do not match)."""
        name = flags = None
        neg = pending_neg = False
        i = 0
        while i < len(args):
            a = args[i]
            if a == "!":
                pending_neg = True
            elif a == "--match-set" and i + 2 < len(args):
                name, flags, neg = args[i + 1], args[i + 2], pending_neg
                i += 2
            elif a not in _SET_COUNTER_OPTS:
                return self._not_modelled(f"ipset match option {a} is not modelled: assumed not to match")
            if a != "!":
                pending_neg = False
            i += 1
        s = ipsets.get(name) if ipsets is not None and name is not None else None
        if s is None or flags is None:
            return self._not_modelled(f"ipset {name or '?'!r} is not known to the simulator: assumed not to match")
        if s.type not in TYPES:
            return self._not_modelled(f"ipset {name!r} is a {s.type} set, which the simulator does not model")
        src = flags.split(",", 1)[0] == "src"
        if s.type == HASH_IP and not s.nomatch and all("/" not in m or m.endswith("/32") for m in s.members):
            members = frozenset(ip_int(m.split("/", 1)[0]) for m in s.members)
            if src:
                return lambda p, _i, _o, _mark: (p.src in members) != neg
            return lambda p, _i, _o, _mark: (p.dst in members) != neg
        contains = s.contains
        if src:
            return lambda p, _i, _o, _mark: contains(p.src) != neg
        return lambda p, _i, _o, _mark: contains(p.dst) != neg

    def _physdev(self, args: tuple[str, ...]) -> Check:
        """``-m physdev`` as xt_physdev decides it: with no bridge record (a routed packet
        that came in through no bridge port, or sent by the namespace itself) only a rule
        whose options are all negated matches; ``--physdev-is-bridged`` holds once the bridge
        has chosen the port out (filter FORWARD and POSTROUTING of a switched frame)."""
        want: dict[str, bool] = {}  # option -> True, or False when negated
        names: dict[str, str] = {}
        neg = False
        i = 0
        while i < len(args):
            a = args[i]
            if a == "!":
                neg = True
                i += 1
                continue
            if a in ("--physdev-in", "--physdev-out") and i + 1 < len(args):
                names[a] = args[i + 1]
                i += 1
            elif a not in ("--physdev-is-in", "--physdev-is-out", "--physdev-is-bridged"):
                return self._not_modelled(f"physdev option {a} is not modelled: assumed not to match")
            want[a] = not neg
            neg = False
            i += 1
        self.phys = True
        without = not any(want.values())
        bridged, is_in, is_out = (want.get(o) for o in ("--physdev-is-bridged", "--physdev-is-in", "--physdev-is-out"))
        in_name, want_in = names.get("--physdev-in"), want.get("--physdev-in", True)
        out_name, want_out = names.get("--physdev-out"), want.get("--physdev-out", True)

        def physdev(_p: Packet, _i: str | None, _o: str | None, _mark: int) -> bool:
            ports = BRIDGED.ports
            if ports is None:
                return without
            pin, pout = ports
            if bridged is not None and (pout is not None) != bridged:
                return False
            if is_in is not None and (pin is not None) != is_in:
                return False
            if is_out is not None and (pout is not None) != is_out:
                return False
            if in_name is not None and _iface_match(in_name, pin) != want_in:
                return False
            if out_name is None:
                return True
            return pout is not None and _iface_match(out_name, pout) == want_out

        return physdev

    def _generic(self, m: GenericMatch) -> Check | None:
        args = list(m.args)
        if m.module == "state" and "--state" in args:
            i = args.index("--state")
            neg = i > 0 and args[i - 1] == "!"
            return self._ct(_ct_mask(args[i + 1].split(",")), neg)
        if m.module == "icmp":
            want = args[-1] if args else "any"
            neg = "!" in args
            ok = want in ("any", "echo-request", "8", "8/0")
            return lambda p, _i, _o, _mark: (p.proto == "icmp" and ok) != neg
        if m.module in ALWAYS_TRUE_MODULES or (m.module == "pkttype" and "unicast" in args):
            return None
        return self._not_modelled(f"match -m {m.module} is not modelled: assumed not to match")

    def _matcher(self) -> Check | None:
        """The rule's conditions as one call, made for the shapes kube-proxy and flannel write
        most (one match module; one address), ``matches`` for the rest."""
        checks = self.checks
        if self.proto is not None or self.iif is not None or self.oif is not None:
            return self.matches
        src, dst = self.src, self.dst
        if src is None and dst is None:
            if not checks:
                return None
            if len(checks) == 1:
                return checks[0]
            return self.matches
        if checks or (src is not None and dst is not None):
            return self.matches
        if dst is not None:
            dmask, dneg = self.dst_mask, self.dst_neg
            assert dmask is not None
            return lambda p, _i, _o, _mark: ((p.dst & dmask) == dst) != dneg
        smask, sneg = self.src_mask, self.src_neg
        assert src is not None and smask is not None
        return lambda p, _i, _o, _mark: ((p.src & smask) == src) != sneg

    def matches(self, p: Packet, iif: str | None, oif: str | None, mark: int) -> bool:
        if self.dst is not None and ((p.dst & self.dst_mask) == self.dst) == self.dst_neg:  # type: ignore[operator]
            return False
        if self.src is not None and ((p.src & self.src_mask) == self.src) == self.src_neg:  # type: ignore[operator]
            return False
        if self.proto is not None and (p.proto == self.proto) == self.proto_neg:
            return False
        if self.iif is not None and _iface_match(self.iif, iif) == self.iif_neg:
            return False
        if self.oif is not None and _iface_match(self.oif, oif) == self.oif_neg:
            return False
        for c in self.checks:  # noqa: SIM110 - a plain loop is faster on this hot path
            if not c(p, iif, oif, mark):
                return False
        return True


def target_text(rule: Rule) -> str:
    t = rule.target
    if t is None:
        return "no target (counts only)"
    if isinstance(t, Verdict):
        return t.name
    if isinstance(t, Jump):
        return f"{'goto' if t.goto else 'jump to'} {t.chain}"
    if isinstance(t, Reject):
        return f"REJECT with {t.with_}"
    if isinstance(t, Mark):
        if t.mask == 0:
            return f"MARK xor {t.value:#x}"
        if t.mask == t.value:
            return f"MARK or {t.value:#x}"
        return f"MARK set {t.value:#x}/{t.mask:#x}"
    if isinstance(t, Dnat):
        return f"DNAT to {t.to}"
    if isinstance(t, Snat):
        return f"SNAT to {t.to}"
    if isinstance(t, Masquerade):
        return "MASQUERADE"
    if t.name == "NFLOG":
        return nflog_text(t.args)
    return f"{t.name} {' '.join(t.args)}".strip()


def nflog_text(args: tuple[str, ...]) -> str:
    """``NFLOG to group N prefix "P"`` (the kernel's group is 0 unless one is given)."""
    opts = dict(pairwise(args))  # each option with the word after it
    prefix = opts.get("--nflog-prefix")
    return f"NFLOG to group {opts.get('--nflog-group', '0')}" + (f' prefix "{prefix}"' if prefix else "")


class CChain:
    __slots__ = (
        "by_dst_proto",
        "exact",
        "generic",
        "indexed",
        "keep",
        "memo",
        "name",
        "policy",
        "rules",
        "to_dst",
        "walk",
    )

    def __init__(self, name: str, policy: str | None, rules: list[CRule]) -> None:
        self.name = name
        self.policy = policy
        self.rules = rules
        # A pod's policy chain is a verdict even when it changes nothing (the packet already
        # carried netpol-ok from the other end's chain): its first visit stays in the trace.
        self.keep = name.startswith("KUBE-POD-FW-")
        self.index(rules)

    def index(self, rules: list[CRule]) -> None:
        """Walk ``rules`` (the chain's rules less those that cannot change anything)."""
        self.walk = rules
        # Smaller chains are indexed too when most of a scan would be address-keyed rules (a
        # KUBE-SERVICES with a few Services): unless a keyed rule has a match the simulator
        # cannot evaluate, whose note a scan adds for every packet that passes it.
        keyed = [r for r in rules if r.key is not None]
        self.indexed = len(rules) >= INDEX_MIN_RULES or (
            len(keyed) >= INDEX_MIN_KEYED and all(r.unknown_step is None for r in keyed)
        )
        self.exact: dict[tuple[int, str | None, int | None], list[CRule]] = {}
        self.to_dst: dict[int, list[CRule]] = {}
        self.generic: list[CRule] = []
        self.by_dst_proto: set[tuple[int, str | None]] = set()  # whose rules read the destination port
        # merged candidate lists, one per index key that has rules (bounded by the rule count)
        self.memo: dict[tuple[int, str, int], list[CRule]] = {}
        if self.indexed:
            for r in rules:
                if r.key is None:
                    self.generic.append(r)
                elif r.key[1] is None:
                    self.to_dst.setdefault(r.key[0], []).append(r)
                else:
                    self.exact.setdefault(r.key, []).append(r)
                    self.by_dst_proto.add((r.key[0], r.key[1]))

    def candidates(self, p: Packet) -> list[CRule]:
        """The rules that can match ``p``, in rule order."""
        if not self.indexed:
            return self.walk
        if type(p.dport) is SymPort and (p.dst, p.proto) in self.by_dst_proto:
            touched()  # which rules apply depends on the port's value
        key = (p.dst, p.proto, p.dport)
        got = self.memo.get(key)
        if got is not None:
            return got
        a = self.exact.get(key)
        b = self.to_dst.get(p.dst)
        if not a and not b:
            return self.generic
        got = sorted((*(a or ()), *(b or ()), *self.generic), key=lambda r: r.num)
        self.memo[key] = got
        return got


def _prune(chains: dict[str, CChain]) -> None:
    """Leave out of the walk the plain jumps into chains that would hand every packet back
    untouched (empty user chains, like kube-proxy's KUBE-PROXY-FIREWALL most of the time, and
    chains of such jumps): the walk would enter, find nothing and drop the jump's step again.
    A jump with a statistic match (it forks) or a match the simulator cannot evaluate (its
    note) stays."""

    def idle(r: CRule, empty: set[str]) -> bool:
        sub = r.jump
        return (
            sub is not None
            and not r.goto
            and sub.name in empty
            and (r.stat is None or r.stat >= 1.0)
            and r.unknown_step is None
        )

    empty: set[str] = set()
    while True:
        more = {
            n for n, c in chains.items() if n not in empty and c.policy is None and all(idle(r, empty) for r in c.rules)
        }
        if not more:
            break
        empty |= more
    if not empty:
        return
    for c in chains.values():
        if any(idle(r, empty) for r in c.rules):
            c.index([r for r in c.rules if not idle(r, empty)])


class _Walk:
    """A branch being walked: its probability, mark, NAT and steps so far (``notes``: how
    many of them are not rule steps)."""

    __slots__ = ("mark", "nat", "notes", "prob", "steps")

    def __init__(self, prob: float, mark: int, nat: Nat | None, steps: list[Step], notes: int = 0) -> None:
        self.prob, self.mark, self.nat, self.steps, self.notes = prob, mark, nat, steps, notes

    def fork(self, prob: float) -> _Walk:
        return _Walk(prob, self.mark, self.nat, list(self.steps), self.notes)

    def note(self, step: Step) -> None:
        self.steps.append(step)
        self.notes += 1


_Res = list[tuple[_Walk, str, str | None]]  # (branch, verdict, reject-with)
# Where a jump came from: (the frame below, chain, its candidate rules, the next rule's
# position, the jump step's position, and the mark, NAT and note count before the jump,
# whether it was a goto, nesting depth).
_Frame = tuple[Any, "CChain", list["CRule"], int, int, int, "Nat | None", int, bool, int]


class Ruleset:
    """A node's iptables rules, compiled; ``run`` evaluates one hook's base chain of a table."""

    def __init__(self, dump: Dump, addr_type: Callable[[int], str], ipsets: Mapping[str, IPSet] | None = None) -> None:
        self.tables: dict[str, dict[str, CChain]] = {}
        self.notes: list[str] = []
        self.physdev = False  # a rule reads the bridge ports: walks set ``BRIDGED`` first
        for tname, table in dump.tables.items():
            chains: dict[str, CChain] = {}
            for cname, ch in table.chains.items():
                rules = [CRule(i, r, addr_type, tname, cname, ipsets) for i, r in enumerate(ch.rules, 1)]
                self.physdev = self.physdev or any(r.phys for r in rules)
                chains[cname] = CChain(cname, ch.policy, rules)
            self.tables[tname] = chains
            for c in chains.values():
                for r in c.rules:
                    t = r.target
                    if r.tkind == JUMP and isinstance(t, Jump):
                        r.jump = chains.get(t.chain)
                        if r.jump is None:
                            text = f"chain {t.chain} does not exist: rule ignored"
                            r.missing_step = Step("note", text, tname, c.name, r.num)
            _prune(chains)
        self._base = {(t, c): ch for t, chains in self.tables.items() for c, ch in chains.items()}
        # Built-in chains with no rules and an ACCEPT policy: a hook over them changes nothing.
        self.trivial = {
            (t, c.name)
            for t, chains in self.tables.items()
            for c in chains.values()
            if not c.walk and c.policy in (None, "ACCEPT")
        }
        # The hooks that can change a packet: a table's chains that are not trivial (a missing
        # table or chain accepts and changes nothing).
        self.active = {(t, c) for t, chains in self.tables.items() for c in chains if (t, c) not in self.trivial}
        # Per hook, the tables to run in the kernel's order, those that can change a packet:
        # for a connection's first packet (``hooks``), and for the rest (``hooks_on``: the nat
        # table sees only first packets).
        self.hooks = {c: tuple(t for t in order if (t, c) in self.active) for c, order in HOOK_TABLES.items()}
        self.hooks_on = {c: tuple(t for t in tables if t != "nat") for c, tables in self.hooks.items()}

    @classmethod
    def from_text(
        cls, text: str, addr_type: Callable[[int], str], ipsets: Mapping[str, IPSet] | None = None
    ) -> Ruleset:
        """``ipsets``: the namespace's sets by name, for ``-m set`` (a set not among them
        matches nothing, with a note)."""
        return cls(parse_restore(text), addr_type, ipsets)

    def hook(
        self, table: str, chain: str, p: Packet, iif: str | None, oif: str | None, phys: Phys | None = None
    ) -> list[Outcome] | int:
        """``run``, or only the mark when the packet passes the hook as it came: accepted by
        one branch with no rule that mattered and no NAT (most hooks, for most packets)."""
        ch = self._base.get((table, chain))
        if ch is None:
            return p.mark
        if self.physdev:
            BRIDGED.ports = phys
        res = self._walk(table, ch, p, iif, oif)
        if len(res) == 1:
            w, verdict, _ = res[0]
            if (
                not w.steps
                and w.nat is None
                and (verdict == "ACCEPT" or (not verdict and ch.policy in (None, "ACCEPT")))
            ):
                return w.mark
        return self._outcomes(table, chain, ch, res)

    def run(
        self, table: str, chain: str, p: Packet, iif: str | None, oif: str | None, phys: Phys | None = None
    ) -> list[Outcome]:
        """Every way ``p`` can leave ``table``'s built-in ``chain``: the verdict (the policy
        when it falls off the end), the mark, a NAT target if one fired, and the rules that
        matched on the way. ``phys``: the bridge ports of a frame that came in through a
        bridge (``-m physdev``). Not memoised: the walk is cheaper than a key of the whole
        header, and a trace repeats no hook with the same packet (traces themselves are
        cached)."""
        ch = self._base.get((table, chain))
        if ch is None:
            return [Outcome(1.0, p.mark, "ACCEPT", None, ())]
        if self.physdev:
            BRIDGED.ports = phys
        return self._outcomes(table, chain, ch, self._walk(table, ch, p, iif, oif))

    def _outcomes(self, table: str, chain: str, ch: CChain, res: _Res) -> list[Outcome]:
        out = []
        for w, verdict, rw in res:
            if not verdict:
                verdict = ch.policy or "ACCEPT"
                if verdict != "ACCEPT":
                    w.steps.append(Step("policy", f"chain policy {verdict}", table, chain))
            svc, masq = self._about(w.steps) if w.steps else (None, False)
            out.append(Outcome(w.prob, w.mark, verdict, w.nat, tuple(w.steps), rw, svc, masq))
        return out

    def _about(self, steps: list[Step]) -> tuple[str | None, bool]:
        svc: str | None = None
        masq = False
        for s in steps:
            if type(s) is not RuleStep:  # notes and policies name no Service and mark nothing
                continue
            got = s.about
            if got is None:
                got = s.about = step_service(s)
            if svc is None:
                svc = got[0]
            masq = masq or got[1]
        return svc, masq

    def _walk(self, table: str, ch: CChain, p: Packet, iif: str | None, oif: str | None) -> _Res:
        """Every branch through ``ch`` and what it ends with ("" when it falls off the end or
        returns). One loop, no call per chain: a jump (or goto) pushes a frame and moves to
        the chain, falling off a chain or RETURN pops the frame (a goto's pops the chain that
        went there too). A statistic match forks the branch; the other half is walked once
        this one has ended (depth first, so branches come out in rule order)."""
        out: _Res = []
        todo: list[tuple[_Walk, CChain, list[CRule], int, _Frame | None]] = []
        w = _Walk(1.0, p.mark, None, [])
        rules = ch.candidates(p) if ch.indexed else ch.walk
        i = 0
        frame: _Frame | None = None
        while True:
            n = len(rules)
            verdict = ""
            rw = None
            while i < n:
                r = rules[i]
                i += 1
                m = r.match
                if m is not None and not m(p, iif, oif, w.mark):
                    if r.unknown_step is not None:
                        w.note(r.unknown_step)
                    continue
                stat = r.stat
                if stat is not None and stat < 1.0:
                    if stat <= 0.0:
                        continue
                    todo.append((w.fork(w.prob * (1.0 - stat)), ch, rules, i, frame))
                    w.prob *= stat
                kind = r.tkind
                if kind == SIDE:
                    t = r.target
                    if isinstance(t, Mark):
                        w.mark = t.apply(w.mark)
                    if r.step is not None:
                        w.steps.append(r.step)
                    continue
                steps = w.steps
                steps.append(r.step)  # type: ignore[arg-type]  # set for every rule with a target
                if kind == JUMP:
                    sub = r.jump
                    if sub is None:
                        w.note(r.missing_step)  # type: ignore[arg-type]
                        continue
                    depth = frame[9] + 1 if frame is not None else 1
                    if depth > MAX_DEPTH:
                        raise RecursionError(f"iptables chain nesting deeper than {MAX_DEPTH} at {table}/{sub.name}")
                    frame = (frame, ch, rules, i, len(steps) - 1, w.mark, w.nat, w.notes, r.goto, depth)
                    ch, rules, i = sub, (sub.candidates(p) if sub.indexed else sub.walk), 0
                    n = len(rules)
                    continue
                if kind == LOG:
                    w.notes += 1  # kept in the trace even if the chain changes nothing else
                    continue
                if kind == NAT:
                    w.nat = r.tnat
                    verdict = "ACCEPT"
                elif r.verdict != "RETURN":
                    verdict, rw = r.verdict or "", r.reject_with
                break
            if not verdict:
                # Fell off the end of the chain, or returned: back to where it was entered.
                while frame is not None:
                    left = ch
                    parent, ch, rules, i, before, mark, nat, notes, goto, _ = frame
                    frame = parent
                    if (
                        w.mark == mark
                        and w.nat is nat
                        and w.notes == notes
                        and (not left.keep or any(s.chain == left.name for s in w.steps[:before]))
                    ):
                        del w.steps[before:]  # the chain changed nothing: keep the trace to what mattered
                    if not goto:
                        break
                else:
                    out.append((w, "", None))
                    if not todo:
                        return out
                    w, ch, rules, i, frame = todo.pop()
                continue
            out.append((w, verdict, rw))
            if not todo:
                return out
            w, ch, rules, i, frame = todo.pop()
