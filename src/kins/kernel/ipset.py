"""ipsets inside a kins namespace, driven the way kube-router drives them: one ``ipset restore``
per sync that fills a temporary set per set type and swaps it in, so a set's members change
atomically and rules matching it never see it half-filled."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from collections.abc import Iterable, Mapping, Sequence

from .._errors import KernelError
from ..model.ipset import IPSet, entry_text, parse_save
from . import netns as _netns

TMP_PREFIX = "TMP-"


def _run(netns: str, argv: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return _netns.run_tool(netns, argv, stdin)


def _tmp_name(options: str) -> str:
    """kube-router's temporary set for one set of create options (a set name holds 31 characters)."""
    digest = hashlib.sha1(f"tmp:{options}".encode()).digest()[:10]
    return TMP_PREFIX + base64.b32encode(digest).decode()


def restore_text(sets: Iterable[IPSet], held: Mapping[str, IPSet] | None = None) -> str:
    """``BuildIPSetRestore``: per set, fill the temporary set of its type, create the set if
    missing, swap the two and empty the temporary one; then destroy the temporaries.

    A set the kernel holds already (``held``, as last written) whose members changed by less
    than it holds gets the difference instead (``del`` and ``add``, each atomic): a pod starting
    adds one address to each set it belongs to rather than rewriting them (kube-router swaps
    every set it touches)."""
    out: list[str] = []
    tmps: dict[str, str] = {}
    for s in sorted(sets, key=lambda s: s.name):
        old = held.get(s.name) if held is not None else None
        if old is not None and (old.type, old.options) == (s.type, s.options):
            delta = _delta(old, s)
            if len(delta) <= len(s.members) + len(s.nomatch):
                out += delta
                continue
        options = f"{s.type} {s.options}"
        tmp = tmps.get(options)
        if tmp is None:
            tmp = tmps[options] = _tmp_name(options)
            out += [f"create {tmp} {options}", f"flush {tmp}"]
        out += [f"add {tmp} {entry_text(m)}" for m in s.members]
        out += [f"add {tmp} {entry_text(m)} nomatch" for m in s.nomatch]
        out += [f"create {s.name} {options}", f"swap {tmp} {s.name}", f"flush {tmp}"]
    out += [f"destroy {t}" for t in sorted(tmps.values())]
    return "\n".join(out) + ("\n" if out else "")


def _delta(old: IPSet, new: IPSet) -> list[str]:
    """The ``del``/``add`` lines from ``old``'s entries to ``new``'s (removals first, so an
    entry moving between match and nomatch is re-added with its new flag)."""
    if not old.nomatch and not new.nomatch:  # pod sets: plain set differences
        before, after = set(old.members), set(new.members)
        return [f"del {new.name} {entry_text(m)}" for m in before - after] + [
            f"add {new.name} {entry_text(m)}" for m in after - before
        ]
    was = {m: "" for m in old.members} | {m: " nomatch" for m in old.nomatch}
    now = {m: "" for m in new.members} | {m: " nomatch" for m in new.nomatch}
    out = [f"del {new.name} {entry_text(m)}" for m, flag in was.items() if now.get(m) != flag]
    out += [f"add {new.name} {entry_text(m)}{flag}" for m, flag in now.items() if was.get(m) != flag]
    return out


def restore(netns: str, sets: Iterable[IPSet], held: Mapping[str, IPSet] | None = None) -> None:
    text = restore_text(sets, held)
    if not text:
        return
    res = _run(netns, ["ipset", "restore", "-exist"], text)
    if res.returncode != 0:
        raise KernelError("ipset restore", netns, res.stderr.strip() or res.stdout.strip())


def save(netns: str) -> dict[str, IPSet]:
    res = _run(netns, ["ipset", "save"])
    if res.returncode != 0:
        raise KernelError("ipset save", netns, res.stderr.strip())
    return parse_save(res.stdout)


def list_names(netns: str) -> list[str]:
    res = _run(netns, ["ipset", "list", "-n"])
    if res.returncode != 0:
        raise KernelError("ipset list", netns, res.stderr.strip())
    return [line.strip() for line in res.stdout.splitlines() if line.strip()]


def destroy(netns: str, names: Iterable[str]) -> None:
    """Destroy the sets (each must be unreferenced by then); sets already gone are fine."""
    wanted = set(names)
    if not wanted:
        return
    lines = [f"destroy {n}" for n in list_names(netns) if n in wanted]
    if not lines:
        return
    res = _run(netns, ["ipset", "restore"], "\n".join(lines) + "\n")
    if res.returncode != 0:
        raise KernelError("ipset destroy", netns, res.stderr.strip())
