"""Commands for a live cluster: up, down, status, apply, delete, scale, exec, logs, node, host."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .._errors import KinsError, NotFound
from .app import app
from .common import ClusterOpt, FilesOpt, NameOpt, apply_all, err, live_client, live_endpoint, out

if TYPE_CHECKING:
    from ..api.core import Node
    from ..client import Client
    from ..clientexec import Command

node_app = typer.Typer(help="Nodes of the live cluster: add, remove, exec.", no_args_is_help=True)
host_app = typer.Typer(help="Outside hosts on the underlay: exec.", no_args_is_help=True)
app.add_typer(node_app, name="node")
app.add_typer(host_app, name="host")

NsOpt = Annotated[str | None, typer.Option("-n", "--namespace")]
Cmd = Annotated[list[str], typer.Argument(help="Command and arguments (after --).")]


# --- up / down / status -----------------------------------------------------------------------


@app.command()
def up(
    cluster: ClusterOpt = None,
    name: NameOpt = None,
    no_workloads: Annotated[
        bool,
        typer.Option("--no-workloads", help="No demo apps: only the add-ons (cluster DNS, the ingress controller)."),
    ] = False,
    bare: Annotated[
        bool, typer.Option("--bare", help="Only nodes: no add-ons (no cluster DNS), no demo apps.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the cluster to be ready.")] = 120.0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet")] = False,
) -> None:
    """Start a cluster daemon, wait until the cluster is ready, show the article's request flow."""
    from .up import bring_up

    bring_up(cluster, name, no_workloads=no_workloads, timeout=timeout, quiet=quiet, bare=bare)


@app.command()
def down(
    cluster_name: Annotated[str | None, typer.Argument(metavar="[NAME]", help="The cluster (or --name).")] = None,
    name: NameOpt = None,
    keep_state: Annotated[bool, typer.Option(help="Keep the state directory (store, logs).")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also when the state directory is gone: remove the namespaces and processes named after the cluster.",
        ),
    ] = False,
) -> None:
    """Stop a cluster and remove everything it created."""
    from ..daemon.state import cluster_dir, known_clusters, pick_cluster, running_clusters

    if cluster_name and name and cluster_name != name:
        raise KinsError(f"two clusters named: {cluster_name!r} and --name {name!r}")
    target = cluster_name or name or os.environ.get("KINS_CLUSTER")
    if target is None:
        if force:
            raise KinsError("--force needs the cluster's name")
        running = running_clusters()
        stale = known_clusters()
        if running:
            target = pick_cluster(None).name
        elif len(stale) == 1:
            target = stale[0]
        else:
            raise KinsError("no cluster is running" if not stale else "several clusters: choose one with --name")
    state = cluster_dir(target)
    if not state.exists() and not force:
        raise KinsError(f"no cluster named {target!r} (--force removes what is left of one whose state is gone)")
    removed = teardown_cluster(target, state, keep_state=keep_state) if state.exists() else ""
    if force:
        swept = force_teardown(target)
        removed = f"{removed}; {swept}" if removed else swept
    out(f"cluster {target!r} removed ({removed})")


def force_teardown(name: str) -> str:
    """What is left of a cluster whose state directory is gone, found by its name alone: its
    namespaces (``kins-<name>-…``), the processes in them, its daemon, node agents and fork
    servers. Another cluster's are never touched (see ``prefixed_namespaces``)."""
    from ..daemon.state import known_clusters
    from ..kernel.ledger import prefixed_namespaces, sweep
    from ..kernel.netns import cluster_prefix
    from ..runtime.cleanup import kill_prefixed_processes, running_daemon_names

    cluster_prefix(name)  # a DNS-1123 label, or a clear error
    others = (set(known_clusters()) | running_daemon_names()) - {name}
    names = prefixed_namespaces(name, others)
    killed = kill_prefixed_processes(name, names)
    gone = sweep(name, names)
    left = prefixed_namespaces(name, others)
    if left:
        raise KinsError(f"namespaces left behind: {', '.join(left)}")
    return f"{len(gone)} namespaces and {killed} processes found by the prefix {cluster_prefix(name)!r}"


