"""kube-router's policy rules and ipsets loaded into a real node of the article's cluster: the
simulator, reading the live namespaces (``ipset save`` included), predicts what the kernel does
to real probes, bridged and routed, allowed and rejected."""

from __future__ import annotations

import subprocess

import pytest

from kins.kernel import iptables
from kins.kernel import netns as knetns
from kins.kernel.apply import apply_cluster
from kins.model.ipset import HASH_NET, IPSet, save_text
from kins.sim.endpoint import Endpoint
from kins.sim.live import read_cluster, states_from_dumps
from kins.sim.verify import REFUSED, RESET, format_verification, verify
from kins.sim.view import ClusterView

pytestmark = pytest.mark.root

WEB0, WEB1, WEB2 = "172.30.76.2", "172.30.76.3", "172.30.76.4"  # node1's pods (conftest.article_pods)
API0, API1 = "172.30.9.2", "172.30.9.3"  # node2's
PORT = 8080

FW = "KUBE-POD-FW-WEB2"
POLICY = "KUBE-NWPLCY-ALLOW"


def rules(pod: str, routed: bool = True) -> str:
    """kube-router's shape for one selected pod and one ingress policy (``--noflush`` payload);
    without ``routed``, only the physdev jump that catches frames docker0 switches."""
    jump = f"rule to jump traffic destined to POD name:web-2 namespace: default to chain {FW}"
    allow = "rule to ACCEPT traffic from source pods to dest pods selected by policy name allow namespace default"
    match = f"-m set --match-set KUBE-SRC-ALLOW src -m set --match-set KUBE-DST-WEB2 dst -m tcp --dport {PORT}"
    return "\n".join(
        [
            "*filter",
            ":KUBE-ROUTER-FORWARD - [0:0]",
            f":{FW} - [0:0]",
            ":KUBE-NWPLCY-COMMON - [0:0]",
            f":{POLICY} - [0:0]",
            '-I FORWARD 1 -m comment --comment "kube-router netpol" -j KUBE-ROUTER-FORWARD',
            *([f'-A KUBE-ROUTER-FORWARD -d {pod}/32 -m comment --comment "{jump}" -j {FW}'] if routed else []),
            f'-A KUBE-ROUTER-FORWARD -d {pod}/32 -m physdev --physdev-is-bridged -m comment --comment "{jump}" -j {FW}',
            "-A KUBE-ROUTER-FORWARD -m mark --mark 0x20000/0x20000 -j ACCEPT",
            f"-A {FW} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            f"-A {FW} -j KUBE-NWPLCY-COMMON",
            f"-A {FW} -d {pod}/32 -j {POLICY}",
            f'-A {FW} -m comment --comment "rule to log dropped traffic POD name:web-2 namespace: default"'
            " -m mark ! --mark 0x10000/0x10000 -m limit --limit 10/min --limit-burst 10 -j NFLOG --nflog-group 100",
            f'-A {FW} -m comment --comment "rule to REJECT traffic destined for POD name:web-2 namespace: default"'
            " -m mark ! --mark 0x10000/0x10000 -j REJECT --reject-with icmp-port-unreachable",
            f"-A {FW} -j MARK --set-xmark 0x0/0x10000",
            f"-A {FW} -j MARK --set-xmark 0x20000/0x20000",
            "-A KUBE-NWPLCY-COMMON -m conntrack --ctstate INVALID -j DROP",
            "-A KUBE-NWPLCY-COMMON -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            f'-A {POLICY} -p tcp -m comment --comment "{allow}" {match} -j MARK --set-xmark 0x10000/0x10000',
            f"-A {POLICY} -p tcp {match} -m mark --mark 0x10000/0x10000 -j RETURN",
            "COMMIT",
            "",
        ]
    )


SETS = [
    # web-0 and api-0 by address; node1's subnet but web-1 as an ipBlock with an except
    IPSet("KUBE-SRC-ALLOW", HASH_NET, members=(WEB0, API0, "172.30.76.0/24"), nomatch=(f"{WEB1}/32",)),
    IPSet("KUBE-DST-WEB2", members=(WEB2,), options="family inet hashsize 1024 maxelem 65536 timeout 0"),
]


def ipset_restore(ns: str, text: str) -> None:
    knetns.check_owned(ns)
    subprocess.run(["nsenter", f"--net={knetns.path(ns)}", "--", "ipset", "restore"], input=text, text=True, check=True)


def _live_view(kc, article, payload: str) -> ClusterView:
    apply_cluster(kc.name, article.nodes, kc.state_dir, article.hosts)
    node1 = kc.ns("node-node1")
    ipset_restore(node1, save_text(SETS))
    iptables.restore(node1, payload)
    states = states_from_dumps(read_cluster(kc.name), article.cfg)
    view = ClusterView.from_states(states, article.cfg.underlay.cidr)
    assert set(view.nodes["node1"].ipsets) == {"KUBE-SRC-ALLOW", "KUBE-DST-WEB2"}  # read with ipset save
    return view


def _agree(kc, view: ClusterView, cases: list[tuple[str, int, str, str]]) -> None:
    for src, port, disposition, outcome in cases:
        v = verify(view, kc.name, Endpoint("ip", src, src), Endpoint("ip", WEB2, WEB2, port), None, "tcp")
        report = format_verification(v)
        assert v.trace.disposition == disposition, report
        assert v.result.outcome == outcome, report
        assert v.ok, report
        if disposition == "rejected":
            assert any(s.action == "nflog" for h in v.trace.hops for s in h.steps), report


def test_simulator_and_kernel_agree_on_policy_verdicts(kc, article) -> None:
    view = _live_view(kc, article, rules(WEB2))
    cases = [
        (WEB0, PORT, "delivered", RESET),  # bridged on docker0, allowed (nothing listens: the pod resets)
        (WEB1, PORT, "rejected", REFUSED),  # bridged, in the except: NFLOG then REJECT
        (API0, PORT, "delivered", RESET),  # from node2 over flannel.1, routed, allowed
        (API1, PORT, "rejected", REFUSED),  # routed, in no set
        (WEB0, PORT + 1, "rejected", REFUSED),  # an allowed source on another port
    ]
    _agree(kc, view, cases)


def test_physdev_is_bridged_holds_for_switched_frames_only(kc, article) -> None:
    view = _live_view(kc, article, rules(WEB2, routed=False))
    cases = [
        (WEB1, PORT, "rejected", REFUSED),  # switched by docker0: the physdev jump catches it
        (API1, PORT, "delivered", RESET),  # routed in from flannel.1: it does not
        (WEB0, PORT, "delivered", RESET),
    ]
    _agree(kc, view, cases)
