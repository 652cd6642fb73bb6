"""Readiness and liveness probes, run from the kubelet's side inside the pod's network namespace."""

from __future__ import annotations

import http.client
import logging
import os
import ssl
from dataclasses import dataclass
from typing import Protocol

from ..._errors import KinsError
from ...api.core import Container, Probe
from ...kernel import netns as kns
from ...runtime.exec import exec_in_pod
from ...runtime.linux import socket_in_netns
from ...runtime.types import Sandbox

_NO_VERIFY = ssl.create_default_context()
_NO_VERIFY.check_hostname = False
_NO_VERIFY.verify_mode = ssl.CERT_NONE

log = logging.getLogger("kins.kubelet")


class PodRun(Protocol):
    """What a probe needs of the pod it checks (the kubelet's record of a running pod)."""

    @property
    def key(self) -> str: ...
    @property
    def ip(self) -> str: ...
    @property
    def netns(self) -> str: ...
    @property
    def sandbox(self) -> Sandbox | None: ...


@dataclass
class ProbeState:
    probe: Probe
    next_at: float
    successes: int = 0
    failures: int = 0
    reported_at: float = -1e9  # when a failure was last recorded as an Unhealthy event


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


def _dial_error(e: BaseException, host: str, port: int) -> str:
    """An error as Go's net package words it (what kubelet puts in an Unhealthy event)."""
    if isinstance(e, TimeoutError):
        return f"dial tcp {host}:{port}: i/o timeout"
    if isinstance(e, OSError) and e.errno is not None:
        return f"dial tcp {host}:{port}: connect: {os.strerror(e.errno).lower()}"
    return f"dial tcp {host}:{port}: {e}"


def probe_once(p: Probe, run: PodRun, c: Container) -> bool:
    """One probe attempt from the kubelet's side, inside the pod's network namespace."""
    return probe_result(p, run, c)[0]


def probe_result(p: Probe, run: PodRun, c: Container) -> tuple[bool, str]:
    """One probe attempt and, when it failed, why (worded as kubelet's prober words it)."""
    timeout = float(p.timeoutSeconds or 1)
    path = kns.path(run.netns)
    try:
        if p.tcpSocket is not None:
            host, port = p.tcpSocket.host or run.ip, _port(p.tcpSocket.port, c)
            s = socket_in_netns(path)
            try:
                s.settimeout(timeout)
                s.connect((host, port))
            except OSError as e:
                return False, _dial_error(e, host, port)
            finally:
                s.close()
            return True, ""
        if p.httpGet is not None:
            g = p.httpGet
            host, port = g.host or run.ip, _port(g.port, c)
            url = f"{(g.scheme or 'HTTP').lower()}://{host}:{port}{g.path or '/'}"
            s = socket_in_netns(path)
            s.settimeout(timeout)
            try:
                s.connect((host, port))
            except OSError as e:
                s.close()
                return False, f'Get "{url}": {_dial_error(e, host, port)}'
            if (g.scheme or "HTTP").upper() == "HTTPS":
                # As kubelet: TLS without verifying the pod's (usually self-signed) certificate.
                try:
                    s = _NO_VERIFY.wrap_socket(s)
                except (OSError, ssl.SSLError) as e:
                    s.close()
                    return False, f'Get "{url}": {e}'
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            conn.sock = s
            try:
                headers = {h.name: h.value for h in g.httpHeaders or []}
                headers.setdefault("User-Agent", "kube-probe/1.31")
                conn.request("GET", g.path or "/", headers=headers)
                code = conn.getresponse().status
            except (OSError, http.client.HTTPException) as e:
                return False, f'Get "{url}": {e}'
            finally:
                conn.close()
            if 200 <= code < 400:
                return True, ""
            return False, f"HTTP probe failed with statuscode: {code}"
        if p.exec is not None and run.sandbox is not None:
            r = exec_in_pod(run.sandbox, p.exec.command or ["true"], timeout=timeout)
            if r.returncode == 0:
                return True, ""
            said = (_text(r.stdout) + _text(r.stderr)).strip()
            return False, said or f"command {p.exec.command!r} exited with {r.returncode}"
    except (OSError, KinsError, http.client.HTTPException, TimeoutError) as e:
        return False, str(e)
    except Exception as e:
        log.exception("probe of %s", run.key)
        return False, str(e)
    return True, ""


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data if isinstance(data, str) else ""
