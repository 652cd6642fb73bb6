from test_proxy_cases import NODE, NODE_IP, article, config, eps, svc

from kins.api.core import ClientIPConfig, Service, SessionAffinityConfig
from kins.render.proxy.model import build_proxy_model


def _model(services, slices, node=NODE):  # type: ignore[no-untyped-def]
    return build_proxy_model(services, slices, config(), node, NODE_IP)


def test_article_model_sorted_and_flattened() -> None:
    m = _model(*article())
    assert [s.spn for s in m.services] == [
        "default/business-manager:business-manager",
        "default/data-product:data-product",
        "default/kubernetes:https",
        "kube-system/kube-dns:dns",
        "kube-system/kube-dns:dns-tcp",
    ]
    dp = m.services[1]
    assert (dp.cluster_ip, dp.port, dp.protocol) == ("10.254.116.224", 50051, "tcp")
    assert dp.svc_chain == "KUBE-SVC-45TXGSBX3LGQQRTB"
    assert [e.addr for e in dp.endpoints] == ["172.30.76.3:50051", "172.30.76.5:50051", "172.30.9.2:50051"]
    assert [e.is_local for e in dp.endpoints] == [True, True, False]
    assert dp.endpoints[0].chain == "KUBE-SEP-DGXT5Z3WOYVLBGRM"
    assert dp.has_endpoints
    dns = m.services[3]
    assert dns.protocol == "udp" and dns.endpoints == () and not dns.has_endpoints
    assert m.total_endpoints == 7


def test_skips_headless_externalname_and_ipless() -> None:
    services = [
        svc("headless", "None", [("p", 80, "TCP")]),
        svc("ext", "", [("p", 80, "TCP")], type="ExternalName", externalName="example.com"),
        svc("noip", "", [("p", 80, "TCP")]),
        svc("v6", "fd00::1", [("p", 80, "TCP")]),
        svc("ok", "10.254.1.1", [("p", 80, "TCP")]),
    ]
    assert [s.name for s in _model(services, []).services] == ["ok"]


def test_endpoints_sorted_as_strings_and_matched_by_name_and_protocol() -> None:
    s = svc("a", "10.254.1.1", [("p", 53, "UDP"), ("q", 53, "TCP")])
    sl = [
        eps("a", [("p", 5353, "UDP")], [("10.1.1.1", "node1"), ("10.1.1.11", "node2")], slice_name="a-1"),
        eps("a", [("p", 5353, "TCP")], [("10.9.9.9", "node1")], slice_name="a-2"),  # protocol differs
        eps("a", [("q", 5454, "TCP")], [("10.2.2.2", "node1")], slice_name="a-3"),
        eps("b", [("p", 5353, "UDP")], [("10.3.3.3", "node1")], slice_name="b-1"),  # other service
    ]
    p, q = _model([s], sl).services
    # kube-proxy sorts by the "ip:port" string: "10.1.1.11:5353" < "10.1.1.1:5353".
    assert [e.addr for e in p.endpoints] == ["10.1.1.11:5353", "10.1.1.1:5353"]
    assert [e.addr for e in q.endpoints] == ["10.2.2.2:5454"]


def test_ipv6_and_fqdn_slices_ignored() -> None:
    s = svc("a", "10.254.1.1", [("p", 80, "TCP")])
    v6 = eps("a", [("p", 80, "TCP")], [("fd00::5", "node1")], slice_name="a-v6")
    v6.addressType = "IPv6"
    assert _model([s], [v6]).services[0].endpoints == ()


