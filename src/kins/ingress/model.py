"""Ingress objects -> the model nginx.conf is printed from, the way ingress-nginx builds it.

Servers per host (plus the catch-all ``_``), locations per path with ingress-nginx's Prefix
normalisation, upstreams of ready pod endpoints, certificates per host. Pure: no I/O except
certificate checks (see certs.py). ``route`` answers which location nginx picks for a request,
mirroring nginx's own selection, so tests can compare it with the Ingress v1 rules and with a
real nginx.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..api.core import Secret, Service, ServicePort
from ..api.discovery import EndpointSlice
from ..api.networking import Ingress, IngressBackend, IngressClass
from .certs import CertError, check_pair

CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
SSL_REDIRECT_ANNOTATION = "nginx.ingress.kubernetes.io/ssl-redirect"
DEFAULT_SERVER = "_"
DEFAULT_CERT_FILE = "default-fake-certificate.pem"
_DEFAULT_CERT = "using the default certificate"

# Characters a path may carry into nginx.conf unquoted; anything else (quotes, "$", braces,
# spaces, ";") could change the meaning of the config, so such paths are refused.
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9/._~!&()*+,=:@%-]*$")


@dataclass(frozen=True)
class IngressConfig:
    """What the renderer needs to know about the controller and its pod."""

    dir: str = "/etc/ingress-nginx"  # every file nginx reads or writes lives below this
    ingress_class: str = "nginx"  # the value accepted in kubernetes.io/ingress.class
    controller_class: str = "k8s.io/ingress-nginx"  # matched against IngressClass.spec.controller
    watch_without_class: bool = False
    http_port: int = 80
    https_port: int = 443
    status_port: int = 10246  # 127.0.0.1 only: /healthz and /nginx_status; 0 turns it off
    ssl_redirect: bool = True  # ingress-nginx's ConfigMap default
    # The pod's processes run as root and the per-pod directory is the caller's, so workers keep
    # that user to reach it (nginx would otherwise switch to nobody).
    user: str | None = "root"
    worker_connections: int = 1024
    default_certificate: bytes | None = None  # PEM cert+key; None: the caller put it in place

    def path(self, *parts: str) -> str:
        return "/".join([self.dir.rstrip("/"), *parts])


@dataclass(frozen=True)
class Target:
    """Where a location sends requests: an upstream, or a status code nginx answers itself."""

    namespace: str = ""
    ingress: str = ""
    service: str = ""
    port: str = ""
    upstream: str | None = None
    status: int = 404  # used when upstream is None


DEFAULT_TARGET = Target(upstream=None, status=404)


@dataclass(frozen=True)
class Location:
    path: str  # the Ingress path ("/" for an empty one)
    path_type: str
    exact: bool  # nginx "location = path"
    nginx_path: str
    target: Target
    ssl_redirect: bool = False
    is_default: bool = False  # the server's own "/" fallback, replaced by a rule for "/"

    @property
    def key(self) -> tuple[bool, str]:
        return (self.exact, self.nginx_path)


@dataclass
class Server:
    host: str
    locations: dict[tuple[bool, str], Location] = field(default_factory=dict)
    cert_file: str | None = None  # None: the default certificate
    owner: str = ""  # the Ingress that created this server (namespace/name)

    @property
    def default(self) -> bool:
        return self.host == DEFAULT_SERVER

    @property
    def wildcard(self) -> bool:
        return self.host.startswith("*.")

    @property
    def server_name(self) -> str:
        """nginx's ``*.foo.com`` would also match ``a.b.foo.com``; the Ingress wildcard covers
        exactly one label, hence a regex."""
        if self.wildcard:
            return "~^[^.]+" + re.escape(self.host[1:]).replace("\\-", "-") + "$"
        return self.host

    def sorted_locations(self) -> list[Location]:
        """ingress-nginx's order: path descending (exact before prefix on a tie)."""
        return sorted(self.locations.values(), key=lambda loc: (loc.nginx_path, loc.exact), reverse=True)


@dataclass(frozen=True)
class Upstream:
    name: str
    endpoints: tuple[tuple[str, int], ...]


@dataclass
class Model:
    servers: list[Server]
    upstreams: list[Upstream]
    files: dict[str, bytes]
    warnings: list[str]
    handled: list[Ingress]  # the Ingresses of our class, in precedence order


# --- class selection ---------------------------------------------------------------------------


