"""iptables inside a kins namespace, the way kube-proxy drives it.

One ``iptables-restore --noflush --counters`` per sync carries all of kube-proxy's chains and rules
(a chain line in the payload flushes that chain, nothing else is touched); the few jumps from the
built-in chains into ``KUBE-*`` are ensured separately, once, like kube-proxy's ``EnsureRule``.
The commands run through ``nsenter --net`` so only the namespace's tables are seen.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Sequence

from .._errors import KernelError
from . import netns as _netns

# kube-proxy's base-chain jumps (table, built-in chain, rule args), in its own order and words.
_CT_NEW = ["-m", "conntrack", "--ctstate", "NEW"]


def _jump(table: str, chain: str, extra: list[str], comment: str, target: str) -> tuple[str, str, list[str]]:
    return (table, chain, [*extra, "-m", "comment", "--comment", comment, "-j", target])


KUBE_PROXY_JUMPS: list[tuple[str, str, list[str]]] = [
    _jump("filter", "INPUT", _CT_NEW, "kubernetes externally-visible service portals", "KUBE-EXTERNAL-SERVICES"),
    _jump("filter", "FORWARD", _CT_NEW, "kubernetes externally-visible service portals", "KUBE-EXTERNAL-SERVICES"),
    _jump("filter", "INPUT", [], "kubernetes health check service ports", "KUBE-NODEPORTS"),
    _jump("filter", "FORWARD", _CT_NEW, "kubernetes service portals", "KUBE-SERVICES"),
    _jump("filter", "OUTPUT", _CT_NEW, "kubernetes service portals", "KUBE-SERVICES"),
    _jump("filter", "FORWARD", [], "kubernetes forwarding rules", "KUBE-FORWARD"),
    _jump("filter", "INPUT", _CT_NEW, "kubernetes load balancer firewall", "KUBE-PROXY-FIREWALL"),
    _jump("filter", "OUTPUT", _CT_NEW, "kubernetes load balancer firewall", "KUBE-PROXY-FIREWALL"),
    _jump("filter", "FORWARD", _CT_NEW, "kubernetes load balancer firewall", "KUBE-PROXY-FIREWALL"),
    _jump("nat", "OUTPUT", [], "kubernetes service portals", "KUBE-SERVICES"),
    _jump("nat", "PREROUTING", [], "kubernetes service portals", "KUBE-SERVICES"),
    _jump("nat", "POSTROUTING", [], "kubernetes postrouting rules", "KUBE-POSTROUTING"),
]


class IPTablesError(KernelError):
    """iptables-restore refused a payload; the message quotes the lines around the failure."""


def _run(netns: str, argv: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return _netns.run_tool(netns, argv, stdin)


def excerpt(text: str, line: int, context: int = 3) -> str:
    """Lines ``line-context .. line+context`` of ``text`` (1-based), numbered, the failing one marked."""
    lines = text.splitlines()
    lo, hi = max(1, line - context), min(len(lines), line + context)
    return "\n".join(f"{'>' if i == line else ' '}{i:5d}  {lines[i - 1]}" for i in range(lo, hi + 1))


_LINE_RE = re.compile(r"(?:line:?\s+|at line:\s*)(\d+)", re.IGNORECASE)
_QUOTED_RE = re.compile(r"'([^'\s]+)'")


def failing_line(text: str, err: str) -> int | None:
    """The payload line an iptables-restore error is about.

    The nf_tables backend checks chain references at ``COMMIT`` and reports that line; when the
    message names a chain (``Chain 'X' does not exist``), the first rule using it is the culprit.
    """
    m = _LINE_RE.search(err)
    if not m:
        return None
    line = int(m.group(1))
    lines = text.splitlines()
    if 0 < line <= len(lines) and lines[line - 1].strip() == "COMMIT":
        for name in _QUOTED_RE.findall(err):
            start = max(i for i in range(line) if i == 0 or lines[i - 1].startswith("*"))
            for i in range(start, line):
                if re.search(rf"(^|\s){re.escape(name)}(\s|$)", lines[i]) and not lines[i].startswith(":"):
                    return i + 1
    return line


def restore(netns: str, text: str, noflush: bool = True, counters: bool = True) -> None:
    """Feed ``text`` to ``iptables-restore`` in the namespace (atomic per table)."""
    argv = ["iptables-restore", "-w"]
    if noflush:
        argv.append("--noflush")
    if counters:
        argv.append("--counters")
    res = _run(netns, argv, text)
    if res.returncode != 0:
        err = res.stderr.strip() or res.stdout.strip()
        line = failing_line(text, err)
        detail = f"{err}\n{excerpt(text, line)}" if line else err
        raise IPTablesError("iptables-restore", netns, detail)


def save(netns: str, table: str | None = None, counters: bool = False) -> str:
    argv = ["iptables-save"]
    if table:
        argv += ["-t", table]
    if counters:
        argv.append("-c")
    res = _run(netns, argv)
    if res.returncode != 0:
        raise KernelError("iptables-save", netns, res.stderr.strip())
    return res.stdout


def chains(save_text: str) -> dict[str, set[str]]:
    """Chains per table in ``iptables-save`` output."""
    out: dict[str, set[str]] = {}
    table = ""
    for line in save_text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            out.setdefault(table, set())
        elif line.startswith(":") and table:
            out[table].add(line[1:].split()[0])
    return out


def ensure_jumps(netns: str, jumps: Iterable[tuple[str, str, list[str]]]) -> list[tuple[str, str, list[str]]]:
    """Insert each jump at the top of its chain unless an equal rule is there (``iptables -C``).

    A jump's target chain is created first when missing. Returns the jumps inserted now.
    """
    jumps = list(jumps)
    if not jumps:
        return []
    have = chains(save(netns))
    inserted = []
    for table, chain, args in jumps:
        target = args[args.index("-j") + 1] if "-j" in args else None
        if target and target.startswith("KUBE-") and target not in have.get(table, set()):
            res = _run(netns, ["iptables", "-w", "-t", table, "-N", target])
            if res.returncode != 0 and "exists" not in res.stderr:
                raise KernelError(f"iptables -t {table} -N {target}", netns, res.stderr.strip())
            have.setdefault(table, set()).add(target)
        if _run(netns, ["iptables", "-w", "-t", table, "-C", chain, *args]).returncode == 0:
            continue
        res = _run(netns, ["iptables", "-w", "-t", table, "-I", chain, "1", *args])
        if res.returncode != 0:
            raise KernelError(f"iptables -t {table} -I {chain}", netns, res.stderr.strip())
        inserted.append((table, chain, args))
    return inserted


def ensure_appended(netns: str, table: str, chain: str, args: list[str]) -> bool:
    """Append a rule to ``chain`` unless an equal one is there; True if it was appended."""
    if _run(netns, ["iptables", "-w", "-t", table, "-C", chain, *args]).returncode == 0:
        return False
    res = _run(netns, ["iptables", "-w", "-t", table, "-A", chain, *args])
    if res.returncode != 0:
        raise KernelError(f"iptables -t {table} -A {chain}", netns, res.stderr.strip())
    return True


def ensure_chains(netns: str, wanted: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Create each (table, chain) that is missing, like kube-proxy's ``EnsureChain`` for its
    canary chains; returns those created now."""
    wanted = list(wanted)
    if not wanted:
        return []
    have = chains(save(netns))
    created = []
    for table, chain in wanted:
        if chain in have.get(table, set()):
            continue
        res = _run(netns, ["iptables", "-w", "-t", table, "-N", chain])
        if res.returncode != 0 and "exists" not in res.stderr:
            raise KernelError(f"iptables -t {table} -N {chain}", netns, res.stderr.strip())
        have.setdefault(table, set()).add(chain)
        created.append((table, chain))
    return created


