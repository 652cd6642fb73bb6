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

from collections.abc import Callable
from dataclasses import dataclass

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
from .addr import MASKS, ip_int, net_int
from .packet import CT_BITS, Packet, Step

INDEX_MIN_RULES = 16  # below this a plain scan is as fast as the index
MAX_DEPTH = 64  # the kernel refuses deeper jump nesting (loops) too
_CACHE_MAX = 200_000
ALWAYS_TRUE_MODULES = frozenset({"limit", "nfacct", "hashlimit", "length", "tcpmss", "conntrack-helper"})


@dataclass(frozen=True, slots=True)
class Nat:
    """A NAT target that fired: ``kind`` is dnat, snat, masquerade or redirect."""

    kind: str
    ip: int | None = None
    port: int | None = None
    text: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One way a packet leaves a chain (or a hook's base chain)."""

    prob: float
    mark: int
    verdict: str  # ACCEPT, DROP, REJECT, or "" (fell off a user chain) / RETURN
    nat: Nat | None
    steps: tuple[Step, ...]
    reject_with: str | None = None


Check = Callable[[Packet, int], bool]  # (packet, mark) -> matched


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
        "iif",
        "iif_neg",
        "key",
        "num",
        "oif",
        "oif_neg",
        "proto",
        "proto_neg",
        "rule",
        "src",
        "src_mask",
        "src_neg",
        "stat",
        "unknown",
    )

    def __init__(self, num: int, rule: Rule, addr_type: Callable[[int], str]) -> None:
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
        checks: list[Check] = []
        dport_exact: int | None = None
        for m in rule.matches:
            c = self._compile(m, addr_type)
            if c is not None:
                checks.append(c)
            if isinstance(m, PortMatch) and m.dport and m.dport[0] == m.dport[1] and not m.dport_neg:
                dport_exact = m.dport[0]
        self.checks = tuple(checks)
        self.key: tuple[int, str | None, int | None] | None = None
        if self.dst is not None and self.dst_mask == 0xFFFFFFFF and not self.dst_neg:
            exact = proto is not None and not self.proto_neg and dport_exact is not None
            self.key = (self.dst, proto, dport_exact) if exact else (self.dst, None, None)

    def _compile(self, m: object, addr_type: Callable[[int], str]) -> Check | None:
        if isinstance(m, Comment | NfacctMatch):
            return None
        if isinstance(m, PortMatch):
            proto, sp, spn, dp, dpn = m.proto, m.sport, m.sport_neg, m.dport, m.dport_neg

            def port_check(p: Packet, _mark: int) -> bool:
                if p.proto != proto:
                    return False
                if sp is not None and (sp[0] <= p.sport <= sp[1]) == spn:
                    return False
                return dp is None or (dp[0] <= p.dport <= dp[1]) != dpn

            return port_check
        if isinstance(m, MultiportMatch):
            kind, ranges, neg = m.kind, m.ports, m.neg

            def multiport(p: Packet, _mark: int) -> bool:
                if p.proto not in ("tcp", "udp", "sctp", "udplite", "dccp"):
                    return False
                if kind == "dports":
                    hit = _in_ranges(p.dport, ranges)
                elif kind == "sports":
                    hit = _in_ranges(p.sport, ranges)
                else:
                    hit = _in_ranges(p.sport, ranges) or _in_ranges(p.dport, ranges)
                return hit != neg

            return multiport
        if isinstance(m, MarkMatch):
            mm = m

            def mark_check(_p: Packet, mark: int) -> bool:
                return mm.matches(mark)

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

            def addrtype(p: Packet, _mark: int) -> bool:
                if src_types is not None and (addr_type(p.src) in src_types) == sneg:
                    return False
                return dst_types is None or (addr_type(p.dst) in dst_types) != dneg

            return addrtype
        if isinstance(m, RecentMatch):
            # A traced packet is a connection's first: the recent lists hold nothing yet, so
            # --rcheck/--update/--remove miss and --set matches (and would record the source).
            result = (m.command == "set") != m.neg

            def recent(_p: Packet, _mark: int) -> bool:
                return result

            return recent
        if isinstance(m, GenericMatch):
            return self._generic(m)
        return None

    @staticmethod
    def _ct(mask: int, neg: bool) -> Check:
        return lambda p, _mark: bool(p.ct & mask) != neg

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
            return lambda p, _mark: (p.proto == "icmp" and ok) != neg
        if m.module in ALWAYS_TRUE_MODULES or (m.module == "pkttype" and "unicast" in args):
            return None
        if m.module == "set":
            name = args[args.index("--match-set") + 1] if "--match-set" in args[:-1] else "?"
            self.unknown = f"ipset {name!r} is not known to the simulator: assumed not to match"
        else:
            self.unknown = f"match -m {m.module} is not modelled: assumed not to match"
        return lambda _p, _mark: False

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
            if not c(p, mark):
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
    return f"{t.name} {' '.join(t.args)}".strip()


