"""The controller process of the ``nginx-ingress-controller`` pod.

It lists and watches Ingress, IngressClass, Service, EndpointSlice and Secret through the API,
renders nginx.conf on every relevant change (debounced), validates it with ``nginx -t`` and
reloads the nginx master it runs as a child (SIGHUP: nginx starts new workers and lets the old
ones finish their requests). A config nginx refuses is logged and the running one keeps serving.
Handled Ingresses get ``status.loadBalancer.ingress``.

    python -m kins.ingress --api URL --token-file F --dir D --ingress-class nginx \\
        --publish-service ingress-nginx/ingress-nginx
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx
from msgspec.structs import replace

from .._errors import Gone, KinsError, NotFound
from ..api.core import ConfigMap, LoadBalancerIngress, Node, Pod, Secret, Service
from ..api.discovery import EndpointSlice
from ..api.meta import Object, map_selector_matches
from ..api.networking import Ingress, IngressClass, IngressLoadBalancerStatus, IngressStatus
from ..client import Client, connect
from ..store.base import DELETED
from .certs import fake_certificate
from .model import DEFAULT_CERT_FILE, IngressConfig
from .nginxconf import CONF_FILE, Rendered, render
from .settings import configmap_settings

log = logging.getLogger("kins.ingress")

WATCHED = ("Ingress", "IngressClass", "Service", "EndpointSlice", "Secret")
NGINX = "/usr/sbin/nginx"


# --- offline --------------------------------------------------------------------------------


class _Lister(Protocol):
    """What render_for_store needs from a store: ``list(kind) -> (objects, rv)``."""

    def list(self, kind: str) -> tuple[list[Object], int]: ...


def render_for_store(store: _Lister, cfg: IngressConfig) -> Rendered:
    """The controller's rendering for the objects of a store (all namespaces)."""

    def objs(kind: str) -> list[Object]:
        return store.list(kind)[0]

    return _render_objects({k: objs(k) for k in WATCHED}, cfg)


def _render_objects(objs: dict[str, list[Object]], cfg: IngressConfig) -> Rendered:
    return render(
        [o for o in objs["Ingress"] if isinstance(o, Ingress)],
        [o for o in objs["Service"] if isinstance(o, Service)],
        [o for o in objs["EndpointSlice"] if isinstance(o, EndpointSlice)],
        [o for o in objs["Secret"] if isinstance(o, Secret)],
        cfg,
        [o for o in objs["IngressClass"] if isinstance(o, IngressClass)],
    )


# --- API access ------------------------------------------------------------------------------


class Cache:
    """The watched objects by kind and key, filled by one informer thread per kind."""

    def __init__(self, kinds: Sequence[str] = WATCHED) -> None:
        self._lock = threading.Lock()
        self._objs: dict[str, dict[str, Object]] = {k: {} for k in kinds}
        self.synced: set[str] = set()

    def replace_all(self, kind: str, objs: Sequence[Object]) -> None:
        with self._lock:
            self._objs[kind] = {o.key: o for o in objs}
            self.synced.add(kind)

    def apply(self, kind: str, etype: str, obj: Object) -> None:
        with self._lock:
            if etype == DELETED:
                self._objs[kind].pop(obj.key, None)
            else:
                self._objs[kind][obj.key] = obj

    def snapshot(self) -> dict[str, list[Object]]:
        with self._lock:
            return {k: list(v.values()) for k, v in self._objs.items() if k in WATCHED}

    def get(self, kind: str, key: str) -> Object | None:
        with self._lock:
            return self._objs[kind].get(key)


def informer(client: Client, cache: Cache, kind: str, changed: Callable[[], None], stop: threading.Event) -> None:
    """List, then watch from the list's resourceVersion; relist when the watch expires (Gone)
    or fails."""
    backoff = 0.2
    while not stop.is_set():
        try:
            items, rv = client.list_with_rv(kind, all_namespaces=True)
            cache.replace_all(kind, items)
            changed()
            backoff = 0.2
            while not stop.is_set():
                for ev in client.watch(kind, all_namespaces=True, rv=rv, timeout=30):
                    cache.apply(kind, ev.type, ev.object)
                    rv = max(rv, ev.rv)
                    changed()
                    if stop.is_set():
                        return
        except Gone:
            continue
        except (KinsError, httpx.HTTPError, OSError, ValueError) as e:
            if stop.is_set():
                return
            log.warning("watch %s: %s; retrying in %.1fs", kind, e, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, 5.0)


