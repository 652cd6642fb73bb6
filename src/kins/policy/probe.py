"""Real connections between pods of the live cluster, as the upstream NetworkPolicy e2e tests
make them (``agnhost connect HOST:PORT --timeout=1s --protocol=P`` from each source pod).

One exec per source pod, through the API as ``kins exec`` does it: the pod runs a small python3
script (pods run host binaries) that tries all that pod's destinations at once, each with its
own timeout, and prints one JSON verdict per destination. Source pods run in parallel, so a full
9-pod grid costs about one timeout, not 72.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .._errors import KinsError
from ..api.core import Pod
from ..client import Client
from ..clientexec import Api, Command, Result, pod_path, run_many
from ..render.netpol.model import PodInfo

PROTOCOLS = ("TCP", "UDP", "SCTP")

# Stdlib only, any python3: agnhost connect's checks and first words (TIMEOUT, REFUSED, OTHER).
SCRIPT = r"""
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
targets, proto, timeout = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3])
kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
num = 132 if proto == "sctp" else 0
def one(t):
    s = None
    try:
        family, _, _, _, addr = socket.getaddrinfo(t[0], t[1], type=kind)[0]
        s = socket.socket(family, kind, num)
        s.settimeout(timeout)
        s.connect(addr)
        if proto != "tcp":
            s.send(b"hostname\n")
            if not s.recv(1024):
                return "OTHER: No data received from the server."
        return ""
    except socket.timeout:
        return "TIMEOUT"
    except ConnectionRefusedError:
        return "REFUSED"
    except socket.gaierror as e:
        return "DNS: %s" % e
    except OSError as e:
        return "OTHER: %s" % e
    finally:
        if s is not None:
            s.close()
with ThreadPoolExecutor(max(1, min(64, len(targets)))) as pool:
    print(json.dumps(list(pool.map(one, targets))))
"""

Pair = tuple[Pod, str, int]  # source pod, destination address, port
Key = tuple[str, str]  # ("ns/source", "ns/destination" or the address)


class ProbeError(KinsError):
    """A source pod's probes could not be run (not a verdict on the traffic)."""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str = ""  # agnhost connect's line on failure: TIMEOUT, REFUSED, OTHER: ...


def probe_outcomes(
    client: Api,
    pairs: Sequence[Pair],
    protocol: str = "TCP",
    timeout: float = 1.0,
    names: Mapping[str, str] | None = None,
    concurrency: int = 16,
) -> dict[Key, Outcome]:
    """Try every pair once; keys name the destination by ``names[address]`` when given.

    A (source, destination) pair must appear once: probe several ports with several calls."""
    proto = protocol.lower()
    if proto.upper() not in PROTOCOLS:
        raise ValueError(f"invalid protocol {protocol!r} (TCP, UDP or SCTP)")
    names = names or {}
    by_source: dict[str, tuple[Pod, list[tuple[str, int]]]] = {}
    for pod, address, port in pairs:
        by_source.setdefault(pod.key, (pod, []))[1].append((address, port))
    sources = list(by_source.values())
    cmds = [
        Command(
            pod_path(pod.namespace, pod.name),
            ["python3", "-c", SCRIPT, json.dumps(targets), proto, f"{timeout:g}"],
            # upstream probes from the first container (exec needs one named when there are several)
            container=pod.spec.containers[0].name if pod.spec.containers else None,
        )
        for pod, targets in sources
    ]
    results = run_many(client, cmds, timeout=timeout + 30, concurrency=max(1, concurrency))
    out: dict[Key, Outcome] = {}
    for (pod, targets), res in zip(sources, results, strict=True):
        errors = _errors(pod, res, len(targets))
        for (address, _port), error in zip(targets, errors, strict=True):
            out[(pod.key, names.get(address, address))] = Outcome(not error, error)
    return out


def _errors(pod: Pod, res: Result | BaseException, n: int) -> list[str]:
    if isinstance(res, BaseException):
        raise ProbeError(f"probing from {pod.key}: {res}") from res
    try:
        errors = json.loads(res.stdout)
    except ValueError:
        errors = None
    if res.code != 0 or not isinstance(errors, list) or len(errors) != n:
        detail = (res.stderr or res.stdout).decode(errors="replace").strip()
        raise ProbeError(f"probing from {pod.key}: exit code {res.code}: {detail[-500:]}")
    return [str(e) for e in errors]


def probe(
    client: Api,
    pairs: Sequence[Pair],
    protocol: str = "TCP",
    timeout: float = 1.0,
    names: Mapping[str, str] | None = None,
    concurrency: int = 16,
) -> dict[Key, bool]:
    """``probe_outcomes`` as plain verdicts: True when the connection went through."""
    return {k: o.ok for k, o in probe_outcomes(client, pairs, protocol, timeout, names, concurrency).items()}


def grid_pairs(
    pods: Sequence[Pod], port: int, addresses: Mapping[str, str] | None = None, ignore_loopback: bool = True
) -> tuple[list[Pair], dict[str, str]]:
    """Every pod to every other pod on ``port``, and the names of the destination addresses.

    ``addresses`` maps ``ns/pod`` to the address to dial instead of the pod's IP (its Service's
    ClusterIP, say); a pod without an address is left out as a destination."""
    dests: list[tuple[str, str]] = []
    for p in pods:
        addr = (addresses or {}).get(p.key) if addresses is not None else (p.status.podIP if p.status else None)
        if addr:
            dests.append((p.key, addr))
    names = {addr: key for key, addr in dests}
    pairs = [(src, addr, port) for src in pods for key, addr in dests if not (ignore_loopback and key == src.key)]
    return pairs, names


def serves(pod: Pod, port: int, protocol: str) -> bool:
    """Whether a container of ``pod`` declares ``port``/``protocol``: a refused connection to
    a pod that serves nothing there says nothing about the policies."""
    proto = protocol.upper()
    return any(
        cp.containerPort == port and (cp.protocol or "TCP").upper() == proto
        for c in pod.spec.containers
        for cp in c.ports or []
    )


def probe_matrix(
    client: Client, pods: Sequence[PodInfo], port: int, protocol: str, timeout: float = 1.0
) -> tuple[dict[Key, bool], list[Key]]:
    """A real connection for every ordered pair of ``pods`` (by ``ns/name``) to the other's
    address, as ``kins policy matrix --probe`` makes them, and the pairs left out because the
    destination declares no such port."""
    wanted = {p.key for p in pods}
    live = [p for p in client.list("Pod", all_namespaces=True) if isinstance(p, Pod) and p.key in wanted]
    order = {p.key: i for i, p in enumerate(pods)}
    live.sort(key=lambda p: order[p.key])
    servers = {p.key: p.status.podIP for p in live if p.status and p.status.podIP and serves(p, port, protocol)}
    pairs, names = grid_pairs(live, port, servers)
    skipped = [(s.key, d.key) for s in live for d in live if s.key != d.key and d.key not in servers]
    return probe(client, pairs, protocol.upper(), timeout, names), skipped
