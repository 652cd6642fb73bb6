"""The nginx.conf text for a Model, in the shape ingress-nginx writes (``## start server``,
``set $namespace ...`` per location), with real ``upstream`` blocks instead of its Lua balancer:
round robin over the pod endpoints, changed by a graceful reload."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..api.core import Secret, Service
from ..api.discovery import EndpointSlice
from ..api.networking import Ingress, IngressClass
from .model import DEFAULT_CERT_FILE, IngressConfig, Location, Model, Server, Target, build_model

CONF_FILE = "nginx.conf"

_LOG_FORMAT = (
    '\'$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] '
    "$upstream_addr $upstream_response_length $upstream_response_time $upstream_status $request_id'"
)

_PROXY_HEADERS = [
    ("Host", "$best_http_host"),
    ("X-Request-ID", "$request_id"),
    ("X-Real-IP", "$remote_addr"),
    ("X-Forwarded-For", "$remote_addr"),
    ("X-Forwarded-Host", "$best_http_host"),
    ("X-Forwarded-Port", "$server_port"),
    ("X-Forwarded-Proto", "$scheme"),
    ("X-Scheme", "$scheme"),
    ("Upgrade", "$http_upgrade"),
    ("Connection", "$connection_upgrade"),
]


@dataclass(frozen=True)
class Rendered:
    conf: str
    files: dict[str, bytes]  # absolute path -> content (certificates)
    warnings: list[str]  # "Ingress ns/name: problem", one per problem found
    model: Model


def render(
    ingresses: Iterable[Ingress],
    services: Iterable[Service],
    slices: Iterable[EndpointSlice],
    secrets: Iterable[Secret],
    cfg: IngressConfig,
    classes: Sequence[IngressClass] = (),
) -> Rendered:
    model = build_model(ingresses, services, slices, secrets, cfg, classes)
    return Rendered(conf_text(model, cfg), dict(model.files), list(model.warnings), model)


def render_nginx_conf(
    ingresses: Iterable[Ingress],
    services: Iterable[Service],
    slices: Iterable[EndpointSlice],
    secrets: Iterable[Secret],
    cfg: IngressConfig,
    classes: Sequence[IngressClass] = (),
) -> tuple[str, dict[str, bytes]]:
    """nginx.conf and the files it references (path -> bytes), for the Ingresses of our class."""
    r = render(ingresses, services, slices, secrets, cfg, classes)
    return r.conf, r.files


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def conf_text(model: Model, cfg: IngressConfig) -> str:
    p = cfg.path
    out: list[str] = []
    w = out.append
    w(f"# nginx.conf for ingress class {_q(cfg.ingress_class)} (controller {cfg.controller_class})")
    w(f"# Ingresses: {', '.join(i.key for i in model.handled) or '(none)'}")
    w("")
    if cfg.user:
        w(f"user {cfg.user};")
    w("worker_processes 1;")
    w("daemon off;")
    w(f"pid {p('nginx.pid')};")
    w(f"lock_file {p('nginx.lock')};")
    w(f"error_log {p('logs', 'error.log')} notice;")
    w("worker_shutdown_timeout 240s;")
    w("")
    w("events {")
    w(f"    worker_connections {cfg.worker_connections};")
    w("    multi_accept on;")
    w("}")
    w("")
    w("http {")
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        w(f"    {kind}_temp_path {p('tmp', kind.replace('_', '-'))};")
    w("")
    w("    default_type text/html;")
    w("    server_tokens off;")
    w("    sendfile on;")
    w("    tcp_nodelay on;")
    w("    keepalive_timeout 75s;")
    w("    keepalive_requests 1000;")
    w("    server_names_hash_bucket_size 128;")
    w("    server_names_hash_max_size 1024;")
    w("    variables_hash_bucket_size 256;")
    w("    client_max_body_size 1m;")
    w("")
    w(f"    log_format upstreaminfo {_LOG_FORMAT};")
    w(f"    access_log {p('logs', 'access.log')} upstreaminfo;")
    w("")
    w("    # The Host the client asked for, port included, as ingress-nginx forwards it.")
    w("    map $http_host $best_http_host {")
    w("        default $http_host;")
    w("        ''      $host;")
    w("    }")
    w("    map $http_upgrade $connection_upgrade {")
    w("        default upgrade;")
    w("        ''      '';")
    w("    }")
    w("")
    w("    ssl_protocols TLSv1.2 TLSv1.3;")
    w("    ssl_session_cache shared:SSL:10m;")
    w("    ssl_session_timeout 10m;")
    default_cert = p("certs", DEFAULT_CERT_FILE)
    w(f"    ssl_certificate {default_cert};")
    w(f"    ssl_certificate_key {default_cert};")
    w("")
    w("    proxy_http_version 1.1;")
    w("    proxy_connect_timeout 5s;")
    w("    proxy_send_timeout 60s;")
    w("    proxy_read_timeout 60s;")
    w("    proxy_buffering on;")
    w("    proxy_redirect off;")
    w("    proxy_next_upstream error timeout;")
    w("    proxy_next_upstream_tries 3;")
    for name, value in _PROXY_HEADERS:
        w(f"    proxy_set_header {name:<17} {value};")
    for u in model.upstreams:
        w("")
        w(f"    upstream {u.name} {{")
        for ip, port in u.endpoints:
            addr = f"[{ip}]" if ":" in ip else ip
            w(f"        server {addr}:{port} max_fails=0;")
        w("        keepalive 32;")
        w("    }")
    for server in model.servers:
        w("")
        _server(w, server, cfg)
    if cfg.status_port:
        w("")
        w("    # health and status, for the pod's probes; never published")
        w("    server {")
        w(f"        listen 127.0.0.1:{cfg.status_port};")
        w("        access_log off;")
        w("        location = /healthz { return 200; }")
        w("        location = /nginx_status { stub_status; }")
        w("        location / { return 404; }")
        w("    }")
    w("}")
    return "\n".join(out) + "\n"


def _server(w: Callable[[str], None], server: Server, cfg: IngressConfig) -> None:
    w(f"    ## start server {server.host}")
    w("    server {")
    w(f"        server_name {server.server_name} ;")
    flags = " default_server" if server.default else ""
    w(f"        listen {cfg.http_port}{flags};")
    w(f"        listen {cfg.https_port} ssl{flags};")
    w('        set $proxy_upstream_name "-";')
    if server.cert_file:
        w(f"        ssl_certificate {server.cert_file};")
        w(f"        ssl_certificate_key {server.cert_file};")
    for loc in server.sorted_locations():
        w("")
        _location(w, loc, cfg)
    w("    }")
    w(f"    ## end server {server.host}")


def _location(w: Callable[[str], None], loc: Location, cfg: IngressConfig) -> None:
    t = loc.target
    w(f"        location {'= ' if loc.exact else ''}{loc.nginx_path} {{")
    w(f"            set $namespace      {_q(t.namespace)};")
    w(f"            set $ingress_name   {_q(t.ingress)};")
    w(f"            set $service_name   {_q(t.service)};")
    w(f"            set $service_port   {_q(t.port)};")
    w(f"            set $location_path  {_q(loc.path)};")
    w(f"            set $proxy_upstream_name {_q(t.upstream or _internal(t))};")
    if loc.ssl_redirect:
        port = "" if cfg.https_port == 443 else f":{cfg.https_port}"
        w(f"            if ($scheme = http) {{ return 308 https://$host{port}$request_uri; }}")
    if t.upstream:
        w(f"            proxy_pass http://{t.upstream};")
    else:
        w(f"            return {t.status};")
    w("        }")


def _internal(t: Target) -> str:
    """ingress-nginx's names for what nginx answers itself."""
    if t.service:
        return f"{t.namespace}-{t.service}-{t.port}" if t.port else f"{t.namespace}-{t.service}"
    return "upstream-default-backend"
