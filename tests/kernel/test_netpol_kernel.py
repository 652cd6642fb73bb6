"""The policy layer in a real namespace: what kins renders offline is, byte for byte, what the
kernel holds after the agent's way of loading it (ipset restore with swap, iptables-restore
--noflush, jumps kept first), and stale chains and sets go when policies change or go."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kins.api.config import default_cluster
from kins.kernel import ipset as kipset
from kins.kernel import iptables as ipt
from kins.kernel import netns
from kins.model.ipset import IPSet, entry_text
from kins.render.netpol.iptables import PolicyRender
from kins.render.proxy.save import render_save

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "unit"))
from netpol_fixtures import render_node
from test_netpol_render import CASES

pytestmark = pytest.mark.root


@pytest.fixture
def ns(kc) -> Iterator[str]:
    name = kc.ns("node-netpol")
    netns.create(name)
    try:
        yield name
    finally:
        netns.remove(name)


def _load(ns: str, r: PolicyRender) -> None:
    kipset.restore(ns, r.ipsets.values())
    ipt.restore(ns, r.restore, noflush=True, counters=False)
    for table, chain, args in r.jumps:
        ipt.ensure_first(ns, table, chain, args)


def _rules(save: str) -> list[str]:
    return [line for line in save.splitlines() if line.startswith(("-A", ":"))]


@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_holds_what_kins_renders(ns: str, case: str) -> None:
    r = render_node(CASES[case], "node1")
    _load(ns, r)
    jumps = [(t, c, " ".join(shlex.quote(a) if " " in a else a for a in args)) for t, c, args in r.jumps]
    want = render_save("", [(t, c, a.replace("'", '"')) for t, c, a in jumps], (r.restore,))
    got = ipt.save(ns, "filter")
    assert _rules(got) == _rules(want)
    # the kernel adds its own create options (bucketsize, initval) and lists members in hash order
    assert _sets(kipset.save(ns)) == _sets(r.ipsets)


def _sets(sets: dict[str, IPSet]) -> dict[str, tuple[str, frozenset[str], frozenset[str]]]:
    return {
        n: (s.type, frozenset(map(entry_text, s.members)), frozenset(map(entry_text, s.nomatch)))
        for n, s in sets.items()
    }


def test_sets_change_alone_and_stale_chains_go(ns: str) -> None:
    from kins.agents.netpol import NodePolicy, PolicyAgent
    from kins.store.memory import MemoryStore

    cfg = default_cluster()
    agent = PolicyAgent(cfg, MemoryStore())  # the apply path only: no API, no log forwarding
    st = NodePolicy()
    first = render_node(CASES["default-deny-all"] + "---" + CASES["ipblocks"], "node1")
    agent._apply_to(ns, st, first)
    assert st.rule_syncs == 1
    saved = ipt.save(ns, "filter")
    assert all(c in saved for c in st.chains)
    # same rules again: nothing restored
    agent._apply_to(ns, st, first)
    assert st.rule_syncs == 1
    # one policy goes: its chain and its sets leave the kernel
    second = render_node(CASES["default-deny-all"], "node1")
    agent._apply_to(ns, st, second)
    saved = ipt.save(ns, "filter")
    gone = set(first.owners) - set(second.owners)
    assert gone and not any(f":{c} " in saved for c in gone)
    assert set(kipset.list_names(ns)) == set(second.ipsets)
    # the last policy goes: the layer leaves, jumps included
    agent._apply_to(ns, st, PolicyRender("node1", [], {}))
    saved = ipt.save(ns, "filter")
    assert "KUBE-ROUTER" not in saved and "KUBE-NWPLCY" not in saved and "KUBE-POD-FW" not in saved
    assert kipset.list_names(ns) == []


def test_jump_moves_back_to_the_top(ns: str) -> None:
    r = render_node(CASES["default-deny-ingress"], "node1")
    _load(ns, r)
    netns_exec = ["ip", "netns", "exec", ns]
    import subprocess

    subprocess.run([*netns_exec, "iptables", "-N", "OTHER"], check=True)
    subprocess.run([*netns_exec, "iptables", "-I", "FORWARD", "1", "-j", "OTHER"], check=True)
    table, chain, args = next(j for j in r.jumps if j[1] == "FORWARD")
    assert ipt.ensure_first(ns, table, chain, args)
    lines = [ln for ln in ipt.save(ns, "filter").splitlines() if ln.startswith("-A FORWARD")]
    assert "KUBE-ROUTER-FORWARD" in lines[0] and len(lines) == 2
    assert not ipt.ensure_first(ns, table, chain, args)


def test_periodic_check_rewrites_what_went_missing(ns: str) -> None:
    import subprocess

    from kins.agents.netpol import NodePolicy, PolicyAgent
    from kins.store.memory import MemoryStore

    agent = PolicyAgent(default_cluster(), MemoryStore())
    st = NodePolicy()
    r = render_node(CASES["ipblocks"], "node1")
    agent._apply_to(ns, st, r)
    assert st.full_syncs == 1
    agent._apply_to(ns, st, r)  # nothing changed, nothing missing: nothing written
    assert (st.full_syncs, st.rule_syncs) == (1, 1)
    # someone flushes the filter table: the next periodic check notices and writes everything
    subprocess.run(["ip", "netns", "exec", ns, "iptables", "-F"], check=True)
    subprocess.run(["ip", "netns", "exec", ns, "iptables", "-X"], check=True)
    st.last_full = 0.0
    agent._apply_to(ns, st, r)
    assert st.full_syncs == 2
    assert _rules(ipt.save(ns, "filter")) == _rules(
        render_save(
            "", [(t, c, " ".join(f'"{a}"' if " " in a else a for a in args)) for t, c, args in r.jumps], (r.restore,)
        )
    )


def test_set_changes_go_in_as_differences(ns: str) -> None:
    from kins.model.ipset import HASH_NET

    same = tuple(f"172.16.0.{i}" for i in range(1, 11))
    old = IPSet("KUBE-SRC-TESTDELTA", HASH_NET, ("10.0.0.0/8", "10.1.0.1", *same), ("10.2.0.0/16",))
    kipset.restore(ns, [old])
    new = IPSet("KUBE-SRC-TESTDELTA", HASH_NET, ("10.0.0.0/8", "10.3.0.1", "10.2.0.0/16", *same), ())
    text = kipset.restore_text([new], {old.name: old})
    assert "swap" not in text and "del KUBE-SRC-TESTDELTA 10.1.0.1" in text
    kipset.restore(ns, [new], {old.name: old})
    assert _sets(kipset.save(ns)) == _sets({new.name: new})
    assert new.contains_text("10.2.3.4") and kipset.save(ns)[new.name].contains_text("10.2.3.4")
