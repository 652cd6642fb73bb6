"""Discovery and health endpoints: ``/api``, ``/apis``, ``/apis/{group}[/{version}]``, ``/version``.

kubectl reads these to map a kind to its URL, so they list every resource, its verbs, short
names and subresources, from the same table the router uses.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from aiohttp import web

from ..api.resources import ALL, GROUP_VERSIONS, LEGACY_TYPES, Resource
from . import metrics
from .access import EXTRA_SUBRESOURCES, REVIEW_RESOURCES

KUBERNETES_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-kins", "platform": "linux/amd64"}


class DiscoveryNotFound(Exception):
    """An unknown group or version."""


def _json(data: Any) -> web.Response:
    return web.Response(body=msgspec.json.encode(data), content_type="application/json")


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _version(request: web.Request) -> web.Response:
    return _json(KUBERNETES_VERSION)


async def _api_versions(request: web.Request) -> web.Response:
    host = request.host
    return _json(
        {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
        }
    )


_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version order as a sort key: GA before beta before alpha, higher numbers
    first (v2, v1, v1beta2, v1beta1, v1alpha1), then anything else by name."""
    m = _KUBE_VERSION.match(version)
    if m is None:
        return (3, 0, 0, version)
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0), "")


# Groups served beside the stored kinds (as an aggregated API would be): group/version -> resources.
EXTRA_GROUPS: dict[str, list[dict[str, Any]]] = {metrics.GROUP_VERSION: metrics.RESOURCES}
# The create-only reviews (authorization.k8s.io, authentication.k8s.io).
for _gv, _plural, _kind, _namespaced in REVIEW_RESOURCES:
    EXTRA_GROUPS.setdefault(_gv, []).append(
        {"name": _plural, "singularName": _kind.lower(), "namespaced": _namespaced, "kind": _kind, "verbs": ["create"]}
    )


def _group_versions() -> list[str]:
    return [*GROUP_VERSIONS, *EXTRA_GROUPS]


def _group_body(group: str) -> dict[str, Any]:
    versions = [gv for gv in _group_versions() if gv.rpartition("/")[0] == group]
    # The newest (autoscaling/v2, networking.k8s.io/v1 rather than v1beta1) is listed first and preferred.
    versions.sort(key=lambda gv: version_priority(gv.rpartition("/")[2]))
    preferred = versions[0]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [{"groupVersion": gv, "version": gv.rpartition("/")[2]} for gv in versions],
        "preferredVersion": {"groupVersion": preferred, "version": preferred.rpartition("/")[2]},
    }


async def _api_groups(request: web.Request) -> web.Response:
    # Custom resources' groups after the built-in ones (their group priority is lower).
    custom = {r.group for r in ALL if getattr(r.stored, "DEFINITION", "")}
    groups = sorted({gv.rpartition("/")[0] for gv in _group_versions() if "/" in gv}, key=lambda g: (g in custom, g))
    return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group_body(g) for g in groups]})


async def _api_group(request: web.Request) -> web.Response:
    group = request.match_info["group"]
    if not any(gv.startswith(group + "/") for gv in _group_versions()):
        raise DiscoveryNotFound(f"the server could not find the requested resource (group {group})")
    return _json(_group_body(group))


# The pod subresources served by their own handlers (streams, not stored objects), as the API
# server lists them: tools such as `kubectl auth can-i create pods/exec` read them here.
CONNECT_SUBRESOURCES: dict[tuple[str, str], list[tuple[str, str, list[str]]]] = {
    ("v1", "pods"): [
        ("attach", "PodAttachOptions", ["create", "get"]),
        ("exec", "PodExecOptions", ["create", "get"]),
        ("log", "Pod", ["get"]),
        ("portforward", "PodPortForwardOptions", ["create", "get"]),
    ],
}


def _subresource(
    res: Resource, sub: str, kind: str, verbs: list[str], group: str | None = None, version: str | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": f"{res.plural}/{sub}", "singularName": "", "namespaced": res.namespaced}
    if group is not None:
        entry.update(group=group, version=version)
    entry.update(kind=kind, verbs=verbs)
    return entry


def _resource_list(gv: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = list(EXTRA_GROUPS.get(gv, []))
    # By name, as the API server lists them (kubectl get all follows this order).
    for res in sorted((r for r in ALL if r.group_version == gv), key=lambda r: r.plural):
        verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        resources.append(
            {
                "name": res.plural,
                "singularName": res.singular,
                "namespaced": res.namespaced,
                "kind": res.kind,
                "verbs": verbs,
                # Legacy versions (extensions/v1beta1 Ingress) keep no short names: kubectl would
                # warn that "ing" matches in several groups.
                **({"shortNames": res.short_names} if res.short_names and res.cls not in LEGACY_TYPES else {}),
                **({"categories": res.categories} if res.categories else {}),
            }
        )
        subs: list[dict[str, Any]] = []
        for sub in res.subresources:
            verbs_of = ["update"] if sub == "finalize" else ["get", "patch", "update"]
            if sub == "scale":
                subs.append(_subresource(res, sub, "Scale", verbs_of, "autoscaling", "v1"))
            else:
                subs.append(_subresource(res, sub, res.kind, verbs_of))
        for sub, sub_kind, sub_verbs in CONNECT_SUBRESOURCES.get((gv, res.plural), ()):
            subs.append(_subresource(res, sub, sub_kind, sub_verbs))
        for sub, sub_kind, group, version, sub_verbs in EXTRA_SUBRESOURCES.get(res.kind, []):
            subs.append(_subresource(res, sub, sub_kind, sub_verbs, group, version))
        resources.extend(sorted(subs, key=lambda e: e["name"]))
    if not resources:
        raise DiscoveryNotFound(f"the server could not find the requested resource ({gv})")
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


async def _core_resources(request: web.Request) -> web.Response:
    return _json(_resource_list(request.match_info["version"]))


async def _group_resources(request: web.Request) -> web.Response:
    return _json(_resource_list(f"{request.match_info['group']}/{request.match_info['version']}"))


def add_routes(router: web.UrlDispatcher) -> None:
    for path in ("/healthz", "/readyz", "/livez"):
        router.add_get(path, _health)
    router.add_get("/version", _version)
    router.add_get("/api", _api_versions)
    router.add_get("/apis", _api_groups)
    router.add_get("/api/{version}", _core_resources)
    router.add_get("/apis/{group}", _api_group)
    router.add_get("/apis/{group}/{version}", _group_resources)