def jumps_for(text: str) -> list[tuple[str, str, list[str]]]:
    """kube-proxy's base jumps whose target chain the restore payload declares."""
    declared = chains(text)
    return [j for j in KUBE_PROXY_JUMPS if j[2][-1] in declared.get(j[0], set())]


def ensure_first(netns: str, table: str, chain: str, args: list[str]) -> bool:
    """Keep a rule first in ``chain`` (kube-router's ``ensureRuleAtPosition``): inserted when
    missing, moved when another rule got in front of it. True when something changed."""
    res = _run(netns, ["iptables", "-w", "-t", table, "-S", chain])
    if res.returncode != 0:
        raise KernelError(f"iptables -t {table} -S {chain}", netns, res.stderr.strip())
    rules = [line for line in res.stdout.splitlines() if line.startswith("-A ")]
    present = _run(netns, ["iptables", "-w", "-t", table, "-C", chain, *args]).returncode == 0
    if present and rules and _run_check_first(netns, table, chain, args, rules[0]):
        return False
    res = _run(netns, ["iptables", "-w", "-t", table, "-I", chain, "1", *args])
    if res.returncode != 0:
        raise KernelError(f"iptables -t {table} -I {chain}", netns, res.stderr.strip())
    if present:  # the old copy is now further down; -D removes the first match, so delete by number
        res = _run(netns, ["iptables", "-w", "-t", table, "-S", chain])
        lines = [line for line in res.stdout.splitlines() if line.startswith("-A ")]
        for i, line in enumerate(lines[1:], 2):
            if line == lines[0]:
                _run(netns, ["iptables", "-w", "-t", table, "-D", chain, str(i)])
                break
    return True


def _run_check_first(netns: str, table: str, chain: str, args: list[str], first: str) -> bool:
    """Whether ``first`` (an ``iptables -S`` line) is the rule ``args`` describe: the comment,
    which carries kube-router's rule id, and the target must be in it."""
    target = args[args.index("-j") + 1] if "-j" in args else ""
    comment = args[args.index("--comment") + 1] if "--comment" in args else ""
    return f"-j {target}" in first and (not comment or comment in first)


def delete_rules(netns: str, table: str, chain: str, args: list[str]) -> int:
    """Delete every copy of a rule; returns how many went."""
    gone = 0
    while _run(netns, ["iptables", "-w", "-t", table, "-C", chain, *args]).returncode == 0:
        res = _run(netns, ["iptables", "-w", "-t", table, "-D", chain, *args])
        if res.returncode != 0:
            raise KernelError(f"iptables -t {table} -D {chain}", netns, res.stderr.strip())
        gone += 1
    return gone


def delete_chains(netns: str, table: str, names: Iterable[str]) -> None:
    """Flush and delete user chains in one restore (each referenced only by the others)."""
    names = sorted(set(names))
    if not names:
        return
    text = "\n".join([f"*{table}", *(f":{c} - [0:0]" for c in names), *(f"-X {c}" for c in names), "COMMIT"])
    restore(netns, text + "\n", noflush=True, counters=False)
