"""Service/EndpointSlice builders and the cases the kube-proxy renderer tests share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kins.api.config import ClusterConfig, default_cluster
from kins.api.core import (
    ClientIPConfig,
    LoadBalancerIngress,
    LoadBalancerStatus,
    Service,
    ServicePort,
    ServiceSpec,
    ServiceStatus,
    SessionAffinityConfig,
)
from kins.api.discovery import Endpoint, EndpointConditions, EndpointSlice, EndpointSlicePort
from kins.api.meta import ObjectMeta

NODE = "node1"
NODE_IP = "192.168.0.21"


def svc(
    name: str,
    cluster_ip: str,
    ports: list[tuple[str | None, int, str] | tuple[str | None, int, str, int]],
    ns: str = "default",
    **spec: Any,
) -> Service:
    """ports: (name, port, protocol[, nodePort])."""
    lb_ips = spec.pop("lb_ips", None)
    sps = [
        ServicePort(name=p[0], port=p[1], protocol=p[2], nodePort=p[3] if len(p) > 3 else None)  # type: ignore[misc]
        for p in ports
    ]
    status = None
    if lb_ips:
        status = ServiceStatus(loadBalancer=LoadBalancerStatus(ingress=[LoadBalancerIngress(ip=ip) for ip in lb_ips]))
    return Service(
        metadata=ObjectMeta(name=name, namespace=ns),
        spec=ServiceSpec(clusterIP=cluster_ip, ports=sps, **spec),
        status=status,
    )


def eps(
    service: str,
    ports: list[tuple[str | None, int, str]],
    endpoints: list[tuple[str, str] | tuple[str, str, dict[str, bool]]],
    ns: str = "default",
    slice_name: str | None = None,
) -> EndpointSlice:
    """endpoints: (ip, nodeName[, conditions])."""
    return EndpointSlice(
        metadata=ObjectMeta(
            name=slice_name or f"{service}-abcde", namespace=ns, labels={"kubernetes.io/service-name": service}
        ),
        ports=[EndpointSlicePort(name=p[0], port=p[1], protocol=p[2]) for p in ports],
        endpoints=[
            Endpoint(
                addresses=[e[0]],
                nodeName=e[1],
                conditions=EndpointConditions(**(e[2] if len(e) > 2 else {"ready": True})),  # type: ignore[misc]
            )
            for e in endpoints
        ],
    )


def article() -> tuple[list[Service], list[EndpointSlice]]:
    """The reference article's cluster (the later pod placement, which its iptables dump shows)."""
    services = [
        svc("kubernetes", "10.254.0.1", [("https", 443, "TCP")]),
        svc("kube-dns", "10.254.0.2", [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")], ns="kube-system"),
        svc("business-manager", "10.254.80.22", [("business-manager", 80, "TCP")]),
        svc("data-product", "10.254.116.224", [("data-product", 50051, "TCP")]),
    ]
    slices = [
        eps("kubernetes", [("https", 6443, "TCP")], [("192.168.0.21", "node1")]),
        eps(
            "business-manager",
            [("business-manager", 8080, "TCP")],
            [("172.30.76.6", "node1"), ("172.30.76.7", "node1"), ("172.30.9.3", "node2")],
        ),
        eps(
            "data-product",
            [("data-product", 50051, "TCP")],
            [("172.30.76.3", "node1"), ("172.30.76.5", "node1"), ("172.30.9.2", "node2")],
        ),
    ]
    return services, slices


def _web(**spec: Any) -> Service:
    ports = spec.pop("ports", [("http", 80, "TCP", 30080)])
    return svc("web", "10.254.10.10", ports, **spec)


def _web_eps(*endpoints: tuple[str, str] | tuple[str, str, dict[str, bool]]) -> EndpointSlice:
    return eps("web", [("http", 8080, "TCP")], list(endpoints))


TWO = (("172.30.76.10", "node1"), ("172.30.9.10", "node2"))
REMOTE = (("172.30.9.10", "node2"), ("172.30.9.11", "node2"))

Case = tuple[list[Service], list[EndpointSlice], Callable[[ClusterConfig], None]]


def _noop(cfg: ClusterConfig) -> None:
    return None


def cases() -> dict[str, Case]:
    """One case per Service variant and kube-proxy setting."""

    def set_(**kw: Any) -> Callable[[ClusterConfig], None]:
        def apply(cfg: ClusterConfig) -> None:
            for k, v in kw.items():
                if k == "nodePortAddresses":
                    cfg.kubeProxy.nodePortAddresses = v
                elif k == "clusterCIDR":
                    cfg.kubeProxy.clusterCIDR = v
                else:
                    setattr(cfg.kubeProxy.iptables, k, v)

        return apply

    cip = _web(ports=[("http", 80, "TCP")])
    np = _web(type="NodePort")
    lb = _web(type="LoadBalancer", lb_ips=["192.168.0.200"])
    return {
        "clusterip": ([cip], [_web_eps(*TWO)], _noop),
        "no-endpoints": ([_web(type="NodePort", externalIPs=["192.168.0.100"])], [], _noop),
        "nodeport": ([np], [_web_eps(*TWO)], _noop),
        "loadbalancer": ([lb], [_web_eps(*TWO)], _noop),
        "lb-source-ranges": (
            [
                _web(
                    type="LoadBalancer",
                    lb_ips=["192.168.0.200"],
                    loadBalancerSourceRanges=["10.1.0.0/16", "192.168.0.0/24"],
                )
            ],
            [_web_eps(*TWO)],
            _noop,
        ),
        "external-ips": (
            [_web(ports=[("http", 80, "TCP")], externalIPs=["192.168.0.100", "192.168.0.101"])],
            [_web_eps(*TWO)],
            _noop,
        ),
        "etp-local": (
            [
                _web(
                    type="LoadBalancer",
                    lb_ips=["192.168.0.200"],
                    externalTrafficPolicy="Local",
                    healthCheckNodePort=32000,
                )
            ],
            [_web_eps(*TWO)],
            _noop,
        ),
        "etp-local-no-local": (
            [
                _web(
                    type="LoadBalancer",
                    lb_ips=["192.168.0.200"],
                    externalTrafficPolicy="Local",
                    healthCheckNodePort=32000,
                )
            ],
            [_web_eps(*REMOTE)],
            _noop,
        ),
        "itp-local": ([_web(ports=[("http", 80, "TCP")], internalTrafficPolicy="Local")], [_web_eps(*TWO)], _noop),
        "itp-local-no-local": (
            [_web(ports=[("http", 80, "TCP")], internalTrafficPolicy="Local")],
            [_web_eps(*REMOTE)],
            _noop,
        ),
        "session-affinity": (
            [
                _web(
                    ports=[("http", 80, "TCP")],
                    sessionAffinity="ClientIP",
                    sessionAffinityConfig=SessionAffinityConfig(clientIP=ClientIPConfig(timeoutSeconds=600)),
                )
            ],
            [_web_eps(*TWO)],
            _noop,
        ),
        "terminating": (
            [_web(ports=[("http", 80, "TCP")])],
            [
                _web_eps(
                    ("172.30.76.10", "node1", {"ready": False, "serving": True, "terminating": True}),
                    ("172.30.9.10", "node2", {"ready": False, "serving": False, "terminating": True}),
                    ("172.30.9.11", "node2", {"ready": False, "serving": False}),
                )
            ],
            _noop,
        ),
        "masquerade-all": ([cip], [_web_eps(*TWO)], set_(masqueradeAll=True)),
        "cluster-cidr": ([np], [_web_eps(*TWO)], set_(clusterCIDR="10.244.0.0/16")),
        "no-local-detector": ([np], [_web_eps(*TWO)], set_(clusterCIDR="")),
        "localhost-nodeports-off": ([np], [_web_eps(*TWO)], set_(localhostNodePorts=False)),
        "nodeport-addresses": ([np], [_web_eps(*TWO)], set_(nodePortAddresses=["192.168.0.0/24"])),
        "nodeport-addresses-lo": ([np], [_web_eps(*TWO)], set_(nodePortAddresses=["127.0.0.0/8", "192.168.0.0/24"])),
        "masquerade-bit": ([cip], [_web_eps(*TWO)], set_(masqueradeBit=5)),
        "udp-unnamed": (
            [svc("syslog", "10.254.20.20", [(None, 514, "UDP")])],
            [eps("syslog", [(None, 5140, "UDP")], [("172.30.76.20", "node1")])],
            _noop,
        ),
    }


def config(mutate: Callable[[ClusterConfig], None] = _noop) -> ClusterConfig:
    cfg = default_cluster()
    mutate(cfg)
    return cfg


def test_every_case_builds_a_model_with_the_web_service() -> None:
    from kins.render.proxy.model import build_proxy_model

    for name, (services, slices, mutate) in cases().items():
        m = build_proxy_model(services, slices, config(mutate), NODE, NODE_IP)
        assert len(m.services) == 1, name
