"""The Metrics API (``metrics.k8s.io/v1beta1``): nodes' and pods' CPU and memory, for ``kubectl top``.

In a Kubernetes cluster metrics-server scrapes every kubelet and serves the latest samples
through API aggregation. Here the kubelets push theirs: each ``POST /kins/v1/metrics`` carries
one report per node (``{"items": [{"node", "timestamp", "window", "cpu", "memory", "pods":
[...]}]}``, CPU in nanocores, memory in bytes), which replaces that node's previous one. The
server keeps them in memory only (metrics are not stored, as metrics-server stores nothing) and
answers ``get`` and ``list`` on ``nodes`` and ``pods`` as metrics-server does: only objects that
exist (a pod's metrics name its uid, so a new pod of an old name does not inherit them), their
labels (``labelSelector`` works as on the objects), usage as Kubernetes quantities (``12m``,
``34Ki``) and the window as a Go duration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from ..api.core import Node, Pod
from ..api.meta import Object
from .errors import ApiError
from .keys import STORE_KEY
from .request import field_filter, label_selector, table_version
from .response import json_response

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
POST_PATH = "/kins/v1/metrics"
BASE = f"/apis/{GROUP_VERSION}"
# A node whose kubelet stopped reporting for this long has no metrics (its agent is gone).
STALE_SECONDS = 60.0

# The group's resources as discovery lists them: read-only, no watch.
RESOURCES: list[dict[str, Any]] = [
    {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
    {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]},
]


class ContainerSample(msgspec.Struct):
    name: str
    cpu: int  # nanocores
    memory: int  # bytes


class PodSample(msgspec.Struct):
    namespace: str
    name: str
    timestamp: str
    window: float
    containers: list[ContainerSample]
    uid: str = ""


class NodeSample(msgspec.Struct):
    node: str
    timestamp: str
    window: float
    cpu: int
    memory: int
    pods: list[PodSample] = []


class MetricsReport(msgspec.Struct):
    items: list[NodeSample]


@dataclass
class _Latest:
    sample: NodeSample
    received: float  # monotonic
    pods: dict[tuple[str, str], PodSample] = field(default_factory=dict)


class MetricsCache:
    """The latest report of every node. Used from the event loop only."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Latest] = {}
        self._pod_node: dict[tuple[str, str], str] = {}

    def add(self, samples: list[NodeSample], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for s in samples:
            old = self._nodes.get(s.node)
            if old is not None:
                for key in old.pods:
                    if self._pod_node.get(key) == s.node:
                        del self._pod_node[key]
            pods = {(p.namespace, p.name): p for p in s.pods}
            self._nodes[s.node] = _Latest(s, now, pods)
            for key in pods:
                self._pod_node[key] = s.node

    def _fresh(self, node: str, now: float) -> _Latest | None:
        latest = self._nodes.get(node)
        if latest is None or now - latest.received > STALE_SECONDS:
            return None
        return latest

    def node(self, name: str, now: float | None = None) -> NodeSample | None:
        latest = self._fresh(name, time.monotonic() if now is None else now)
        return latest.sample if latest is not None else None

    def pod(self, namespace: str, name: str, uid: str, now: float | None = None) -> PodSample | None:
        node = self._pod_node.get((namespace, name))
        latest = self._fresh(node, time.monotonic() if now is None else now) if node else None
        if latest is None:
            return None
        sample = latest.pods.get((namespace, name))
        if sample is None or (sample.uid and uid and sample.uid != uid):
            return None
        return sample


METRICS_KEY = web.AppKey("metrics", MetricsCache)

_decoder = msgspec.json.Decoder(MetricsReport)


# --- the wire forms -------------------------------------------------------------------------


def cpu_quantity(nanocores: int) -> str:
    """Nanocores as Kubernetes writes the quantity metrics-server makes: ``12m``, ``1500m``,
    ``2``, ``12345678n``."""
    if nanocores <= 0:
        return "0"
    for suffix, scale in (("", 10**9), ("m", 10**6), ("u", 10**3)):
        if nanocores % scale == 0:
            return f"{nanocores // scale}{suffix}"
    return f"{nanocores}n"


def memory_quantity(size: int) -> str:
    """Bytes as a binary quantity in canonical form: ``34Ki``, ``2Mi``, ``1000``."""
    if size <= 0:
        return "0"
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        scale = 1024 ** (("Ki", "Mi", "Gi", "Ti", "Pi", "Ei").index(suffix) + 1)
        if size % scale == 0:
            return f"{size // scale}{suffix}"
    return str(size)


def go_duration(seconds: float) -> str:
    """A duration as Go prints it (metav1.Duration's JSON form): ``15.003s``, ``1m0.5s``, ``500ms``."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)

    def frac(value: int, unit: int) -> str:
        whole, rest = divmod(value, unit)
        digits = str(rest).rjust(len(str(unit)) - 1, "0").rstrip("0")
        return f"{whole}.{digits}" if digits else str(whole)

    if ns < 1000:
        return f"{sign}{ns}ns"
    if ns < 10**6:
        return f"{sign}{frac(ns, 1000)}µs"
    if ns < 10**9:
        return f"{sign}{frac(ns, 10**6)}ms"
    hours, ns = divmod(ns, 3600 * 10**9)
    minutes, ns = divmod(ns, 60 * 10**9)
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return f"{sign}{out}{frac(ns, 10**9)}s"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _usage(cpu: int, memory: int) -> dict[str, str]:
    return {"cpu": cpu_quantity(cpu), "memory": memory_quantity(memory)}


def node_metrics(node: Node, sample: NodeSample) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": node.name, "creationTimestamp": _now()}
    if node.metadata.labels:
        meta["labels"] = dict(node.metadata.labels)
    return {
        "kind": "NodeMetrics",
        "apiVersion": GROUP_VERSION,
        "metadata": meta,
        "timestamp": sample.timestamp,
        "window": go_duration(sample.window),
        "usage": _usage(sample.cpu, sample.memory),
    }


def pod_metrics(pod: Pod, sample: PodSample) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": pod.name, "namespace": pod.namespace, "creationTimestamp": _now()}
    if pod.metadata.labels:
        meta["labels"] = dict(pod.metadata.labels)
    return {
        "kind": "PodMetrics",
        "apiVersion": GROUP_VERSION,
        "metadata": meta,
        "timestamp": sample.timestamp,
        "window": go_duration(sample.window),
        "containers": [{"name": c.name, "usage": _usage(c.cpu, c.memory)} for c in sample.containers],
    }


def _list(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": f"{kind}List", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items}


_TABLE_COLUMNS = [
    {"name": "Name", "type": "string", "format": "name", "description": "Name of the resource", "priority": 0},
    {"name": "cpu", "type": "string", "format": "quantity", "description": "", "priority": 0},
    {"name": "memory", "type": "string", "format": "quantity", "description": "", "priority": 0},
    {"name": "Window", "type": "string", "format": "duration", "description": "", "priority": 0},
]


def _table(request: web.Request, items: list[dict[str, Any]], cells: list[list[str]]) -> dict[str, Any] | None:
    """The ``Table`` ``kubectl get nodemetrics|podmetrics`` asks for (metrics-server's columns:
    name, cpu, memory, window), or None when the client wants the objects."""
    version = table_version(request)
    if version is None:
        return None
    include = request.query.get("includeObject", "Metadata")
    rows: list[dict[str, Any]] = []
    for item, row in zip(items, cells, strict=True):
        entry: dict[str, Any] = {"cells": row}
        if include == "Object":
            entry["object"] = item
        elif include == "Metadata":
            meta = {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}"}
            entry["object"] = {**meta, "metadata": item["metadata"]}
        rows.append(entry)
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": {},
        "columnDefinitions": _TABLE_COLUMNS,
        "rows": rows,
    }


Measured = tuple[dict[str, Any], int, int]  # the object served, its CPU (nanocores) and memory


def _answer(request: web.Request, kind: str, measured: list[Measured], single: bool = False) -> web.Response:
    items = [m[0] for m in measured]
    cells = [
        [item["metadata"]["name"], cpu_quantity(cpu), memory_quantity(mem), item["window"]]
        for item, cpu, mem in measured
    ]
    table = _table(request, items, cells)
    if table is not None:
        return json_response(table)
    return json_response(items[0] if single else _list(kind, items))


def _not_found(resource: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource}.{GROUP} "{name}" not found', kind=resource, name=name)


# --- handlers -------------------------------------------------------------------------------


def _refuse_watch(request: web.Request) -> None:
    if request.query.get("watch", "").lower() in ("1", "true"):
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def _matching(request: web.Request, kind: str, namespace: str | None) -> list[Object]:
    items, _ = request.app[STORE_KEY].list(kind, namespace, label_selector(request))
    keep = field_filter(request)
    return sorted((o for o in items if keep(o)), key=lambda o: (o.namespace or "", o.name))


async def _nodes(request: web.Request) -> web.Response:
    _refuse_watch(request)
    cache = request.app[METRICS_KEY]
    measured: list[Measured] = []
    for node in _matching(request, "Node", None):
        sample = cache.node(node.name)
        if isinstance(node, Node) and sample is not None:
            measured.append((node_metrics(node, sample), sample.cpu, sample.memory))
    return _answer(request, "NodeMetrics", measured)


async def _node(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    node = request.app[STORE_KEY].get("Node", None, name)  # NotFound: nodes "x" not found
    sample = request.app[METRICS_KEY].node(name)
    if not isinstance(node, Node) or sample is None:
        raise _not_found("nodes", name)
    return _answer(request, "NodeMetrics", [(node_metrics(node, sample), sample.cpu, sample.memory)], single=True)


def _pod_measured(pod: Pod, sample: PodSample) -> Measured:
    cpu = sum(c.cpu for c in sample.containers)
    memory = sum(c.memory for c in sample.containers)
    return pod_metrics(pod, sample), cpu, memory


def _pod_items(request: web.Request, namespace: str | None) -> list[Measured]:
    cache = request.app[METRICS_KEY]
    measured: list[Measured] = []
    for pod in _matching(request, "Pod", namespace):
        if not isinstance(pod, Pod):
            continue
        sample = cache.pod(pod.namespace or "", pod.name, pod.metadata.uid or "")
        if sample is not None:
            measured.append(_pod_measured(pod, sample))
    return measured


async def _all_pods(request: web.Request) -> web.Response:
    _refuse_watch(request)
    return _answer(request, "PodMetrics", _pod_items(request, None))


async def _pods(request: web.Request) -> web.Response:
    _refuse_watch(request)
    return _answer(request, "PodMetrics", _pod_items(request, request.match_info["namespace"]))


async def _pod(request: web.Request) -> web.Response:
    ns, name = request.match_info["namespace"], request.match_info["name"]
    pod = request.app[STORE_KEY].get("Pod", ns, name)  # NotFound: pods "x" not found
    sample = request.app[METRICS_KEY].pod(ns, name, pod.metadata.uid or "") if isinstance(pod, Pod) else None
    if not isinstance(pod, Pod) or sample is None:
        raise _not_found("pods", f"{ns}/{name}")
    return _answer(request, "PodMetrics", [_pod_measured(pod, sample)], single=True)


def _check(report: MetricsReport) -> None:
    for i, s in enumerate(report.items):
        where = f"items[{i}]"
        if not s.node:
            raise ApiError(400, "BadRequest", f"{where}.node: required")
        stamps = [(f"{where}.timestamp", s.timestamp)]
        stamps += [(f"{where}.pods[{j}].timestamp", p.timestamp) for j, p in enumerate(s.pods)]
        for path, stamp in stamps:
            try:
                datetime.fromisoformat(stamp)
            except ValueError:
                raise ApiError(400, "BadRequest", f"{path}: not an RFC 3339 time: {stamp!r}") from None
        numbers = [(f"{where}.cpu", s.cpu), (f"{where}.memory", s.memory), (f"{where}.window", s.window)]
        for j, p in enumerate(s.pods):
            numbers.append((f"{where}.pods[{j}].window", p.window))
            for k, c in enumerate(p.containers):
                numbers += [
                    (f"{where}.pods[{j}].containers[{k}].cpu", c.cpu),
                    (f"{where}.pods[{j}].containers[{k}].memory", c.memory),
                ]
        for path, value in numbers:
            if value < 0:
                raise ApiError(400, "BadRequest", f"{path}: must not be negative, not {value}")


async def _post(request: web.Request) -> web.Response:
    try:
        report = _decoder.decode(await request.read())
    except msgspec.DecodeError as e:  # ValidationError is one: the message names the field
        raise ApiError(400, "BadRequest", f"metrics report: {e}") from None
    _check(report)
    request.app[METRICS_KEY].add(report.items)
    return json_response({"kind": "Status", "apiVersion": "v1", "status": "Success"})


def add_routes(app: web.Application) -> None:
    """The routes go ahead of the generic resource routes, which would claim them."""
    app[METRICS_KEY] = MetricsCache()
    app.router.add_post(POST_PATH, _post)
    app.router.add_get(f"{BASE}/nodes", _nodes)
    app.router.add_get(f"{BASE}/nodes/{{name}}", _node)
    app.router.add_get(f"{BASE}/pods", _all_pods)
    app.router.add_get(f"{BASE}/namespaces/{{namespace}}/pods", _pods)
    app.router.add_get(f"{BASE}/namespaces/{{namespace}}/pods/{{name}}", _pod)