def teardown_cluster(name: str, state: Path, *, keep_state: bool = False) -> str:
    from ..daemon.state import DaemonInfo, pid_alive
    from ..kernel.ledger import teardown
    from ..kernel.netns import list_namespaces
    from ..runtime.cleanup import kill_cluster_processes

    (state / "teardown").write_text("1\n")
    info = DaemonInfo.read(state)
    if info is not None and pid_alive(info.pid, name):
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while pid_alive(info.pid, name) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(info.pid, name):
            os.kill(info.pid, signal.SIGKILL)
    # Whatever the daemon could not finish (it may have crashed): processes, then namespaces.
    killed = kill_cluster_processes(state, name)
    gone = teardown(name, state)
    left = list_namespaces(name)
    if left:
        raise KinsError(f"teardown left namespaces behind: {', '.join(left)}")
    if not keep_state:
        shutil.rmtree(state, ignore_errors=True)
    return f"{len(gone)} namespaces, {killed} stray processes"


@app.command()
def status(name: NameOpt = None) -> None:
    """Clusters, their nodes and pods."""
    from ..daemon.state import running_clusters

    infos = running_clusters()
    if name:
        infos = [i for i in infos if i.name == name]
    if not infos:
        err("no cluster is running")
        raise typer.Exit(1)
    for info in infos:
        c = live_client(info.name)
        st = c.raw("GET", "/kins/v1/status")
        nodes = c.list("Node")
        pods = c.list("Pod", all_namespaces=True)
        ready = sum(1 for p in pods if getattr(p, "ready", False))
        out(
            f"{info.name}: daemon pid {info.pid}, API {info.url}, {len(nodes)} nodes, "
            f"{ready}/{len(pods)} pods ready, rules synced at resourceVersion "
            f"{st['network']['appliedResourceVersion']}/{st['resourceVersion']}"
        )


# --- objects ----------------------------------------------------------------------------------


@app.command()
def apply(
    filename: FilesOpt,
    name: NameOpt = None,
    namespace: NsOpt = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Then wait until every Deployment is Available and every Pod Ready.")
    ] = False,
    timeout: Annotated[str, typer.Option("--timeout", help="How long --wait waits (30s, 5m).")] = "5m",
) -> None:
    """Create or update objects from manifests (all validated first: nothing changes on error)."""
    from ..api.load import load_paths
    from ..api.validation import validate_all

    if not filename:
        raise KinsError("apply: give manifests with -f")
    objs = load_paths(filename)
    for o in objs:
        if namespace and o.NAMESPACED and not o.metadata.namespace:
            o.metadata.namespace = namespace
    client = live_client(name)
    validate_all(objs, None)
    if wait:
        from .wait import parse_timeout, wait_applied

        seconds = parse_timeout(timeout)  # a bad --timeout is refused before anything changes
    apply_all(client, objs, report=True)
    if wait:
        wait_applied(client, objs, seconds)


@app.command()
def delete(
    resource: Annotated[str, typer.Argument()] = "",
    names: Annotated[list[str] | None, typer.Argument()] = None,
    filename: FilesOpt = [],  # noqa: B006
    name: NameOpt = None,
    namespace: NsOpt = None,
    wait: Annotated[bool, typer.Option(help="Wait until the objects are gone.")] = True,
) -> None:
    """Delete objects by type and name, or those of manifests (-f)."""
    from ..api.load import load_paths
    from ..api.registry import STORED, resolve_resource

    client = live_client(name)
    targets: list[tuple[str, str | None, str]] = []
    if filename:
        for o in load_paths(filename):
            targets.append((o.KIND, o.namespace if o.NAMESPACED else None, o.name))
    else:
        if not resource or not names:
            raise KinsError("delete: give TYPE NAME... or -f FILE")
        kind = resolve_resource(resource)
        ns = (namespace or "default") if STORED[kind].NAMESPACED else None
        targets = [(kind, ns, n) for n in names]
    for kind, ns, n in targets:
        client.delete(kind, ns, n)
        out(f'{STORED[kind].PLURAL.rstrip("s") if kind != "Endpoints" else "endpoints"} "{n}" deleted')
    if wait:
        deadline = time.monotonic() + 60
        for kind, ns, n in targets:
            while time.monotonic() < deadline:
                try:
                    client.get(kind, ns, n)
                except NotFound:
                    break
                time.sleep(0.05)


