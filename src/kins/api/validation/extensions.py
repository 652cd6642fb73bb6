"""Extending the API: CustomResourceDefinition, APIService, admission webhook configurations,
and custom objects against their definition's schema, in the apiextensions server's words."""

from __future__ import annotations

from ..admissionregistration import MutatingWebhookConfiguration, ValidatingWebhookConfiguration
from ..apiextensions import SCOPES, CustomResourceDefinition
from ..apiregistration import APIService
from ..config import ClusterConfig
from .common import Check, Errors, is_dns1035_label, is_dns1123_subdomain

_CONVERSION_STRATEGIES = ("None", "Webhook")
_SIDE_EFFECTS = ("None", "NoneOnDryRun")
_FAILURE_POLICIES = ("Fail", "Ignore")


def _crd(e: Errors, crd: CustomResourceDefinition, cfg: ClusterConfig | None) -> None:
    s = crd.spec
    n = s.names
    if crd.name != f"{n.plural}.{s.group}":
        e.invalid("metadata.name", crd.name, 'must be spec.names.plural+"."+spec.group')
    if not s.group:
        e.required("spec.group")
    elif msgs := is_dns1123_subdomain(s.group):
        e.invalid_each("spec.group", s.group, msgs)
    elif "." not in s.group:
        e.invalid("spec.group", s.group, "should be a domain with at least one dot")
    if not s.scope:
        e.required("spec.scope")
    elif s.scope not in SCOPES:
        e.unsupported("spec.scope", s.scope, SCOPES)
    for field, value in (("plural", n.plural), ("singular", n.singular)):
        if value and (msgs := is_dns1035_label(value)):
            e.invalid_each(f"spec.names.{field}", value, msgs)
    if not n.plural:
        e.required("spec.names.plural")
    if not n.kind:
        e.required("spec.names.kind")
    elif msgs := is_dns1035_label(n.kind.lower()):
        e.invalid_each("spec.names.kind", n.kind, msgs)
    if n.listKind is not None and n.listKind == n.kind:
        e.invalid("spec.names.listKind", n.listKind, "kind and listKind may not be the same")
    for i, short in enumerate(n.shortNames or []):
        if msgs := is_dns1035_label(short):
            e.invalid_each(f"spec.names.shortNames[{i}]", short, msgs)
    for i, cat in enumerate(n.categories or []):
        if msgs := is_dns1035_label(cat):
            e.invalid_each(f"spec.names.categories[{i}]", cat, msgs)
    if not s.versions:
        e.required("spec.versions", "must have exactly one version marked as storage version")
    seen: set[str] = set()
    for i, v in enumerate(s.versions):
        p = f"spec.versions[{i}]"
        if not v.name:
            e.required(f"{p}.name")
        elif msgs := is_dns1035_label(v.name):
            e.invalid_each(f"{p}.name", v.name, msgs)
        elif v.name in seen:
            e.invalid(f"{p}.name", v.name, "must be unique")
        seen.add(v.name)
        schema = v.schema.openAPIV3Schema if v.schema else None
        if schema is None:
            e.required(f"{p}.schema.openAPIV3Schema", "schemas are required")
        elif schema.get("type") != "object":
            if not schema.get("type"):
                e.required(f"{p}.schema.openAPIV3Schema.type", "must not be empty at the root")
            else:
                e.invalid(f"{p}.schema.openAPIV3Schema.type", schema["type"], "must be object at the root")
        scale = v.subresources.scale if v.subresources else None
        if scale is not None:
            for field in ("specReplicasPath", "statusReplicasPath"):
                path = getattr(scale, field)
                if not path.startswith("."):
                    e.invalid(f"{p}.subresources.scale.{field}", path, "should be a json path under .spec or .status")
    storage = [v.name for v in s.versions if v.storage]
    listed = [v.name for v in s.versions]
    if s.versions and len(storage) != 1:
        e.invalid("spec.versions", listed, "must have exactly one version marked as storage version")
    if s.versions and not any(v.served for v in s.versions):
        e.invalid("spec.versions", listed, "must have at least one version marked as served")
    if s.conversion is not None and s.conversion.strategy not in _CONVERSION_STRATEGIES:
        e.unsupported("spec.conversion.strategy", s.conversion.strategy, _CONVERSION_STRATEGIES)


def _apiservice(e: Errors, svc: APIService, cfg: ClusterConfig | None) -> None:
    s = svc.spec
    if not s.version:
        e.required("spec.version")
    want = f"{s.version}.{s.group}" if s.group else s.version
    if s.version and svc.name != want:
        e.invalid("metadata.name", svc.name, f"must be {want}")
    if s.service is not None:
        if not 0 < s.groupPriorityMinimum <= 20000:
            e.invalid("spec.groupPriorityMinimum", s.groupPriorityMinimum, "must be positive and less than 20000")
        if not 0 < s.versionPriority <= 1000:
            e.invalid("spec.versionPriority", s.versionPriority, "must be positive and less than 1000")
        if not s.service.name:
            e.required("spec.service.name")
        if not s.service.namespace:
            e.required("spec.service.namespace")
        if s.service.port is not None:
            e.port_num("spec.service.port", s.service.port)


def _webhooks(e: Errors, cfg_obj: ValidatingWebhookConfiguration | MutatingWebhookConfiguration) -> None:
    names: set[str] = set()
    for i, w in enumerate(cfg_obj.webhooks or []):
        p = f"webhooks[{i}]"
        if not w.name:
            e.required(f"{p}.name")
        else:
            if msgs := is_dns1123_subdomain(w.name):
                e.invalid_each(f"{p}.name", w.name, msgs)
            if w.name in names:
                e.duplicate(f"{p}.name", w.name)
            names.add(w.name)
        if w.sideEffects is None:
            e.required(f"{p}.sideEffects", "must specify one of None, NoneOnDryRun")
        elif w.sideEffects not in _SIDE_EFFECTS:
            e.unsupported(f"{p}.sideEffects", w.sideEffects, _SIDE_EFFECTS)
        if w.failurePolicy is not None and w.failurePolicy not in _FAILURE_POLICIES:
            e.unsupported(f"{p}.failurePolicy", w.failurePolicy, _FAILURE_POLICIES)
        if not w.admissionReviewVersions:
            e.required(
                f"{p}.admissionReviewVersions",
                "must specify one of v1, v1beta1",
            )
        cc = w.clientConfig
        if cc is None or (cc.url is None) == (cc.service is None):
            e.required(f"{p}.clientConfig", "exactly one of url or service is required")


def _validating(e: Errors, obj: ValidatingWebhookConfiguration, cfg: ClusterConfig | None) -> None:
    _webhooks(e, obj)


def _mutating(e: Errors, obj: MutatingWebhookConfiguration, cfg: ClusterConfig | None) -> None:
    _webhooks(e, obj)


CHECKS: dict[type, Check] = {
    CustomResourceDefinition: _crd,
    APIService: _apiservice,
    ValidatingWebhookConfiguration: _validating,
    MutatingWebhookConfiguration: _mutating,
}