class CChain:
    __slots__ = ("exact", "generic", "indexed", "name", "policy", "rules", "to_dst")

    def __init__(self, name: str, policy: str | None, rules: list[CRule]) -> None:
        self.name = name
        self.policy = policy
        self.rules = rules
        self.indexed = len(rules) >= INDEX_MIN_RULES
        self.exact: dict[tuple[int, str | None, int | None], list[CRule]] = {}
        self.to_dst: dict[int, list[CRule]] = {}
        self.generic: list[CRule] = []
        if self.indexed:
            for r in rules:
                if r.key is None:
                    self.generic.append(r)
                elif r.key[1] is None:
                    self.to_dst.setdefault(r.key[0], []).append(r)
                else:
                    self.exact.setdefault(r.key, []).append(r)

    def candidates(self, p: Packet) -> list[CRule]:
        """The rules that can match ``p``, in rule order."""
        if not self.indexed:
            return self.rules
        a = self.exact.get((p.dst, p.proto, p.dport))
        b = self.to_dst.get(p.dst)
        if not a and not b:
            return self.generic
        return sorted((*(a or ()), *(b or ()), *self.generic), key=lambda r: r.num)


class _Walk:
    """A branch being walked: its probability, mark, NAT and steps so far."""

    __slots__ = ("mark", "nat", "prob", "steps")

    def __init__(self, prob: float, mark: int, nat: Nat | None, steps: list[Step]) -> None:
        self.prob, self.mark, self.nat, self.steps = prob, mark, nat, steps

    def fork(self, prob: float) -> _Walk:
        return _Walk(prob, self.mark, self.nat, list(self.steps))


_Res = list[tuple[_Walk, str, str | None]]  # (branch, verdict, reject-with)


