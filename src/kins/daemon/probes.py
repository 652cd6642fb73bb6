"""Readiness and liveness probes, run from the kubelet's side inside the pod's network namespace."""

from __future__ import annotations

import http.client
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._errors import KinsError
from ..api.core import Container, Probe
from ..kernel import netns as kns
from ..runtime.exec import exec_in_pod
from ..runtime.linux import socket_in_netns

if TYPE_CHECKING:
    from .kubelet import PodRun

log = logging.getLogger("kins.kubelet")


@dataclass
class ProbeState:
    probe: Probe
    next_at: float
    successes: int = 0
    failures: int = 0


def probe_state(p: Probe | None, now: float) -> ProbeState | None:
    if p is None:
        return None
    return ProbeState(probe=p, next_at=now + (p.initialDelaySeconds or 0))


def _port(port: int | str, c: Container) -> int:
    if isinstance(port, int):
        return port
    for p in c.ports or []:
        if p.name == port:
            return p.containerPort
    raise KinsError(f"probe port {port!r} is not a named port of container {c.name}")


def probe_once(p: Probe, run: PodRun, c: Container) -> bool:
    """One probe attempt from the kubelet's side, inside the pod's network namespace."""
    timeout = float(p.timeoutSeconds or 1)
    path = kns.path(run.netns)
    try:
        if p.tcpSocket is not None:
            s = socket_in_netns(path)
            try:
                s.settimeout(timeout)
                s.connect((p.tcpSocket.host or run.ip, _port(p.tcpSocket.port, c)))
            finally:
                s.close()
            return True
        if p.httpGet is not None:
            g = p.httpGet
            s = socket_in_netns(path)
            s.settimeout(timeout)
            s.connect((g.host or run.ip, _port(g.port, c)))
            conn = http.client.HTTPConnection(g.host or run.ip, _port(g.port, c), timeout=timeout)
            conn.sock = s
            try:
                headers = {h.name: h.value for h in g.httpHeaders or []}
                headers.setdefault("User-Agent", "kube-probe/1.31")
                conn.request("GET", g.path or "/", headers=headers)
                return 200 <= conn.getresponse().status < 400
            finally:
                conn.close()
        if p.exec is not None and run.sandbox is not None:
            r = exec_in_pod(run.sandbox, p.exec.command or ["true"], timeout=timeout)
            return r.returncode == 0
    except (OSError, KinsError, http.client.HTTPException, TimeoutError):
        return False
    except Exception:
        log.exception("probe of %s", run.key)
        return False
    return True
