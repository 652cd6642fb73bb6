"""The controller's own HTTP servers: ``/healthz`` on the healthz port (the manifest's probes)
and the validating admission webhook (``--validating-webhook``, HTTPS with the mounted
certificate) that answers AdmissionReview v1 for Ingresses as upstream does: allowed unless
nginx refuses the configuration the Ingress would make.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .._errors import KinsError
from ..api.load import to_object
from ..api.networking import Ingress

log = logging.getLogger("kins.ingress")

# (ok, message) for an Ingress the API is about to store
Validator = Callable[[Ingress], tuple[bool, str]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class TLSServer(_Server):
    """HTTPS whose TLS handshakes happen in the request threads: a client that connects and
    says nothing holds up only its own thread, not the accepting one."""

    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler], cert: str, key: str) -> None:
        super().__init__(addr, handler)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert, key)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        sock.settimeout(10)
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


def _reply(h: BaseHTTPRequestHandler, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
    h.send_response(code)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def health_server(host: str, port: int, path: str, healthy: Callable[[], bool]) -> ThreadingHTTPServer:
    """``GET path`` -> 200 ``ok`` while ``healthy()``, 500 otherwise (started by the caller)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != path:
                _reply(self, 404, b"404 page not found\n")
            elif healthy():
                _reply(self, 200, b"ok")
            else:
                _reply(self, 500, b"nginx is not running")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds: not worth a line each

    return _Server((host, port), Handler)


def review(body: Any, validate: Validator) -> dict[str, Any]:
    """The AdmissionReview answering ``body`` (an AdmissionReview v1 request)."""
    if not isinstance(body, dict) or body.get("kind") != "AdmissionReview" or not isinstance(body.get("request"), dict):
        raise ValueError("expected an AdmissionReview with a request")
    req = body["request"]
    resp: dict[str, Any] = {"uid": req.get("uid", ""), "allowed": True}
    kind = req.get("kind") or {}
    obj = req.get("object")
    if kind.get("kind") == "Ingress" and isinstance(obj, dict) and req.get("operation") in ("CREATE", "UPDATE", None):
        try:
            ing = to_object({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", **obj}, "admission request")
        except KinsError as e:
            ok, message = False, str(e)
        else:
            assert isinstance(ing, Ingress)
            ok, message = validate(ing)
        if not ok:
            resp["allowed"] = False
            resp["status"] = {"status": "Failure", "code": 400, "reason": "BadRequest", "message": message}
    return {"apiVersion": body.get("apiVersion", "admission.k8s.io/v1"), "kind": "AdmissionReview", "response": resp}


def webhook_server(host: str, port: int, cert: str, key: str, validate: Validator) -> ThreadingHTTPServer:
    """HTTPS; ``POST`` of an AdmissionReview on any path (the webhook configuration names
    ``/networking/v1/ingresses``) -> the AdmissionReview with the response."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            try:
                n = int(self.headers.get("Content-Length") or 0)
                out = review(json.loads(self.rfile.read(n)), validate)
            except ValueError as e:
                _reply(self, 400, f"{e}\n".encode())
                return
            r = out["response"]
            log.info("admission %s: allowed=%s", r["uid"], r["allowed"])
            _reply(self, 200, json.dumps(out).encode(), "application/json")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return TLSServer((host, port), Handler, cert, key)


def serve(server: ThreadingHTTPServer, name: str) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    t.start()
    return t
