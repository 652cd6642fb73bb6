"""Validation: field paths and the API server's wording, for malformed and valid manifests."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kins._errors import MultiValidationError, ValidationError
from kins.api.config import ClusterConfig, default_cluster
from kins.api.core import Service, ServicePort, ServiceSpec
from kins.api.discovery import Endpoint, EndpointSlice, EndpointSlicePort
from kins.api.load import load_paths, load_text
from kins.api.meta import ObjectMeta
from kins.api.validation import validate, validate_all
from kins.api.validation.common import (
    ipv4_int,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_port_name,
)

REPO = Path(__file__).resolve().parents[2]
INVALID = REPO / "tests" / "data" / "invalid"

DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


@pytest.fixture(scope="module")
def cfg() -> ClusterConfig:
    return default_cluster()


def errors_of(text: str, cfg: ClusterConfig | None) -> list[ValidationError]:
    """Loader errors, or else validation errors of every object in ``text``."""
    try:
        objs = load_text(text)
    except MultiValidationError as e:
        return e.errors
    try:
        validate_all(objs, cfg)
    except MultiValidationError as e:
        return e.errors
    return []


def svc(spec: str, meta: str = "{name: web, namespace: default}") -> str:
    return f"apiVersion: v1\nkind: Service\nmetadata: {meta}\nspec:\n{spec}"


def pod(spec: str, name: str = "web-0") -> str:
    return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n{spec}"


def deploy(spec: str) -> str:
    return f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n{spec}"


def ing(spec: str) -> str:
    return f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: shop}}\nspec:\n{spec}"


def netpol(spec: str) -> str:
    return f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np}}\nspec:\n{spec}"


def slice_(body: str) -> str:
    return f"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: web-x1}}\n{body}"


PORT80 = "  ports: [{port: 80}]\n"
CONTAINER = "  containers: [{name: app, image: busybox}]\n"
TEMPLATE = "  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: app, image: nginx}]\n"

# (id, manifest, field path, message fragment)
CASES: list[tuple[str, str, str, str]] = [
    # --- metadata
    (
        "service-name-dns1035",
        svc(PORT80, "{name: 1web}"),
        "metadata.name",
        "Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
        "start with an alphabetic character",
    ),
    (
        "service-name-too-long",
        svc(PORT80, "{name: " + "a" * 64 + "}"),
        "metadata.name",
        "must be no more than 63 characters",
    ),
    (
        "name-required",
        svc(PORT80, "{namespace: default}"),
        "metadata.name",
        "Required value: name or generateName is required",
    ),
    (
        "namespace-format",
        svc(PORT80, "{name: web, namespace: Bad_NS}"),
        "metadata.namespace",
        f'Invalid value: "Bad_NS": {DNS1123_LABEL_MSG}',
    ),
    (
        "pod-name-subdomain",
        pod(CONTAINER, name="Web.0"),
        "metadata.name",
        f'Invalid value: "Web.0": {DNS1123_SUBDOMAIN_MSG}',
    ),
    (
        "label-key",
        svc(PORT80, "{name: web, labels: {'bad key': x}}"),
        "metadata.labels",
        'Invalid value: "bad key": name part must consist of alphanumeric characters',
    ),
    (
        "label-key-prefix",
        svc(PORT80, "{name: web, labels: {'Example.com/app': x}}"),
        "metadata.labels",
        'Invalid value: "Example.com/app": prefix part a lowercase RFC 1123 subdomain',
    ),
    (
        "label-value-too-long",
        svc(PORT80, "{name: web, labels: {app: " + "v" * 64 + "}}"),
        "metadata.labels",
        "must be no more than 63 characters",
    ),
    (
        "namespace-on-node",
        "apiVersion: v1\nkind: Node\nmetadata: {name: node1, namespace: default}\n",
        "metadata.namespace",
        "Forbidden: not allowed on this type",
    ),
    # --- Service
    (
        "service-type",
        svc("  type: Foo\n" + PORT80),
        "spec.type",
        'Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
    ),
    ("service-ports-required", svc("  selector: {app: web}\n"), "spec.ports", "Required value"),
    (
        "service-port-zero",
        svc("  ports: [{port: 0}]\n"),
        "spec.ports[0].port",
        "Invalid value: 0: must be between 1 and 65535, inclusive",
    ),
    (
        "service-port-high",
        svc("  ports: [{port: 65536}]\n"),
        "spec.ports[0].port",
        "Invalid value: 65536: must be between 1",
    ),
    (
        "service-protocol",
        svc("  ports: [{port: 53, protocol: ICMP}]\n"),
        "spec.ports[0].protocol",
        'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
    ),
    (
        "service-port-name-required",
        svc("  ports: [{name: a, port: 80}, {port: 81}]\n"),
        "spec.ports[1].name",
        "Required value",
    ),
    (
        "service-port-name-duplicate",
        svc("  ports: [{name: http, port: 80}, {name: http, port: 81}]\n"),
        "spec.ports[1].name",
        'Duplicate value: "http"',
    ),
    (
        "service-port-name-format",
        svc("  ports: [{name: HTTP, port: 80}]\n"),
        "spec.ports[0].name",
        f'Invalid value: "HTTP": {DNS1123_LABEL_MSG}',
    ),
    (
        "service-port-duplicate",
        svc("  ports: [{name: a, port: 80}, {name: b, port: 80, protocol: TCP}]\n"),
        "spec.ports[1]",
        'Duplicate value: {"Name":"","Protocol":"TCP","AppProtocol":null,"Port":80,"TargetPort":0,"NodePort":0}',
    ),
    (
        "service-target-port-range",
        svc("  ports: [{port: 80, targetPort: 70000}]\n"),
        "spec.ports[0].targetPort",
        "Invalid value: 70000: must be between 1 and 65535, inclusive",
    ),
    (
        "service-target-port-name-digits",
        svc("  ports: [{port: 80, targetPort: '8080'}]\n"),
        "spec.ports[0].targetPort",
        'Invalid value: "8080": must contain at least one letter (a-z)',
    ),
    (
        "service-target-port-name-hyphens",
        svc("  ports: [{port: 80, targetPort: web--http}]\n"),
        "spec.ports[0].targetPort",
        "must not contain consecutive hyphens",
    ),
    (
        "service-nodeport-on-clusterip",
        svc("  ports: [{port: 80, nodePort: 30080}]\n"),
        "spec.ports[0].nodePort",
        "Forbidden: may not be used when `type` is 'ClusterIP'",
    ),
    (
        "service-nodeport-range",
        svc("  type: LoadBalancer\n  ports: [{port: 80, nodePort: 32768}]\n"),
        "spec.ports[0].nodePort",
        "Invalid value: 32768: provided port is not in the valid range. The range of valid ports is 30000-32767",
    ),
    (
        "service-nodeport-duplicate",
        svc(
            "  type: NodePort\n  ports: [{name: a, port: 80, nodePort: 30080}, {name: b, port: 81, nodePort: 30080}]\n"
        ),
        "spec.ports[1].nodePort",
        "Duplicate value: 30080",
    ),
    (
        "service-cluster-ip-format",
        svc("  clusterIP: 10.254.0.300\n" + PORT80),
        "spec.clusterIP",
        'Invalid value: "10.254.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
    ),
    (
        "service-cluster-ip-range",
        svc("  clusterIP: 10.0.0.1\n" + PORT80),
        "spec.clusterIP",
        "provided IP is not in the valid range. The range of valid IPs is 10.254.0.0/16",
    ),
    (
        "service-headless-nodeport",
        svc("  type: NodePort\n  clusterIP: None\n" + PORT80),
        "spec.clusterIP",
        "Invalid value: \"None\": may not be set to 'None' for NodePort services",
    ),
    ("externalname-required", svc("  type: ExternalName\n"), "spec.externalName", "Required value"),
    (
        "externalname-format",
        svc("  type: ExternalName\n  externalName: DB.example.com\n"),
        "spec.externalName",
        f'Invalid value: "DB.example.com": {DNS1123_SUBDOMAIN_MSG}',
    ),
    (
        "externalname-cluster-ip",
        svc("  type: ExternalName\n  externalName: db.example.com\n  clusterIP: 10.254.0.9\n"),
        "spec.clusterIP",
        "Forbidden: may not be set for ExternalName services",
    ),
    (
        "etp-on-clusterip",
        svc("  externalTrafficPolicy: Local\n" + PORT80),
        "spec.externalTrafficPolicy",
        'Invalid value: "Local": may only be set for externally-accessible services',
    ),
    (
        "etp-value",
        svc("  type: NodePort\n  externalTrafficPolicy: Remote\n" + PORT80),
        "spec.externalTrafficPolicy",
        'Unsupported value: "Remote": supported values: "Cluster", "Local"',
    ),
    (
        "itp-value",
        svc("  internalTrafficPolicy: Zone\n" + PORT80),
        "spec.internalTrafficPolicy",
        'Unsupported value: "Zone": supported values: "Cluster", "Local"',
    ),
    (
        "session-affinity",
        svc("  sessionAffinity: Sticky\n" + PORT80),
        "spec.sessionAffinity",
        'Unsupported value: "Sticky": supported values: "ClientIP", "None"',
    ),
    (
        "session-affinity-timeout",
        svc("  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}\n" + PORT80),
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
        "Invalid value: 86401: must be greater than 0 and less than 86400",
    ),
    (
        "lb-source-range",
        svc("  type: LoadBalancer\n  loadBalancerSourceRanges: [10.0.0.0/33]\n" + PORT80),
        "spec.loadBalancerSourceRanges[0]",
        'Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
    ),
    (
        "lb-source-range-type",
        svc("  loadBalancerSourceRanges: [10.0.0.0/8]\n" + PORT80),
        "spec.loadBalancerSourceRanges",
        "Forbidden: may only be used when `type` is 'LoadBalancer'",
    ),
    (
        "external-ip-format",
        svc("  externalIPs: [192.168.0]\n" + PORT80),
        "spec.externalIPs[0]",
        'Invalid value: "192.168.0": must be a valid IP address',
    ),
    (
        "external-ip-loopback",
        svc("  externalIPs: [127.0.0.1]\n" + PORT80),
        "spec.externalIPs[0]",
        "may not be in the loopback range (127.0.0.0/8, ::1/128)",
    ),
    (
        "health-check-node-port",
        svc("  type: NodePort\n  healthCheckNodePort: 30100\n" + PORT80),
        "spec.healthCheckNodePort",
        "Invalid value: 30100: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
    ),
    (
        "service-selector",
        svc("  selector: {app: 'a b'}\n" + PORT80),
        "spec.selector",
        'Invalid value: "a b": a valid label must be an empty string or consist of alphanumeric characters',
    ),
    # --- Pod
    ("pod-containers-required", pod("  restartPolicy: Always\n"), "spec.containers", "Required value"),
    (
        "pod-container-name-duplicate",
        pod("  containers: [{name: web, image: a}, {name: web, image: b}]\n"),
        "spec.containers[1].name",
        'Duplicate value: "web"',
    ),
    (
        "pod-container-port-required",
        pod("  containers: [{name: web, image: a, ports: [{containerPort: 0}]}]\n"),
        "spec.containers[0].ports[0].containerPort",
        "Required value",
    ),
    (
        "pod-container-port-range",
        pod("  containers: [{name: web, image: a, ports: [{containerPort: 80000}]}]\n"),
        "spec.containers[0].ports[0].containerPort",
        "Invalid value: 80000: must be between 1 and 65535, inclusive",
    ),
    (
        "pod-container-port-name",
        pod("  containers: [{name: web, image: a, ports: [{name: metrics-endpoint-x, containerPort: 9090}]}]\n"),
        "spec.containers[0].ports[0].name",
        'Invalid value: "metrics-endpoint-x": must be no more than 15 characters',
    ),
    (
        "pod-restart-policy",
        pod("  restartPolicy: Sometimes\n" + CONTAINER),
        "spec.restartPolicy",
        'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
    ),
    (
        "pod-dns-policy",
        pod("  dnsPolicy: ClusterFirstWithHostNetwork\n" + CONTAINER),
        "spec.dnsPolicy",
        'Unsupported value: "ClusterFirstWithHostNetwork": supported values: "ClusterFirst", '
        '"ClusterFirstWithHostNet", "Default", "None"',
    ),
    (
        "pod-dns-none-nameservers",
        pod("  dnsPolicy: None\n  dnsConfig: {searches: [default.svc.cluster.local]}\n" + CONTAINER),
        "spec.dnsConfig.nameservers",
        "Required value: must provide at least one DNS nameserver when `dnsPolicy` is None",
    ),
    (
        "pod-probe-no-handler",
        pod("  containers: [{name: web, image: a, readinessProbe: {periodSeconds: 2}}]\n"),
        "spec.containers[0].readinessProbe",
        "Required value: must specify a handler type",
    ),
    (
        "pod-probe-two-handlers",
        pod("  containers: [{name: web, image: a, livenessProbe: {httpGet: {port: 80}, tcpSocket: {port: 80}}}]\n"),
        "spec.containers[0].livenessProbe.tcpSocket",
        "Forbidden: may not specify more than 1 handler type",
    ),
    (
        "pod-probe-port",
        pod("  containers: [{name: web, image: a, readinessProbe: {httpGet: {port: 0}}}]\n"),
        "spec.containers[0].readinessProbe.httpGet.port",
        "Invalid value: 0: must be between 1 and 65535, inclusive",
    ),
    # --- Deployment / ReplicaSet
    ("deploy-selector-required", deploy("  replicas: 1\n" + TEMPLATE), "spec.selector", "Required value"),
    (
        "deploy-replicas",
        deploy("  replicas: -1\n  selector: {matchLabels: {app: web}}\n" + TEMPLATE),
        "spec.replicas",
        "Invalid value: -1: must be greater than or equal to 0",
    ),
    (
        "deploy-selector-mismatch",
        deploy("  selector: {matchLabels: {app: web, tier: front}}\n" + TEMPLATE),
        "spec.template.metadata.labels",
        'Invalid value: {"app":"web"}: `selector` does not match template `labels`',
    ),
    (
        "deploy-selector-operator",
        deploy("  selector: {matchExpressions: [{key: app, operator: Has}]}\n" + TEMPLATE),
        "spec.selector.matchExpressions[0].operator",
        'Invalid value: "Has": not a valid selector operator',
    ),
    (
        "deploy-selector-values",
        deploy("  selector: {matchExpressions: [{key: app, operator: In}]}\n" + TEMPLATE),
        "spec.selector.matchExpressions[0].values",
        "Required value: must be specified when `operator` is 'In' or 'NotIn'",
    ),
    (
        "deploy-restart-policy",
        deploy(
            "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
            "    spec:\n      restartPolicy: Never\n      containers: [{name: app, image: nginx}]\n"
        ),
        "spec.template.spec.restartPolicy",
        'Unsupported value: "Never": supported values: "Always"',
    ),
    (
        "replicaset-empty-selector",
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web-5d8f}\nspec:\n  selector: {}\n" + TEMPLATE,
        "spec.selector",
        "Invalid value: {}: empty selector is invalid for deployment",
    ),
    # --- EndpointSlice / Endpoints
    (
        "slice-address-type",
        slice_("addressType: IPv5\nendpoints: [{addresses: [10.0.0.1]}]\n"),
        "addressType",
        'Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"',
    ),
    (
        "slice-addresses-required",
        slice_("addressType: IPv4\nendpoints: [{addresses: []}]\n"),
        "endpoints[0].addresses",
        "Required value: must contain at least 1 address",
    ),
    (
        "slice-ipv6-family",
        slice_("addressType: IPv6\nendpoints: [{addresses: [172.30.9.2]}]\n"),
        "endpoints[0].addresses[0]",
        'Invalid value: "172.30.9.2": must be an IPv6 address',
    ),
    (
        "slice-unspecified",
        slice_("addressType: IPv4\nendpoints: [{addresses: [0.0.0.0]}]\n"),
        "endpoints[0].addresses[0]",
        'Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)',
    ),
    (
        "slice-port-protocol",
        slice_("addressType: IPv4\nports: [{name: dns, port: 53, protocol: DNS}]\n"),
        "ports[0].protocol",
        'Unsupported value: "DNS": supported values: "SCTP", "TCP", "UDP"',
    ),
    (
        "endpoints-ip",
        "apiVersion: v1\nkind: Endpoints\nmetadata: {name: mysql}\n"
        "subsets: [{addresses: [{ip: 192.168.0.1033}], ports: [{port: 3306}]}]\n",
        "subsets[0].addresses[0].ip",
        'Invalid value: "192.168.0.1033": must be a valid IP address',
    ),
    (
        "endpoints-no-addresses",
        "apiVersion: v1\nkind: Endpoints\nmetadata: {name: mysql}\nsubsets: [{ports: [{port: 3306}]}]\n",
        "subsets[0]",
        "Required value: must specify `addresses` or `notReadyAddresses`",
    ),
    (
        "endpoints-port",
        "apiVersion: v1\nkind: Endpoints\nmetadata: {name: mysql}\n"
        "subsets: [{addresses: [{ip: 192.168.0.103}], ports: [{port: 0}]}]\n",
        "subsets[0].ports[0].port",
        "Invalid value: 0: must be between 1 and 65535, inclusive",
    ),
    # --- Ingress
    (
        "ingress-empty",
        ing("  ingressClassName: nginx\n"),
        "spec",
        "Invalid value: null: either `defaultBackend` or `rules` must be specified",
    ),
    (
        "ingress-both-ports",
        ing(
            "  rules:\n  - http:\n      paths:\n      - path: /\n        pathType: Prefix\n"
            "        backend: {service: {name: web, port: {name: http, number: 80}}}\n"
        ),
        "spec.rules[0].http.paths[0].backend",
        'Invalid value: "": cannot set both port name & port number',
    ),
    (
        "ingress-service-name",
        ing(
            "  rules:\n  - http:\n      paths:\n      - path: /\n        pathType: Exact\n"
            "        backend: {service: {name: Web, port: {number: 80}}}\n"
        ),
        "spec.rules[0].http.paths[0].backend.service.name",
        'Invalid value: "Web": a DNS-1035 label',
    ),
    (
        "ingress-host-ip",
        ing(
            "  rules:\n  - host: 192.168.0.21\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n"
            "        backend: {service: {name: web, port: {number: 80}}}\n"
        ),
        "spec.rules[0].host",
        'Invalid value: "192.168.0.21": must be a DNS name, not an IP address',
    ),
    (
        "ingress-host-wildcard",
        ing(
            "  rules:\n  - host: 'foo.*.example.com'\n    http:\n      paths:\n      - path: /\n"
            "        pathType: Prefix\n        backend: {service: {name: web, port: {number: 80}}}\n"
        ),
        "spec.rules[0].host",
        "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain",
    ),
    (
        "ingress-path-dotdot",
        ing(
            "  rules:\n  - http:\n      paths:\n      - path: /static/../etc\n        pathType: Prefix\n"
            "        backend: {service: {name: web, port: {number: 80}}}\n"
        ),
        "spec.rules[0].http.paths[0].path",
        "Invalid value: \"/static/../etc\": must not contain '/../'",
    ),
    (
        "ingress-path-type-required",
        ing(
            "  rules:\n  - http:\n      paths:\n      - path: /\n"
            "        backend: {service: {name: web, port: {number: 80}}}\n"
        ),
        "spec.rules[0].http.paths[0].pathType",
        "Required value: pathType must be specified",
    ),
    # --- NetworkPolicy
    (
        "netpol-cidr",
        netpol("  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 172.30.0.0/40}}]}]\n"),
        "spec.ingress[0].from[0].ipBlock.cidr",
        'Invalid value: "172.30.0.0/40": must be a valid CIDR value',
    ),
    (
        "netpol-protocol",
        netpol("  podSelector: {}\n  ingress: [{ports: [{protocol: ICMP, port: 80}]}]\n"),
        "spec.ingress[0].ports[0].protocol",
        'Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"',
    ),
    (
        "netpol-two-peers",
        netpol("  podSelector: {}\n  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]\n"),
        "spec.egress[0].to[0]",
        "Forbidden: may not specify both ipBlock and another peer",
    ),
    (
        "netpol-end-port",
        netpol("  podSelector: {}\n  ingress: [{ports: [{port: 8080, endPort: 8000}]}]\n"),
        "spec.ingress[0].ports[0].endPort",
        "Invalid value: 8000: must be greater than or equal to `port`",
    ),
    (
        "netpol-policy-type",
        netpol("  podSelector: {}\n  policyTypes: [Inbound]\n"),
        "spec.policyTypes[0]",
        'Unsupported value: "Inbound": supported values: "Ingress", "Egress"',
    ),
    # --- Node, Secret, ConfigMap
    (
        "node-pod-cidr",
        "apiVersion: v1\nkind: Node\nmetadata: {name: node1}\nspec: {podCIDR: 172.30.76.0/33}\n",
        "spec.podCIDR",
        'Invalid value: "172.30.76.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
    ),
    (
        "secret-tls-crt",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ntype: kubernetes.io/tls\nstringData: {tls.key: k}\n",
        "data[tls.crt]",
        "Required value",
    ),
    (
        "configmap-key",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {'app config': x}\n",
        "data[app config]",
        "Invalid value: \"app config\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
        "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
    ),
    (
        "configmap-key-dotdot",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {'..data': x}\n",
        "data[..data]",
        "must not start with '..'",
    ),
]


@pytest.mark.parametrize(("manifest", "field", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed(manifest: str, field: str, fragment: str, cfg: ClusterConfig) -> None:
    errs = errors_of(manifest, cfg)
    found = [e.message for e in errs if e.field == field]
    assert any(fragment in m for m in found), f"no {fragment!r} at {field}; got {[e.render() for e in errs]}"


def test_case_ids_distinct() -> None:
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 30


def _expectations(path: Path) -> list[tuple[str, str, str]]:
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("# expect:"):
            where, field, fragment = (p.strip() for p in line.removeprefix("# expect:").split(" | ", 2))
            out.append((where, field, fragment))
    return out


INVALID_FILES = sorted(INVALID.glob("*.yaml"))


@pytest.mark.parametrize("path", INVALID_FILES, ids=[p.stem for p in INVALID_FILES])
def test_invalid_files(path: Path, cfg: ClusterConfig) -> None:
    expected = _expectations(path)
    assert expected, f"{path.name} states no expectation"
    try:
        objs = load_paths([str(path)])
        validate_all(objs, cfg)
    except MultiValidationError as e:
        errs = e.errors
    else:
        pytest.fail(f"{path.name} was accepted")
    for where, field, fragment in expected:
        hits = [e for e in errs if e.where.endswith(where) and e.field == field and fragment in e.message]
        assert hits, f"{path.name}: no {where} {field}: {fragment!r}; got {[e.render() for e in errs]}"


# --- the shape of errors ---------------------------------------------------------------------


def test_error_names_object_and_field(cfg: ClusterConfig) -> None:
    [obj] = load_text(svc("  type: NodePort\n  ports: [{port: 80, nodePort: 85}]\n"))
    [err] = validate(obj, cfg)
    assert err.where == "Service default/web"
    assert err.field == "spec.ports[0].nodePort"
    assert err.render() == (
        "Service default/web: spec.ports[0].nodePort: Invalid value: 85: provided port is not in the valid range. "
        "The range of valid ports is 30000-32767"
    )


def test_cluster_scoped_where() -> None:
    [obj] = load_text("apiVersion: v1\nkind: Node\nmetadata: {name: node1}\nspec: {podCIDR: nope}\n")
    [err] = validate(obj)
    assert err.where == "Node node1"


def test_node_port_range_follows_cluster_file(cfg: ClusterConfig) -> None:
    [obj] = load_text(svc("  type: NodePort\n  ports: [{port: 80, nodePort: 20080}]\n"))
    assert validate(obj, cfg)
    wide = default_cluster()
    wide.services.nodePortRange = "20000-22767"
    assert validate(obj, wide) == []


def test_without_cluster_no_allocator_checks() -> None:
    [obj] = load_text(svc("  type: NodePort\n  clusterIP: 10.0.0.1\n  ports: [{port: 80, nodePort: 85}]\n"))
    assert validate(obj) == []
    [bad] = load_text(svc("  type: NodePort\n  ports: [{port: 80, nodePort: 70000}]\n"))
    assert [e.message for e in validate(bad)] == ["Invalid value: 70000: must be between 1 and 65535, inclusive"]


def test_validate_all_collects_every_error(cfg: ClusterConfig) -> None:
    objs = load_text(svc("  ports: [{port: 0}]\n") + "\n---\n" + pod("  containers: []\n"))
    with pytest.raises(MultiValidationError) as info:
        validate_all(objs, cfg)
    rendered = [e.render() for e in info.value.errors]
    assert (
        "Service default/web: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive" in rendered
    )
    assert "Pod default/web-0: spec.containers: Required value" in rendered


def test_duplicates_need_same_kind_namespace_and_name(cfg: ClusterConfig) -> None:
    text = (
        svc(PORT80)
        + "\n---\n"
        + svc(PORT80, "{name: web, namespace: other}")
        + "\n---\n"
        + "apiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\n"
    )
    validate_all(load_text(text), cfg)
    with pytest.raises(MultiValidationError) as info:
        validate_all(load_text(text + "\n---\n" + svc(PORT80, "{name: web}")), cfg)
    [err] = info.value.errors
    assert err.where == "Service default/web"
    assert err.field == "metadata.name"
    assert err.message.startswith('Duplicate value: "web"')
    assert "#1" in err.message


# --- valid inputs ----------------------------------------------------------------------------

ARTICLE_INGRESS = """\
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: business-user
  namespace: ns-jo
  annotations:
    kubernetes.io/ingress.class: "nginx"
