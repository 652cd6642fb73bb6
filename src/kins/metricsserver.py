"""metrics-server as kins runs it (``registry.k8s.io/metrics-server/metrics-server``).

kins' API serves ``metrics.k8s.io`` itself, from what the kubelets report (``apiserver/metrics.py``),
so this program is the serving side of the ``v1beta1.metrics.k8s.io`` APIService that
metrics-server's manifest registers: HTTPS on ``--secure-port`` with a certificate made in
``--cert-dir`` (or ``--tls-cert-file``/``--tls-private-key-file``), ``/livez``, ``/readyz`` and
``/healthz`` for its probes, and ``/apis/metrics.k8s.io/...`` answered by asking the API. It takes
metrics-server's flags; those about scraping kubelets are accepted and not needed (the kubelets
push their samples).

    python -m kins.metricsserver --api URL --token-file F --cert-dir=/tmp --secure-port=10250 ...
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from ._errors import KinsError
from .apps.flags import FlagError, FlagValue, parse_flags
from .certgen import generate
from .client import Client, connect
from .ingress.servers import TLSServer

log = logging.getLogger("kins.metrics-server")

FLAGS: dict[str, FlagValue] = {
    # kins' own: where the API is
    "api": "",
    "token-file": "",
    "ca-file": "",
    # metrics-server's, acted on
    "secure-port": 10250,
    "bind-address": "0.0.0.0",
    "cert-dir": "apiserver.local.config/certificates",
    "tls-cert-file": "",
    "tls-private-key-file": "",
    # accepted: kins' kubelets push their samples, nothing is scraped
    "metric-resolution": "60s",
    "kubelet-preferred-address-types": "Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP",
    "kubelet-use-node-status-port": False,
    "kubelet-insecure-tls": False,
    "kubelet-port": 10250,
    "kubelet-certificate-authority": "",
    "kubelet-client-certificate": "",
    "kubelet-client-key": "",
    "kubelet-request-timeout": "10s",
    "node-selector": "",
    "authorization-always-allow-paths": "",
    "requestheader-client-ca-file": "",
    "requestheader-allowed-names": "",
    "requestheader-username-headers": "",
    "requestheader-group-headers": "",
    "requestheader-extra-headers-prefix": "",
    "authentication-kubeconfig": "",
    "authorization-kubeconfig": "",
    "kubeconfig": "",
    "tls-min-version": "",
    "tls-cipher-suites": "",
    "profiling": False,
    "logging-format": "text",
    "v": 0,
}


class Server:
    """The HTTPS server and what it knows about the API."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.lock = threading.Lock()
        self.checked = 0.0
        self.api_ok = False

    def ready(self) -> bool:
        """The API answers for metrics.k8s.io (asked at most every 5 s)."""
        with self.lock:
            if time.monotonic() - self.checked > 5:
                try:
                    self.client.raw("GET", "/apis/metrics.k8s.io/v1beta1")
                    self.api_ok = True
                except (KinsError, httpx.HTTPError) as e:
                    log.warning("metrics.k8s.io: %s", e)
                    self.api_ok = False
                self.checked = time.monotonic()
            return self.api_ok

    def answer(self, path: str) -> tuple[int, bytes, str]:
        route = path.split("?", 1)[0]
        if route in ("/livez", "/healthz"):
            return 200, b"ok", "text/plain"
        if route == "/readyz":
            return (200, b"ok", "text/plain") if self.ready() else (500, b"metrics.k8s.io not served", "text/plain")
        if route.startswith("/apis/metrics.k8s.io"):
            try:
                resp = self.client._http.get(path)  # the query (label selectors) as it came
            except httpx.HTTPError as e:
                return (
                    503,
                    json.dumps({"kind": "Status", "status": "Failure", "message": str(e)}).encode(),
                    "application/json",
                )
            return resp.status_code, resp.content, resp.headers.get("Content-Type", "application/json")
        return 404, b"404 page not found\n", "text/plain"


def make_server(srv: Server, host: str, port: int, cert: str, key: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code, body, ctype = srv.answer(self.path)
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return TLSServer((host, port), Handler, cert, key)


def serving_certificate(cert_dir: str) -> tuple[str, str]:
    """``apiserver.crt``/``apiserver.key`` in ``cert_dir`` (made, self-signed, when missing)."""
    cert, key = os.path.join(cert_dir, "apiserver.crt"), os.path.join(cert_dir, "apiserver.key")
    if not (os.path.exists(cert) and os.path.exists(key)):
        os.makedirs(cert_dir, exist_ok=True)
        ns = os.environ.get("POD_NAMESPACE", "kube-system")
        _, pem, key_pem = generate(["metrics-server", f"metrics-server.{ns}.svc", "localhost", "127.0.0.1"])
        with open(cert, "wb") as f:
            f.write(pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
    return cert, key


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    try:
        values, rest = parse_flags(sys.argv[1:] if argv is None else argv, FLAGS)
        if rest:
            raise FlagError(f"unexpected argument {rest[0]!r}: metrics-server takes flags only")
        if not values["api"] or not values["token-file"]:
            raise FlagError("--api and --token-file are required (the pod's environment gives them)")
    except FlagError as e:
        sys.stderr.write(f"metrics-server: {e}\n")
        return 2
    with open(str(values["token-file"])) as f:
        token = f.read().strip()
    token_file = str(values["token-file"])
    client = connect(str(values["api"]), token, str(values["ca-file"]) or None, token_file=token_file)
    if values["tls-cert-file"] and values["tls-private-key-file"]:
        cert, key = str(values["tls-cert-file"]), str(values["tls-private-key-file"])
    else:
        cert, key = serving_certificate(str(values["cert-dir"]))
    port = values["secure-port"]
    assert isinstance(port, int)
    server = make_server(Server(client), str(values["bind-address"]), port, cert, key)
    log.info("serving metrics.k8s.io on https://%s:%d", values["bind-address"], port)

    def _stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.serve_forever()
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
