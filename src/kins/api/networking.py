"""``networking.k8s.io/v1``: Ingress, IngressClass, NetworkPolicy; and the legacy
``extensions/v1beta1`` Ingress, converted to v1 as the API server does."""

from __future__ import annotations

import msgspec

from .core import IntOrString, LoadBalancerIngress
from .meta import Base, LabelSelector, Object


class ServiceBackendPort(Base):
    name: str | None = None
    number: int | None = None


class IngressServiceBackend(Base):
    name: str
    port: ServiceBackendPort | None = None


class TypedLocalObjectReference(Base):
    apiGroup: str | None = None
    kind: str = ""
    name: str = ""


class IngressBackend(Base):
    service: IngressServiceBackend | None = None
    resource: TypedLocalObjectReference | None = None


class HTTPIngressPath(Base):
    backend: IngressBackend
    path: str | None = None
    pathType: str | None = None


class HTTPIngressRuleValue(Base):
    paths: list[HTTPIngressPath] = msgspec.field(default_factory=list)


class IngressRule(Base):
    host: str | None = None
    http: HTTPIngressRuleValue | None = None


class IngressTLS(Base):
    hosts: list[str] | None = None
    secretName: str | None = None


class IngressSpec(Base):
    ingressClassName: str | None = None
    defaultBackend: IngressBackend | None = None
    tls: list[IngressTLS] | None = None
    rules: list[IngressRule] | None = None


class IngressLoadBalancerStatus(Base):
    ingress: list[LoadBalancerIngress] | None = None


class IngressStatus(Base):
    loadBalancer: IngressLoadBalancerStatus | None = None


class Ingress(Object):
    KIND = "Ingress"
    API_VERSION = "networking.k8s.io/v1"
    PLURAL = "ingresses"
    spec: IngressSpec = msgspec.field(default_factory=IngressSpec)
    status: IngressStatus | None = None


class IngressClassParametersReference(Base):
    apiGroup: str | None = None
    kind: str = ""
    name: str = ""
    scope: str | None = None
    namespace: str | None = None


class IngressClassSpec(Base):
    controller: str | None = None
    parameters: IngressClassParametersReference | None = None


class IngressClass(Object):
    KIND = "IngressClass"
    API_VERSION = "networking.k8s.io/v1"
    NAMESPACED = False
    PLURAL = "ingressclasses"
    spec: IngressClassSpec = msgspec.field(default_factory=IngressClassSpec)


# --- legacy extensions/v1beta1 and networking.k8s.io/v1beta1 Ingress -------------------------


class LegacyBackend(Base):
    serviceName: str | None = None
    servicePort: IntOrString | None = None
    resource: TypedLocalObjectReference | None = None


class LegacyPath(Base):
    backend: LegacyBackend
    path: str | None = None
    pathType: str | None = None


class LegacyRuleValue(Base):
    paths: list[LegacyPath] = msgspec.field(default_factory=list)


class LegacyRule(Base):
    host: str | None = None
    http: LegacyRuleValue | None = None


class LegacyIngressSpec(Base):
    ingressClassName: str | None = None
    backend: LegacyBackend | None = None
    tls: list[IngressTLS] | None = None
    rules: list[LegacyRule] | None = None


class LegacyIngress(Object):
    KIND = "Ingress"
    API_VERSION = "extensions/v1beta1"
    PLURAL = "ingresses"
    spec: LegacyIngressSpec = msgspec.field(default_factory=LegacyIngressSpec)
    status: IngressStatus | None = None

    def to_v1(self) -> Ingress:
        def backend(b: LegacyBackend | None) -> IngressBackend | None:
            if b is None:
                return None
            if b.resource is not None:
                return IngressBackend(resource=b.resource)
            port = (
                ServiceBackendPort(number=b.servicePort)
                if isinstance(b.servicePort, int)
                else ServiceBackendPort(name=b.servicePort)
            )
            return IngressBackend(service=IngressServiceBackend(name=b.serviceName or "", port=port))

        rules = []
        for r in self.spec.rules or []:
            http = None
            if r.http is not None:
                http = HTTPIngressRuleValue(
                    paths=[
                        HTTPIngressPath(
                            backend=backend(p.backend) or IngressBackend(),
                            path=p.path,
                            pathType=p.pathType or "ImplementationSpecific",
                        )
                        for p in r.http.paths
                    ]
                )
            rules.append(IngressRule(host=r.host, http=http))
        return Ingress(
            metadata=self.metadata,
            spec=IngressSpec(
                ingressClassName=self.spec.ingressClassName,
                defaultBackend=backend(self.spec.backend),
                tls=self.spec.tls,
                rules=rules or None,
            ),
            status=self.status,
        )


# --- NetworkPolicy ----------------------------------------------------------------------------


class IPBlock(Base):
    cidr: str
    # "except" is a Python keyword: the JSON name is kept through a rename.
    except_: list[str] | None = msgspec.field(default=None, name="except")


class NetworkPolicyPeer(Base):
    podSelector: LabelSelector | None = None
    namespaceSelector: LabelSelector | None = None
    ipBlock: IPBlock | None = None


class NetworkPolicyPort(Base):
    protocol: str | None = None
    port: IntOrString | None = None
    endPort: int | None = None


class NetworkPolicyIngressRule(Base):
    # "from" is a Python keyword.
    from_: list[NetworkPolicyPeer] | None = msgspec.field(default=None, name="from")
    ports: list[NetworkPolicyPort] | None = None


class NetworkPolicyEgressRule(Base):
    to: list[NetworkPolicyPeer] | None = None
    ports: list[NetworkPolicyPort] | None = None


class NetworkPolicySpec(Base):
    podSelector: LabelSelector = msgspec.field(default_factory=LabelSelector)
    policyTypes: list[str] | None = None
    ingress: list[NetworkPolicyIngressRule] | None = None
    egress: list[NetworkPolicyEgressRule] | None = None


class NetworkPolicy(Object):
    KIND = "NetworkPolicy"
    API_VERSION = "networking.k8s.io/v1"
    PLURAL = "networkpolicies"
    spec: NetworkPolicySpec = msgspec.field(default_factory=NetworkPolicySpec)
