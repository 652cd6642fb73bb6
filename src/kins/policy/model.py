"""The upstream Kubernetes e2e NetworkPolicy model (``test/e2e/network/netpol``) as objects.

Namespaces x, y, z (labelled ``ns=<name>``), pods a, b, c in each (labelled ``pod=<name>``),
one container per (port, protocol) running agnhost's ``serve-hostname`` on that port, and one
Service ``s-<ns>-<pod>`` per pod. ``Reachability`` is upstream's expectation table: every pair
allowed, then ``expect_peer``/``expect_all_ingress``/``expect_all_egress`` carve it; self pairs
are not judged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..api.core import (
    Container,
    ContainerPort,
    EnvVar,
    Namespace,
    Pod,
    PodSpec,
    SecurityContext,
    Service,
    ServicePort,
    ServiceSpec,
)
from ..api.load import to_dict
from ..api.meta import Object, ObjectMeta
from ..views.output import dump_yaml

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"
NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
PORTS = (80, 81)
# SCTP is upstream's third protocol; its servers (agnhost porter) are declared for offline use only.
PROTOCOLS = ("TCP", "UDP")
ALL_PROTOCOLS = ("TCP", "UDP", "SCTP")

NodeFor = Callable[[str, str], str | None]


def namespace_names(namespaces: Sequence[str] = NAMESPACES, base: str = "") -> list[str]:
    """Upstream ``getNamespaceNames``: ``<base>-x`` ... (just ``x`` ... without a base)."""
    return [f"{base}-{n}" if base else n for n in namespaces]


def container_name(port: int, protocol: str) -> str:
    return f"cont-{port}-{protocol.lower()}"


def port_name(port: int, protocol: str) -> str:
    return f"serve-{port}-{protocol.lower()}"


def service_name(namespace: str, pod: str) -> str:
    return f"s-{namespace}-{pod}"


def service_port_name(port: int, protocol: str) -> str:
    return f"service-port-{protocol.lower()}-{port}"


def model_container(port: int, protocol: str) -> Container:
    proto = protocol.upper()
    env: list[EnvVar] | None = None
    if proto == "TCP":
        cmd = ["/agnhost", "serve-hostname", "--tcp", "--http=false", "--port", str(port)]
    elif proto == "UDP":
        cmd = ["/agnhost", "serve-hostname", "--udp", "--http=false", "--port", str(port)]
    elif proto == "SCTP":
        cmd = ["/agnhost", "porter"]
        env = [EnvVar(name=f"SERVE_SCTP_PORT_{port}", value="foo")]
    else:
        raise ValueError(f"invalid protocol {protocol!r} (TCP, UDP or SCTP)")
    return Container(
        name=container_name(port, proto),
        image=AGNHOST,
        imagePullPolicy="IfNotPresent",
        command=cmd,
        env=env,
        securityContext=SecurityContext(),
        ports=[ContainerPort(containerPort=port, name=port_name(port, proto), protocol=proto)],
    )


def model_namespace(name: str) -> Namespace:
    return Namespace(metadata=ObjectMeta(name=name, labels={"ns": name}))


def model_pod(
    namespace: str,
    name: str,
    ports: Sequence[int] = PORTS,
    protocols: Sequence[str] = PROTOCOLS,
    node: str | None = None,
) -> Pod:
    containers = [model_container(port, proto) for port in ports for proto in protocols]
    return Pod(
        metadata=ObjectMeta(name=name, namespace=namespace, labels={"pod": name}),
        spec=PodSpec(containers=containers, terminationGracePeriodSeconds=0, nodeName=node),
    )


def model_service(
    namespace: str, name: str, ports: Sequence[int] = PORTS, protocols: Sequence[str] = PROTOCOLS
) -> Service:
    svc_ports = [
        ServicePort(name=service_port_name(port, proto.upper()), protocol=proto.upper(), port=port)
        for port in ports
        for proto in protocols
    ]
    return Service(
        metadata=ObjectMeta(name=service_name(namespace, name), namespace=namespace),
        spec=ServiceSpec(selector={"pod": name}, ports=svc_ports),
    )


def model_objects(
    namespaces: Sequence[str] = NAMESPACES,
    pods: Sequence[str] = PODS,
    ports: Sequence[int] = PORTS,
    protocols: Sequence[str] = PROTOCOLS,
    node_for: NodeFor | None = None,
    base: str = "",
) -> list[Object]:
    """Namespaces, then each namespace's pods and Services (``node_for(ns, pod)`` pins a pod)."""
    protos = [p.upper() for p in protocols]
    for p in protos:
        if p not in ALL_PROTOCOLS:
            raise ValueError(f"invalid protocol {p!r} (TCP, UDP or SCTP)")
    names = namespace_names(namespaces, base)
    objs: list[Object] = [model_namespace(ns) for ns in names]
    for ns in names:
        for pod in pods:
            node = node_for(ns, pod) if node_for else None
            objs.append(model_pod(ns, pod, ports, protos, node))
            objs.append(model_service(ns, pod, ports, protos))
    return objs


