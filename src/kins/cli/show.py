"""Commands that show a cluster, offline from manifests or live: render, get, describe."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from .._errors import KinsError
from .app import app
from .common import ClusterOpt, FilesOpt, NameOpt, Source, out, source


class What(StrEnum):
    iptables = "iptables"
    iptables_save = "iptables-save"
    routes = "routes"
    neigh = "neigh"
    fdb = "fdb"
    links = "links"
    ipsets = "ipsets"
    all = "all"


@app.command()
def render(
    filename: FilesOpt = [],  # noqa: B006 - typer reads the default, never mutates it
    cluster: ClusterOpt = None,
    node: Annotated[list[str], typer.Option("--node", help="Only this node (repeatable).")] = [],  # noqa: B006
    what: Annotated[What, typer.Option("--what", help="Which part of the node plan to print.")] = What.all,
) -> None:
    """Print each node's data plane as the real tools would show it (no root needed)."""
    from ..model.ipset import save_text
    from ..offline import open_offline
    from ..render.cluster import render_cluster
    from ..render.overlay.ipmasq import masq_with_jump
    from ..render.proxy.iptables import base_chain_jumps
    from ..render.proxy.save import render_save
    from ..render.text import format_bridge_fdb, format_ip_neigh, format_ip_route, format_node_links

    oc = open_offline(filename, cluster)
    names = [n.name for n in oc.cfg.nodes]
    for n in node:
        if n not in names:
            raise KinsError(f"--node: no node {n!r} in cluster {oc.cfg.name!r} (nodes: {', '.join(names)})")
    plans = render_cluster(oc.cfg, oc.store, node or None)
    many = len(plans) > 1
    for name, plan in plans.items():
        parts: list[tuple[str, str]] = []
        if what in (What.links, What.all):
            parts.append(("ip -d link", format_node_links(plan)))
        if what in (What.routes, What.all):
            parts.append(("ip route", format_ip_route(plan.routes, plan.links)))
        if what in (What.neigh, What.all):
            parts.append(("ip neigh", format_ip_neigh(plan.neighs)))
        if what in (What.fdb, What.all):
            parts.append(("bridge fdb show", format_bridge_fdb(plan.fdb)))
        if what == What.iptables:
            parts.append(("iptables-restore input", plan.iptables_restore + plan.policy_restore))
        if what in (What.iptables_save, What.all):
            masq = masq_with_jump(oc.cfg.podNetwork.cidr, plan.pod_cidr, oc.cfg.masquerade_mark)
            jumps = base_chain_jumps() + list(plan.policy_jumps)
            parts.append(("iptables-save", render_save(plan.iptables_restore, jumps, (masq, plan.policy_restore))))
        if what == What.ipsets or (what == What.all and plan.ipsets):
            parts.append(("ipset save", save_text(plan.ipsets)))
        for title, text in parts:
            if many or what == What.all:
                out(f"# node {name} ({plan.ip}): {title}")
            out(text)


def _now() -> datetime:
    return datetime.now(UTC)