class Ruleset:
    """A node's iptables rules, compiled; ``run`` evaluates one hook's base chain of a table."""

    def __init__(self, dump: Dump, addr_type: Callable[[int], str]) -> None:
        self.tables: dict[str, dict[str, CChain]] = {}
        self.notes: list[str] = []
        for tname, table in dump.tables.items():
            chains: dict[str, CChain] = {}
            for cname, ch in table.chains.items():
                rules = [CRule(i, r, addr_type) for i, r in enumerate(ch.rules, 1)]
                chains[cname] = CChain(cname, ch.policy, rules)
            self.tables[tname] = chains
        self._cache: dict[tuple[object, ...], list[Outcome]] = {}
        # Built-in chains with no rules and an ACCEPT policy: a hook over them changes nothing.
        self.trivial = {
            (t, c.name)
            for t, chains in self.tables.items()
            for c in chains.values()
            if not c.rules and c.policy in (None, "ACCEPT")
        }

    @classmethod
    def from_text(cls, text: str, addr_type: Callable[[int], str]) -> Ruleset:
        return cls(parse_restore(text), addr_type)

    def run(self, table: str, chain: str, p: Packet, iif: str | None, oif: str | None) -> list[Outcome]:
        """Every way ``p`` can leave ``table``'s built-in ``chain``: the verdict (the policy
        when it falls off the end), the mark, a NAT target if one fired, and the rules that
        matched on the way. Results are cached per packet header and interfaces."""
        key = (table, chain, p.src, p.dst, p.proto, p.sport, p.dport, p.mark, p.ct, iif, oif)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        chains = self.tables.get(table)
        ch = chains.get(chain) if chains else None
        if ch is None:
            out = [Outcome(1.0, p.mark, "ACCEPT", None, ())]
        else:
            res = self._walk(table, ch, p, iif, oif, _Walk(1.0, p.mark, None, []), 0)
            out = []
            for w, verdict, rw in res:
                if verdict in ("", "RETURN"):
                    verdict = ch.policy or "ACCEPT"
                    if verdict != "ACCEPT":
                        w.steps.append(Step("policy", f"chain policy {verdict}", table, chain))
                out.append(Outcome(w.prob, w.mark, verdict, w.nat, tuple(w.steps), rw))
        if len(self._cache) > _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = out
        return out

    def _walk(self, table: str, ch: CChain, p: Packet, iif: str | None, oif: str | None, w: _Walk, depth: int) -> _Res:
        if depth > MAX_DEPTH:
            raise RecursionError(f"iptables chain nesting deeper than {MAX_DEPTH} at {table}/{ch.name}")
        return self._from(table, ch, ch.candidates(p), 0, p, iif, oif, w, depth)

    def _from(
        self,
        table: str,
        ch: CChain,
        rules: list[CRule],
        i: int,
        p: Packet,
        iif: str | None,
        oif: str | None,
        w: _Walk,
        depth: int,
    ) -> _Res:
        n = len(rules)
        while i < n:
            r = rules[i]
            i += 1
            if not r.matches(p, iif, oif, w.mark):
                if r.unknown:
                    w.steps.append(Step("note", r.unknown, table, ch.name, r.num))
                continue
            if r.stat is not None and r.stat < 1.0:
                if r.stat <= 0.0:
                    continue
                miss = w.fork(w.prob * (1.0 - r.stat))
                w.prob *= r.stat
                hit = self._target(table, ch, rules, i, r, p, iif, oif, w, depth)
                return hit + self._from(table, ch, rules, i, p, iif, oif, miss, depth)
            t = r.rule.target
            if t is None or isinstance(t, Mark | GenericTarget):
                self._side_effect(table, ch, r, w)
                continue
            return self._target(table, ch, rules, i, r, p, iif, oif, w, depth)
        return [(w, "", None)]

    def _side_effect(self, table: str, ch: CChain, r: CRule, w: _Walk) -> None:
        t = r.rule.target
        if isinstance(t, Mark):
            w.mark = t.apply(w.mark)
            w.steps.append(Step("rule", self._detail(r), table, ch.name, r.num))
        elif isinstance(t, GenericTarget):
            w.steps.append(Step("rule", f"{self._detail(r)} (no effect on the path)", table, ch.name, r.num))

    @staticmethod
    def _detail(r: CRule) -> str:
        text = target_text(r.rule)
        return f'{text} "{r.comment}"' if r.comment else text

    def _target(
        self,
        table: str,
        ch: CChain,
        rules: list[CRule],
        i: int,
        r: CRule,
        p: Packet,
        iif: str | None,
        oif: str | None,
        w: _Walk,
        depth: int,
    ) -> _Res:
        """Apply ``r``'s target to branch ``w`` and continue after it when it does not end the
        chain (``i`` is the next rule's position)."""
        t = r.rule.target
        if t is None or isinstance(t, Mark | GenericTarget):
            self._side_effect(table, ch, r, w)
            return self._from(table, ch, rules, i, p, iif, oif, w, depth)
        w.steps.append(Step("rule", self._detail(r), table, ch.name, r.num))
        if isinstance(t, Verdict):
            return [(w, "DROP" if t.name == "QUEUE" else t.name, None)]
        if isinstance(t, Reject):
            return [(w, "REJECT", t.with_)]
        if isinstance(t, Dnat):
            w.nat = Nat("dnat", ip_int(t.ip), t.port, t.to)
            return [(w, "ACCEPT", None)]
        if isinstance(t, Snat):
            ip, _, port = t.to.partition(":")
            w.nat = Nat("snat", ip_int(ip.split("-")[0]), int(port.split("-")[0]) if port else None, t.to)
            return [(w, "ACCEPT", None)]
        if isinstance(t, Masquerade):
            w.nat = Nat("masquerade", None, None, "MASQUERADE")
            return [(w, "ACCEPT", None)]
        assert isinstance(t, Jump)
        target = self.tables[table].get(t.chain)
        if target is None:
            w.steps.append(Step("note", f"chain {t.chain} does not exist: rule ignored", table, ch.name, r.num))
            return self._from(table, ch, rules, i, p, iif, oif, w, depth)
        out: _Res = []
        before, mark, nat = len(w.steps) - 1, w.mark, w.nat
        for w2, verdict, rw in self._walk(table, target, p, iif, oif, w, depth + 1):
            if verdict in ("", "RETURN"):
                if w2.mark == mark and w2.nat is nat and all(s.action == "rule" for s in w2.steps[before:]):
                    del w2.steps[before:]  # the chain changed nothing: keep the trace to what mattered
                if t.goto:
                    out.append((w2, "RETURN", None))
                else:
                    out.extend(self._from(table, ch, rules, i, p, iif, oif, w2, depth))
            else:
                out.append((w2, verdict, rw))
        return out
