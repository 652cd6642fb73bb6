"""Which writes the API sends to a validating webhook: its rules (groups, versions, resources,
operations, scope, wildcards), and never a write of the status alone."""

from __future__ import annotations

from kins.api.admissionregistration import RuleWithOperations, ValidatingWebhook
from kins.api.core import LoadBalancerIngress
from kins.api.meta import ObjectMeta
from kins.api.networking import Ingress, IngressLoadBalancerStatus, IngressSpec, IngressStatus
from kins.daemon.webhooks import _status_only, rule_matches


def _hook(**rule: object) -> ValidatingWebhook:
    base: dict[str, object] = {
        "apiGroups": ["networking.k8s.io"],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["ingresses"],
    }
    return ValidatingWebhook(name="h", rules=[RuleWithOperations(**{**base, **rule})])  # type: ignore[arg-type]


def test_rules_match_as_the_manifest_says() -> None:
    hook = _hook()
    assert rule_matches(hook, "networking.k8s.io", "v1", "ingresses", "CREATE", True)
    assert rule_matches(hook, "networking.k8s.io", "v1", "ingresses", "UPDATE", True)
    assert not rule_matches(hook, "networking.k8s.io", "v1", "ingresses", "DELETE", True)
    assert not rule_matches(hook, "networking.k8s.io", "v1", "ingressclasses", "CREATE", False)
    assert not rule_matches(hook, "", "v1", "services", "CREATE", True)
    wild = _hook(apiGroups=["*"], apiVersions=["*"], resources=["*"], operations=["*"])
    assert rule_matches(wild, "apps", "v1", "deployments", "UPDATE", True)
    assert not rule_matches(_hook(scope="Cluster"), "networking.k8s.io", "v1", "ingresses", "CREATE", True)
    assert rule_matches(_hook(scope="Namespaced"), "networking.k8s.io", "v1", "ingresses", "CREATE", True)
    assert not rule_matches(ValidatingWebhook(name="none"), "networking.k8s.io", "v1", "ingresses", "CREATE", True)


def test_a_status_write_is_not_sent() -> None:
    old = Ingress(metadata=ObjectMeta(name="w", namespace="default", resourceVersion="1"), spec=IngressSpec())
    lb = IngressLoadBalancerStatus(ingress=[LoadBalancerIngress(ip="192.168.0.21")])
    status = Ingress(metadata=ObjectMeta(name="w", namespace="default", resourceVersion="2"), spec=IngressSpec(),
                     status=IngressStatus(loadBalancer=lb))  # fmt: skip
    assert _status_only(status, old)
    changed = Ingress(metadata=ObjectMeta(name="w", namespace="default"), spec=IngressSpec(ingressClassName="nginx"))
    assert not _status_only(changed, old)
