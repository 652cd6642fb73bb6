"""``admissionregistration.k8s.io/v1``: Validating- and MutatingWebhookConfiguration.

Stored and served only: kins calls no webhooks (what ingress-nginx's and cert-manager's
manifests register is kept, and nothing is refused by it).
"""

from __future__ import annotations

from typing import Any

from .meta import Base, LabelSelector, Object


class ServiceReference(Base):
    namespace: str = ""
    name: str = ""
    path: str | None = None
    port: int | None = None


class WebhookClientConfig(Base):
    url: str | None = None
    service: ServiceReference | None = None
    caBundle: str | None = None


class RuleWithOperations(Base):
    operations: list[str] | None = None
    apiGroups: list[str] | None = None
    apiVersions: list[str] | None = None
    resources: list[str] | None = None
    scope: str | None = None


class ValidatingWebhook(Base):
    name: str = ""
    clientConfig: WebhookClientConfig | None = None
    rules: list[RuleWithOperations] | None = None
    failurePolicy: str | None = None
    matchPolicy: str | None = None
    namespaceSelector: LabelSelector | None = None
    objectSelector: LabelSelector | None = None
    sideEffects: str | None = None
    timeoutSeconds: int | None = None
    admissionReviewVersions: list[str] | None = None
    matchConditions: list[dict[str, Any]] | None = None


class MutatingWebhook(ValidatingWebhook):
    reinvocationPolicy: str | None = None


class ValidatingWebhookConfiguration(Object):
    KIND = "ValidatingWebhookConfiguration"
    API_VERSION = "admissionregistration.k8s.io/v1"
    NAMESPACED = False
    PLURAL = "validatingwebhookconfigurations"
    webhooks: list[ValidatingWebhook] | None = None


class MutatingWebhookConfiguration(Object):
    KIND = "MutatingWebhookConfiguration"
    API_VERSION = "admissionregistration.k8s.io/v1"
    NAMESPACED = False
    PLURAL = "mutatingwebhookconfigurations"
    webhooks: list[MutatingWebhook] | None = None
