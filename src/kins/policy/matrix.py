"""Who can reach whom: the truth table of every pod pair, read from the nodes' own rules.

Each pair is judged the way the kernel judges its first packet: the source pod's chain on its
node (egress) and the destination pod's chain on its node (ingress), walked by the simulator over
the node's iptables rules and ipsets — rendered from manifests offline, or read back from the
live nodes (``iptables-save``, ``ipset save``). A pod no policy selects has no chain and passes.

Walks are shared between pairs that the rules cannot tell apart: a source's egress verdict
depends on the destination only through the sets its chain matches destinations against (and
likewise for ingress), so destinations with the same memberships take the same walk. That keeps
1,000 x 1,000 pods to a few thousand walks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ..model.ipset import IPSet
from ..model.ipv4 import ip_int
from ..render.netpol.model import PodInfo
from ..render.netpol.names import pod_chain
from ..sim.iptables import Ruleset
from ..sim.packet import Packet

ALLOWED = "allowed"
DENIED = "denied"
SOURCE_PORT = 40000

_RULE = re.compile(r"^-A (\S+) (.*)$")
_JUMP = re.compile(r"(?:^|\s)-[jg] (\S+)")
_SET = re.compile(r"(!\s+)?--match-set (\S+) (src|dst)\b")


@dataclass
class NodeRules:
    """One node's filter rules and sets, compiled for walks."""

    ruleset: Ruleset
    sets: Mapping[str, IPSet]
    # chain -> (chains it jumps to, sets it matches sources against, ... destinations against)
    graph: dict[str, tuple[set[str], set[str], set[str]]] = field(default_factory=dict)
    _reach: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)

    @classmethod
    def from_text(cls, text: str, sets: Mapping[str, IPSet], local: Iterable[str] = ()) -> NodeRules:
        """``text``: iptables-restore input or iptables-save output holding the filter table."""
        own = {ip_int(a) for a in local}

        def addr_type(ip: int) -> str:
            return "LOCAL" if ip in own else "UNICAST"

        graph: dict[str, tuple[set[str], set[str], set[str]]] = {}
        table = ""
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:].strip()
                continue
            m = _RULE.match(line)
            if not m or table != "filter":
                continue
            jumps, srcs, dsts = graph.setdefault(m.group(1), (set(), set(), set()))
            args = m.group(2)
            j = _JUMP.search(args)
            if j:
                jumps.add(j.group(1))
            for _neg, name, where in _SET.findall(args):
                (srcs if where == "src" else dsts).add(name)
        return cls(Ruleset.from_text(text, addr_type, sets), sets, graph)

    @classmethod
    def shared(cls, nodes: Mapping[str, tuple[str, Mapping[str, IPSet], Iterable[str]]]) -> dict[str, NodeRules]:
        """Every node's rules, compiled once for all when they agree: a policy's chain is the
        same text on every node that holds it, and a pod's chain lives on one node only, so
        one ruleset of all their chains judges every pod. Nodes whose chains or sets differ
        (a live node that has not caught up) keep rules of their own."""
        chains: dict[str, list[str]] = {}
        sets: dict[str, IPSet] = {}
        clash = False
        per_node: dict[str, dict[str, list[str]]] = {}
        for node, (text, node_sets, _local) in nodes.items():
            mine = per_node[node] = _filter_chains(text)
            for name, rules in mine.items():
                if name.startswith("KUBE-ROUTER-") or name in ("INPUT", "FORWARD", "OUTPUT"):
                    continue  # dispatch only: the matrix enters the pods' chains directly
                if chains.setdefault(name, rules) != rules:
                    clash = True
            for name, s in node_sets.items():
                if sets.setdefault(name, s) != s:
                    clash = True
        if clash:
            return {node: cls.from_text(text, s, local) for node, (text, s, local) in nodes.items()}
        lines = ["*filter", *(f":{c} - [0:0]" for c in chains)]
        for rules in chains.values():
            lines += rules
        lines.append("COMMIT")
        one = cls.from_text("\n".join(lines) + "\n", sets, ())
        return dict.fromkeys(nodes, one)

    def reach(self, chain: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The sets any rule reachable from ``chain`` matches (sources, destinations)."""
        got = self._reach.get(chain)
        if got is None:
            srcs: set[str] = set()
            dsts: set[str] = set()
            seen = {chain}
            todo = [chain]
            while todo:
                c = todo.pop()
                jumps, s, d = self.graph.get(c, (set(), set(), set()))
                srcs |= s
                dsts |= d
                for j in jumps - seen:
                    seen.add(j)
                    todo.append(j)
            got = self._reach[chain] = (tuple(sorted(srcs)), tuple(sorted(dsts)))
        return got

    def has(self, chain: str) -> bool:
        return chain in self.graph

    def signature(self, names: tuple[str, ...], ip: int) -> tuple[bool, ...]:
        return tuple(self.sets[n].contains(ip) if n in self.sets else False for n in names)

    def passes(self, chain: str, pkt: Packet) -> bool:
        """Whether the packet leaves ``chain`` other than rejected or dropped."""
        outs = self.ruleset.run("filter", chain, pkt, None, None)
        return all(o.verdict not in ("REJECT", "DROP") for o in outs)


def _filter_chains(text: str) -> dict[str, list[str]]:
    """The filter table's rules by chain, as written."""
    out: dict[str, list[str]] = {}
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif table == "filter":
            if line.startswith(":"):
                out.setdefault(line[1:].split(" ", 1)[0], [])
            elif line.startswith("-A "):
                out.setdefault(line.split(" ", 2)[1], []).append(line)
    return out


@dataclass
class Matrix:
    port: int
    protocol: str  # TCP, UDP or SCTP
    pods: list[str]
    verdicts: dict[str, dict[str, str]]
    walks: int = 0
    wrong: list[tuple[str, str]] = field(default_factory=list)
    probed: bool = False

    def allowed(self, src: str, dst: str) -> bool:
        return self.verdicts[src][dst] == ALLOWED

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "port": self.port,
            "protocol": self.protocol,
            "pods": self.pods,
            "verdicts": self.verdicts,
            "wrong": [list(w) for w in self.wrong],
        }
        return out

    def table(self, observed: Mapping[tuple[str, str], bool] | None = None) -> str:
        """The upstream e2e truth table: rows from, columns to, ``.`` allowed, ``X`` denied;
        with ``observed``, a disagreeing cell shows what the probe saw, in lower case marks
        (``x`` denied where allowed was predicted, ``!`` allowed where denied was)."""
        names = self.pods
        width = max([len(n) for n in names] + [1])
        lines = ["-".ljust(width) + "  " + "  ".join(n.ljust(width) for n in names)]
        for src in names:
            cells = []
            for dst in names:
                mark = "." if self.verdicts[src][dst] == ALLOWED else "X"
                if observed is not None and src != dst and (src, dst) in observed:
                    seen = observed[(src, dst)]
                    if seen != (mark == "."):
                        mark = "!" if seen else "x"
                cells.append(mark.ljust(width))
            lines.append(src.ljust(width) + "  " + "  ".join(cells).rstrip())
        return "\n".join(lines) + "\n"


