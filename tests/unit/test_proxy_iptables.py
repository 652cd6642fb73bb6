import os
from pathlib import Path

import pytest
from test_proxy_cases import NODE, NODE_IP, article, cases, config, eps, svc

from kins.render.proxy.iptables import base_chain_jumps, masquerade_mark, render_restore
from kins.render.proxy.model import build_proxy_model
from kins.render.proxy.save import render_save

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "iptables"
UPDATE = os.environ.get("KINS_UPDATE_GOLDEN") == "1"


def _render(name: str) -> str:
    if name == "article":
        services, slices = article()
        cfg = config()
    else:
        services, slices, mutate = cases()[name]
        cfg = config(mutate)
    return render_restore(build_proxy_model(services, slices, cfg, NODE, NODE_IP), cfg)


def _golden(path: Path, text: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing; run with KINS_UPDATE_GOLDEN=1"
    assert text == path.read_text()


@pytest.mark.parametrize("name", ["article", *cases()])
def test_golden_restore_and_save(name: str) -> None:
    text = _render(name)
    _golden(GOLDEN / f"{name}.restore", text)
    _golden(GOLDEN / f"{name}.save", render_save(text, base_chain_jumps()))


def _lines(name: str) -> list[str]:
    return _render(name).splitlines()


def test_layout_and_fixed_rules() -> None:
    lines = _lines("article")
    assert lines[0] == "*filter" and lines[-1] == "COMMIT"
    assert lines.index("*nat") == lines.index("COMMIT") + 1
    assert lines[1:7] == [
        ":KUBE-SERVICES - [0:0]",
        ":KUBE-EXTERNAL-SERVICES - [0:0]",
        ":KUBE-FORWARD - [0:0]",
        ":KUBE-NODEPORTS - [0:0]",
        ":KUBE-PROXY-FIREWALL - [0:0]",
        ":KUBE-FIREWALL - [0:0]",
    ]
    assert "-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN" in lines
    assert "-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000" in lines
    nat_rules = [ln for ln in lines[lines.index("*nat") :] if ln.startswith("-A KUBE-SERVICES")]
    assert nat_rules[-1].endswith("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")


def test_article_data_product_rules() -> None:
    lines = _lines("article")
    spn = "default/data-product:data-product"
    assert (
        f'-A KUBE-SERVICES -m comment --comment "{spn} cluster IP" -m tcp -p tcp -d 10.254.116.224 --dport 50051'
        " -j KUBE-SVC-45TXGSBX3LGQQRTB"
    ) in lines
    svc_rules = [ln for ln in lines if ln.startswith("-A KUBE-SVC-45TXGSBX3LGQQRTB")]
    assert svc_rules[0].endswith("--dport 50051 ! -s 172.30.0.0/16 -j KUBE-MARK-MASQ")
    assert "--probability 0.3333333333 -j KUBE-SEP-DGXT5Z3WOYVLBGRM" in svc_rules[1]
    assert "--probability 0.5000000000 -j KUBE-SEP-P6GCAAVN4MLBXK7I" in svc_rules[2]
    assert (
        svc_rules[3]
        == f'-A KUBE-SVC-45TXGSBX3LGQQRTB -m comment --comment "{spn} -> 172.30.9.2:50051" -j KUBE-SEP-QFJ7ESRM37V67WJQ'
    )
    assert f"-A KUBE-SEP-DGXT5Z3WOYVLBGRM -m comment --comment {spn} -s 172.30.76.3 -j KUBE-MARK-MASQ" in lines
    assert (
        f"-A KUBE-SEP-DGXT5Z3WOYVLBGRM -m comment --comment {spn} -m tcp -p tcp"
        " -j DNAT --to-destination 172.30.76.3:50051"
    ) in lines
    rejects = [ln for ln in lines if ln.endswith("-j REJECT")]
    assert rejects == [
        '-A KUBE-SERVICES -m comment --comment "kube-system/kube-dns:dns has no endpoints"'
        " -m udp -p udp -d 10.254.0.2 --dport 53 -j REJECT",
        '-A KUBE-SERVICES -m comment --comment "kube-system/kube-dns:dns-tcp has no endpoints"'
        " -m tcp -p tcp -d 10.254.0.2 --dport 53 -j REJECT",
    ]


def test_no_endpoints_rejects_every_address_and_writes_no_nat_chains() -> None:
    lines = _lines("no-endpoints")
    rejects = [ln for ln in lines if ln.endswith("-j REJECT")]
    assert len(rejects) == 3  # cluster IP, external IP, node port
    assert any(
        "KUBE-EXTERNAL-SERVICES" in r and "-m addrtype --dst-type LOCAL" in r and "--dport 30080" in r for r in rejects
    )
    assert not any(ln.startswith((":KUBE-SVC-", ":KUBE-EXT-", ":KUBE-SEP-")) for ln in lines)


def test_nodeport_and_external_chain() -> None:
    lines = _lines("nodeport")
    head = "-A KUBE-NODEPORTS -m comment --comment default/web:http -m tcp -p tcp --dport 30080 -j KUBE-EXT-"
    assert any(ln.startswith(head) for ln in lines)
    ext = [ln for ln in lines if ln.startswith("-A KUBE-EXT-")]
    assert 'masquerade traffic for default/web:http external destinations" -j KUBE-MARK-MASQ' in ext[0]
    assert ext[1].split(" -j ")[1].startswith("KUBE-SVC-")


def test_lb_source_ranges() -> None:
    lines = _lines("lb-source-ranges")
    fw = [ln for ln in lines if ln.startswith("-A KUBE-FW-")]
    # node IP 192.168.0.21 is inside 192.168.0.0/24, so the LB IP itself is allowed as source
    assert [ln.split(" -s ")[1].split()[0] for ln in fw[:3]] == ["10.1.0.0/16", "192.168.0.0/24", "192.168.0.200"]
    assert fw[3].endswith('"other traffic to default/web:http will be dropped by KUBE-PROXY-FIREWALL"')
    assert any(
        ln.startswith("-A KUBE-PROXY-FIREWALL") and ln.endswith("-d 192.168.0.200 --dport 80 -j DROP") for ln in lines
    )
    assert any(
        '"default/web:http loadbalancer IP"' in ln and "-j KUBE-FW-" in ln for ln in lines if "KUBE-SERVICES" in ln
    )


def test_etp_local() -> None:
    lines = _lines("etp-local")
    ext = [ln for ln in lines if ln.startswith("-A KUBE-EXT-")]
    assert "pod traffic for" in ext[0] and " -s 172.30.0.0/16 -j KUBE-SVC-" in ext[0]
    assert "-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ" in ext[1]
    assert "-m addrtype --src-type LOCAL -j KUBE-SVC-" in ext[2]
    assert ext[3].split(" -j ")[1].startswith("KUBE-SVL-")
    assert (
        '-A KUBE-NODEPORTS -m comment --comment "default/web:http health check node port"'
        " -m tcp -p tcp --dport 32000 -j ACCEPT" in lines
    )
    svl = [ln for ln in lines if ln.startswith("-A KUBE-SVL-")]
    assert len(svl) == 1 and "172.30.76.10:8080" in svl[0]
    no_local = _lines("etp-local-no-local")
    drops = [ln for ln in no_local if ln.endswith("-j DROP") and "has no local endpoints" in ln]
    assert len(drops) == 2  # LB IP and node port; the cluster IP still works
    assert not any(ln.startswith(":KUBE-SVL-") for ln in no_local)


def test_itp_local() -> None:
    lines = _lines("itp-local")
    assert any(ln.startswith("-A KUBE-SERVICES") and "-j KUBE-SVL-" in ln for ln in lines)
    assert not any(ln.startswith(":KUBE-SVC-") for ln in lines)
    no_local = _lines("itp-local-no-local")
    assert any('"default/web:http has no local endpoints"' in ln and ln.endswith("-j DROP") for ln in no_local)
    assert not any(ln.startswith(":KUBE-S") for ln in no_local if "KUBE-SERVICES" not in ln)


def test_session_affinity() -> None:
    lines = _lines("session-affinity")
    svc_rules = [ln for ln in lines if ln.startswith("-A KUBE-SVC-")]
    recent = [ln for ln in svc_rules if "-m recent" in ln]
    assert len(recent) == 2 and svc_rules.index(recent[0]) == 1  # after masquerade, before the statistic rules
    assert all("--rcheck --seconds 600 --reap" in ln for ln in recent)
    dnat = [ln for ln in lines if "-j DNAT" in ln]
    assert len(dnat) == 2
    assert all("-m recent --name KUBE-SEP-" in ln and " --set -m tcp -p tcp -j DNAT" in ln for ln in dnat)


def test_terminating_endpoints_used_only_when_no_ready_ones() -> None:
    lines = _lines("terminating")
    seps = [ln for ln in lines if ln.startswith(":KUBE-SEP-")]
    assert len(seps) == 1
    assert any("--to-destination 172.30.76.10:8080" in ln for ln in lines)


def test_masquerade_modes() -> None:
    assert any(
        ln.startswith("-A KUBE-SVC-") and ln.endswith("--dport 80 -j KUBE-MARK-MASQ") for ln in _lines("masquerade-all")
    )
    assert any(" ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ" in ln for ln in _lines("cluster-cidr"))
    none = _lines("no-local-detector")
    assert not any(ln.startswith("-A KUBE-SVC-") and "KUBE-MARK-MASQ" in ln for ln in none)
    assert not any("pod traffic for" in ln for ln in none)


def test_localhost_nodeports_and_nodeport_addresses() -> None:
    off = _lines("localhost-nodeports-off")
    assert not any("KUBE-FIREWALL" in ln for ln in off)
    assert any(ln.endswith("-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS") for ln in off)
    npa = [ln for ln in _lines("nodeport-addresses") if ln.endswith("-j KUBE-NODEPORTS")]
    assert len(npa) == 1 and npa[0].endswith(" -d 192.168.0.21 -j KUBE-NODEPORTS")
    assert not any("KUBE-FIREWALL" in ln for ln in _lines("nodeport-addresses"))
    lo = [ln for ln in _lines("nodeport-addresses-lo") if ln.endswith("-j KUBE-NODEPORTS")]
    assert [ln.split(" -d ")[1].split()[0] for ln in lo] == ["127.0.0.1", "192.168.0.21"]


def test_masquerade_bit() -> None:
    assert masquerade_mark(14) == "0x00004000"
    assert masquerade_mark(5) == "0x00000020"
    assert "-A KUBE-MARK-MASQ -j MARK --or-mark 0x00000020" in _lines("masquerade-bit")


def test_unnamed_udp_port() -> None:
    lines = _lines("udp-unnamed")
    assert any(
        ln.startswith("-A KUBE-SEP-") and ln.endswith("-m udp -p udp -j DNAT --to-destination 172.30.76.20:5140")
        for ln in lines
    )
    assert any('"default/syslog cluster IP" -m udp -p udp -d 10.254.20.20 --dport 514' in ln for ln in lines)


def test_options() -> None:
    services, slices = article()
    cfg = config()
    m = build_proxy_model(services, slices, cfg, NODE, NODE_IP)
    text = render_restore(m, cfg, random_fully=False, tcp_be_liberal=True, nfacct=True)
    assert "--random-fully" not in text
    assert "--ctstate INVALID" not in text
    np = build_proxy_model(*cases()["nodeport"][:2], cfg, NODE, NODE_IP)
    assert "-d 127.0.0.0/8 --dport 30080 -m nfacct --nfacct-name localhost_nps_accepted_pkts" in render_restore(
        np, cfg, nfacct=True
    )


def test_stale_chains_are_flushed_and_deleted() -> None:
    services, slices = article()
    cfg = config()
    m = build_proxy_model(services, slices, cfg, NODE, NODE_IP)
    existing = ["KUBE-SEP-OLDOLDOLDOLDOLD1", "KUBE-SVC-45TXGSBX3LGQQRTB", "KUBE-MARK-MASQ", "CNI-FOO"]
    lines = render_restore(m, cfg, existing_nat_chains=existing).splitlines()
    assert ":KUBE-SEP-OLDOLDOLDOLDOLD1 - [0:0]" in lines and "-X KUBE-SEP-OLDOLDOLDOLDOLD1" in lines
    assert [ln for ln in lines if ln.startswith("-X")] == ["-X KUBE-SEP-OLDOLDOLDOLDOLD1"]


def test_partial_sync_writes_only_changed_service_chains() -> None:
    services, slices = article()
    cfg = config()
    m = build_proxy_model(services, slices, cfg, NODE, NODE_IP)
    full = render_restore(m, cfg).splitlines()
    part = render_restore(m, cfg, only={"default/data-product"}).splitlines()
    assert set(part) <= set(full)
    assert (
        '-A KUBE-SVC-45TXGSBX3LGQQRTB -m comment --comment "default/data-product:data-product -> 172.30.9.2:50051"'
        " -j KUBE-SEP-QFJ7ESRM37V67WJQ" in part
    )
    assert not any(ln.startswith(("-A KUBE-SVC-FZ5DC5B5DCQ4E7RC", ":KUBE-SVC-FZ5DC5B5DCQ4E7RC")) for ln in part)
    # the dispatch rules in KUBE-SERVICES are always written in full
    assert [ln for ln in part if ln.startswith("-A KUBE-SERVICES")] == [
        ln for ln in full if ln.startswith("-A KUBE-SERVICES")
    ]
    assert render_restore(m, cfg, only=set()).count(":KUBE-SEP") == 0


def _big(n_services: int, n_eps: int):  # type: ignore[no-untyped-def]
    services, slices = [], []
    for i in range(n_services):
        name = f"svc{i}"
        services.append(svc(name, f"10.254.{i // 250}.{i % 250 + 1}", [("http", 80, "TCP")]))
        slices.append(
            eps(
                name, [("http", 8080, "TCP")], [(f"172.30.{j}.{i % 250 + 1}", f"node{j % 2 + 1}") for j in range(n_eps)]
            )
        )
    return services, slices


def test_large_cluster_mode_drops_endpoint_comments() -> None:
    cfg = config()
    small = render_restore(build_proxy_model(*_big(100, 10), cfg, NODE, NODE_IP), cfg).splitlines()
    assert any(ln.startswith("-A KUBE-SEP-") and "-m comment" in ln for ln in small)
    big = render_restore(build_proxy_model(*_big(101, 10), cfg, NODE, NODE_IP), cfg).splitlines()
    assert not any(ln.startswith("-A KUBE-SEP-") and "-m comment" in ln for ln in big)
    svc_ep = [ln for ln in big if ln.startswith("-A KUBE-SVC-") and "KUBE-MARK-MASQ" not in ln]
    assert svc_ep and not any("-m comment" in ln for ln in svc_ep)
    assert any(ln.startswith("-A KUBE-SVC-") and "cluster IP" in ln for ln in big)  # service comments stay


def test_probabilities_for_many_endpoints() -> None:
    cfg = config()
    lines = render_restore(build_proxy_model(*_big(1, 7), cfg, NODE, NODE_IP), cfg).splitlines()
    probs = [ln.split("--probability ")[1].split()[0] for ln in lines if "--probability" in ln]
    assert probs == ["0.1428571429", "0.1666666667", "0.2000000000", "0.2500000000", "0.3333333333", "0.5000000000"]


def test_render_10000_services() -> None:
    # Speed is measured by bench/render_scale.py; this pins the size of the output.
    cfg = config()
    m = build_proxy_model(*_big(10000, 10), cfg, NODE, NODE_IP)
    text = render_restore(m, cfg)
    assert text.count("\n-A KUBE-SEP-") == 200000