def to_manifests(objs: Iterable[Object]) -> str:
    """Objects as one multi-document YAML stream (what ``kins apply -f -`` reads)."""
    return "---\n".join(dump_yaml(to_dict(o)) for o in objs)


def pod_strings(namespaces: Sequence[str] = NAMESPACES, pods: Sequence[str] = PODS) -> list[str]:
    """``ns/pod`` of every model pod, in model order."""
    return [f"{ns}/{pod}" for ns in namespaces for pod in pods]


# --- expectations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """Upstream's ``Peer``: an empty namespace or pod is a wildcard."""

    namespace: str = ""
    pod: str = ""

    def matches(self, pod: str) -> bool:
        ns, _, name = pod.partition("/")
        return (not self.namespace or self.namespace == ns) and (not self.pod or self.pod == name)


class Reachability:
    """The expected verdict of every (from, to) pair of pods named ``ns/pod``."""

    def __init__(self, pods: Sequence[str], default: bool = True) -> None:
        self.pods = list(pods)
        self.expected: dict[tuple[str, str], bool] = {(f, t): default for f in self.pods for t in self.pods}

    def expect(self, src: str, dst: str, ok: bool) -> Reachability:
        if (src, dst) not in self.expected:
            raise KeyError(f"no pair {src} -> {dst}")
        self.expected[(src, dst)] = ok
        return self

    def expect_peer(self, src: Peer, dst: Peer, ok: bool) -> Reachability:
        for f in self.pods:
            if src.matches(f):
                for t in self.pods:
                    if dst.matches(t):
                        self.expected[(f, t)] = ok
        return self

    def expect_all_ingress(self, pod: str, ok: bool) -> Reachability:
        for f in self.pods:
            self.expected[(f, pod)] = ok
        return self

    def expect_all_egress(self, pod: str, ok: bool) -> Reachability:
        for t in self.pods:
            self.expected[(pod, t)] = ok
        return self

    def pairs(self, ignore_loopback: bool = True) -> list[tuple[str, str]]:
        return [(f, t) for f in self.pods for t in self.pods if not (ignore_loopback and f == t)]

    def wrong(self, observed: Mapping[tuple[str, str], bool], ignore_loopback: bool = True) -> list[tuple[str, str]]:
        """Pairs whose observed verdict differs from the expected one (missing ones count)."""
        return [p for p in self.pairs(ignore_loopback) if observed.get(p) != self.expected[p]]

    def denied(self, ignore_loopback: bool = True) -> int:
        return sum(1 for p in self.pairs(ignore_loopback) if not self.expected[p])


def truth_table(pods: Sequence[str], cell: Callable[[str, str], str]) -> str:
    """Upstream's ``TruthTable.PrettyPrint``: a header of destinations, one row per source."""
    lines = ["-\t" + "\t".join(pods)]
    lines += [f + "\t" + "\t".join(cell(f, t) for t in pods) for f in pods]
    return "\n".join(lines) + "\n"


def verdict_table(pods: Sequence[str], verdicts: Mapping[tuple[str, str], bool | None]) -> str:
    """``.`` allowed, ``X`` denied, ``?`` not probed."""

    def cell(f: str, t: str) -> str:
        v = verdicts.get((f, t))
        return "?" if v is None else "." if v else "X"

    return truth_table(pods, cell)


def comparison_table(
    expected: Reachability, observed: Mapping[tuple[str, str], bool], ignore_loopback: bool = True
) -> str:
    """Expected, observed, then the comparison (``.`` agrees, ``X`` differs), as upstream prints them."""
    bad = set(expected.wrong(observed, ignore_loopback))
    pods = expected.pods
    return (
        "Expected:\n"
        + verdict_table(pods, {k: v for k, v in expected.expected.items()})
        + "\nObserved:\n"
        + verdict_table(pods, dict(observed))
        + "\nComparison:\n"
        + truth_table(pods, lambda f, t: "X" if (f, t) in bad else ".")
    )