def is_ours(ing: Ingress, classes: Sequence[IngressClass], cfg: IngressConfig) -> bool:
    """ingress-nginx's rules: the deprecated annotation first, then ``ingressClassName`` (an
    IngressClass whose controller is ours), then the default IngressClass for class-less ones."""
    ann = (ing.metadata.annotations or {}).get(CLASS_ANNOTATION)
    if ann is not None:
        return ann == cfg.ingress_class
    by_name = {c.name: c for c in classes}
    name = ing.spec.ingressClassName
    if name:
        cls = by_name.get(name)
        if cls is None:
            # No IngressClass object: accept our own class name, so a cluster without the
            # object still works; any other name is someone else's.
            return name == cfg.ingress_class
        return cls.spec.controller == cfg.controller_class
    if cfg.watch_without_class:
        return True
    return any(
        (c.metadata.annotations or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
        and c.spec.controller == cfg.controller_class
        for c in classes
    )


def precedence(ing: Ingress) -> tuple[str, str, str]:
    """Older Ingresses win conflicts, as in ingress-nginx (then by namespace/name)."""
    return (ing.metadata.creationTimestamp or "", ing.namespace, ing.name)


# --- backends ----------------------------------------------------------------------------------


def _secret_bytes(secret: Secret, key: str) -> bytes | None:
    if secret.data and key in secret.data:
        try:
            return base64.b64decode(secret.data[key], validate=True)
        except (binascii.Error, ValueError):
            return None
    if secret.stringData and key in secret.stringData:
        return secret.stringData[key].encode()
    return None


class _Builder:
    def __init__(
        self,
        services: Iterable[Service],
        slices: Iterable[EndpointSlice],
        secrets: Iterable[Secret],
        cfg: IngressConfig,
    ) -> None:
        self.cfg = cfg
        self.services = {s.key: s for s in services}
        self.slices: dict[str, list[EndpointSlice]] = {}
        for sl in slices:
            if sl.service_name:
                self.slices.setdefault(f"{sl.namespace}/{sl.service_name}", []).append(sl)
        self.secrets = {s.key: s for s in secrets}
        self.upstreams: dict[str, Upstream] = {}
        self.files: dict[str, bytes] = {}
        self.warnings: list[str] = []

    def warn(self, ing: Ingress, message: str) -> None:
        self.warnings.append(f"Ingress {ing.key}: {message}")

    def _service_port(self, svc: Service, backend: IngressBackend) -> ServicePort | None:
        assert backend.service is not None
        port = backend.service.port
        for p in svc.spec.ports or []:
            if port is None or (port.number is not None and p.port == port.number):
                return p
            if port.name is not None and p.name == port.name:
                return p
        return None

    def target(self, ing: Ingress, backend: IngressBackend) -> Target:
        """The upstream for a backend; 503 when the Service, its port or its endpoints are
        missing (ingress-nginx answers 503 for an upstream without endpoints)."""
        if backend.service is None:
            self.warn(ing, "resource backends are not supported")
            return Target(ing.namespace, ing.name, upstream=None, status=503)
        ref = backend.service
        port_text = ""
        if ref.port is not None:
            port_text = str(ref.port.number) if ref.port.number is not None else ref.port.name or ""
        base = Target(ing.namespace, ing.name, ref.name, port_text, upstream=None, status=503)
        svc = self.services.get(f"{ing.namespace}/{ref.name}")
        if svc is None:
            self.warn(ing, f'service "{ing.namespace}/{ref.name}" does not exist')
            return base
        sp = self._service_port(svc, backend)
        if sp is None:
            self.warn(ing, f'service "{svc.key}" does not have port {port_text or "(none)"}')
            return base
        if svc.spec.type == "ExternalName":
            self.warn(ing, f'service "{svc.key}" is of type ExternalName, which is not supported')
            return base
        name = f"{svc.namespace}-{svc.name}-{port_text or sp.port}"
        if name not in self.upstreams:
            self.upstreams[name] = Upstream(name, self._endpoints(svc, sp))
        if not self.upstreams[name].endpoints:
            self.warn(ing, f'service "{svc.key}" has no ready endpoints for port {port_text or sp.port}')
            return base
        return Target(ing.namespace, ing.name, ref.name, port_text, upstream=name)

    def _endpoints(self, svc: Service, sp: ServicePort) -> tuple[tuple[str, int], ...]:
        """Ready pod IP:targetPort pairs from the Service's EndpointSlices (the slice port is
        named like the Service port, unnamed for a single unnamed port)."""
        out: set[tuple[str, int]] = set()
        for sl in self.slices.get(svc.key, []):
            if sl.addressType not in ("IPv4", "IPv6"):
                continue
            port = next((p.port for p in sl.ports or [] if (p.name or "") == (sp.name or "")), None)
            if port is None:
                continue
            for ep in sl.endpoints or []:
                if ep.conditions is not None and ep.conditions.ready is False:
                    continue
                for addr in ep.addresses:
                    out.add((addr, port))
        return tuple(sorted(out, key=lambda e: (_ip_key(e[0]), e[1])))

    def certificate(self, ing: Ingress, host: str) -> str | None:
        """The PEM file for ``host`` from this Ingress's ``tls`` section, or None (default
        certificate) when there is none or it cannot be used."""
        for tls in ing.spec.tls or []:
            if host.lower() not in [h.lower() for h in tls.hosts or []]:
                continue
            if not tls.secretName:
                self.warn(ing, f'host "{host}" is listed in the TLS section without a secretName; {_DEFAULT_CERT}')
                return None
            key = f"{ing.namespace}/{tls.secretName}"
            secret = self.secrets.get(key)
            if secret is None:
                self.warn(ing, f'secret "{key}" for host "{host}" does not exist; {_DEFAULT_CERT}')
                return None
            crt, pk = _secret_bytes(secret, "tls.crt"), _secret_bytes(secret, "tls.key")
            if not crt or not pk:
                self.warn(ing, f'secret "{key}" has no tls.crt/tls.key; {_DEFAULT_CERT}')
                return None
            try:
                info = check_pair(crt, pk)
            except CertError as e:
                self.warn(ing, f'secret "{key}" for host "{host}": {e}; {_DEFAULT_CERT}')
                return None
            if not info.covers(host):
                names = ", ".join(info.dns_names or ((info.common_name or "?"),))
                self.warn(ing, f'certificate in secret "{key}" is not valid for "{host}" ({names}); {_DEFAULT_CERT}')
                return None
            pem = crt.rstrip(b"\n") + b"\n" + pk
            digest = hashlib.sha256(pem).hexdigest()[:10]
            # Named by content: a candidate config never overwrites a file the running one uses.
            path = self.cfg.path("certs", f"{ing.namespace}-{tls.secretName}-{digest}.pem")
            self.files[path] = pem
            return path
        return None


def _ip_key(ip: str) -> tuple[int, ...]:
    if ":" in ip:
        return (6, *[int(p, 16) if p else 0 for p in ip.split(":")])
    try:
        return (4, *[int(p) for p in ip.split(".")])
    except ValueError:
        return (9,)


# --- locations ---------------------------------------------------------------------------------


def nginx_locations(path: str, path_type: str) -> list[tuple[bool, str]]:
    """The nginx locations ingress-nginx writes for one Ingress path, in the order they claim
    their keys: Exact -> ``= /p``; Prefix ``/p`` -> ``/p/`` plus its exact twin ``= /p`` (nginx's
    string prefix then matches element-wise); ``/`` and ImplementationSpecific -> plain prefix."""
    if path_type == "Exact":
        return [(True, path)]
    if path_type == "Prefix" and path != "/":
        trimmed = path.rstrip("/") or "/"
        return [(False, trimmed + "/"), (True, trimmed)]
    return [(False, path)]


def build_model(
    ingresses: Iterable[Ingress],
    services: Iterable[Service],
    slices: Iterable[EndpointSlice],
    secrets: Iterable[Secret],
    cfg: IngressConfig,
    classes: Sequence[IngressClass] = (),
) -> Model:
    b = _Builder(services, slices, secrets, cfg)
    handled = sorted((i for i in ingresses if is_ours(i, classes, cfg)), key=precedence)
    redirect_default = cfg.ssl_redirect
    servers: dict[str, Server] = {
        DEFAULT_SERVER: Server(DEFAULT_SERVER, {(False, "/"): _root(DEFAULT_TARGET, redirect_default)})
    }

    # An Ingress with a defaultBackend and no rules configures the catch-all server.
    for ing in handled:
        if ing.spec.defaultBackend is not None and not ing.spec.rules:
            servers[DEFAULT_SERVER].locations[(False, "/")] = _root(b.target(ing, ing.spec.defaultBackend), False)
            servers[DEFAULT_SERVER].owner = ing.key
            break

    twins: list[tuple[Server, Location]] = []
    for ing in handled:
        annotations = ing.metadata.annotations or {}
        redirect = annotations.get(SSL_REDIRECT_ANNOTATION, str(cfg.ssl_redirect).lower()) == "true"
        fallback = b.target(ing, ing.spec.defaultBackend) if ing.spec.defaultBackend is not None else DEFAULT_TARGET
        for rule in ing.spec.rules or []:
            host = (rule.host or DEFAULT_SERVER).lower()
            server = servers.get(host)
            if server is None:
                # The first Ingress naming a host gives its "/" fallback and its certificate.
                server = servers[host] = Server(host, {(False, "/"): _root(fallback, redirect)}, owner=ing.key)
                server.cert_file = b.certificate(ing, host)
            for p in rule.http.paths if rule.http else []:
                path = p.path or "/"
                ptype = p.pathType or "ImplementationSpecific"
                if not _SAFE_PATH.match(path):
                    b.warn(ing, f'path "{path}" has characters nginx.conf cannot carry; ignored')
                    continue
                target = b.target(ing, p.backend)
                keys = nginx_locations(path, ptype)
                (exact, npath), extra = keys[0], keys[1:]
                loc = Location(path, ptype, exact, npath, target, redirect)
                old = server.locations.get(loc.key)
                if old is not None and not old.is_default:
                    if (old.target.namespace, old.target.ingress) != (ing.namespace, ing.name):
                        b.warn(
                            ing,
                            f'path "{path}" ({ptype}) on host "{host}" is already defined by Ingress '
                            f"{old.target.namespace}/{old.target.ingress}; ignored",
                        )
                    continue
                server.locations[loc.key] = loc
                for ex, xp in extra:
                    twins.append((server, Location(path, ptype, ex, xp, target, redirect)))
    # Exact twins of Prefix paths only fill keys no real location claimed (Exact wins a tie).
    for server, loc in twins:
        server.locations.setdefault(loc.key, loc)
    for server in servers.values():
        _guard_auto_redirects(server)

    # A redirect needs a certificate of the host's own; the catch-all never redirects.
    for server in servers.values():
        if server.cert_file is None:
            for k, loc in server.locations.items():
                if loc.ssl_redirect:
                    server.locations[k] = dataclasses.replace(loc, ssl_redirect=False)

    if cfg.default_certificate is not None:
        b.files[cfg.path("certs", DEFAULT_CERT_FILE)] = cfg.default_certificate
    hosts = sorted(h for h in servers if h != DEFAULT_SERVER)
    ordered = [servers[DEFAULT_SERVER], *(servers[h] for h in hosts)]
    used = {loc.target.upstream for s in ordered for loc in s.locations.values() if loc.target.upstream}
    upstreams = [u for name, u in sorted(b.upstreams.items()) if name in used]
    return Model(ordered, upstreams, b.files, b.warnings, handled)


def _guard_auto_redirects(server: Server) -> None:
    """nginx answers ``/foo`` with a 301 to ``/foo/`` when a proxying location is ``/foo/``
    (exact or prefix) and nothing is ``= /foo``. The Ingress rules want ``/foo`` routed like any
    other path, so such paths get an exact location with what the other locations pick."""
    for loc in list(server.locations.values()):
        if loc.nginx_path == "/" or not loc.nginx_path.endswith("/"):
            continue
        bare = loc.nginx_path.rstrip("/")
        if (True, bare) in server.locations:
            continue
        chosen = pick_location(server, bare)
        if chosen is not None:
            server.locations[(True, bare)] = dataclasses.replace(chosen, exact=True, nginx_path=bare)


def _root(target: Target, redirect: bool) -> Location:
    return Location("/", "Prefix", False, "/", target, redirect, is_default=True)


# --- request routing, as nginx does it -------------------------------------------------------


def pick_server(model: Model, host: str) -> Server:
    """nginx's server selection: exact name, then regex names in order, then the default."""
    host = host.lower().split(":", 1)[0].rstrip(".")
    for s in model.servers:
        if not s.default and not s.wildcard and s.host == host:
            return s
    for s in model.servers:
        if s.wildcard and re.match(s.server_name[1:], host):
            return s
    return model.servers[0]


def pick_location(server: Server, uri: str) -> Location | None:
    """nginx's location selection among exact and (non-regex) prefix locations: an exact match,
    otherwise the longest matching prefix. ``uri`` is normalised as nginx does (merged slashes)."""
    uri = re.sub("/+", "/", uri.split("?", 1)[0])
    best: Location | None = None
    for loc in server.locations.values():
        if loc.exact:
            if uri == loc.nginx_path:
                return loc
        elif uri.startswith(loc.nginx_path) and (best is None or len(loc.nginx_path) > len(best.nginx_path)):
            best = loc
    return best


def route(model: Model, host: str, uri: str) -> Location | None:
    return pick_location(pick_server(model, host), uri)


def spec_matches(path_type: str, path: str, uri: str) -> bool:
    """The Ingress v1 definition, independent of nginx: Exact compares strings; Prefix compares
    ``/``-separated elements (empty ones dropped)."""
    if path_type == "Exact":
        return uri == path
    want = [e for e in path.split("/") if e]
    have = [e for e in uri.split("/") if e]
    return have[: len(want)] == want