spec:
  rules:
  - host: business-user.ns-jo
    http:
      paths:
      - path: /
        backend:
          serviceName: business-user
          servicePort: 80
"""

KUBECTL_LIST = """\
apiVersion: v1
kind: List
metadata:
  resourceVersion: ""
items:
- apiVersion: v1
  kind: Service
  metadata:
    creationTimestamp: "2026-11-01T10:00:00Z"
    labels:
      app.kubernetes.io/name: ingress-nginx
      app.kubernetes.io/part-of: ingress-nginx
    managedFields:
    - apiVersion: v1
      fieldsType: FieldsV1
      fieldsV1:
        f:spec:
          f:ports: {}
      manager: kubectl-client-side-apply
      operation: Update
      time: "2026-11-01T10:00:00Z"
    name: ingress-nginx
    namespace: ingress-nginx
    resourceVersion: "1234"
    uid: 6a9e1c1e-2f4b-4f7e-9a57-0c6f6f0a3f10
  spec:
    clusterIP: 10.254.189.164
    clusterIPs: [10.254.189.164]
    externalTrafficPolicy: Cluster
    internalTrafficPolicy: Cluster
    ipFamilies: [IPv4]
    ipFamilyPolicy: SingleStack
    ports:
    - {name: http, nodePort: 30799, port: 80, protocol: TCP, targetPort: 80}
    - {name: https, nodePort: 31522, port: 443, protocol: TCP, targetPort: 443}
    selector:
      app.kubernetes.io/name: ingress-nginx
      app.kubernetes.io/part-of: ingress-nginx
    sessionAffinity: None
    type: NodePort
  status:
    loadBalancer: {}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    generateName: data-product-
    name: data-product-x7k2p
    namespace: default
    labels:
      kubernetes.io/service-name: data-product
      endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
    resourceVersion: "88"
  addressType: IPv4
  endpoints:
  - addresses: [172.30.76.3]
    conditions: {ready: true, serving: true, terminating: false}
    nodeName: node1
    targetRef: {kind: Pod, name: data-product-7d9c8b6f5-abcde, namespace: default}
  - addresses: [172.30.9.4]
    conditions: {ready: true, serving: true, terminating: false}
    nodeName: node2
  ports:
  - {name: data-product, port: 50051, protocol: TCP}
