"""ipsets as records: what ``ipset save`` prints and ``ipset restore`` reads, and how the kernel
matches an address against a set.

One record type for the policy renderer (what a node's sets should hold), the kernel layer (what
they hold) and the simulator (does this packet's address match). Only the two types NetworkPolicy
needs are modelled: ``hash:ip`` (pod addresses) and ``hash:net`` (ipBlock CIDRs, ``except``
entries stored ``nomatch``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .ipv4 import MASKS, ip_int, net_int

HASH_IP = "hash:ip"
HASH_NET = "hash:net"
TYPES = (HASH_IP, HASH_NET)


@dataclass(frozen=True, slots=True)
class IPSet:
    """One set. ``members`` are addresses (``hash:ip``) or CIDRs (``hash:net``, a /32 written
    as a bare address, as ipset prints it); ``nomatch`` the CIDRs stored with that flag."""

    name: str
    type: str = HASH_IP
    members: tuple[str, ...] = ()
    nomatch: tuple[str, ...] = ()
    options: str = "family inet hashsize 1024 maxelem 65536"
    _index: dict[int, dict[int, bool]] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def _lookup(self) -> dict[int, dict[int, bool]]:
        """prefix length -> {network: matches}; built once."""
        if not self._index:
            for entries, ok in ((self.members, True), (self.nomatch, False)):
                for e in entries:
                    net, plen = net_int(e if "/" in e else f"{e}/32")
                    self._index.setdefault(plen, {})[net] = ok
        return self._index

    def contains(self, ip: int) -> bool:
        """The kernel's answer: the most specific entry holding ``ip`` decides, and a
        ``nomatch`` entry means no match."""
        index = self._lookup()
        for plen in sorted(index, reverse=True):
            hit = index[plen].get(ip & MASKS[plen])
            if hit is not None:
                return hit
        return False

    def contains_text(self, ip: str) -> bool:
        return self.contains(ip_int(ip))


def entry_text(entry: str) -> str:
    """How ``ipset save`` writes an entry: a /32 as the bare address."""
    return entry[:-3] if entry.endswith("/32") else entry


def save_lines(s: IPSet) -> list[str]:
    """The set in ``ipset save`` form (without kube-router's timeouts and the kernel's
    ``initval``, which save adds for its own restore and which do not change what matches)."""
    out = [f"create {s.name} {s.type} {s.options}"]
    out += [f"add {s.name} {entry_text(m)}" for m in s.members]
    out += [f"add {s.name} {entry_text(m)} nomatch" for m in s.nomatch]
    return out


def save_text(sets: Iterable[IPSet]) -> str:
    lines: list[str] = []
    for s in sets:
        lines += save_lines(s)
    return "\n".join(lines) + ("\n" if lines else "")


class IPSetParseError(ValueError):
    pass


def parse_save(text: str) -> dict[str, IPSet]:
    """``ipset save`` (or ``ipset restore`` input made of create/add lines) -> sets by name.
    Options after the type (``timeout``, ``initval``, ...) are kept as text; per-entry options
    other than ``nomatch`` are ignored."""
    creates: dict[str, tuple[str, str]] = {}
    members: dict[str, list[str]] = {}
    nomatch: dict[str, list[str]] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        verb = parts[0]
        if verb == "create" and len(parts) >= 3:
            creates[parts[1]] = (parts[2], " ".join(parts[3:]))
            members.setdefault(parts[1], [])
            nomatch.setdefault(parts[1], [])
        elif verb == "add" and len(parts) >= 3:
            if parts[1] not in creates:
                raise IPSetParseError(f"line {n}: add to set {parts[1]!r} before it is created")
            (nomatch if "nomatch" in parts[3:] else members)[parts[1]].append(parts[2])
        elif verb in ("flush", "destroy", "swap", "-exist"):
            continue
        else:
            raise IPSetParseError(f"line {n}: cannot read {line!r}")
    return {
        name: IPSet(name, typ, tuple(members[name]), tuple(nomatch[name]), opts)
        for name, (typ, opts) in creates.items()
    }