# --- nginx --------------------------------------------------------------------------------------


class Nginx:
    """The nginx master as a child process, with its files under ``cfg.dir``."""

    def __init__(self, cfg: IngressConfig, binary: str = NGINX, wrapper: Sequence[str] = ()) -> None:
        """``wrapper``: a command that execs nginx somewhere else (``ip netns exec NS``); it
        must exec, so that signals to the child reach the nginx master."""
        self.cfg = cfg
        self.binary = binary
        self.wrapper = list(wrapper)
        self.proc: subprocess.Popen[bytes] | None = None

    def _args(self, conf: str) -> list[str]:
        # -e: nginx opens its built-in error log before reading the config; keep it in dir too.
        return [*self.wrapper, self.binary, "-e", self.cfg.path("logs", "error.log"), "-p", self.cfg.dir, "-c", conf]

    def test(self, conf: str) -> tuple[bool, str]:
        proc = subprocess.run([*self._args(conf), "-t", "-q"], capture_output=True, text=True, check=False)
        return proc.returncode == 0, (proc.stderr + proc.stdout).strip()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.proc = subprocess.Popen(self._args(self.cfg.path(CONF_FILE)), stdin=subprocess.DEVNULL)
        log.info("nginx started (pid %d)", self.proc.pid)

    def reload(self) -> None:
        """Graceful: new workers take new connections, old ones finish what they have."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGQUIT: graceful shutdown; SIGTERM after ``timeout``, SIGKILL as a last resort."""
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGQUIT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        self.proc = None


