"""``kubectl describe networkpolicy``: who a policy lets in and out, in kubectl's words.

kubectl prints the stored object, which the API server has defaulted: ``policyTypes`` absent
means Ingress, plus Egress when the policy has egress rules. The page is the same whatever
plugin enforces the policy (kubectl knows nothing about enforcement), and has no Events section.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..api.networking import NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec
from .common import format_label_selector, parse_time
from .describe import _annotations, _labels, _Page

_INDENT = "    "


def policy_types(spec: NetworkPolicySpec) -> list[str]:
    """``spec.policyTypes`` as the API server defaults it."""
    if spec.policyTypes:
        return list(spec.policyTypes)
    return ["Ingress", "Egress"] if spec.egress else ["Ingress"]


def _created(stamp: str | None) -> str:
    """metav1.Time as Go's time.Time.String() prints it (the zero time when unset)."""
    t = parse_time(stamp)
    return f"{t:%Y-%m-%d %H:%M:%S} +0000 UTC" if t is not None else "0001-01-01 00:00:00 +0000 UTC"


def _ports(p: _Page, ports: Sequence[NetworkPolicyPort] | None) -> None:
    if not ports:
        p.w(0, f"{_INDENT}To Port: <any> (traffic allowed to all ports)\n")
        return
    for port in ports:
        proto = port.protocol or "TCP"
        number = "<nil>" if port.port is None else str(port.port)  # Go's %s of a nil *IntOrString
        if port.endPort is None:
            p.w(0, f"{_INDENT}To Port: {number}/{proto}\n")
        else:
            p.w(0, f"{_INDENT}To Port Range: {number}-{port.endPort}/{proto}\n")


def _peers(p: _Page, word: str, peers: Sequence[NetworkPolicyPeer] | None, anyone: str) -> None:
    if not peers:
        p.w(0, f"{_INDENT}{word}: <any> ({anyone})\n")
        return
    for peer in peers:
        p.w(0, f"{_INDENT}{word}:\n")
        if peer.podSelector is not None and peer.namespaceSelector is not None:
            p.w(1, f"{_INDENT}NamespaceSelector: {format_label_selector(peer.namespaceSelector)}\n")
            p.w(1, f"{_INDENT}PodSelector: {format_label_selector(peer.podSelector)}\n")
        elif peer.podSelector is not None:
            p.w(1, f"{_INDENT}PodSelector: {format_label_selector(peer.podSelector)}\n")
        elif peer.namespaceSelector is not None:
            p.w(1, f"{_INDENT}NamespaceSelector: {format_label_selector(peer.namespaceSelector)}\n")
        elif peer.ipBlock is not None:
            p.w(1, f"{_INDENT}IPBlock:\n")
            p.w(2, f"{_INDENT}CIDR: {peer.ipBlock.cidr}\n")
            p.w(2, f"{_INDENT}Except: {', '.join(peer.ipBlock.except_ or [])}\n")


Rule = tuple[Sequence[NetworkPolicyPort] | None, Sequence[NetworkPolicyPeer] | None]


def _direction(p: _Page, direction: str, isolated: bool, rules: Sequence[Rule], word: str, anyone: str) -> None:
    """One direction's section: its rules (ports, then peers), ``----------`` between them."""
    if not isolated:
        p.w(1, f"Not affecting {direction} traffic\n")
        return
    p.w(1, f"Allowing {direction} traffic:\n")
    if not rules:
        p.w(0, f"{_INDENT}<none> (Selected pods are isolated for {direction} connectivity)\n")
    for i, (ports, peers) in enumerate(rules):
        if i:
            p.w(0, f"{_INDENT}----------\n")
        _ports(p, ports)
        _peers(p, word, peers, anyone)


def describe_network_policy(np: NetworkPolicy) -> str:
    """``kubectl describe networkpolicy``."""
    spec = np.spec
    p = _Page()
    p.w(0, f"Name:\t{np.name}\n")
    p.w(0, f"Namespace:\t{np.namespace}\n")
    p.w(0, f"Created on:\t{_created(np.metadata.creationTimestamp)}\n")
    _labels(p, "Labels", np.metadata.labels)
    _annotations(p, np.metadata.annotations)
    p.w(0, "Spec:\n")
    p.w(1, "PodSelector: ")
    selector = spec.podSelector
    if not selector.matchLabels and not selector.matchExpressions:
        p.w(2, "<none> (Allowing the specific traffic to all pods in this namespace)\n")
    else:
        p.w(2, f"{format_label_selector(selector)}\n")
    types = policy_types(spec)
    ingress = [(r.ports, r.from_) for r in spec.ingress or []]
    egress = [(r.ports, r.to) for r in spec.egress or []]
    _direction(p, "ingress", "Ingress" in types, ingress, "From", "traffic not restricted by source")
    _direction(p, "egress", "Egress" in types, egress, "To", "traffic not restricted by destination")
    p.w(1, f"Policy Types: {', '.join(types) or '<none>'}\n")
    return p.text()