@app.command()
def get(
    resource: Annotated[str, typer.Argument(help="pods|svc|endpoints|nodes|deployments|pvc|crd|all|<custom>|...")],
    name: Annotated[str | None, typer.Argument()] = None,
    filename: FilesOpt = [],  # noqa: B006
    cluster: ClusterOpt = None,
    namespace: Annotated[str | None, typer.Option("-n", "--namespace")] = None,
    all_namespaces: Annotated[bool, typer.Option("-A", "--all-namespaces")] = False,
    output: Annotated[
        str, typer.Option("-o", "--output", help="wide|yaml|json|name|jsonpath=TEMPLATE|custom-columns=SPEC")
    ] = "",
    selector: Annotated[str | None, typer.Option("-l", "--selector")] = None,
    name_: NameOpt = None,
) -> None:
    """List objects with kubectl's columns."""
    from ..api.meta import Object, parse_label_selector
    from ..api.registry import STORED
    from ..views.output import to_json, to_yaml
    from ..views.table import NoResources, format_table

    fmt, _, arg = output.partition("=")
    if fmt not in ("", "wide", "yaml", "json", "name", "jsonpath", "custom-columns"):
        raise KinsError(
            f"-o: unsupported output format {output!r} (wide, yaml, json, name, jsonpath=..., custom-columns=...)"
        )
    printer = _template_printer(fmt, arg) if fmt in ("jsonpath", "custom-columns") else None
    src = source(filename, cluster, name_)
    kinds = _resolve_kinds(src, resource)
    if name is not None and len(kinds) > 1:
        raise KinsError("error: a resource name needs one resource type")
    sel = parse_label_selector(selector) if selector else None
    found: list[tuple[str, list[Object]]] = []
    for kind in kinds:
        namespaced = STORED[kind].NAMESPACED
        ns = None if all_namespaces or not namespaced else (namespace or "default")
        objs = src.list(kind, ns, sel)
        if name is not None:
            objs = [o for o in objs if o.name == name]
            if not objs:
                raise KinsError(f'Error from server (NotFound): {STORED[kind].PLURAL} "{name}" not found')
        found.append((kind, objs))
    if fmt == "name":
        for kind, objs in found:
            for o in objs:
                out(f"{kind_name(kind)}/{o.name}")
        return
    if fmt in ("yaml", "json"):
        everything = [o for _, objs in found for o in objs]
        one = name is not None and len(everything) == 1
        out(to_yaml(everything, as_list=not one) if fmt == "yaml" else to_json(everything, as_list=not one))
        return
    if printer is not None:
        everything = [o for _, objs in found for o in objs]
        text = printer(everything, name is not None and len(everything) == 1)
        if text:
            sys.stdout.write(text)
        elif not everything:
            sys.stderr.write(no_resources_any(all_namespaces, namespace or "default") + "\n")
        return
    tables = []
    for kind, objs in found:
        namespaced = STORED[kind].NAMESPACED
        ns = None if all_namespaces or not namespaced else (namespace or "default")
        text = format_table(
            kind,
            objs,
            wide=fmt == "wide",
            all_namespaces=all_namespaces,
            now=_now(),
            namespace=ns or "default",
            name_prefix=f"{kind_name(kind)}/" if len(found) > 1 else "",
        )
        if isinstance(text, NoResources):
            if len(found) == 1:
                sys.stderr.write(text + "\n")
        else:
            tables.append(text)
    if tables:
        out("\n".join(t.rstrip("\n") + "\n" for t in tables).rstrip("\n"))
    elif len(found) > 1:
        sys.stderr.write(no_resources_any(all_namespaces, namespace or "default") + "\n")


def _resolve_kinds(src: Source, resource: str) -> list[str]:
    """The kinds of ``pods``, ``svc,ep``, a category (``all``) or a custom resource's names. A
    live cluster's custom resources are learnt from its CustomResourceDefinitions."""
    from ..api.registry import resolve_resource
    from ..api.resources import resources_in_category

    kinds: list[str] = []
    for res in resource.split(","):
        for attempt in range(2):
            try:
                kinds.append(resolve_resource(res))
                break
            except KeyError:
                in_category = [r.kind for r in resources_in_category(res.lower())]
                if in_category:
                    kinds.extend(in_category)
                    break
                if attempt == 0 and src.learn_custom_kinds():
                    continue
                raise KinsError(f'error: the server doesn\'t have a resource type "{res}"') from None
    return list(dict.fromkeys(kinds))


def _template_printer(fmt: str, arg: str) -> Callable[[list[Any], bool], str]:
    """``-o jsonpath=`` and ``-o custom-columns=``: a function of (objects, single object
    asked for by name) to the text kubectl prints."""
    from ..apiserver.encode import encode as to_dict  # as the API serves them: defaults written out
    from ..views.jsonpath import JSONPathError, parse
    from ..views.template_output import custom_columns, parse_custom_columns

    try:
        if fmt == "jsonpath":
            if not arg:
                raise KinsError("error: template format specified but no template given")
            template = parse(arg)

            def jsonpath(objs: list[Any], single: bool) -> str:
                items = [to_dict(o) for o in objs]
                data = items[0] if single else {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {}}
                return template.render(data)

            return jsonpath
        columns = parse_custom_columns(arg)
    except JSONPathError as e:
        raise KinsError(f"error: error parsing jsonpath {arg}, {e}") from None

    def table(objs: list[Any], single: bool) -> str:
        return custom_columns(columns, [to_dict(o) for o in objs])

    return table


