"""``python -m kins.ingress``: the controller process, started with kins' flags (the article's
add-on: ``--dir /etc/nginx --class nginx``) or ingress-nginx's upstream ones (its install
manifest: ``--election-id``, ``--configmap``, ``--validating-webhook``...)."""

from __future__ import annotations

import base64
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace

import httpx

from .._errors import KinsError, NotFound
from ..api.core import Secret
from ..apps.flags import FlagError
from ..client import Client, connect
from .controller import NGINX, Controller, Options, prepare_dir
from .leader import LeaderElector
from .model import IngressConfig
from .options import Flags, parse, split_listen, split_ref
from .servers import health_server, serve, webhook_server
from .workdir import private_dir

log = logging.getLogger("kins.ingress")


def _default_certificate(client: Client, ref: str) -> bytes | None:
    ns, name = split_ref(ref, "default-ssl-certificate")
    try:
        sec = client.get("Secret", ns, name)
    except NotFound:
        log.warning("default SSL certificate %s not found: using the fake certificate", ref)
        return None
    data = (sec.data or {}) if isinstance(sec, Secret) else {}
    if "tls.crt" not in data or "tls.key" not in data:
        log.warning("secret %s has no tls.crt and tls.key: using the fake certificate", ref)
        return None
    return base64.b64decode(data["tls.crt"]).rstrip(b"\n") + b"\n" + base64.b64decode(data["tls.key"])


def build(flags: Flags, client: Client, token: str) -> Controller:
    """The controller the flags describe (its work directory made ready)."""
    workdir = flags.text("dir") or private_dir()
    cfg = IngressConfig(
        dir=os.path.abspath(workdir),
        ingress_class=flags.text("ingress-class"),
        controller_class=flags.text("controller-class"),
        watch_without_class=flags.flag("watch-ingress-without-class"),
        http_port=flags.number("http-port"),
        https_port=flags.number("https-port"),
    )
    if flags.text("configmap"):
        split_ref(flags.text("configmap"), "configmap")
    if flags.text("default-ssl-certificate"):
        cfg = replace(cfg, default_certificate=_default_certificate(client, flags.text("default-ssl-certificate")))
    publish = flags.text("publish-service")
    if publish:
        split_ref(publish, "publish-service")
    opts = Options(
        api=flags.text("api"),
        token=token,
        cfg=cfg,
        publish_service=publish or None,
        status_addresses=tuple(a for a in flags.text("publish-status-address").split(",") if a),
        nginx=flags.text("nginx") or NGINX,
        ca_file=flags.text("ca-file") or None,
        token_file=flags.text("token-file"),
        update_status=flags.flag("update-status"),
        configmap=flags.text("configmap") or None,
        internal_ip=flags.flag("report-node-internal-ip-address"),
        self_pod=f"{os.environ['POD_NAMESPACE']}/{os.environ['POD_NAME']}"
        if os.environ.get("POD_NAMESPACE") and os.environ.get("POD_NAME")
        else None,
    )
    return Controller(opts, client)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    try:
        flags = parse(sys.argv[1:] if argv is None else argv)
        if flags.text("validating-webhook"):
            split_listen(flags.text("validating-webhook"), "validating-webhook")
            if not flags.text("validating-webhook-certificate") or not flags.text("validating-webhook-key"):
                raise FlagError(
                    "--validating-webhook needs --validating-webhook-certificate and --validating-webhook-key"
                )
    except FlagError as e:
        sys.stderr.write(f"nginx-ingress-controller: {e}\n")
        return 2
    if flags.ignored:
        log.info("flags kins' controller accepts but does not act on: %s", ", ".join(f"--{n}" for n in flags.ignored))
    with open(flags.text("token-file")) as f:
        token = f.read().strip()
    # The token file is read again as it changes (a projected token is renewed).
    client = connect(flags.text("api"), token, flags.text("ca-file") or None, token_file=flags.text("token-file"))
    try:
        ctl = build(flags, client, token)
    except (FlagError, KinsError, httpx.HTTPError, OSError) as e:
        sys.stderr.write(f"nginx-ingress-controller: {e}\n")
        return 1
    prepare_dir(ctl.cfg)
    servers = []
    if flags.number("healthz-port"):
        host = flags.text("healthz-host") or "0.0.0.0"

        def healthy() -> bool:
            return ctl.healthy

        servers.append(health_server(host, flags.number("healthz-port"), flags.text("health-check-path"), healthy))
    if flags.text("validating-webhook"):
        host, port = split_listen(flags.text("validating-webhook"), "validating-webhook")
        cert, key = flags.text("validating-webhook-certificate"), flags.text("validating-webhook-key")
        servers.append(webhook_server(host, port, cert, key, ctl.validate))
        log.info("validating webhook listening on %s:%d", host, port)
    for s in servers:
        serve(s, "http")
    if "election-id" in flags.given and not flags.flag("disable-leader-election"):
        ns = os.environ.get("POD_NAMESPACE") or "default"
        identity = os.environ.get("POD_NAME") or socket.gethostname()
        elector = LeaderElector(client, ns, flags.text("election-id"), identity)
        ctl.is_leader = elector.leading.is_set
        threading.Thread(target=elector.run, args=(ctl.stop_event,), name="leader", daemon=True).start()

    def _stop(signum: int, frame: object) -> None:
        ctl.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    started = time.monotonic()
    try:
        ctl.run()
    finally:
        for s in servers:
            s.shutdown()
    log.info("stopped after %.0fs, %d reloads", time.monotonic() - started, ctl.reloads)
    return 0
