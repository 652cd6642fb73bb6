from kins.render.proxy.chains import (
    ext_chain,
    fw_chain,
    is_service_chain,
    port_proto_hash,
    sep_chain,
    service_port_name,
    svc_chain,
    svl_chain,
)

DP = "default/data-product:data-product"


def test_service_port_name_with_and_without_port_name() -> None:
    assert service_port_name("default", "data-product", "data-product") == DP
    assert service_port_name("ns", "svc", "") == "ns/svc"
    assert service_port_name("ns", "svc", None) == "ns/svc"


def test_article_chain_names() -> None:
    # The names in the reference article's iptables-save output.
    assert svc_chain(DP, "tcp") == "KUBE-SVC-45TXGSBX3LGQQRTB"
    assert sep_chain(DP, "tcp", "172.30.76.3:50051") == "KUBE-SEP-DGXT5Z3WOYVLBGRM"
    assert sep_chain(DP, "tcp", "172.30.76.5:50051") == "KUBE-SEP-P6GCAAVN4MLBXK7I"
    assert sep_chain(DP, "tcp", "172.30.9.2:50051") == "KUBE-SEP-QFJ7ESRM37V67WJQ"
    bm = "default/business-manager:business-manager"
    assert svc_chain(bm, "tcp") == "KUBE-SVC-FZ5DC5B5DCQ4E7RC"
    assert sep_chain(bm, "tcp", "172.30.9.3:8080") == "KUBE-SEP-CNIAJ35IU3EJ7UR6"


def test_upstream_test_vectors() -> None:
    # kube-proxy's proxier_test.go expectations.
    assert port_proto_hash("ns1/svc1:p80", "tcp") == "XPGD46QRK7WJZT7O"
    assert sep_chain("ns1/svc1:p80", "tcp", "10.180.0.1:80") == "KUBE-SEP-SXIVWICOYRO3J4NJ"
    assert svc_chain("ns5/svc5:p80", "TCP") == "KUBE-SVC-NUKIZ6OKUXPJNT4C"


def test_prefixes_share_the_hash_and_fit_iptables_limit() -> None:
    names = [f(DP, "udp") for f in (svc_chain, svl_chain, ext_chain, fw_chain)]
    assert {n.rsplit("-", 1)[1] for n in names} == {port_proto_hash(DP, "udp")}
    assert [n.rsplit("-", 1)[0] for n in names] == ["KUBE-SVC", "KUBE-SVL", "KUBE-EXT", "KUBE-FW"]
    assert all(len(n) <= 28 for n in names)
    assert svc_chain(DP, "udp") != svc_chain(DP, "tcp")


def test_is_service_chain() -> None:
    assert is_service_chain("KUBE-SEP-DGXT5Z3WOYVLBGRM")
    assert is_service_chain("KUBE-FW-XPGD46QRK7WJZT7O")
    assert not is_service_chain("KUBE-SERVICES")
    assert not is_service_chain("KUBE-MARK-MASQ")