def test_categorize_ready_then_serving_terminating_never_not_serving() -> None:
    s = svc("a", "10.254.1.1", [("p", 80, "TCP")])
    term = {"ready": False, "serving": True, "terminating": True}
    dead = {"ready": False, "serving": False, "terminating": True}
    both = eps("a", [("p", 80, "TCP")], [("10.0.0.1", "node1"), ("10.0.0.2", "node2", term)])
    info = _model([s], [both]).services[0]
    assert [e.ip for e in info.cluster_endpoints] == ["10.0.0.1"]
    only_term = eps("a", [("p", 80, "TCP")], [("10.0.0.2", "node2", term), ("10.0.0.3", "node2", dead)])
    info = _model([s], [only_term]).services[0]
    assert [e.ip for e in info.cluster_endpoints] == ["10.0.0.2"]
    assert info.has_endpoints
    only_dead = eps("a", [("p", 80, "TCP")], [("10.0.0.3", "node2", dead)])
    info = _model([s], [only_dead]).services[0]
    assert info.cluster_endpoints == () and not info.has_endpoints
    assert len(info.endpoints) == 1  # still counted for large-cluster mode


def test_local_policies() -> None:
    s = svc("a", "10.254.1.1", [("p", 80, "TCP", 30080)], type="NodePort", externalTrafficPolicy="Local")
    sl = eps("a", [("p", 80, "TCP")], [("10.0.0.1", "node1"), ("10.0.0.2", "node2")])
    info = _model([s], [sl]).services[0]
    assert info.external_policy_local and info.uses_local_endpoints and info.uses_cluster_endpoints
    assert [e.ip for e in info.local_endpoints] == ["10.0.0.1"]
    assert [e.ip for e in info.reachable_endpoints] == ["10.0.0.1", "10.0.0.2"]
    # eTP only applies to externally reachable services
    cip = svc("b", "10.254.1.2", [("p", 80, "TCP")], externalTrafficPolicy="Local", healthCheckNodePort=3)
    info = _model([cip], []).services[0]
    assert not info.external_policy_local and info.health_check_node_port == 0
    itp = svc("c", "10.254.1.3", [("p", 80, "TCP")], internalTrafficPolicy="Local")
    info = _model([itp], [eps("c", [("p", 80, "TCP")], [("10.0.0.2", "node2")])]).services[0]
    assert not info.uses_cluster_endpoints and info.local_endpoints == () and info.has_endpoints


def test_service_fields() -> None:
    s = svc(
        "a",
        "10.254.1.1",
        [("p", 80, "TCP", 30080)],
        type="LoadBalancer",
        externalIPs=["1.2.3.4", "fd00::1"],
        lb_ips=["5.6.7.8"],
        loadBalancerSourceRanges=[" 10.0.0.1/8 "],
        sessionAffinity="ClientIP",
        sessionAffinityConfig=SessionAffinityConfig(clientIP=ClientIPConfig(timeoutSeconds=60)),
        externalTrafficPolicy="Local",
        healthCheckNodePort=32000,
    )
    info = _model([s], []).services[0]
    assert info.external_ips == ("1.2.3.4",)
    assert info.lb_ips == ("5.6.7.8",)
    assert info.source_ranges == ("10.0.0.0/8",)
    assert (info.affinity_client_ip, info.sticky_seconds) == (True, 60)
    assert (info.node_port, info.health_check_node_port) == (30080, 32000)
    default_affinity = svc("b", "10.254.1.2", [("p", 80, "TCP")], sessionAffinity="ClientIP")
    assert _model([default_affinity], []).services[0].sticky_seconds == 10800


def test_rules_node_independent_means_equal_payloads() -> None:
    from kins.offline import open_offline
    from kins.render.proxy.iptables import render_restore
    from kins.render.proxy.model import build_proxy_model, rules_node_independent

    oc = open_offline(["examples/article"])
    svcs = [s for s in oc.store.list("Service")[0] if isinstance(s, Service)]
    slices = oc.store.list("EndpointSlice")[0]
    assert rules_node_independent(svcs, oc.cfg)
    texts = {
        render_restore(build_proxy_model(svcs, slices, oc.cfg, n.name, n.ip or ""), oc.cfg)  # type: ignore[arg-type]
        for n in oc.cfg.nodes
    }
    assert len(texts) == 1
    svcs[0].spec.externalTrafficPolicy = "Local"
    assert not rules_node_independent(svcs, oc.cfg)
