"""iptables-restore and -save inside a node namespace, kube-proxy's base jumps, error excerpts."""

from __future__ import annotations

import re
import subprocess

import pytest

from kins.kernel import iptables, netns
from kins.kernel.apply import apply_node

pytestmark = pytest.mark.root

RESTORE = """\
*filter
:KUBE-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-ABCDEFGHIJKLMNOP - [0:0]
:KUBE-SEP-QRSTUVWXYZ234567 - [0:0]
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SERVICES -d 10.254.0.10/32 -p tcp -m comment --comment "default/web cluster IP" -m tcp --dport 80 \
-j KUBE-SVC-ABCDEFGHIJKLMNOP
-A KUBE-SVC-ABCDEFGHIJKLMNOP -m comment --comment "default/web -> 172.30.76.2:8080" -j KUBE-SEP-QRSTUVWXYZ234567
-A KUBE-SEP-QRSTUVWXYZ234567 -s 172.30.76.2/32 -m comment --comment default/web -j KUBE-MARK-MASQ
-A KUBE-SEP-QRSTUVWXYZ234567 -p tcp -m comment --comment default/web -m tcp -j DNAT --to-destination 172.30.76.2:8080
COMMIT
"""

# The same rules as iptables-save prints them: per table, chains in name order, and the
# kernel's canonical spelling (--or-mark/--xor-mark become --set-xmark, comments are quoted).
SAVED = [
    "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
    "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
    "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
    "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    '-A KUBE-SEP-QRSTUVWXYZ234567 -s 172.30.76.2/32 -m comment --comment "default/web" -j KUBE-MARK-MASQ',
    '-A KUBE-SEP-QRSTUVWXYZ234567 -p tcp -m comment --comment "default/web" -m tcp -j DNAT --to-destination '
    "172.30.76.2:8080",
    '-A KUBE-SERVICES -d 10.254.0.10/32 -p tcp -m comment --comment "default/web cluster IP" -m tcp --dport 80 '
    "-j KUBE-SVC-ABCDEFGHIJKLMNOP",
    '-A KUBE-SVC-ABCDEFGHIJKLMNOP -m comment --comment "default/web -> 172.30.76.2:8080" -j KUBE-SEP-QRSTUVWXYZ234567',
]


def _rules(save: str) -> list[str]:
    return [line for line in save.splitlines() if line.startswith("-A ")]


def test_restore_and_save_in_a_node_namespace(kc, article) -> None:
    host_before = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    plan = article.node("node1")
    apply_node(kc.name, plan, kc.state_dir)
    ns = kc.ns("node-node1")
    iptables.restore(ns, RESTORE)
    saved = iptables.save(ns)
    want = SAVED
    assert _rules(saved) == want
    assert iptables.chains(saved)["nat"] >= {"KUBE-SERVICES", "KUBE-SVC-ABCDEFGHIJKLMNOP", "PREROUTING"}
    # Restoring again with --noflush replaces the declared chains, it does not duplicate rules.
    iptables.restore(ns, RESTORE)
    assert _rules(iptables.save(ns)) == want
    # The restore text is the counterpart of save: feeding the saved text back changes nothing.
    iptables.restore(ns, saved)
    assert (
        iptables.save(ns).split("\n", 1)[1].split("# Completed")[0] == saved.split("\n", 1)[1].split("# Completed")[0]
    )
    # kube-proxy's jumps from the built-in chains: inserted once, then found by -C.
    jumps = iptables.jumps_for(RESTORE)
    assert {(t, c, a[-1]) for t, c, a in jumps} == {
        ("filter", "FORWARD", "KUBE-SERVICES"),
        ("filter", "OUTPUT", "KUBE-SERVICES"),
        ("filter", "FORWARD", "KUBE-FORWARD"),
        ("nat", "OUTPUT", "KUBE-SERVICES"),
        ("nat", "PREROUTING", "KUBE-SERVICES"),
        ("nat", "POSTROUTING", "KUBE-POSTROUTING"),
    }
    assert len(iptables.ensure_jumps(ns, jumps)) == len(jumps)
    assert iptables.ensure_jumps(ns, jumps) == []
    nat = iptables.save(ns, "nat")
    assert nat.count('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES') == 1
    assert '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING' in nat
    # The host's own tables saw none of it.
    host_after = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout

    def norm(s: str) -> list[str]:
        return [re.sub(r"\[\d+:\d+\]", "", x) for x in s.splitlines() if not x.startswith("#")]

    assert norm(host_after) == norm(host_before)


def test_plan_payload_is_restored_by_apply(kc, article) -> None:
    from dataclasses import replace

    plan = replace(article.node("node2"), iptables_restore=RESTORE)
    r = apply_node(kc.name, plan, kc.state_dir)
    assert any("iptables-restore" in c for c in r.changes)
    ns = kc.ns("node-node2")
    saved = iptables.save(ns)
    assert "-A KUBE-SERVICES -d 10.254.0.10/32" in saved
    assert '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in saved
    assert apply_node(kc.name, plan, kc.state_dir).noop
    assert iptables.save(ns) == saved or _rules(iptables.save(ns)) == _rules(saved)


def test_restore_error_quotes_the_failing_line(kc, article) -> None:
    apply_node(kc.name, article.node("node1"), kc.state_dir)
    bad = RESTORE.replace("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000", "-A KUBE-MARK-MASQ -j NO-SUCH-TARGET-X")
    with pytest.raises(iptables.IPTablesError) as e:
        iptables.restore(kc.ns("node-node1"), bad)
    msg = str(e.value)
    assert "NO-SUCH-TARGET-X" in msg
    # The excerpt: the failing line marked, with its neighbours.
    assert re.search(r">\s+\d+\s+-A KUBE-MARK-MASQ -j NO-SUCH-TARGET-X", msg), msg
    assert "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000" in msg
    # A malformed rule: iptables names its line directly.
    bad = RESTORE.replace(
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000", "-A KUBE-MARK-MASQ --no-such-option 1 -j RETURN"
    )
    with pytest.raises(iptables.IPTablesError) as e:
        iptables.restore(kc.ns("node-node1"), bad)
    assert re.search(r">\s+\d+\s+-A KUBE-MARK-MASQ --no-such-option", str(e.value)), str(e.value)
    # Nothing of a failed payload was applied (restore is atomic per table).
    assert "KUBE-MARK-MASQ" not in iptables.chains(iptables.save(kc.ns("node-node1"))).get("nat", set())


def test_excerpt_is_three_lines_each_side() -> None:
    text = "\n".join(f"line {i}" for i in range(1, 21))
    ex = iptables.excerpt(text, 10).splitlines()
    assert [x.split()[-1] for x in ex] == [str(i) for i in range(7, 14)]
    assert ex[3].startswith(">")
    assert len(iptables.excerpt(text, 1).splitlines()) == 4


def test_iptables_refuses_foreign_namespaces() -> None:
    from kins._errors import KernelError

    with pytest.raises(KernelError):
        iptables.save("not-kins")
    assert netns.PREFIX == "kins-"