@app.command()
def scale(
    resource: Annotated[str, typer.Argument(help="deployment NAME or deployment/NAME")],
    target: Annotated[str | None, typer.Argument()] = None,
    replicas: Annotated[int, typer.Option("--replicas")] = -1,
    name: NameOpt = None,
    namespace: NsOpt = None,
) -> None:
    """Set the number of replicas of a Deployment, ReplicaSet or StatefulSet."""
    from ..api.registry import resolve_resource

    if "/" in resource:
        resource, target = resource.split("/", 1)
    if target is None:
        raise KinsError("scale: give the name: kins scale deployment NAME --replicas N")
    if replicas < 0:
        raise KinsError("scale: --replicas must be given and be >= 0")
    kind = resolve_resource(resource)
    if kind not in ("Deployment", "ReplicaSet", "StatefulSet"):
        raise KinsError(f"scale: {kind} cannot be scaled (deployment, replicaset, statefulset)")
    if kind == "StatefulSet":
        # The API serves /scale for Deployments and ReplicaSets; a set's replicas are patched.
        live_client(name).patch(kind, namespace or "default", target, {"spec": {"replicas": replicas}})
    else:
        live_client(name).scale(namespace or "default", target, replicas, kind=kind)
    out(f"{kind.lower()}.apps/{target} scaled")


# --- running things ---------------------------------------------------------------------------


def _pod_ref(pod: str, namespace: str | None) -> tuple[str, str]:
    """(namespace, name) of ``NAME`` or ``NAMESPACE/NAME``."""
    if "/" in pod:
        ns, _, pod = pod.partition("/")
        return ns, pod
    return namespace or "default", pod


def _attach(name: str | None, cmd: Command, stdin: bool, tty: bool) -> None:
    from ..clientexec import attach

    code = attach(live_endpoint(name), cmd, stdin=stdin, tty=tty)
    if code:
        raise typer.Exit(code)


StdinOpt = Annotated[bool, typer.Option("-i", "--stdin", help="Pass stdin to the command.")]
TtyOpt = Annotated[bool, typer.Option("-t", "--tty", help="Give the command a terminal (stdin being one).")]


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec(
    pod: Annotated[str, typer.Argument(help="Pod name (or NAMESPACE/NAME).")],
    command: Cmd,
    namespace: NsOpt = None,
    name: NameOpt = None,
    container: Annotated[str | None, typer.Option("-c", "--container")] = None,
    stdin: StdinOpt = False,
    tty: TtyOpt = False,
) -> None:
    """Run a command inside a pod (its network, hostname and /etc files), through the API."""
    from ..clientexec import Command, pod_path

    ns, pod_name = _pod_ref(pod, namespace)
    _attach(name, Command(pod_path(ns, pod_name), command, container), stdin, tty)


@app.command()
def logs(
    pod: Annotated[str, typer.Argument()],
    namespace: NsOpt = None,
    name: NameOpt = None,
    container: Annotated[str | None, typer.Option("-c", "--container")] = None,
    follow: Annotated[bool, typer.Option("-f", "--follow")] = False,
    previous: Annotated[bool, typer.Option("-p", "--previous")] = False,
    tail: Annotated[int, typer.Option("--tail", help="Lines of the end to show (-1: all).")] = -1,
    timestamps: Annotated[bool, typer.Option("--timestamps", help="Prefix each line with its time.")] = False,
) -> None:
    """Print a container's log (its current run, or the previous one with -p)."""
    ns, pod_name = _pod_ref(pod, namespace)
    options = {"tailLines": str(tail)} if tail >= 0 else {}
    if timestamps:
        options["timestamps"] = "true"
    chunks = live_client(name).log(ns, pod_name, container=container, follow=follow, previous=previous, **options)
    try:
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
    except NotFound as e:
        raise KinsError(f"Error from server (NotFound): {e}") from None


