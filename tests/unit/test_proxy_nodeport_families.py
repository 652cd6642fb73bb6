"""``kubeProxy.nodePortAddresses`` with IPv6 CIDRs: accepted, and ignored by the IPv4 rules
as kube-proxy's IPv4 proxier ignores the other family (none of its own left: every address)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_proxy_cases import NODE, NODE_IP, cases, config

from kins._errors import MultiValidationError
from kins.api.config import ClusterConfig, parse_cluster
from kins.render.proxy.iptables import render_restore
from kins.render.proxy.model import build_proxy_model, ipv4_nodeport_addresses, rules_node_independent

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "iptables"


def _render(name: str, npa: list[str]) -> str:
    services, slices, mutate = cases()[name]
    cfg = config(mutate)
    cfg.kubeProxy.nodePortAddresses = npa
    return render_restore(build_proxy_model(services, slices, cfg, NODE, NODE_IP), cfg)


def test_only_ipv6_cidrs_match_every_address_like_an_empty_list() -> None:
    # upstream: no CIDR of the proxier's family -> 0.0.0.0/0, i.e. "-m addrtype --dst-type LOCAL"
    text = _render("nodeport", ["fd00::/64", "2001:db8::/32"])
    assert text == (GOLDEN / "nodeport.restore").read_text()
    assert "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS" in text
    assert "fd00" not in text and "2001:db8" not in text


def test_ipv6_cidrs_beside_ipv4_ones_are_ignored() -> None:
    text = _render("nodeport-addresses", ["fd00::/64", "192.168.0.0/24", "::/0"])
    assert text == (GOLDEN / "nodeport-addresses.restore").read_text()
    # "::/0" is the other family's match-all: it does not make the IPv4 rules match every address
    assert "--dst-type LOCAL -j KUBE-NODEPORTS" not in text
    assert f"-d {NODE_IP} -j KUBE-NODEPORTS" in text


def test_ipv6_only_rules_stay_node_independent() -> None:
    cfg = config()
    cfg.kubeProxy.nodePortAddresses = ["fd00::/64"]
    assert ipv4_nodeport_addresses(cfg) == []
    assert rules_node_independent([], cfg)
    cfg.kubeProxy.nodePortAddresses = ["fd00::/64", "192.168.0.0/24"]
    assert ipv4_nodeport_addresses(cfg) == ["192.168.0.0/24"]
    assert not rules_node_independent([], cfg)


def _parse(npa: list[str]) -> ClusterConfig:
    return parse_cluster({"name": "c", "nodes": [{"name": "n1"}], "kubeProxy": {"nodePortAddresses": npa}})


def test_validation_accepts_both_families() -> None:
    assert _parse(["fd00::/64", "192.168.0.0/24"]).kubeProxy.nodePortAddresses == ["fd00::/64", "192.168.0.0/24"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("fd00::1/64", "fd00::1/64 is not an IPv4 or IPv6 CIDR"),
        ("192.168.0.1/24", "192.168.0.1/24 is not an IPv4 or IPv6 CIDR"),
        ("not-a-cidr", "not-a-cidr is not an IPv4 or IPv6 CIDR"),
    ],
)
def test_validation_refuses_what_is_no_cidr(value: str, message: str) -> None:
    with pytest.raises(MultiValidationError) as e:
        _parse(["fd00::/64", value])
    assert "kubeProxy.nodePortAddresses[1]" in str(e.value)
    assert message in str(e.value)


def test_primary_is_the_node_ip() -> None:
    # kube-proxy's "--nodeport-addresses primary": NodePorts on the node's primary IP only
    text = _render("nodeport-addresses", ["primary"])
    lines = [line for line in text.splitlines() if line.endswith("-j KUBE-NODEPORTS")]
    assert lines and all(f"-d {NODE_IP} " in line for line in lines)
    assert "--dst-type LOCAL -j KUBE-NODEPORTS" not in text and "127.0.0.1" not in text