def _partition(base: int, masks: Iterable[int]) -> list[int]:
    """``base`` (a set of pods as bits) split into the classes no mask tells apart."""
    classes = [base] if base else []
    for m in dict.fromkeys(masks):
        split = []
        for c in classes:
            inside, outside = c & m, c & ~m
            if inside:
                split.append(inside)
            if outside:
                split.append(outside)
        classes = split
    return classes


def compute(
    pods: list[PodInfo],
    nodes: Mapping[str, NodeRules],
    port: int,
    protocol: str,
    progress: Callable[[int], None] | None = None,
) -> Matrix:
    """Every ordered pair of ``pods`` (a pod reaches itself: the packet never leaves it).

    Per pod and direction, the other pods are split into classes by membership of the sets its
    chain matches them against; one walk per class decides the whole class."""
    proto = protocol.lower()
    keys = [p.key for p in pods]
    ips = [ip_int(p.ip) for p in pods]
    index: dict[int, int] = {}
    for i, ip in enumerate(ips):
        index.setdefault(ip, i)
    everyone = (1 << len(pods)) - 1
    masks: dict[tuple[str, str], int] = {}

    def members(node: str, rules: NodeRules, name: str) -> int:
        got = masks.get((node, name))
        if got is None:
            s = rules.sets.get(name)
            got = 0
            if s is not None and s.type == "hash:ip" and not s.nomatch:
                for m in s.members:
                    i = index.get(ip_int(m.split("/")[0]))
                    if i is not None:
                        got |= 1 << i
            elif s is not None:
                for i, ip in enumerate(ips):
                    if s.contains(ip):
                        got |= 1 << i
            masks[(node, name)] = got
        return got

    walks = 0

    def allowed(i: int, direction: str) -> int:
        """The pods pod ``i`` may reach (egress) or be reached from (ingress), as bits."""
        nonlocal walks
        pod = pods[i]
        rules = nodes.get(pod.node)
        chain = pod_chain(pod.namespace, pod.name)
        if rules is None or not rules.has(chain):
            return everyone
        src_sets, dst_sets = rules.reach(chain)
        peer_sets = dst_sets if direction == "egress" else src_sets
        out = 1 << i
        for cls in _partition(everyone & ~(1 << i), (members(pod.node, rules, n) for n in peer_sets)):
            j = (cls & -cls).bit_length() - 1
            if direction == "egress":
                pkt = Packet(ips[i], ips[j], proto, SOURCE_PORT, port)
            else:
                pkt = Packet(ips[j], ips[i], proto, SOURCE_PORT, port)
            walks += 1
            if rules.passes(chain, pkt):
                out |= cls
        return out

    egress = [allowed(i, "egress") for i in range(len(pods))]
    ingress = [allowed(i, "ingress") for i in range(len(pods))]
    verdicts: dict[str, dict[str, str]] = {}
    for i, src in enumerate(keys):
        e = egress[i]
        bit = 1 << i
        verdicts[src] = {dst: ALLOWED if (e >> j) & 1 and ingress[j] & bit else DENIED for j, dst in enumerate(keys)}
        if progress is not None:
            progress(i + 1)
    return Matrix(port, protocol.upper(), keys, verdicts, walks)
