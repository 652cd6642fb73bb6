"""The upstream NetworkPolicy e2e tests (kubernetes test/e2e/network/netpol/network_policy.go)
as data: each case's verbatim name, its policies, the steps it takes and the truth tables it
expects, written with upstream's Reachability calls over the full 9-pod grid (x, y, z times a,
b, c). Namespaces are x, y, z themselves (no base prefix), so ``kubernetes.io/metadata.name``
selectors name them directly.

Where upstream creates only the pods a test lists, the expectations are widened to the pods it
leaves out (cases 4 and 11: x/c and z/a behave like the listed pods of their kind).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kins.api.meta import LabelSelector, LabelSelectorRequirement, ObjectMeta
from kins.api.networking import (
    IPBlock,
    NetworkPolicy,
    NetworkPolicyEgressRule,
    NetworkPolicyIngressRule,
    NetworkPolicyPeer,
    NetworkPolicyPort,
    NetworkPolicySpec,
)
from kins.policy.model import Peer, Reachability, pod_strings

NS_LABEL = "kubernetes.io/metadata.name"
ALL_PODS = pod_strings()
TCP, UDP, SCTP = "TCP", "UDP", "SCTP"

# --- steps ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Create:
    policy: NetworkPolicy


@dataclass(frozen=True)
class Update:
    """Replace a policy of the same name (upstream ``UpdatePolicy``)."""

    policy: NetworkPolicy


@dataclass(frozen=True)
class DeleteAll:
    """Delete every policy of the case (upstream ``cleanNetworkPolicies``)."""


@dataclass(frozen=True)
class LabelNamespace:
    namespace: str
    labels: dict[str, str]


@dataclass(frozen=True)
class LabelPod:
    namespace: str
    pod: str
    labels: dict[str, str]


@dataclass(frozen=True)
class Probe:
    port: int
    protocol: str
    reachability: Reachability


Step = Create | Update | DeleteAll | LabelNamespace | LabelPod | Probe
IPs = Mapping[str, str]  # "ns/pod" -> pod IP


@dataclass(frozen=True)
class Case:
    number: int
    name: str
    build: Callable[[IPs], list[Step]]
    offline_only: str = ""  # why it cannot run on a live kins cluster (empty: it can)
    group: str = "Netpol NetworkPolicy between server and client"
    variant: str = ""  # "sctp" for the SCTP repeats of 43-45

    def steps(self, ips: IPs) -> list[Step]:
        return self.build(ips)

    @property
    def id(self) -> str:
        return f"{self.number:02d}-{self.variant}" if self.variant else f"{self.number:02d}"


CASES: list[Case] = []
NO_SCTP = "SCTP: this kernel has no SCTP, its servers cannot run"


Build = Callable[[IPs], list[Step]]


def case(
    number: int, name: str, offline_only: str = "", group: str = "", variant: str = ""
) -> Callable[[Build], Build]:
    def register(fn: Build) -> Build:
        CASES.append(Case(number, name, fn, offline_only, group or Case.group, variant))
        return fn

    return register


# --- upstream helpers -----------------------------------------------------------------------------


def sel(labels: Mapping[str, str] | None = None) -> LabelSelector:
    """``sel({"pod": "b"})``; ``sel()`` and ``sel({})`` select everything."""
    return LabelSelector(matchLabels=dict(labels) if labels else None)


def ns_in(op: str, *values: str) -> LabelSelector:
    return LabelSelector(matchExpressions=[LabelSelectorRequirement(key=NS_LABEL, operator=op, values=list(values))])


def pod_in(*values: str) -> LabelSelector:
    return LabelSelector(matchExpressions=[LabelSelectorRequirement(key="pod", operator="In", values=list(values))])


def ns_is(name: str) -> LabelSelector:
    return LabelSelector(matchLabels={NS_LABEL: name})


def peer(
    pods: LabelSelector | None = None, nss: LabelSelector | None = None, block: IPBlock | None = None
) -> NetworkPolicyPeer:
    return NetworkPolicyPeer(podSelector=pods, namespaceSelector=nss, ipBlock=block)


def port(p: int | str | None = None, protocol: str | None = None) -> NetworkPolicyPort:
    return NetworkPolicyPort(port=p, protocol=protocol)


def ingress(*peers: NetworkPolicyPeer, ports: Sequence[NetworkPolicyPort] = ()) -> NetworkPolicyIngressRule:
    return NetworkPolicyIngressRule(from_=list(peers) or None, ports=list(ports) or None)


def egress(*peers: NetworkPolicyPeer, ports: Sequence[NetworkPolicyPort] = ()) -> NetworkPolicyEgressRule:
    return NetworkPolicyEgressRule(to=list(peers) or None, ports=list(ports) or None)


def policy(
    name: str,
    pod_selector: LabelSelector | Mapping[str, str],
    ingress_rules: Sequence[NetworkPolicyIngressRule] | None = None,
    egress_rules: Sequence[NetworkPolicyEgressRule] | None = None,
    namespace: str = "x",
    types: Sequence[str] | None = None,
) -> NetworkPolicy:
    """``GenNetworkPolicyWithNameAnd...`` with ``SetSpecIngressRules``/``SetSpecEgressRules``:
    policyTypes list the setters used (ingress first), unless given."""
    if not isinstance(pod_selector, LabelSelector):
        pod_selector = LabelSelector(matchLabels=dict(pod_selector))
    if types is None:
        types = [t for t, r in (("Ingress", ingress_rules), ("Egress", egress_rules)) if r is not None]
    return NetworkPolicy(
        metadata=ObjectMeta(name=name, namespace=namespace),
        spec=NetworkPolicySpec(
            podSelector=pod_selector,
            policyTypes=list(types),
            ingress=list(ingress_rules) if ingress_rules is not None else None,
            egress=list(egress_rules) if egress_rules is not None else None,
        ),
    )


def reach() -> Reachability:
    return Reachability(ALL_PODS, True)


def large_cidr(ip: str) -> str:
    """Upstream ``makeLargeCIDRForIP``: the /4 holding the address."""
    return str(ipaddress.ip_network(f"{ip}/4", strict=False))


ANY = Peer()
X, Y, Z = Peer("x"), Peer("y"), Peer("z")
XA = Peer("x", "a")

# --- the cases ------------------------------------------------------------------------------------


@case(1, "should support a 'default-deny-ingress' policy")
def _c1(ips: IPs) -> list[Step]:
    return [
        Create(policy("deny-ingress", {}, ingress_rules=[])),
        Probe(80, TCP, reach().expect_peer(ANY, X, False)),
    ]


@case(2, "should support a 'default-deny-all' policy")
def _c2(ips: IPs) -> list[Step]:
    return [
        Create(policy("deny-all", {}, ingress_rules=[], egress_rules=[])),
        Probe(80, TCP, reach().expect_peer(ANY, X, False).expect_peer(X, ANY, False)),
    ]


@case(3, "should enforce policy to allow traffic from pods within server namespace based on PodSelector")
def _c3(ips: IPs) -> list[Step]:
    return [
        Create(policy("x-a-allows-x-b", {"pod": "a"}, [ingress(peer(pods=sel({"pod": "b"})))])),
        Probe(80, TCP, reach().expect_all_ingress("x/a", False).expect("x/b", "x/a", True)),
    ]


@case(4, "should enforce policy to allow ingress traffic for a target")
def _c4(ips: IPs) -> list[Step]:
    return [
        Create(policy("deny-all", {}, ingress_rules=[])),
        Create(policy("allow-all-to-a", {"pod": "a"}, [ingress(peer(pods=sel(), nss=sel()))])),
        # upstream lists x/a and x/b; x/c is isolated like x/b
        Probe(
            80,
            TCP,
            reach().expect_all_ingress("x/a", True).expect_all_ingress("x/b", False).expect_all_ingress("x/c", False),
        ),
    ]


@case(5, "should enforce policy to allow ingress traffic from pods in all namespaces")
def _c5(ips: IPs) -> list[Step]:
    return [
        Create(policy("allow-from-another-ns", {"pod": "a"}, [ingress(peer(nss=sel({})))])),
        Probe(80, TCP, reach()),
    ]


@case(6, "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector")
def _c6(ips: IPs) -> list[Step]:
    return [
        Create(policy("allow-client-a-via-ns-selector", {"pod": "a"}, [ingress(peer(nss=ns_is("y")))])),
        Probe(80, TCP, reach().expect_peer(X, XA, False).expect_peer(Z, XA, False)),
    ]


@case(7, "should enforce policy based on PodSelector with MatchExpressions")
def _c7(ips: IPs) -> list[Step]:
    return [
        Create(policy("x-a-allows-x-b", {"pod": "a"}, [ingress(peer(pods=pod_in("b")))])),
        Probe(80, TCP, reach().expect_all_ingress("x/a", False).expect("x/b", "x/a", True)),
    ]


@case(8, "should enforce policy based on NamespaceSelector with MatchExpressions")
def _c8(ips: IPs) -> list[Step]:
    return [
        Create(policy("allow-ns-y-match-selector", {"pod": "a"}, [ingress(peer(nss=ns_in("In", "y")))])),
        Probe(80, TCP, reach().expect_peer(X, XA, False).expect_peer(Z, XA, False)),
    ]


@case(9, "should enforce policy based on PodSelector or NamespaceSelector")
def _c9(ips: IPs) -> list[Step]:
    rule = ingress(peer(nss=ns_in("NotIn", "x")), peer(pods=sel({"pod": "b"})))
    return [
        Create(policy("allow-ns-y-match-selector", {"pod": "a"}, [rule])),
        Probe(80, TCP, reach().expect("x/a", "x/a", False).expect("x/c", "x/a", False)),
    ]


@case(10, "should enforce policy based on PodSelector and NamespaceSelector")
def _c10(ips: IPs) -> list[Step]:
    rule = ingress(peer(pods=sel({"pod": "b"}), nss=ns_in("NotIn", "x")))
    return [
        Create(policy("allow-ns-y-podselector-and-nsselector", {"pod": "a"}, [rule])),
        Probe(
            80,
            TCP,
            reach().expect_all_ingress("x/a", False).expect("y/b", "x/a", True).expect("z/b", "x/a", True),
        ),
    ]


@case(11, "should enforce policy based on Multiple PodSelectors and NamespaceSelectors")
def _c11(ips: IPs) -> list[Step]:
    rule = ingress(peer(pods=pod_in("b", "c"), nss=ns_in("NotIn", "x")))
    return [
        Create(policy("allow-ns-y-z-pod-b-c", {"pod": "a"}, [rule])),
        # upstream lists y/a; z/a (pod=a, outside x) is denied the same way
        Probe(
            80,
            TCP,
            reach().expect_peer(X, XA, False).expect("y/a", "x/a", False).expect("z/a", "x/a", False),
        ),
    ]


@case(12, "should enforce policy based on any PodSelectors")
def _c12(ips: IPs) -> list[Step]:
    rule = ingress(peer(pods=sel({"pod": "b"})), peer(pods=sel({"pod": "c"})))
    return [
        Create(policy("allow-ns-x-pod-b-c", {"pod": "a"}, [rule])),
        Probe(
            80,
            TCP,
            reach().expect_all_ingress("x/a", False).expect("x/b", "x/a", True).expect("x/c", "x/a", True),
        ),
    ]


def _ns_y_pod_a(ips: IPs, protocol: str) -> list[Step]:
    rule = ingress(peer(nss=ns_is("y"), pods=sel({"pod": "a"})))
    return [
        Create(policy("allow-ns-y-pod-a-via-namespace-pod-selector", {"pod": "a"}, [rule])),
        Probe(80, protocol, reach().expect_all_ingress("x/a", False).expect("y/a", "x/a", True)),
    ]


case(
    13,
    "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and"
    " NamespaceSelector",
)(lambda ips: _ns_y_pod_a(ips, TCP))  # fmt: skip


def _port81_allowed() -> Reachability:
    return reach().expect_peer(X, XA, False).expect_peer(Y, XA, True).expect_peer(Z, XA, False)


def _allow_y_on(port_number: int | str, name: str, protocol: str = TCP) -> NetworkPolicy:
    rule = ingress(peer(nss=ns_is("y")), ports=[port(port_number, protocol)])
    return policy(name, {"pod": "a"}, [rule])


@case(14, "should enforce policy based on Ports")
def _c14(ips: IPs) -> list[Step]:
    return [Create(_allow_y_on(81, "allow-client-a-via-ns-selector")), Probe(81, TCP, _port81_allowed())]


@case(15, "should enforce multiple, stacked policies with overlapping podSelectors")
def _c15(ips: IPs) -> list[Step]:
    return [
        Create(_allow_y_on(81, "allow-client-a-via-ns-selector")),
        Probe(81, TCP, _port81_allowed()),
        Probe(80, TCP, reach().expect_all_ingress("x/a", False)),
        Create(_allow_y_on(80, "allow-client-a-via-ns-selector-80")),
        Probe(80, TCP, _port81_allowed()),
    ]


@case(16, "should support allow-all policy")
def _c16(ips: IPs) -> list[Step]:
    return [
        Create(policy("allow-all", {}, [ingress()])),
        Probe(80, TCP, reach()),
        Probe(81, TCP, reach()),
    ]


@case(17, "should allow ingress access on one named port")
def _c17(ips: IPs) -> list[Step]:
    return [
        Create(policy("allow-all", {}, [ingress(ports=[port("serve-81-tcp")])])),
        Probe(81, TCP, reach()),
        Probe(80, TCP, reach().expect_peer(ANY, X, False)),
    ]


@case(18, "should allow ingress access from namespace on one named port")
def _c18(ips: IPs) -> list[Step]:
    return [
        Create(_allow_y_on("serve-80-tcp", "allow-client-a-via-ns-selector-80")),
        Probe(80, TCP, reach().expect_peer(X, XA, False).expect_peer(Z, XA, False)),
        Probe(81, TCP, reach().expect_all_ingress("x/a", False)),
    ]


@case(19, "should allow egress access on one named port")
def _c19(ips: IPs) -> list[Step]:
    return [
        Create(policy("allow-egress", {}, egress_rules=[egress(ports=[port("serve-80-tcp")])])),
        Probe(80, TCP, reach()),
        Probe(81, TCP, reach().expect_peer(X, ANY, False)),
    ]


@case(20, "should enforce updated policy")
def _c20(ips: IPs) -> list[Step]:
    return [
        Create(policy("allow-all-mutate-to-deny-all", {}, [ingress()])),
        Probe(81, TCP, reach()),
        Update(policy("allow-all-mutate-to-deny-all", {}, [])),
        Probe(81, TCP, reach().expect_peer(ANY, X, False)),
    ]


@case(21, "should allow ingress access from updated namespace")
def _c21(ips: IPs) -> list[Step]:
    return [
        Create(policy("allow-client-a-via-ns-selector", {"pod": "a"}, [ingress(peer(nss=sel({"ns2": "updated"})))])),
        Probe(80, TCP, reach().expect_all_ingress("x/a", False)),
        LabelNamespace("y", {"ns2": "updated"}),
        Probe(80, TCP, reach().expect_all_ingress("x/a", False).expect_peer(Y, ANY, True)),
    ]


@case(22, "should allow ingress access from updated pod")
def _c22(ips: IPs) -> list[Step]:
    match = {"pod": "b", "pod2": "updated"}
    return [
        Create(policy("allow-client-a-via-pod-selector", {"pod": "a"}, [ingress(peer(pods=sel(match)))])),
        Probe(80, TCP, reach().expect_all_ingress("x/a", False)),
        LabelPod("x", "b", match),
        Probe(80, TCP, reach().expect_all_ingress("x/a", False).expect("x/b", "x/a", True)),
    ]


@case(23, "should deny ingress from pods on other namespaces")
def _c23(ips: IPs) -> list[Step]:
    return [
        Create(policy("deny-empty-policy", {}, [ingress(peer(pods=sel({})))])),
        Probe(80, TCP, reach().expect_peer(Y, X, False).expect_peer(Z, X, False)),
    ]


@case(24, "should deny ingress access to updated pod")
def _c24(ips: IPs) -> list[Step]:
    return [
        Create(policy("deny-ingress-via-label-selector", {"target": "isolated"}, ingress_rules=[])),
        Probe(80, TCP, reach()),
        LabelPod("x", "a", {"target": "isolated"}),
        Probe(80, TCP, reach().expect_all_ingress("x/a", False)),
    ]


@case(25, "should deny egress from pods based on PodSelector")
def _c25(ips: IPs) -> list[Step]:
    return [
        Create(policy("deny-egress-pod-a", {"pod": "a"}, egress_rules=[])),
        Probe(80, TCP, reach().expect_all_egress("x/a", False)),
    ]


@case(26, "should deny egress from all pods in a namespace")
def _c26(ips: IPs) -> list[Step]:
    return [
        Create(policy("deny-egress-ns-x", {}, egress_rules=[])),
        Probe(80, TCP, reach().expect_peer(X, ANY, False)),
    ]


@case(27, "should work with Ingress, Egress specified together")
def _c27(ips: IPs) -> list[Step]:
    both = policy(
        "allow-client-a-via-pod-selector",
        {"pod": "a"},
        [ingress(peer(pods=sel({"pod": "b"})))],
        [egress(ports=[port(80)])],
        types=["Egress", "Ingress"],
    )
    return [
        Create(both),
        Probe(80, TCP, reach().expect_all_ingress("x/a", False).expect("x/b", "x/a", True)),
        Probe(
            81,
            TCP,
            reach().expect_all_ingress("x/a", False).expect_all_egress("x/a", False).expect("x/b", "x/a", True),
        ),
    ]


@case(
    28,
    "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
)
def _c28(ips: IPs) -> list[Step]:
    from_xa = ingress(peer(nss=ns_is("x"), pods=sel({"pod": "a"})))
    return [
        Create(
            policy(
                "allow-to-ns-y-pod-a", {"pod": "a"}, egress_rules=[egress(peer(nss=ns_is("y"), pods=sel({"pod": "a"})))]
            )
        ),
        Create(policy("allow-from-xa-on-ya-match-selector", {"pod": "a"}, [from_xa], namespace="y")),
        Create(policy("allow-from-xa-on-yb-match-selector", {"pod": "b"}, [from_xa], namespace="y")),
        Probe(
            80,
            TCP,
            reach()
            .expect_peer(XA, ANY, False)
            .expect_peer(ANY, Peer("y", "a"), False)
            .expect_peer(XA, Peer("y", "a"), True)
            .expect_peer(ANY, Peer("y", "b"), False),
        ),
    ]


@case(
    29,
    "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and"
    " NamespaceSelector",
)
def _c29(ips: IPs) -> list[Step]:
    return [
        Create(
            policy(
                "allow-to-ns-y-pod-a", {"pod": "a"}, egress_rules=[egress(peer(nss=ns_is("y"), pods=sel({"pod": "a"})))]
            )
        ),
        Probe(80, TCP, reach().expect_all_egress("x/a", False).expect("x/a", "y/a", True)),
    ]


@case(30, "should enforce ingress policy allowing any port traffic to a server on a specific protocol")
def _c30(ips: IPs) -> list[Step]:
    return [
        Create(policy("allow-ingress-by-proto", {"pod": "a"}, [ingress(ports=[port(protocol=TCP)])])),
        Probe(80, TCP, reach()),
        Probe(80, UDP, reach().expect_peer(ANY, XA, False)),
    ]


@case(31, "should enforce multiple ingress policies with ingress allow-all policy taking precedence")
def _c31(ips: IPs) -> list[Step]:
    return [
        Create(policy("allow-ingress-port-80", {}, [ingress(ports=[port(80)])])),
        Probe(81, TCP, reach().expect_peer(ANY, X, False)),
        Create(policy("allow-ingress", {}, [ingress()])),
        Probe(81, TCP, reach()),
    ]


@case(32, "should enforce multiple egress policies with egress allow-all policy taking precedence")
def _c32(ips: IPs) -> list[Step]:
    return [
        Create(policy("allow-egress-port-80", {}, egress_rules=[egress(ports=[port(80)])])),
        Probe(81, TCP, reach().expect_peer(X, ANY, False)),
        Create(policy("allow-egress", {}, egress_rules=[egress()])),
        Probe(81, TCP, reach()),
    ]


@case(33, "should stop enforcing policies after they are deleted")
def _c33(ips: IPs) -> list[Step]:
    return [
        Create(policy("deny-all", {}, ingress_rules=[], egress_rules=[])),
        Probe(80, TCP, reach().expect_peer(X, ANY, False).expect_peer(ANY, X, False)),
        DeleteAll(),
        Probe(80, TCP, reach()),
    ]


@case(34, "should allow egress access to server in CIDR block")
def _c34(ips: IPs) -> list[Step]:
    block = IPBlock(cidr=f"{ips['y/b']}/32")
    return [
        Create(policy("allow-client-a-via-cidr-egress-rule", {"pod": "a"}, egress_rules=[egress(peer(block=block))])),
        Probe(80, TCP, reach().expect_all_egress("x/a", False).expect("x/a", "y/b", True)),
    ]


def _except_xb(ips: IPs) -> NetworkPolicy:
    block = IPBlock(cidr=large_cidr(ips["x/b"]), except_=[f"{ips['x/b']}/32"])
    return policy("allow-client-a-via-cidr-egress-rule", {"pod": "a"}, egress_rules=[egress(peer(block=block))])


@case(35, "should enforce except clause while egress access to server in CIDR block")
def _c35(ips: IPs) -> list[Step]:
    return [Create(_except_xb(ips)), Probe(80, TCP, reach().expect("x/a", "x/b", False))]


@case(36, "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed")
def _c36(ips: IPs) -> list[Step]:
    only_xb = IPBlock(cidr=f"{ips['x/b']}/32")
    return [
        Create(_except_xb(ips)),
        Probe(80, TCP, reach().expect("x/a", "x/b", False)),
        Update(policy("allow-client-a-via-cidr-egress-rule", {"pod": "a"}, egress_rules=[egress(peer(block=only_xb))])),
        Probe(80, TCP, reach().expect_all_egress("x/a", False).expect("x/a", "x/b", True)),
    ]


@case(
    37,
    "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
)
def _c37(ips: IPs) -> list[Step]:
    return [
        Create(policy("allow-egress-for-target", {"pod": "a"}, egress_rules=[egress()])),
        Probe(80, TCP, reach()),
        Create(policy("deny-ingress-via-label-selector", {"pod": "a"}, ingress_rules=[])),
        Probe(80, TCP, reach().expect_all_ingress("x/a", False)),
    ]


@case(38, "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP")
def _c38(ips: IPs) -> list[Step]:
    return [
        Create(policy("deny-ingress", {}, ingress_rules=[])),
        Create(policy("allow-only-sctp-ingress-on-port-81", {"pod": "a"}, [ingress(ports=[port(81, SCTP)])])),
        Probe(81, TCP, reach().expect_peer(ANY, X, False)),
    ]


@case(
    39,
    "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP",
)
def _c39(ips: IPs) -> list[Step]:
    return [
        Create(policy("allow-only-sctp-ingress-on-port-80", {"pod": "a"}, [ingress(ports=[port(80, SCTP)])])),
        Probe(81, TCP, reach().expect_all_ingress("x/a", False)),
    ]


@case(40, "should not allow access by TCP when a policy specifies only UDP")
def _c40(ips: IPs) -> list[Step]:
    return [
        Create(policy("allow-only-udp-ingress-on-port-81", {"pod": "a"}, [ingress(ports=[port(81, UDP)])])),
        Probe(81, TCP, reach().expect_all_ingress("x/a", False)),
    ]


@case(41, "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label")
def _c41(ips: IPs) -> list[Step]:
    return [
        Create(
            policy(
                "allow-client-a-via-ns-selector-for-immutable-ns-label", {"pod": "a"}, [ingress(peer(nss=ns_is("y")))]
            )
        ),
        Probe(80, TCP, reach().expect_peer(X, XA, False).expect_peer(Z, XA, False)),
    ]


@case(42, "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label")
def _c42(ips: IPs) -> list[Step]:
    return [
        Create(
            policy(
                "allow-ns-y-match-selector-for-immutable-ns-label",
                {"pod": "a"},
                egress_rules=[egress(peer(nss=ns_in("NotIn", "y")))],
            )
        ),
        Probe(80, TCP, reach().expect_peer(XA, Y, False)),
    ]


# "Netpol [LinuxOnly] NetworkPolicy between server and client using UDP", and the same three
# over SCTP ("Netpol [Feature:SCTPConnectivity] [LinuxOnly] ...").


def _deny_ingress_over(protocol: str) -> Build:
    def build(ips: IPs) -> list[Step]:
        return [
            Create(policy("deny-all", {}, ingress_rules=[])),
            Probe(80, protocol, reach().expect_peer(ANY, X, False)),
        ]

    return build


def _ports_over(protocol: str) -> Build:
    def build(ips: IPs) -> list[Step]:
        return [
            Create(_allow_y_on(81, "allow-ingress-on-port-81-ns-x", protocol)),
            Probe(81, protocol, reach().expect_peer(X, XA, False).expect_peer(Z, XA, False)),
        ]

    return build


def _ns_y_pod_a_over(protocol: str) -> Build:
    return lambda ips: _ns_y_pod_a(ips, protocol)


for _proto, _group, _why, _variant in (
    (UDP, "Netpol [LinuxOnly] NetworkPolicy between server and client using UDP", "", ""),
    (
        SCTP,
        "Netpol [Feature:SCTPConnectivity] [LinuxOnly] NetworkPolicy between server and client using SCTP",
        NO_SCTP,
        "sctp",
    ),
):
    case(43, "should support a 'default-deny-ingress' policy", _why, _group, _variant)(_deny_ingress_over(_proto))
    case(44, "should enforce policy based on Ports", _why, _group, _variant)(_ports_over(_proto))
    case(
        45,
        "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and"
        " NamespaceSelector",
        _why,
        _group,
        _variant,
    )(_ns_y_pod_a_over(_proto))


def live_cases() -> list[Case]:
    return [c for c in CASES if not c.offline_only]


def policies_of(steps: Sequence[Step]) -> list[NetworkPolicy]:
    return [s.policy for s in steps if isinstance(s, Create | Update)]


def fake_ips() -> dict[str, str]:
    """Addresses for building cases offline (the live test takes the pods' own)."""
    return {p: f"10.244.{i // 3}.{10 + i}" for i, p in enumerate(ALL_PODS)}