"""

MORE_VALID = """\
apiVersion: v1
kind: Node
metadata: {name: node1, labels: {kubernetes.io/hostname: node1}}
spec: {podCIDR: 172.30.76.0/24, podCIDRs: [172.30.76.0/24]}
status:
  addresses: [{type: InternalIP, address: 192.168.0.21}, {type: Hostname, address: node1}]
---
apiVersion: v1
kind: Service
metadata: {name: mysql}
spec:
  ports: [{port: 3306}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: mysql}
subsets:
- addresses: [{ip: 192.168.0.103}]
  ports: [{port: 3306}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
---
apiVersion: v1
kind: Service
metadata: {name: legacy-db}
spec:
  type: ExternalName
  externalName: db.example.com.
---
apiVersion: v1
kind: Service
metadata: {name: front}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  healthCheckNodePort: 32000
  loadBalancerSourceRanges: [" 10.0.0.0/8", 192.168.0.0/24]
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 10800}}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: dns-tcp}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: nginx
  tls: [{hosts: ["*.example.com"], secretName: shop-tls}]
  rules:
  - host: "*.example.com"
    http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {name: http}}}}
      - {pathType: ImplementationSpecific, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-data-tier}
spec:
  podSelector: {matchLabels: {tier: db}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {matchLabels: {tier: data}}
    - ipBlock: {cidr: 172.30.0.0/16, except: [172.30.9.0/24]}
    ports: [{protocol: TCP, port: 3306}, {port: 30000, endPort: 30100}]
---
apiVersion: v1
kind: Secret
metadata: {name: db-account}
type: Opaque
stringData: {username: admin, password: s3cret}
---
apiVersion: v1
kind: Secret
metadata: {name: shop-tls}
type: kubernetes.io/tls
data: {tls.crt: Y2VydA==, tls.key: a2V5}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {app.properties: "a=b", KEY_NAME: x}
---
apiVersion: v1
kind: Namespace
metadata: {name: ns-jo}
---
apiVersion: v1
kind: Pod
metadata: {generateName: business-manager-666f454f7f-, namespace: default}
spec:
  dnsPolicy: None
  dnsConfig:
    nameservers: [10.254.0.2]
    searches: [default.svc.cluster.local, svc.cluster.local, cluster.local]
    options: [{name: ndots, value: "5"}]
  containers:
  - name: business-manager
    image: kins.local/business-manager:1.0
    ports: [{name: http, containerPort: 8080}]
    livenessProbe: {exec: {command: ["true"]}}
"""


def test_article_manifests_valid(cfg: ClusterConfig) -> None:
    objs = load_paths([str(REPO / "examples" / "article")])
    deployments = {o.key: o.spec.replicas for o in objs if o.kind == "Deployment"}  # type: ignore[attr-defined]
    assert deployments["default/business-manager"] == deployments["default/data-product"] == 3
    assert deployments["kube-system/kube-dns"] == 2
    assert "ingress-nginx/nginx-ingress-controller" in deployments
    validate_all(objs, cfg)


def test_article_legacy_ingress_valid(cfg: ClusterConfig) -> None:
    [obj] = load_text(ARTICLE_INGRESS)
    assert validate(obj, cfg) == []


def test_kubectl_list_dump_valid(cfg: ClusterConfig) -> None:
    objs = load_text(KUBECTL_LIST)
    assert [o.kind for o in objs] == ["Service", "EndpointSlice"]
    validate_all(objs, cfg)


def test_other_valid_kinds(cfg: ClusterConfig) -> None:
    objs = load_text(MORE_VALID)
    assert len(objs) == 13
    for obj in objs:
        assert validate(obj, cfg) == [], obj.key


# --- the format checks on their own ----------------------------------------------------------


def test_dns_label_vs_subdomain() -> None:
    assert is_dns1123_label("my-name") == ()
    assert is_dns1123_label("a.b") == ("must not contain dots",)
    assert is_dns1123_subdomain("a.b") == ()
    assert is_dns1123_subdomain("a" * 254) == ("must be no more than 253 characters",)


def test_qualified_name_parts() -> None:
    assert is_qualified_name("app.kubernetes.io/name") == ()
    assert is_qualified_name("a/b/c")[0].startswith("a qualified name must consist of")
    assert is_qualified_name("/x") == ("prefix part must be non-empty",)
    assert "name part must be non-empty" in is_qualified_name("example.com/")


def test_port_name_rules() -> None:
    assert is_valid_port_name("http") == ()
    assert is_valid_port_name("-http") == ("must not begin or end with a hyphen",)
    assert "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)" in is_valid_port_name("Http")


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_ipv4_parse_matches_ipaddress(n: int) -> None:
    assert ipv4_int(str(ipaddress.IPv4Address(n))) == n


@given(st.text(alphabet="0123456789.:abx", max_size=18))
def test_ipv4_parse_rejects_what_ipaddress_rejects(s: str) -> None:
    # Leading zeros are the one thing the API server reads more loosely than ipaddress.
    if ipv4_int(s) is not None:
        assert ipaddress.IPv4Address(".".join(str(int(p)) for p in s.split("."))) is not None
    else:
        with pytest.raises(ValueError):
            ipaddress.IPv4Address(s)


def test_10k_services_and_slices_validate(cfg: ClusterConfig) -> None:
    objs: list[Service | EndpointSlice] = []
    for i in range(10_000):
        ns, name = f"ns{i % 50}", f"svc{i}"
        ip = f"10.254.{i // 250 + 1}.{i % 250 + 1}"
        objs.append(
            Service(
                metadata=ObjectMeta(name=name, namespace=ns, labels={"app": name, "tier": "backend"}),
                spec=ServiceSpec(
                    clusterIP=ip,
                    clusterIPs=[ip],
                    sessionAffinity="None",
                    selector={"app": name},
                    ports=[ServicePort(name="http", port=80, targetPort=8080)],
                ),
            )
        )
        objs.append(
            EndpointSlice(
                metadata=ObjectMeta(name=f"{name}-x1", namespace=ns, labels={"kubernetes.io/service-name": name}),
                endpoints=[Endpoint(addresses=[f"172.30.{j}.{i % 250 + 2}"], nodeName="node1") for j in range(3)],
                ports=[EndpointSlicePort(name="http", port=8080)],
            )
        )
    # Speed is measured by bench/render_scale.py; here: a big valid input raises nothing.
    validate_all(list(objs), cfg)


def test_legacy_ingress_object_validated_as_v1() -> None:
    from kins.api.networking import (
        LegacyBackend,
        LegacyIngress,
        LegacyIngressSpec,
        LegacyPath,
        LegacyRule,
        LegacyRuleValue,
    )

    path = LegacyPath(backend=LegacyBackend(serviceName="business-user"), path="/")
    obj = LegacyIngress(
        metadata=ObjectMeta(name="business-user", namespace="ns-jo"),
        spec=LegacyIngressSpec(rules=[LegacyRule(host="business-user.ns-jo", http=LegacyRuleValue(paths=[path]))]),
    )
    [err] = validate(obj)
    assert err.render() == (
        "Ingress ns-jo/business-user: spec.rules[0].http.paths[0].backend: "
        "Required value: port name or number is required"
    )


def test_two_services_of_one_input_asking_for_one_node_port(cfg: ClusterConfig) -> None:
    objs = load_text(
        """
apiVersion: v1
kind: Service
metadata: {name: a}
spec: {type: NodePort, selector: {app: a}, ports: [{port: 80, nodePort: 30200}], clusterIP: 10.254.9.9}
---
apiVersion: v1
kind: Service
metadata: {name: b}
spec: {type: NodePort, selector: {app: b}, ports: [{port: 81, nodePort: 30200}], clusterIP: 10.254.9.9}
"""
    )
    with pytest.raises(MultiValidationError) as e:
        validate_all(objs, cfg)
    got = [(x.where, x.field, x.message) for x in e.value.errors]
    assert got == [
        (
            "Service default/b",
            "spec.clusterIP",
            'Invalid value: "10.254.9.9": also requested by Service default/a in this input',
        ),
        (
            "Service default/b",
            "spec.ports[0].nodePort",
            "Invalid value: 30200: provided port is already allocated (requested by Service default/a in this input)",
        ),
    ]
