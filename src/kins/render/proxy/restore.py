"""Parse ``iptables-restore`` input or ``iptables-save`` output into typed tables and rules.

The same structure serves the save renderer, the kernel fake and the packet simulator, so
matches and targets are parsed into typed values (ports as ranges, marks as integers,
probabilities as iptables stores them) instead of being kept as argument strings. Modules
outside the kube-proxy vocabulary are kept as ``GenericMatch``/``GenericTarget``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..._errors import KinsError

BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}
VERDICTS = frozenset({"ACCEPT", "DROP", "RETURN", "QUEUE"})
PORT_PROTOS = frozenset({"tcp", "udp", "sctp", "udplite", "dccp"})
_PROTO_NAMES = {"6": "tcp", "17": "udp", "132": "sctp", "1": "icmp", "33": "dccp", "136": "udplite", "58": "ipv6-icmp"}
# conntrack --ctstate bits in the order iptables prints them.
CT_STATES = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")
STATISTIC_SCALE = 0x80000000
# Targets that are extensions, not user chains, even when written without options.
EXTENSION_TARGETS = frozenset(
    {"LOG", "NFLOG", "NOTRACK", "TRACE", "CT", "REDIRECT", "TPROXY", "NFQUEUE", "AUDIT", "TCPMSS", "CONNMARK"}
    | {"CHECKSUM", "CLASSIFY", "DSCP", "TOS", "TTL", "SECMARK", "CONNSECMARK", "NETMAP", "SET", "TEE", "SYNPROXY"}
)


class RestoreParseError(KinsError):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}")


# --- matches ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comment:
    text: str


@dataclass(frozen=True, slots=True)
class PortMatch:
    """``-m tcp``/``udp``/``sctp``: port ranges are inclusive (lo, hi)."""

    proto: str
    sport: tuple[int, int] | None = None
    sport_neg: bool = False
    dport: tuple[int, int] | None = None
    dport_neg: bool = False


@dataclass(frozen=True, slots=True)
class MultiportMatch:
    kind: str  # "sports", "dports" or "ports"
    ports: tuple[tuple[int, int], ...]
    neg: bool = False


@dataclass(frozen=True, slots=True)
class MarkMatch:
    value: int
    mask: int = 0xFFFFFFFF
    neg: bool = False

    def matches(self, mark: int) -> bool:
        return ((mark & self.mask) == self.value) != self.neg


@dataclass(frozen=True, slots=True)
class StatisticMatch:
    """``probability`` is what the kernel holds: lround(p * 2^31)."""

    mode: str
    probability: int = 0
    every: int = 0
    packet: int = 0
    neg: bool = False

    @property
    def chance(self) -> float:
        return self.probability / STATISTIC_SCALE


@dataclass(frozen=True, slots=True)
class ConntrackMatch:
    states: tuple[str, ...]  # canonical order (CT_STATES)
    neg: bool = False


@dataclass(frozen=True, slots=True)
class AddrTypeMatch:
    src_type: str | None = None
    src_neg: bool = False
    dst_type: str | None = None
    dst_neg: bool = False
    limit_iface_in: bool = False
    limit_iface_out: bool = False


@dataclass(frozen=True, slots=True)
class RecentMatch:
    name: str = "DEFAULT"
    command: str = "rcheck"  # set, rcheck, update or remove
    neg: bool = False
    seconds: int = 0
    reap: bool = False
    hitcount: int = 0
    rttl: bool = False
    mask: str = "255.255.255.255"
    rsource: bool = True


@dataclass(frozen=True, slots=True)
class NfacctMatch:
    name: str


@dataclass(frozen=True, slots=True)
class GenericMatch:
    """A module this parser does not model; ``args`` are its options as written."""

    module: str
    args: tuple[str, ...] = ()


Match = (
    Comment
    | PortMatch
    | MultiportMatch
    | MarkMatch
    | StatisticMatch
    | ConntrackMatch
    | AddrTypeMatch
    | RecentMatch
    | NfacctMatch
    | GenericMatch
)


# --- targets ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    name: str  # ACCEPT, DROP, RETURN, QUEUE


@dataclass(frozen=True, slots=True)
class Jump:
    chain: str
    goto: bool = False


@dataclass(frozen=True, slots=True)
class Reject:
    with_: str = "icmp-port-unreachable"


@dataclass(frozen=True, slots=True)
class Mark:
    """Every MARK form, normalised as iptables stores it: mark = (mark & ~mask) ^ value."""

    value: int
    mask: int

    def apply(self, mark: int) -> int:
        return ((mark & ~self.mask) ^ self.value) & 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Dnat:
    to: str  # "ip[:port[-port]]"
    random: bool = False
    persistent: bool = False

    @property
    def ip(self) -> str:
        return self.to.split(":", 1)[0]

    @property
    def port(self) -> int | None:
        _, _, p = self.to.partition(":")
        return int(p.split("-", 1)[0]) if p else None


@dataclass(frozen=True, slots=True)
class Snat:
    to: str
    random: bool = False
    random_fully: bool = False
    persistent: bool = False


@dataclass(frozen=True, slots=True)
class Masquerade:
    to_ports: str | None = None
    random: bool = False
    random_fully: bool = False


@dataclass(frozen=True, slots=True)
class GenericTarget:
    name: str
    args: tuple[str, ...] = ()


Target = Verdict | Jump | Reject | Mark | Dnat | Snat | Masquerade | GenericTarget


# --- rules, chains, tables --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    chain: str
    src: str | None = None  # normalised network, "10.0.0.1/32"
    src_neg: bool = False
    dst: str | None = None
    dst_neg: bool = False
    in_iface: str | None = None
    in_neg: bool = False
    out_iface: str | None = None
    out_neg: bool = False
    proto: str | None = None
    proto_neg: bool = False
    matches: tuple[Match, ...] = ()
    target: Target | None = None  # None: the rule only counts packets

    @property
    def comment(self) -> str | None:
        for m in self.matches:
            if isinstance(m, Comment):
                return m.text
        return None


@dataclass(slots=True)
class Chain:
    name: str
    policy: str | None = None  # built-in chains: ACCEPT/DROP; user chains: None ("-")
    counters: tuple[int, int] = (0, 0)
    declared: bool = True  # False when rules were added without a ":CHAIN" line (noflush)
    rules: list[Rule] = field(default_factory=list)


@dataclass(slots=True)
class Table:
    name: str
    chains: dict[str, Chain] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)  # "-X CHAIN" lines, in order


@dataclass(slots=True)
class Dump:
    tables: dict[str, Table] = field(default_factory=dict)

    def chain(self, table: str, chain: str) -> Chain:
        return self.tables[table].chains[chain]

    def rules(self, table: str, chain: str) -> list[Rule]:
        t = self.tables.get(table)
        c = t.chains.get(chain) if t else None
        return c.rules if c else []


# --- tokenising -------------------------------------------------------------------------------


def split_args(line: str) -> list[str]:
    """Split a rule line as iptables-restore does: double quotes group, and inside quotes a
    backslash escapes the next character."""
    out: list[str] = []
    cur: list[str] = []
    in_token = quoted = escaped = False
    for ch in line:
        if quoted:
            if escaped:
                cur.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
            else:
                cur.append(ch)
            continue
        if ch == '"':
            quoted = in_token = True
        elif ch in " \t\r\n":
            if in_token:
                out.append("".join(cur))
                cur, in_token = [], False
        else:
            cur.append(ch)
            in_token = True
    if quoted:
        raise ValueError("unterminated quote")
    if in_token:
        out.append("".join(cur))
    return out


# --- value parsers ----------------------------------------------------------------------------


def _net(value: str) -> str:
    return str(ipaddress.IPv4Network(value, strict=False))


def _port_range(value: str) -> tuple[int, int]:
    lo, sep, hi = value.partition(":")
    a = int(lo) if lo else 0
    b = int(hi) if sep and hi else (65535 if sep else a)
    return a, b


def _int(value: str) -> int:
    return int(value, 0)


def _mark_pair(value: str) -> tuple[int, int | None]:
    v, sep, m = value.partition("/")
    return _int(v), (_int(m) if sep else None)


def _ct_states(value: str) -> tuple[str, ...]:
    names = {s.strip().upper() for s in value.split(",")}
    unknown = names - set(CT_STATES)
    if unknown:
        raise ValueError(f"unknown conntrack state {sorted(unknown)[0]}")
    return tuple(s for s in CT_STATES if s in names)


def probability_to_kernel(p: float) -> int:
    """xt_statistic keeps lround(p * 2^31) in a u32."""
    v = int(p * STATISTIC_SCALE + 0.5)
    return min(v, 0xFFFFFFFF)


# --- match option tables ----------------------------------------------------------------------

# module -> option -> number of values it takes
_OPTIONS: dict[str, dict[str, int]] = {
    "comment": {"--comment": 1},
    "tcp": {"--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1},
    "udp": {"--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1},
    "sctp": {"--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1},
    "multiport": {
        "--sports": 1,
        "--source-ports": 1,
        "--dports": 1,
        "--destination-ports": 1,
        "--ports": 1,
    },
    "mark": {"--mark": 1},
    "statistic": {"--mode": 1, "--probability": 1, "--every": 1, "--packet": 1},
    "conntrack": {"--ctstate": 1},
    "addrtype": {"--src-type": 1, "--dst-type": 1, "--limit-iface-in": 0, "--limit-iface-out": 0},
    "recent": {
        "--name": 1,
        "--set": 0,
        "--rcheck": 0,
        "--update": 0,
        "--remove": 0,
        "--seconds": 1,
        "--reap": 0,
        "--hitcount": 1,
        "--rttl": 0,
        "--mask": 1,
        "--rsource": 0,
        "--rdest": 0,
    },
    "nfacct": {"--nfacct-name": 1},
}

_TARGET_OPTIONS: dict[str, dict[str, int]] = {
    "REJECT": {"--reject-with": 1},
    "MARK": {"--set-xmark": 1, "--set-mark": 1, "--and-mark": 1, "--or-mark": 1, "--xor-mark": 1},
    "DNAT": {"--to-destination": 1, "--random": 0, "--persistent": 0},
    "SNAT": {"--to-source": 1, "--random": 0, "--random-fully": 0, "--persistent": 0},
    "MASQUERADE": {"--to-ports": 1, "--random": 0, "--random-fully": 0},
}
_REJECT_ALIASES = {
    "icmp-net-unreachable": "icmp-net-unreachable",
    "net-unreach": "icmp-net-unreachable",
    "icmp-host-unreachable": "icmp-host-unreachable",
    "host-unreach": "icmp-host-unreachable",
    "icmp-proto-unreachable": "icmp-proto-unreachable",
    "proto-unreach": "icmp-proto-unreachable",
    "icmp-port-unreachable": "icmp-port-unreachable",
    "port-unreach": "icmp-port-unreachable",
    "icmp-net-prohibited": "icmp-net-prohibited",
    "net-prohib": "icmp-net-prohibited",
    "icmp-host-prohibited": "icmp-host-prohibited",
    "host-prohib": "icmp-host-prohibited",
    "icmp-admin-prohibited": "icmp-admin-prohibited",
    "admin-prohib": "icmp-admin-prohibited",
    "tcp-reset": "tcp-reset",
    "tcp-rst": "tcp-reset",
}


@dataclass(slots=True)
class _PendingMatch:
    module: str
    opts: list[tuple[str, bool, tuple[str, ...]]] = field(default_factory=list)  # (option, negated, values)


def _build_match(pm: _PendingMatch) -> Match:
    mod = pm.module
    opts = pm.opts
    if mod == "comment":
        return Comment(opts[0][2][0] if opts else "")
    if mod in ("tcp", "udp", "sctp"):
        sport = dport = None
        sneg = dneg = False
        for o, neg, vals in opts:
            if o in ("--sport", "--source-port"):
                sport, sneg = _port_range(vals[0]), neg
            else:
                dport, dneg = _port_range(vals[0]), neg
        return PortMatch(mod, sport, sneg, dport, dneg)
    if mod == "multiport":
        o, neg, vals = opts[0]
        kind = {"--source-ports": "sports", "--destination-ports": "dports"}.get(o, o[2:])
        return MultiportMatch(kind, tuple(_port_range(p) for p in vals[0].split(",")), neg)
    if mod == "mark":
        o, neg, vals = opts[0]
        v, m = _mark_pair(vals[0])
        return MarkMatch(v, 0xFFFFFFFF if m is None else m, neg)
    if mod == "statistic":
        d = {o: (neg, vals[0]) for o, neg, vals in opts}
        neg = any(n for n, _ in d.values())
        return StatisticMatch(
            mode=d["--mode"][1],
            probability=probability_to_kernel(float(d["--probability"][1])) if "--probability" in d else 0,
            every=int(d["--every"][1]) if "--every" in d else 0,
            packet=int(d["--packet"][1]) if "--packet" in d else 0,
            neg=neg,
        )
    if mod == "conntrack":
        o, neg, vals = opts[0]
        return ConntrackMatch(_ct_states(vals[0]), neg)
    if mod == "addrtype":
        kw: dict[str, object] = {}
        for o, neg, vals in opts:
            if o == "--src-type":
                kw.update(src_type=vals[0].upper(), src_neg=neg)
            elif o == "--dst-type":
                kw.update(dst_type=vals[0].upper(), dst_neg=neg)
            elif o == "--limit-iface-in":
                kw["limit_iface_in"] = True
            else:
                kw["limit_iface_out"] = True
        return AddrTypeMatch(**kw)  # type: ignore[arg-type]
    if mod == "recent":
        rkw: dict[str, object] = {}
        for o, neg, vals in opts:
            if o in ("--set", "--rcheck", "--update", "--remove"):
                rkw.update(command=o[2:], neg=neg)
            elif o == "--name":
                rkw["name"] = vals[0]
            elif o in ("--seconds", "--hitcount"):
                rkw[o[2:]] = int(vals[0])
            elif o in ("--reap", "--rttl"):
                rkw[o[2:]] = True
            elif o == "--mask":
                rkw["mask"] = vals[0]
            else:
                rkw["rsource"] = o == "--rsource"
        return RecentMatch(**rkw)  # type: ignore[arg-type]
    if mod == "nfacct":
        return NfacctMatch(opts[0][2][0])
    args: list[str] = []
    for o, neg, vals in opts:
        args.extend((["!"] if neg else []) + [o, *vals])
    return GenericMatch(mod, tuple(args))


def _build_target(name: str, opts: list[tuple[str, bool, tuple[str, ...]]]) -> Target:
    d = {o: vals for o, _, vals in opts}
    if name in VERDICTS:
        return Verdict(name)
    if name == "REJECT":
        w = d.get("--reject-with", ("icmp-port-unreachable",))[0]
        return Reject(_REJECT_ALIASES.get(w, w))
    if name == "MARK":
        o, _, vals = opts[0]
        v, m = _mark_pair(vals[0])
        if o == "--set-xmark":
            return Mark(v, 0xFFFFFFFF if m is None else m)
        if o == "--set-mark":
            return Mark(v, (0xFFFFFFFF if m is None else m) | v)
        if o == "--and-mark":
            return Mark(0, ~v & 0xFFFFFFFF)
        if o == "--or-mark":
            return Mark(v, v)
        return Mark(v, 0)  # --xor-mark
    if name == "DNAT":
        return Dnat(d["--to-destination"][0], "--random" in d, "--persistent" in d)
    if name == "SNAT":
        return Snat(d["--to-source"][0], "--random" in d, "--random-fully" in d, "--persistent" in d)
    if name == "MASQUERADE":
        return Masquerade(d["--to-ports"][0] if "--to-ports" in d else None, "--random" in d, "--random-fully" in d)
    args: list[str] = []
    for o, neg, vals in opts:
        args.extend((["!"] if neg else []) + [o, *vals])
    return GenericTarget(name, tuple(args))


def parse_rule(chain: str, args: list[str]) -> Rule:
    """Parse the arguments that follow ``-A CHAIN``.

    Options are dispatched the way iptables does it: to the most recently loaded match that
    knows them, or to an implicit ``tcp``/``udp``/``sctp`` match after ``-p``. Raises
    ValueError on anything it cannot place.
    """
    kw: dict[str, object] = {}
    pending: list[_PendingMatch] = []
    target_name: str | None = None
    goto = False
    target_opts: list[tuple[str, bool, tuple[str, ...]]] = []
    neg = False
    i = 0
    n = len(args)
    while i < n:
        a = args[i]
        i += 1
        if a == "!":
            neg = True
            continue
        if a in ("-s", "--source", "--src", "-d", "--destination", "--dst"):
            key = "src" if a in ("-s", "--source", "--src") else "dst"
            kw[key], kw[key + "_neg"] = _net(args[i]), neg
            i += 1
        elif a in ("-i", "--in-interface", "-o", "--out-interface"):
            key = "in_iface" if a in ("-i", "--in-interface") else "out_iface"
            kw[key], kw[key.split("_")[0] + "_neg"] = args[i], neg
            i += 1
        elif a in ("-p", "--protocol"):
            p = args[i].lower()
            kw["proto"], kw["proto_neg"] = _PROTO_NAMES.get(p, p), neg
            i += 1
        elif a in ("-m", "--match"):
            pending.append(_PendingMatch(args[i]))
            i += 1
        elif a in ("-j", "--jump", "-g", "--goto"):
            target_name, goto = args[i], a in ("-g", "--goto")
            i += 1
        elif a in ("-c", "--set-counters"):
            i += 2
        elif a.startswith("--") or (a.startswith("-") and len(a) == 2):
            if target_name is not None and a in _TARGET_OPTIONS.get(target_name, {}):
                arity = _TARGET_OPTIONS[target_name][a]
                target_opts.append((a, neg, tuple(args[i : i + arity])))
                i += arity
            elif target_name is not None and target_name not in _TARGET_OPTIONS and target_name not in VERDICTS:
                tvals: list[str] = []
                while i < n and not args[i].startswith("-") and args[i] != "!":
                    tvals.append(args[i])
                    i += 1
                target_opts.append((a, neg, tuple(tvals)))
            else:
                owner = next((m for m in reversed(pending) if a in _OPTIONS.get(m.module, {})), None)
                if owner is None and kw.get("proto") in ("tcp", "udp", "sctp") and a in _OPTIONS["tcp"]:
                    owner = _PendingMatch(str(kw["proto"]))  # iptables loads the protocol match implicitly
                    pending.append(owner)
                if owner is None and kw.get("proto") == "icmp" and a == "--icmp-type":
                    pending.append(_PendingMatch("icmp"))  # implicit too; read as a generic match below
                if owner is not None:
                    arity = _OPTIONS[owner.module][a]
                else:
                    owner = next((m for m in reversed(pending) if m.module not in _OPTIONS), None)
                    if owner is None:
                        raise ValueError(f"unknown option {a}")
                    arity = 0
                    while i + arity < n and not args[i + arity].startswith("-") and args[i + arity] != "!":
                        arity += 1
                if i + arity > n:
                    raise ValueError(f"option {a} needs a value")
                vals = tuple(args[i : i + arity])
                i += arity
                # old syntax: "--dport ! 80"
                if arity == 1 and vals[0] == "!" and i < n:
                    vals, neg = (args[i],), True
                    i += 1
                owner.opts.append((a, neg, vals))
        else:
            raise ValueError(f"unexpected argument {a!r}")
        neg = False
    target: Target | None = None
    if target_name is not None:
        if target_name in VERDICTS or target_name in _TARGET_OPTIONS:
            target = _build_target(target_name, target_opts)
        elif goto or (not target_opts and target_name not in EXTENSION_TARGETS):
            target = Jump(target_name, goto)
        else:
            target = _build_target(target_name, target_opts)
    return Rule(chain=chain, matches=tuple(_build_match(m) for m in pending), target=target, **kw)  # type: ignore[arg-type]


def parse_restore(text: str) -> Dump:
    """Parse ``iptables-restore`` input or ``iptables-save`` output.

    A ``:CHAIN`` line declares (and, on restore, flushes) a chain; rules for undeclared
    chains create them with ``declared=False`` (noflush appends). ``-X`` lines are kept in
    ``Table.deleted``. Counters are read from chain lines and ignored on rules.
    """
    dump = Dump()
    table: Table | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if line.startswith("*"):
                if table is not None:
                    raise ValueError(f"table {table.name} has no COMMIT")
                name = line[1:].strip()
                table = dump.tables.setdefault(name, Table(name))
                continue
            if table is None:
                raise ValueError("rule outside of a table")
            if line == "COMMIT":
                table = None
                continue
            if line.startswith(":"):
                parts = line[1:].split()
                name, policy = parts[0], parts[1] if len(parts) > 1 else "-"
                counters = (0, 0)
                if len(parts) > 2 and parts[2].startswith("["):
                    pk, _, by = parts[2][1:-1].partition(":")
                    counters = (int(pk), int(by))
                old = table.chains.get(name)
                if old is not None:
                    old.rules.clear()
                table.chains[name] = Chain(name, None if policy == "-" else policy, counters, True)
                continue
            if line.startswith("["):  # "[pkts:bytes] -A ..." from iptables-save -c
                line = line.split("]", 1)[1].strip()
            args = split_args(line)
            cmd = args[0]
            if cmd in ("-A", "--append", "-I", "--insert"):
                cname = args[1]
                rest = args[2:]
                pos: int | None = None
                if cmd in ("-I", "--insert") and rest and rest[0].isdigit():
                    pos, rest = int(rest[0]), rest[1:]
                ch = table.chains.get(cname)
                if ch is None:
                    builtin = cname in BUILTIN_CHAINS.get(table.name, ())
                    ch = table.chains[cname] = Chain(cname, "ACCEPT" if builtin else None, (0, 0), False)
                rule = parse_rule(cname, rest)
                if cmd in ("-A", "--append"):
                    ch.rules.append(rule)
                else:
                    ch.rules.insert((pos or 1) - 1, rule)
            elif cmd in ("-X", "--delete-chain"):
                table.deleted.append(args[1])
                table.chains.pop(args[1], None)
            elif cmd in ("-N", "--new-chain"):
                table.chains.setdefault(args[1], Chain(args[1], None, (0, 0), True))
            elif cmd in ("-F", "--flush"):
                if len(args) > 1 and args[1] in table.chains:
                    table.chains[args[1]].rules.clear()
            else:
                raise ValueError(f"unsupported command {cmd}")
        except (ValueError, IndexError, KeyError) as e:
            raise RestoreParseError(lineno, f"{e}: {line}") from None
    if table is not None:
        raise RestoreParseError(len(text.splitlines()), f"table {table.name} has no COMMIT")
    return dump
