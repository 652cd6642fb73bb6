"""The upstream NetworkPolicy e2e model as plain objects: namespaces x, y, z (labelled
``ns=<name>``), pods a, b, c in each (``pod=<name>``), one containerPort per port and protocol
named ``serve-<port>-<proto>``, pods spread over node1 and node2 with fixed addresses."""

from __future__ import annotations

from kins.api.config import ClusterConfig, default_cluster
from kins.api.core import Container, ContainerPort, Namespace, Pod, PodSpec, PodStatus
from kins.api.load import load_text
from kins.api.meta import ObjectMeta
from kins.api.networking import NetworkPolicy
from kins.api.policy import ClusterNetworkPolicy
from kins.render.netpol.iptables import PolicyRender, render_policy
from kins.render.netpol.model import Cluster, CnpInfo, PolicyInfo, build_cnps, build_policies

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
NODE_CIDR = {"node1": "172.30.76", "node2": "172.30.9"}


def pod_ip(ns: str, pod: str) -> str:
    i = NAMESPACES.index(ns) * 3 + PODS.index(pod)
    node = "node1" if i % 2 == 0 else "node2"
    return f"{NODE_CIDR[node]}.{10 + i}"


def pod_node(ns: str, pod: str) -> str:
    return "node1" if (NAMESPACES.index(ns) * 3 + PODS.index(pod)) % 2 == 0 else "node2"


def model_pods(protocols: tuple[str, ...] = ("TCP", "UDP", "SCTP")) -> list[Pod]:
    out = []
    for ns in NAMESPACES:
        for name in PODS:
            containers = [
                Container(
                    name=f"cont-{port}-{proto.lower()}",
                    image="registry.k8s.io/e2e-test-images/agnhost:2.53",
                    ports=[ContainerPort(containerPort=port, name=f"serve-{port}-{proto.lower()}", protocol=proto)],
                )
                for port in (80, 81)
                for proto in protocols
            ]
            out.append(
                Pod(
                    metadata=ObjectMeta(name=name, namespace=ns, labels={"pod": name}),
                    spec=PodSpec(nodeName=pod_node(ns, name), containers=containers),
                    status=PodStatus(phase="Running", podIP=pod_ip(ns, name)),
                )
            )
    return out


def model_namespaces(extra: dict[str, dict[str, str]] | None = None) -> list[Namespace]:
    return [
        Namespace(metadata=ObjectMeta(name=ns, labels={"ns": ns, **(extra or {}).get(ns, {})})) for ns in NAMESPACES
    ]


def policies(text: str) -> list[NetworkPolicy]:
    return [o for o in load_text(text) if isinstance(o, NetworkPolicy)]


def build(
    text: str, pods: list[Pod] | None = None, ns: list[Namespace] | None = None
) -> tuple[Cluster, list[PolicyInfo]]:
    cluster = Cluster(pods if pods is not None else model_pods(), ns if ns is not None else model_namespaces())
    return cluster, build_policies(policies(text), cluster)


def cnps(text: str, cluster: Cluster) -> list[CnpInfo]:
    return build_cnps([o for o in load_text(text) if isinstance(o, ClusterNetworkPolicy)], cluster)


def render_node(text: str, node: str = "node1", cfg: ClusterConfig | None = None) -> PolicyRender:
    cluster, infos = build(text)
    local = [p for p in cluster.pods if p.node == node]
    return render_policy(cfg or default_cluster(), node, infos, local, cnps(text, cluster))
