"""A symbolic source port, so one walk answers for every source port that nothing looks at.

Open vSwitch's megaflows key a cached decision on the header fields the decision read. Here
the field almost nothing reads is the client's source port: kube-proxy, flannel and the
routing tables never match on it. A trace is therefore walked once with the source port
replaced by a ``SymPort``, an ``int`` far outside the port range (so it equals no real port
and conntrack tuples still pair up) that prints as a marker. Whatever reads its value (a
``--sport`` match, a ``--dport`` match on a reply, an index lookup on it) calls ``touched``,
and the walk is then redone with the real port; the VXLAN source-port hash derives a new
symbol from it instead. An untouched walk is a template: its text becomes any port's trace
by putting the port, and every value derived from it, in place of the markers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

SYM_BASE = 1 << 40  # far above any port: a symbol never equals a real one
MARK = "\x00"  # never part of a name, a rule comment or a number: markers cannot collide


class SymPort(int):
    """A port whose value is not known yet: ``derive(real source port)`` gives it."""

    derive: Callable[[int], int]

    def __new__(cls, value: int, derive: Callable[[int], int]) -> SymPort:
        self = super().__new__(cls, value)
        self.derive = derive
        return self

    @property
    def label(self) -> str:
        return f"{MARK}{self - SYM_BASE}{MARK}"

    def __format__(self, spec: str) -> str:
        return self.label

    def __str__(self) -> str:
        return self.label

    __repr__ = __str__


def _same(port: int) -> int:
    return port


SPORT = SymPort(SYM_BASE, _same)  # the client's source port itself


class _Reads(threading.local):
    """What the current walk did with symbols: whether one was read, which ones it made."""

    def __init__(self) -> None:
        self.touched = False
        self.syms: dict[int, SymPort] = {}
        self.parts: dict[int, tuple[int, ...]] = {}

    def start(self) -> None:
        self.touched = False
        self.syms = {0: SPORT}
        self.parts = {}


READS = _Reads()


def touched() -> None:
    """A decision read a symbolic port's value: the walk holds only for the symbol."""
    READS.touched = True


def derived(parts: tuple[int, ...], fn: Callable[[tuple[int, ...]], int]) -> int:
    """``fn(parts)``, or a symbol for it when some of ``parts`` are symbols. Its value is a
    stable function of the parts, so caches keyed on headers still hit across walks."""
    for p in parts:
        if type(p) is SymPort:
            break
    else:
        return fn(parts)

    def derive(real: int) -> int:
        return fn(tuple(p.derive(real) if isinstance(p, SymPort) else p for p in parts))

    sym = SymPort(SYM_BASE + 1 + (hash(parts) & 0xFFFFFFFF), derive)
    k = sym - SYM_BASE
    if READS.parts.setdefault(k, parts) != parts:
        READS.touched = True  # two derivations share a number: do not trust the markers
    READS.syms[k] = sym
    return sym


def resolver(real: int, syms: dict[int, SymPort]) -> Callable[[str], str]:
    """Text with every marker replaced by its value for source port ``real``."""
    values: dict[str, str] = {}

    def resolve(text: str) -> str:
        if MARK not in text:
            return text
        # MARK occurs only around labels: every odd part of the split is a label's number.
        parts = text.split(MARK)
        for j in range(1, len(parts), 2):
            k = parts[j]
            v = values.get(k)
            if v is None:
                v = values[k] = str(syms[int(k)].derive(real))
            parts[j] = v
        return "".join(parts)

    return resolve


def labels(text: str) -> list[int]:
    """The symbols ``text`` mentions, by number."""
    return [int(k) for k in text.split(MARK)[1::2]]
