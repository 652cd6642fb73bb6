"""``kins trace``: a packet's path hop by hop, computed from the cluster's node plans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .._errors import KinsError
from ..api.config import ClusterConfig
from ..sim.packet import Trace
from ..store.base import Store
from .app import app
from .common import ClusterOpt, FilesOpt, NameOpt, out


def split_port(to: str) -> tuple[str, int | None]:
    """``host:port`` -> (host, port); a name or address without a port -> (it, None)."""
    host, sep, port = to.rpartition(":")
    if sep and port.isdigit() and host:
        return host, int(port)
    return to, None


def live_snapshot(name: str | None) -> tuple[ClusterConfig, Store]:
    """The live cluster's objects in a memory store, and its cluster file with the live nodes."""
    from ..api.config import load_cluster
    from ..api.core import Node
    from ..api.registry import STORED
    from ..daemon.state import pick_cluster
    from ..render.cluster import nodes_config
    from ..store.memory import MemoryStore
    from .common import live_client

    info = pick_cluster(name)
    client = live_client(info.name)
    store = MemoryStore()
    objs = []
    for kind in (
        "Namespace",
        "Node",
        "Pod",
        "Service",
        "Endpoints",
        "EndpointSlice",
        "NetworkPolicy",
        "ClusterNetworkPolicy",
    ):
        objs.extend(client.list(kind, all_namespaces=STORED[kind].NAMESPACED))
    store.bulk_create(objs)
    cfg = load_cluster(Path(info.state_dir) / "cluster.yaml")
    nodes = [n for n in objs if isinstance(n, Node)]
    return nodes_config(cfg, nodes), store


def with_policy(t: Trace, cfg: ClusterConfig, store: Store) -> Trace:
    """The trace with its NetworkPolicy verdicts named, when its path went through a pod's chain."""
    if not any(s.chain and s.chain.startswith("KUBE-POD-FW-") for h in (*t.hops, *t.reply) for s in h.steps):
        return t
    from ..render.cluster import policy_state
    from ..sim.policy import annotate

    return annotate(t, policy_state(store), cfg)


@app.command()
def trace(
    src: Annotated[str, typer.Argument(metavar="FROM", help="Pod, service, node, host, DNS name or IP.")],
    dst: Annotated[str, typer.Argument(metavar="TO[:PORT]", help="Destination, with the port for TCP/UDP/SCTP.")],
    proto: Annotated[str, typer.Option("--proto", help="tcp, udp, sctp or icmp.")] = "tcp",
    output: Annotated[str, typer.Option("-o", "--output", help="text or json.")] = "text",
    node: Annotated[str | None, typer.Option("--node", help="Only what this node does with the packet.")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Send a real probe and compare (live cluster).")] = False,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", metavar="ADDR[:PORT]", help="Follow the branch to this endpoint.")
    ] = None,
    filename: FilesOpt = [],  # noqa: B006
    cluster: ClusterOpt = None,
    name: NameOpt = None,
) -> None:
    """Explain a packet's path hop by hop: routes, rules, NAT, VXLAN, and the final disposition.

    On a live cluster the trace reads what the kernel holds (every namespace's links, routes,
    neighbours, FDB and iptables rules); -f traces rendered manifests offline. --verify sends
    one real packet and checks the prediction against rule counters, conntrack and the outcome
    (exit 3 when they disagree)."""
    from ..sim.endpoint import resolve_endpoint
    from ..sim.format import format_trace_text, trace_to_json
    from ..sim.trace import run_trace

    if proto not in ("tcp", "udp", "sctp", "icmp"):
        raise KinsError(f"--proto: {proto!r} is not one of tcp, udp, sctp, icmp")
    if verify and proto == "sctp":
        raise KinsError("--verify cannot send SCTP: this kernel has no SCTP support; trace sctp without --verify")
    if output not in ("text", "json"):
        raise KinsError(f"-o: {output!r} is not one of text, json")
    to, port = split_port(dst)
    if proto != "icmp" and port is None:
        raise KinsError(f"{dst}: give the destination port as TO:PORT for {proto}")
    if filename:
        if verify:
            raise KinsError("--verify sends a real packet: it needs the live cluster, not -f manifests")
        from ..offline import open_offline

        oc = open_offline(filename, cluster)
        t = with_policy(
            run_trace(oc.cfg, oc.store, src, to, port=port, proto=proto, node=node, endpoint=endpoint), oc.cfg, oc.store
        )
        out(json.dumps(trace_to_json(t), indent=2) if output == "json" else format_trace_text(t))
        return
    from ..daemon.state import pick_cluster
    from ..sim.live import live_view

    cluster_name = pick_cluster(name).name
    cfg, store = live_snapshot(cluster_name)
    view = live_view(cluster_name, cfg, store)
    if not verify:
        t = with_policy(
            run_trace(cfg, store, src, to, port=port, proto=proto, node=node, view=view, endpoint=endpoint), cfg, store
        )
        out(json.dumps(trace_to_json(t), indent=2) if output == "json" else format_trace_text(t))
        return
    if node is not None:
        raise KinsError("--verify follows the packet through the whole cluster: drop --node")
    if endpoint is not None:
        raise KinsError("--verify follows the endpoint the kernel picks: drop --endpoint")
    from ..sim.verify import format_verification, verification_json
    from ..sim.verify import verify as verify_probe
    from .common import live_client

    client = live_client(cluster_name)
    v = verify_probe(
        view,
        cluster_name,
        resolve_endpoint(src, cfg, store, role="from"),
        resolve_endpoint(to, cfg, store, role="to"),
        port,
        proto,
        policy_log=lambda: client.policy_log()[0],
    )
    v.trace = with_policy(v.trace, cfg, store)
    if output == "json":
        out(json.dumps({**trace_to_json(v.trace), "verify": verification_json(v)}, indent=2))
    else:
        out(format_trace_text(v.trace) + format_verification(v))
    if not v.ok:
        raise typer.Exit(3)
