"""Ingress as the legacy versions (extensions/v1beta1, networking.k8s.io/v1beta1) show it.

The store holds networking.k8s.io/v1. A client on a legacy path must read back what it wrote:
``kubectl apply`` computes its patch from the object it GETs and from its manifest, both in the
version of the path, so a v1-shaped answer would turn an unchanged ``serviceName`` into a patch
of unknown fields.
"""

from __future__ import annotations

from typing import Any


def _backend(b: Any) -> Any:
    if not isinstance(b, dict):
        return b
    if "resource" in b:
        return {"resource": b["resource"]}
    svc = b.get("service") or {}
    port = svc.get("port") or {}
    out: dict[str, Any] = {"serviceName": svc.get("name", "")}
    if "number" in port:
        out["servicePort"] = port["number"]
    elif "name" in port:
        out["servicePort"] = port["name"]
    return out


def ingress_to_legacy(doc: dict[str, Any], api_version: str) -> dict[str, Any]:
    """An encoded v1 Ingress -> the same Ingress in ``api_version`` (a v1beta1)."""
    out = dict(doc, apiVersion=api_version)
    spec = dict(doc.get("spec") or {})
    if "defaultBackend" in spec:
        spec["backend"] = _backend(spec.pop("defaultBackend"))
    rules = []
    for rule in spec.get("rules") or []:
        rule = dict(rule)
        http = rule.get("http")
        if isinstance(http, dict):
            paths = [dict(p, backend=_backend(p.get("backend"))) for p in http.get("paths") or []]
            rule["http"] = dict(http, paths=paths)
        rules.append(rule)
    if rules:
        spec["rules"] = rules
    out["spec"] = spec
    return out
