"""The save renderer against the real thing: load the rules into a scratch network namespace
with iptables-restore and compare iptables-save's output with ``render_save``."""

import os
import re
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from test_proxy_cases import NODE, NODE_IP, article, cases, config, eps, svc

from kins.render.proxy.iptables import base_chain_jumps, render_restore
from kins.render.proxy.model import build_proxy_model
from kins.render.proxy.restore import Dump
from kins.render.proxy.save import apply_jumps, apply_restore, render_dump, render_save

pytestmark = pytest.mark.root


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.fail("needs root to create network namespaces (run the suite as root)")
    for tool in ("ip", "iptables", "iptables-restore", "iptables-save"):
        assert shutil.which(tool), f"{tool} is not installed"
    name = f"kins-t{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def _run(ns: str, *cmd: str, stdin: str | None = None) -> str:
    p = subprocess.run(["ip", "netns", "exec", ns, *cmd], input=stdin, capture_output=True, text=True)
    assert p.returncode == 0, f"{' '.join(cmd)} failed: {p.stderr}"
    return p.stdout


def _kernel_save(ns: str, restore_text: str) -> str:
    for table, chain, args in base_chain_jumps():
        if not args:
            _run(ns, "iptables", "-t", table, "-N", chain)
            continue
        target = shlex.split(args)[-1]
        have = _run(ns, "iptables-save", "-t", table)
        if f":{target} " not in have:
            _run(ns, "iptables", "-t", table, "-N", target)
        _run(ns, "iptables", "-t", table, "-I", chain, *shlex.split(args))
    _run(ns, "iptables-restore", "--noflush", "--counters", stdin=restore_text)
    out = _run(ns, "iptables-save")
    lines = [re.sub(r"\[\d+:\d+\]$", "[0:0]", ln) for ln in out.splitlines() if not ln.startswith("#")]
    return "\n".join(lines) + "\n"


def _text(name: str) -> str:
    if name == "article":
        services, slices = article()
        cfg = config()
    else:
        services, slices, mutate = cases()[name]
        cfg = config(mutate)
    return render_restore(build_proxy_model(services, slices, cfg, NODE, NODE_IP), cfg)


@pytest.mark.parametrize("name", ["article", *cases()])
def test_render_save_matches_iptables_save(netns: str, name: str) -> None:
    text = _text(name)
    assert _kernel_save(netns, text) == render_save(text, base_chain_jumps())


def test_large_cluster_and_resync(netns: str) -> None:
    """>1000 endpoints (comment-less form), then a second sync that deletes stale chains."""
    services, slices = [], []
    for i in range(60):
        services.append(svc(f"s{i}", f"10.254.3.{i + 1}", [("p", 80, "TCP")]))
        slices.append(eps(f"s{i}", [("p", 8080, "TCP")], [(f"172.30.{j}.{i + 1}", "node1") for j in range(17)]))
    cfg = config()
    first = render_restore(build_proxy_model(services, slices, cfg, NODE, NODE_IP), cfg)
    assert _kernel_save(netns, first) == render_save(first, base_chain_jumps())
    existing = [ln[1:].split()[0] for ln in first.split("*nat", 1)[1].splitlines() if ln.startswith(":")]
    second = render_restore(
        build_proxy_model(services[:30], slices[:30], cfg, NODE, NODE_IP), cfg, existing_nat_chains=existing
    )
    assert "-X KUBE-SEP-" in second
    _run(netns, "iptables-restore", "--noflush", stdin=second)
    out = "\n".join(ln for ln in _run(netns, "iptables-save").splitlines() if not ln.startswith("#")) + "\n"
    state = Dump()
    apply_jumps(state, base_chain_jumps())
    apply_restore(state, first)
    apply_restore(state, second)
    assert out == render_dump(state)


def test_iptables_save_round_trip_of_odd_rules(netns: str) -> None:
    """Forms kube-proxy does not write but a node may hold: parse + print must be lossless."""
    text = "\n".join(
        [
            "*filter",
            ":X - [0:0]",
            '-A X -m comment --comment "q\\"uote and \'single\'" -j ACCEPT',
            "-A X -p udp --sport 1:5 --dport 80 -j DROP",
            "-A X -p tcp -m multiport --dports 80,443,8000:8080 -j ACCEPT",
            "-A X -m conntrack --ctstate ESTABLISHED,RELATED,NEW,INVALID -j ACCEPT",
            "-A X -i eth0 ! -o lo -s 10.0.0.1/8 -j RETURN",
            "-A X -p tcp -m mark --mark 0x1/0xff -m statistic --mode nth --every 3 --packet 1"
            " -j REJECT --reject-with tcp-reset",
            "-A X -m addrtype ! --src-type LOCAL --dst-type UNICAST -j LOG --log-prefix kins",
            "COMMIT",
            "*nat",
            ":Y - [0:0]",
            "-A Y -j MARK --set-mark 0x8000",
            "-A Y -j MARK --and-mark 0x8000",
            "-A Y -p tcp -j SNAT --to-source 1.2.3.4 --random-fully",
            "-A Y -p tcp -j MASQUERADE --to-ports 1000-2000 --random",
            "-A Y -m recent --update --seconds 5 --hitcount 2 --name foo --rdest -j RETURN",
            "-A Y -m statistic --mode random --probability 0.1 -g Y",
            "COMMIT",
            "",
        ]
    )
    assert _kernel_save(netns, text) == render_save(text, base_chain_jumps())