def kind_name(kind: str) -> str:
    """``kubectl get -o name``'s type: the kind in lower case with its API group (``pod``,
    ``deployment.apps``, ``networkpolicy.networking.k8s.io``)."""
    from ..api.registry import STORED

    version = STORED[kind].API_VERSION
    group = version.split("/", 1)[0] if "/" in version else ""
    return kind.lower() + (f".{group}" if group else "")


def no_resources_any(all_namespaces: bool, namespace: str) -> str:
    return "No resources found" if all_namespaces else f"No resources found in {namespace} namespace."


@app.command()
def describe(
    resource: Annotated[str, typer.Argument(help="svc|pod|node|deploy|job|sts|ds|netpol|pvc|pv|sc")],
    name: Annotated[str, typer.Argument()],
    filename: FilesOpt = [],  # noqa: B006
    cluster: ClusterOpt = None,
    namespace: Annotated[str | None, typer.Option("-n", "--namespace")] = None,
    name_: NameOpt = None,
) -> None:
    """Show one object in detail, laid out like kubectl describe (ending with its Events)."""
    from ..api.apps import DaemonSet, Deployment, ReplicaSet, StatefulSet
    from ..api.batch import Job
    from ..api.core import Node, Pod, Service
    from ..api.discovery import EndpointSlice
    from ..api.networking import NetworkPolicy
    from ..api.registry import STORED, resolve_resource
    from ..api.storage import PersistentVolume, PersistentVolumeClaim, StorageClass
    from ..control.base import controller_of
    from ..views.describe import describe_deployment, describe_node, describe_pod, describe_service
    from ..views.events import events_for

    try:
        kind = resolve_resource(resource)
    except KeyError:
        raise KinsError(f'error: the server doesn\'t have a resource type "{resource}"') from None
    src = source(filename, cluster, name_)
    ns = (namespace or "default") if STORED[kind].NAMESPACED else None
    matches = [o for o in src.list(kind, ns, None) if o.name == name]
    if not matches:
        raise KinsError(f'Error from server (NotFound): {STORED[kind].PLURAL} "{name}" not found')
    obj = matches[0]
    # Events about cluster-scoped objects (nodes) may live in any namespace.
    events = events_for(obj, src.list("Event", ns, None))
    if isinstance(obj, Service):
        slices = [
            s for s in src.list("EndpointSlice", ns, None) if isinstance(s, EndpointSlice) and s.service_name == name
        ]
        out(describe_service(obj, slices, events))
    elif isinstance(obj, Pod):
        out(describe_pod(obj, events))
    elif isinstance(obj, Node):
        out(describe_node(obj, events))
    elif isinstance(obj, Deployment):
        owned = [
            r
            for r in src.list("ReplicaSet", ns, None)
            if isinstance(r, ReplicaSet) and (ref := controller_of(r)) is not None and ref.uid == obj.metadata.uid
        ]
        out(describe_deployment(obj, owned, events))
    elif isinstance(obj, Job):
        from ..views.describe_job import describe_job

        out(describe_job(obj, events))
    elif isinstance(obj, (StatefulSet, DaemonSet)):
        from ..views.describe_workloads import describe_daemonset, describe_statefulset

        pods = [p for p in src.list("Pod", ns, None) if isinstance(p, Pod)]
        if isinstance(obj, StatefulSet):
            out(describe_statefulset(obj, pods, events))
        else:
            out(describe_daemonset(obj, pods, events))
    elif isinstance(obj, NetworkPolicy):
        from ..views.describe_network import describe_network_policy

        out(describe_network_policy(obj))
    elif isinstance(obj, (PersistentVolumeClaim, PersistentVolume, StorageClass)):
        from ..views.describe_storage import describe_pv, describe_pvc, describe_storageclass

        if isinstance(obj, PersistentVolumeClaim):
            out(describe_pvc(obj, [p for p in src.list("Pod", ns, None) if isinstance(p, Pod)], events))
        elif isinstance(obj, PersistentVolume):
            out(describe_pv(obj, events))
        else:
            out(describe_storageclass(obj, events))
    else:
        raise KinsError(
            f"describe: {kind} is not supported yet (svc, pod, node, deploy, job, sts, ds, netpol, pvc, pv, sc)"
        )
