"""``kins policy``: NetworkPolicy enforcement as the live cluster does it; ``log`` prints the
packets the policies denied (kube-router's NFLOG records, gathered by the nodes' agents)."""

from __future__ import annotations

import sys
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import msgspec
import typer

from .._errors import KinsError
from .app import app
from .common import ClusterOpt, FilesOpt, NameOpt, live_client, out

policy_app = typer.Typer(
    help="NetworkPolicy as the nodes enforce it: who can reach whom (matrix), denied packets (log).",
    no_args_is_help=True,
)
app.add_typer(policy_app, name="policy")


class LogOutput(StrEnum):
    text = "text"
    json = "json"


def _time(text: str) -> str:
    """``HH:MM:SS.mmm`` in local time; the text as given if it is no RFC 3339 time."""
    try:
        t = datetime.fromisoformat(text).astimezone()
    except (TypeError, ValueError):
        return str(text)
    return t.strftime("%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def _peer(peer: dict[str, Any]) -> str:
    ip = str(peer.get("ip") or "?")
    if peer.get("pod"):
        return f"{peer.get('namespace') or 'default'}/{peer['pod']} ({ip})"
    return ip


def format_record(rec: dict[str, Any]) -> str:
    """One record as a line: ``TIME  SOURCE  DESTINATION  DIRECTION  POLICIES``, e.g.
    ``10:41:07.123  x/b (10.244.1.5)  x/a (10.244.2.7):80/TCP  ingress  x/deny-ingress``."""
    dst = rec.get("destination") or {}
    port = dst.get("port")
    proto = rec.get("protocol") or "?"
    where = f"{_peer(dst)}:{port}/{proto}" if port is not None else f"{_peer(dst)}/{proto}"
    policies = ",".join(rec.get("policies") or []) or "-"
    source = _peer(rec.get("source") or {})
    return f"{_time(rec.get('time', ''))}  {source}  {where}  {rec.get('direction') or '?'}  {policies}"


@policy_app.command("log")
def log(
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing packets as they are denied.")] = False,
    namespace: Annotated[
        str | None, typer.Option("-n", "--namespace", help="Only packets from or to this namespace (default: all).")
    ] = None,
    name: NameOpt = None,
    output: Annotated[LogOutput, typer.Option("-o", "--output", help="text, or json: one object a line.")] = (
        LogOutput.text
    ),
) -> None:
    """Print the packets NetworkPolicies denied, oldest first (as the nodes logged them)."""
    client = live_client(name)

    def show(rec: dict[str, Any]) -> None:
        out(msgspec.json.encode(rec).decode() if output == LogOutput.json else format_record(rec))

    if not follow:
        for rec in client.policy_log(namespace)[0]:
            show(rec)
        return
    try:
        for rec in client.follow_policy_log(namespace):
            show(rec)
            sys.stdout.flush()
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


class MatrixOutput(StrEnum):
    text = "text"
    json = "json"


class Proto(StrEnum):
    tcp = "tcp"
    udp = "udp"
    sctp = "sctp"


SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")


@policy_app.command("matrix")
def matrix(
    namespaces: Annotated[
        list[str] | None, typer.Argument(help="Namespaces whose pods to tabulate (default: all but the system ones).")
    ] = None,
    filename: FilesOpt = [],  # noqa: B006 - typer reads the default, never mutates it
    cluster: ClusterOpt = None,
    port: Annotated[int, typer.Option("--port", help="Destination port (the pods' target port).")] = 80,
    proto: Annotated[Proto, typer.Option("--proto", help="tcp, udp or sctp.")] = Proto.tcp,
    output: Annotated[MatrixOutput, typer.Option("-o", "--output", help="text or json.")] = MatrixOutput.text,
    probe: Annotated[
        bool, typer.Option("--probe", help="Live: also connect for every pair and report where the rules were wrong.")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds a probe's connection may take.")] = 1.0,
    name: NameOpt = None,
) -> None:
    """Who can reach whom on PORT/PROTO: every pod pair of the namespaces, as the nodes' rules
    decide it (offline from manifests with -f, else the live cluster's kernel rules)."""
    from ..policy.matrix import compute
    from ..policy.sources import live_rules, offline_rules

    if not 0 < port < 65536:
        raise typer.BadParameter(f"{port} is not a port (1-65535)", param_hint="--port")
    if filename:
        if probe:
            raise typer.BadParameter("probes need the live cluster: drop -f", param_hint="--probe")
        pods, nodes, known = offline_rules(filename, cluster)
        client = None
    else:
        client = live_client(name)
        pods, nodes, known = live_rules(client)
    wanted = namespaces or [ns for ns in known if ns not in SYSTEM_NAMESPACES]
    missing = [ns for ns in wanted if ns not in known]
    if missing:
        raise KinsError(f"no namespace {', '.join(repr(m) for m in missing)} (namespaces: {', '.join(known)})")
    chosen = sorted((p for p in pods if p.namespace in wanted), key=lambda p: (wanted.index(p.namespace), p.name))
    m = compute(chosen, nodes, port, proto.value)
    observed = None
    skipped: list[tuple[str, str]] = []
    if probe:
        from ..policy.probe import probe_matrix

        assert client is not None
        observed, skipped = probe_matrix(client, chosen, port, proto.value, timeout)
        m.probed = True
        m.wrong = [(s, d) for (s, d), ok in sorted(observed.items()) if ok != m.allowed(s, d)]
    if output == MatrixOutput.json:
        doc = m.to_json()
        if probe:
            doc["correct"] = len(observed or {}) - len(m.wrong)
            doc["notProbed"] = [list(p) for p in skipped]
        out(msgspec.json.encode(doc).decode())
    else:
        out(f"{m.protocol}/{port}: rows from, columns to ('.' allowed, 'X' denied)")
        out(m.table(observed).rstrip("\n"))
        if probe:
            total = len(observed or {})
            for s, d in m.wrong:
                said = "allowed" if m.allowed(s, d) else "denied"
                seen = "connected" if observed and observed[(s, d)] else "no connection"
                out(f"wrong: {s} -> {d}: the rules say {said}, the probe got {seen}")
            if skipped:
                dests = sorted({d for _, d in skipped})
                out(f"not probed: {len(skipped)} pairs to {', '.join(dests)} (no container port {port}/{m.protocol})")
            out(f"{len(m.wrong)} wrong, {total - len(m.wrong)} correct out of {total}")
    if m.wrong:
        raise typer.Exit(1)


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


@policy_app.command("model")
def model(
    namespaces: Annotated[str, typer.Option("--namespaces", help="Comma-separated namespaces.")] = "x,y,z",
    pods: Annotated[str, typer.Option("--pods", help="Comma-separated pod names, in every namespace.")] = "a,b,c",
    ports: Annotated[str, typer.Option("--ports", help="Comma-separated ports every pod serves.")] = "80,81",
    protocols: Annotated[
        str, typer.Option("--protocols", help="Comma-separated: tcp, udp, sctp (sctp servers do not run in kins).")
    ] = "tcp,udp",
    base: Annotated[str, typer.Option("--base", help="Prefix the namespaces as <base>-x ...")] = "",
) -> None:
    """Print the upstream NetworkPolicy e2e model (namespaces, pods, Services) as YAML, for
    `kins apply -f -`."""
    from ..policy.model import model_objects, to_manifests

    try:
        port_numbers = [int(p) for p in _csv(ports)]
    except ValueError:
        raise typer.BadParameter(f"--ports: not a list of numbers: {ports!r}") from None
    try:
        objs = model_objects(_csv(namespaces), _csv(pods), port_numbers, _csv(protocols), base=base)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    out(to_manifests(objs))