def write_atomic(path: str, data: bytes, mode: int = 0o600) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _has_content(path: str, data: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read() == data
    except FileNotFoundError:
        return False


def prepare_dir(cfg: IngressConfig) -> None:
    """The per-pod directory layout, and the default certificate (made once, then kept)."""
    for sub in ("logs", "tmp", "certs"):
        os.makedirs(cfg.path(sub), mode=0o755, exist_ok=True)
    default = cfg.path("certs", DEFAULT_CERT_FILE)
    if not os.path.exists(default):
        write_atomic(default, fake_certificate())


# --- status --------------------------------------------------------------------------------------


def _node_ip(node: Node, internal: bool = False) -> str | None:
    addrs = node.status.addresses if node.status else None
    by_type = {a.type: a.address for a in addrs or []}
    if internal:
        return by_type.get("InternalIP") or by_type.get("ExternalIP")
    return by_type.get("ExternalIP") or by_type.get("InternalIP")


# --- the controller ----------------------------------------------------------------------------


@dataclass
class Options:
    api: str
    token: str
    cfg: IngressConfig
    publish_service: str | None = None  # namespace/name
    status_addresses: tuple[str, ...] = ()  # explicit addresses win over everything
    nginx: str = NGINX
    nginx_wrapper: tuple[str, ...] = ()  # e.g. ("ip", "netns", "exec", NS)
    ca_file: str | None = None
    debounce: float = 0.1
    update_status: bool = True
    configmap: str | None = None  # namespace/name of the controller's ConfigMap (watched)
    self_pod: str | None = None  # namespace/name of the controller's own pod
    internal_ip: bool = False  # --report-node-internal-ip-address: a node's InternalIP, not its ExternalIP
    token_file: str | None = None  # read again as it changes (a projected token is renewed)


class Controller:
    def __init__(self, opts: Options, client: Client | None = None) -> None:
        self.opts = opts
        self.cfg = opts.cfg
        self.client = client or connect(opts.api, opts.token, opts.ca_file, token_file=opts.token_file)
        # The ConfigMap is watched only when there is one: kins' own add-on has none.
        self.watched = (*WATCHED, "ConfigMap") if opts.configmap else WATCHED
        self.cache = Cache(self.watched)
        self._ignored_keys: list[str] | None = None
        self.nginx = Nginx(self.cfg, opts.nginx, opts.nginx_wrapper)
        self.stop_event = threading.Event()
        self._dirty = threading.Event()
        self._applied: tuple[str, dict[str, bytes]] | None = None
        self._failed_conf: str | None = None
        self._warned: set[str] = set()
        self._status: dict[str, list[str]] = {}  # Ingress key -> addresses written
        self.reloads = 0
        self._validate_lock = threading.Lock()
        self.is_leader: Callable[[], bool] = lambda: True  # only the leader writes statuses

    def changed(self) -> None:
        self._dirty.set()

    def config(self) -> IngressConfig:
        """The configuration the flags give, with the ConfigMap's settings as they are now."""
        if not self.opts.configmap:
            return self.cfg
        cm = self.cache.get("ConfigMap", self.opts.configmap)
        data = dict(cm.data or {}) if isinstance(cm, ConfigMap) else {}
        cfg, ignored = configmap_settings(self.cfg, data)
        if ignored != self._ignored_keys and ignored:
            log.info("configmap %s: keys kins does not act on: %s", self.opts.configmap, ", ".join(ignored))
        self._ignored_keys = ignored
        return cfg

    @property
    def healthy(self) -> bool:
        """/healthz: nginx runs a configuration built from every watched kind."""
        return self.nginx.running and self._applied is not None

    def validate(self, ing: Ingress) -> tuple[bool, str]:
        """Whether nginx accepts the configuration with ``ing`` stored (the admission webhook's
        question); an Ingress of another class is no business of this controller's."""
        objs = self.cache.snapshot()
        objs["Ingress"] = [o for o in objs["Ingress"] if o.key != ing.key] + [ing]
        rendered = _render_objects(objs, self.config())
        if ing.key not in {i.key for i in rendered.model.handled}:
            return True, ""
        for path, data in rendered.files.items():
            if not _has_content(path, data):
                write_atomic(path, data)
        with self._validate_lock:
            candidate = self.cfg.path(CONF_FILE + ".admission")
            write_atomic(candidate, rendered.conf.encode(), 0o644)
            ok, message = self.nginx.test(candidate)
        if ok:
            return True, ""
        return False, f"nginx refused the configuration of ingress {ing.key}: {message}"

    # one sync: render, validate, swap in, reload; then statuses
    def sync(self) -> bool:
        """Brings nginx in line with the cache; False when the new config was refused."""
        rendered = _render_objects(self.cache.snapshot(), self.config())
        for w in rendered.warnings:
            if w not in self._warned:
                log.warning("%s", w)
        self._warned = set(rendered.warnings)
        ok = self.apply(rendered)
        if self.opts.update_status and self.is_leader():
            self.update_status(rendered.model.handled)
        return ok

    def apply(self, rendered: Rendered) -> bool:
        state = (rendered.conf, rendered.files)
        if state == self._applied and self.nginx.running:
            return True
        if rendered.conf == self._failed_conf:
            return False
        for path, data in rendered.files.items():
            if not _has_content(path, data):
                write_atomic(path, data)
        candidate = self.cfg.path(CONF_FILE + ".new")
        write_atomic(candidate, rendered.conf.encode(), 0o644)
        ok, message = self.nginx.test(candidate)
        if not ok:
            # The running nginx still has the previous file loaded: leave it serving.
            log.error("nginx refused the new configuration, keeping the previous one: %s", message)
            self._failed_conf = rendered.conf
            return False
        self._failed_conf = None
        os.replace(candidate, self.cfg.path(CONF_FILE))
        if self.nginx.running:
            self.nginx.reload()
            self.reloads += 1
            log.info("nginx reloaded")
        else:
            self.nginx.start()
        self._applied = state
        self._prune_certs(rendered)
        return True

    def _prune_certs(self, rendered: Rendered) -> None:
        keep = {*rendered.files, self.cfg.path("certs", DEFAULT_CERT_FILE)}
        certs = self.cfg.path("certs")
        for name in os.listdir(certs):
            path = os.path.join(certs, name)
            if path not in keep and name.endswith(".pem"):
                os.unlink(path)

    def addresses(self) -> list[str]:
        """Where the Ingresses are reachable, as ingress-nginx publishes it: the given
        addresses; else the publish Service's load-balancer IPs and external IPs; else the IPs
        of the nodes running the Service's (the controller's) pods. Without a publish Service,
        the nodes of the pods labelled as this controller's own pod (``self_pod``)."""
        if self.opts.status_addresses:
            return list(self.opts.status_addresses)
        selector: dict[str, str] | None = None
        if self.opts.publish_service:
            svc = self.cache.get("Service", self.opts.publish_service)
            if not isinstance(svc, Service):
                return []
            if svc.spec.type == "ExternalName" and svc.spec.externalName:
                return [svc.spec.externalName]
            out = [*svc.lb_ips, *(svc.spec.externalIPs or [])]
            if out:
                return out
            ns, selector = svc.namespace, svc.spec.selector
        elif self.opts.self_pod:
            ns, _, name = self.opts.self_pod.partition("/")
            try:
                selector = self.client.get("Pod", ns, name).labels
            except (KinsError, httpx.HTTPError) as e:
                log.warning("status addresses: %s", e)
                return []
        if not selector:
            return []
        try:
            pods = self.client.list("Pod", ns)
            nodes = {n.name: n for n in self.client.list("Node") if isinstance(n, Node)}
        except (KinsError, httpx.HTTPError) as e:
            log.warning("status addresses: %s", e)
            return []
        ips: set[str] = set()
        for pod in pods:
            if not isinstance(pod, Pod) or not map_selector_matches(selector, pod.labels):
                continue
            node = nodes.get(pod.spec.nodeName or "")
            ip = _node_ip(node, self.opts.internal_ip) if node is not None else None
            if ip and pod.status is not None and pod.status.phase == "Running":
                ips.add(ip)
        return sorted(ips)

    def update_status(self, handled: Sequence[Ingress]) -> None:
        addrs = self.addresses() if handled else []
        for ing in handled:
            current = [i.ip or i.hostname or "" for i in _lb(ing)]
            if current == addrs:
                self._status[ing.key] = addrs
                continue
            lb = [LoadBalancerIngress(ip=a) if _is_ip(a) else LoadBalancerIngress(hostname=a) for a in addrs]
            status = IngressStatus(loadBalancer=IngressLoadBalancerStatus(ingress=lb or None))
            try:
                fresh = self.client.get("Ingress", ing.namespace, ing.name)
                assert isinstance(fresh, Ingress)
                self.client.update_status(replace(fresh, status=status))
                self._status[ing.key] = addrs
                log.info("Ingress %s: status.loadBalancer.ingress = %s", ing.key, addrs)
            except NotFound:
                continue
            except (KinsError, httpx.HTTPError) as e:
                log.warning("Ingress %s: status update failed: %s", ing.key, e)

    def run(self) -> None:
        """Until stop_event: informers fill the cache; sync 100 ms after the last change."""
        prepare_dir(self.cfg)
        threads = [
            threading.Thread(
                target=informer, args=(self.client, self.cache, k, self.changed, self.stop_event), daemon=True
            )
            for k in self.watched
        ]
        for t in threads:
            t.start()
        try:
            while not self.stop_event.is_set():
                if not self._dirty.wait(0.5):
                    if self.nginx.proc is not None and not self.nginx.running:
                        log.error("nginx exited (%s); starting it again", self.nginx.proc.returncode)
                        self._applied = None
                        self._dirty.set()
                    continue
                # Debounce: a burst of events (a rollout) makes one reload.
                while True:
                    self._dirty.clear()
                    if self.stop_event.wait(self.opts.debounce) or not self._dirty.is_set():
                        break
                if self.stop_event.is_set():
                    break
                if self.cache.synced != set(self.watched):
                    continue  # never serve a config built from half the objects
                self.sync()
        finally:
            self.nginx.stop()
            self.client.close()


def _lb(ing: Ingress) -> list[LoadBalancerIngress]:
    if ing.status is None or ing.status.loadBalancer is None:
        return []
    return ing.status.loadBalancer.ingress or []


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