def _command(command: list[str]) -> list[str]:
    if not command:
        raise KinsError("give a command after --, e.g. -- ip route")
    return command


@node_app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def node_exec(
    node: Annotated[str, typer.Argument()],
    command: Cmd,
    name: NameOpt = None,
    stdin: StdinOpt = False,
    tty: TtyOpt = False,
) -> None:
    """Run a command on a node (in its network namespace): ip route, iptables-save, bridge fdb ..."""
    from ..clientexec import Command, node_path

    _attach(name, Command(node_path(node), _command(command)), stdin, tty)


@host_app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def host_exec(
    host: Annotated[str, typer.Argument()],
    command: Cmd,
    name: NameOpt = None,
    stdin: StdinOpt = False,
    tty: TtyOpt = False,
) -> None:
    """Run a command on an outside host of the underlay (e.g. curl to a NodePort)."""
    from ..clientexec import Command, host_path

    _attach(name, Command(host_path(host), _command(command)), stdin, tty)


LEASE_TIMEOUT = 10.0  # seconds node add waits for the node IPAM controller


@node_app.command("add")
def node_add(
    node: Annotated[str, typer.Argument()],
    ip: Annotated[str | None, typer.Option("--ip", help="Underlay address (default: next free).")] = None,
    pod_cidr: Annotated[str | None, typer.Option("--pod-cidr", help="Pod subnet (default: leased).")] = None,
    name: NameOpt = None,
) -> None:
    """Join a new node: every node's flannel routes, neighbours and FDB entries follow."""
    from ..api.config import NodeConfig
    from ..control.offline import node_object

    client = live_client(name)
    try:
        client.get("Node", None, node)
    except NotFound:
        pass
    else:
        raise KinsError(f"node {node!r} already exists")
    # The Node as asked for; the node IPAM controller leases what was not given (or refuses).
    created = client.create(node_object(NodeConfig(name=node, ip=ip, podCIDR=pod_cidr)))
    leased = _wait_lease(client, node, created.metadata.uid or "")
    out(f"node/{node} added ({leased.internal_ip}, pods {leased.spec.podCIDR})")


def _wait_lease(client: Client, node: str, uid: str) -> Node:
    """The Node once leased; a refusal (the controller's Warning Event) or no lease in time
    removes it again and fails."""
    from ..api.core import Event
    from ..api.core import Node as NodeObj
    from ..control.nodeipam import COMPONENT, leased

    deadline = time.monotonic() + LEASE_TIMEOUT
    why = f"no address and pod subnet leased within {LEASE_TIMEOUT:g}s"
    while time.monotonic() < deadline:
        n = client.get("Node", None, node)
        if isinstance(n, NodeObj) and leased(n):
            return n
        refusals = [
            e
            for e in client.list("Event", "default", field_selector=f"involvedObject.name={node}")
            if isinstance(e, Event)
            and e.type == "Warning"
            and e.involvedObject.uid == uid
            and e.source is not None
            and e.source.component == COMPONENT
        ]
        if refusals:
            why = refusals[-1].message or why
            break
        time.sleep(0.05)
    with contextlib.suppress(NotFound):
        client.delete("Node", None, node)
    raise KinsError(f"node add {node}: {why}")


@node_app.command("remove")
def node_remove(node: Annotated[str, typer.Argument()], name: NameOpt = None) -> None:
    """Remove a node: its pods are rescheduled, the other nodes forget its flannel entries."""
    client = live_client(name)
    client.get("Node", None, node)
    # The node lifecycle controller deletes the pods bound to it; their owners replace them.
    client.delete("Node", None, node)
    out(f"node/{node} removed")
