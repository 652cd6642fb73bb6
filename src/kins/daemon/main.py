"""The cluster daemon: store, controllers and the HTTP API, then the node agents on that API.

Started by ``kins up`` as ``python -m kins.daemon.main --name NAME`` in its own session. The
agents (``kins.agents``) run in-process but see the cluster only through the API's unix socket,
as ``kins agent`` processes do. Every part is restartable: the store is SQLite, the kernel state
is diffed, not rebuilt, and pod processes belong to the runtime server, which outlives the
daemon, so a SIGKILLed daemon that is started again picks everything up without disturbing
traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from msgspec.structs import replace

from .._errors import NotFound
from ..agents.node import Agents
from ..agents.process import CONFIG_KEY, CONFIG_NAME, CONFIG_NAMESPACE
from ..api.config import ClusterConfig, load_cluster
from ..api.core import ConfigMap, Service
from ..api.meta import Object, ObjectMeta
from ..apiserver import auth, kubeconfig
from ..apiserver.bootstrap import ensure_bootstrap_policy
from ..apiserver.definitions import serve_stored as serve_stored_definitions
from ..apiserver.keys import STATE_DIR_KEY
from ..apiserver.namespaces import REQUIRE_NAMESPACES
from ..apiserver.server import make_app, start
from ..apiserver.tokens import SigningKey, legacy_claims
from ..client import connect
from ..control.base import Controller, ControllerSet
from ..control.clusterroles import ClusterRoleAggregation
from ..control.defaults import default_controllers
from ..control.ipam import allocate_service, kubernetes_service
from ..control.localpath import local_path_class
from ..control.offline import SYSTEM_NAMESPACES, namespace_object, node_object
from ..control.serviceaccounts import ServiceAccountController
from ..heap import settle_periodically
from ..kernel.apply import ensure_underlay
from ..kernel.ledger import teardown
from ..runtime.cleanup import kill_cluster_processes
from ..store.base import Store
from ..store.sqlite import SqliteStore
from . import netexec
from .agentprocs import AgentProcesses
from .graceful import GracefulStore
from .state import DaemonInfo
from .webhooks import Webhooks

log = logging.getLogger("kins.daemon")


def bootstrap(store: Store, cfg: ClusterConfig, cluster_text: str | None = None) -> None:
    """Objects every cluster has: its Nodes (from the cluster file, first start only), the system
    namespaces, ``default/kubernetes``, the default StorageClass ``local-path`` (first start
    only: a user may delete or change it) and the cluster file for the node agents
    (``kube-system/kins-cluster``)."""
    with store.transaction():
        if not store.list("Node")[0]:
            for n in cfg.nodes:
                store.create(node_object(n))
            if not store.list("StorageClass")[0]:
                store.create(local_path_class())
        have = {o.name for o in store.list("Namespace")[0]}
        for ns in SYSTEM_NAMESPACES:
            if ns not in have:
                store.create(namespace_object(ns))
        if not any(s.name == "kubernetes" for s in store.list("Service", "default")[0]):
            store.create(allocate_service(store, cfg, kubernetes_service()))
        if cluster_text is not None:
            _publish_config(store, cluster_text)


def _publish_config(store: Store, text: str) -> None:
    meta = ObjectMeta(name=CONFIG_NAME, namespace=CONFIG_NAMESPACE)
    want = ConfigMap(metadata=meta, data={CONFIG_KEY: text})
    try:
        have = store.get("ConfigMap", CONFIG_NAMESPACE, CONFIG_NAME)
    except NotFound:
        store.create(want)
        return
    if isinstance(have, ConfigMap) and have.data != want.data:
        store.update(replace(have, data=want.data), check_rv=False)


def admission(store: Store, cfg: ClusterConfig) -> Callable[[Object, Object | None], Object]:
    """What the API server does before a write: Services get their ClusterIP and node ports (or
    are refused, naming the holder), then the validating admission webhooks that match are
    called. It writes nothing itself (dry runs go through it too)."""

    hooks = Webhooks(store, cfg)

    def admit(obj: Object, old: Object | None) -> Object:
        if isinstance(obj, Service):
            if isinstance(old, Service):
                _keep_allocation(obj, old)
            obj = allocate_service(store, cfg, obj)
        hooks.admit(obj, old)  # validating webhooks see the object as it will be stored
        return obj

    return admit


def _keep_allocation(new: Service, old: Service) -> None:
    """An update that leaves the ClusterIP or node ports out keeps the ones already held, as the
    API server does; the allocator then checks (and refuses) only what actually changed."""
    if not new.spec.clusterIP and old.spec.clusterIP:
        new.spec.clusterIP = old.spec.clusterIP
        new.spec.clusterIPs = old.spec.clusterIPs
    olds = {(p.port, p.protocol): p.nodePort for p in old.spec.ports or []}
    for p in new.spec.ports or []:
        if p.nodePort is None and olds.get((p.port, p.protocol)) and new.spec.type in ("NodePort", "LoadBalancer"):
            p.nodePort = olds[(p.port, p.protocol)]
    if new.spec.healthCheckNodePort is None and old.spec.healthCheckNodePort:
        new.spec.healthCheckNodePort = old.spec.healthCheckNodePort


class Daemon:
    def __init__(self, name: str, state_dir: Path) -> None:
        self.name = name
        self.state_dir = state_dir
        self.cfg = load_cluster(state_dir / "cluster.yaml")
        self.raw = SqliteStore(state_dir / "store.db")
        # The kinds the stored CustomResourceDefinitions define, before anything reads the store.
        serve_stored_definitions(self.raw)
        self.store = GracefulStore(self.raw)
        self.stop = threading.Event()
        self.kernel_lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.agents: Agents | None = None
        self.agent_procs: AgentProcesses | None = None
        self.teardown_on_exit = False
        self.signing_key = SigningKey.generate()  # replaced by the cluster's own in start_parts

    # --- parts --------------------------------------------------------------------------------

    def _controllers(self) -> None:
        ctrls = default_controllers(
            self.store, self.cfg, random.Random(), kubelet=False, volumes_dir=self.state_dir / "volumes"
        )
        ctrls += self._identity_controllers()
        cs = ControllerSet(ctrls)
        with self.raw.watch(cs.kinds, self.raw.resource_version) as w:
            cs.start(self.raw)
            while not self.stop.is_set():
                try:
                    while cs.pending:
                        cs.run_round(w.drain, self.raw)
                except Exception:
                    log.exception("controller round failed")
                    time.sleep(0.2)
                ev = w.next(timeout=0.5)
                if ev is not None:
                    cs.feed([ev, *w.drain()])

    def _identity_controllers(self) -> list[Controller]:
        """kube-controller-manager's ServiceAccount, root CA and token controllers and the
        ClusterRole aggregation controller, signing with the API's key."""
        key = self.signing_key

        def sign(ns: str, secret: str, sa: str, uid: str) -> str:
            return key.sign(legacy_claims(ns, secret, sa, uid))

        ca_pem = (self.state_dir / auth.CERT_FILE).read_bytes()
        return [ServiceAccountController(self.store, ca_pem, sign), ClusterRoleAggregation(self.store)]

    def _thread(self, name: str, fn: Callable[[], None]) -> None:
        def run() -> None:
            try:
                fn()
            except Exception:
                log.exception("%s stopped", name)

        t = threading.Thread(target=run, name=name, daemon=True)
        t.start()
        self.threads.append(t)

    def start_parts(self) -> None:
        bootstrap(self.raw, self.cfg, (self.state_dir / "cluster.yaml").read_text())
        # Before the controllers and the API, which both sign and read with them.
        auth.ensure_tls(self.state_dir)
        self.signing_key = SigningKey.ensure(self.state_dir)
        ensure_bootstrap_policy(self.raw)
        self._thread("controllers", self._controllers)
        settle_periodically(self.stop)

    def start_agents(self, api: str, token: str) -> None:
        """The node agents, on the API like any other client: every node's in this process, or
        (``agents.mode: process``) the outside hosts' here and one ``kins agent`` process per
        node for the rest (its network agents and its kubelet)."""
        separate = self.cfg.agents_mode == "process"
        with self.kernel_lock:
            ensure_underlay(self.name, self.state_dir)  # before agents that plug into it side by side
        self.agents = Agents(
            self.cfg,
            lambda: connect(api, token),
            self.state_dir,
            self.kernel_lock,
            network=not separate,
            kubelet=not separate,
        ).start()
        if separate:
            self.agent_procs = AgentProcesses(
                self.name, self.raw, self.state_dir, api, auth.token_path(self.state_dir)
            ).start()

    def stop_agents(self) -> None:
        if self.agent_procs is not None:
            self.agent_procs.stop()
            self.agent_procs = None
        if self.agents is not None:
            self.agents.stop(teardown=self.teardown_on_exit)
            self.agents = None

    def wait_applied(self, rv: int, timeout: float) -> bool:
        procs, agents = self.agent_procs, self.agents
        if procs is not None:
            return procs.wait_applied(rv, timeout)
        return agents is not None and agents.wait_applied(rv, timeout)

    def network_status(self) -> dict[str, Any]:
        if self.agent_procs is not None:
            return self.agent_procs.status()
        if self.agents is None:  # still starting
            return {"syncs": 0, "appliedResourceVersion": 0, "nodes": {}}
        return self.agents.network_status()

    async def serve(self) -> None:
        token = auth.ensure_token(self.state_dir)
        cert, key = auth.ensure_tls(self.state_dir)
        app = make_app(
            self.store, self.cfg, token=token, admission=admission(self.raw, self.cfg), signing_key=self.signing_key
        )
        app[REQUIRE_NAMESPACES] = True  # the system namespaces exist: others must be created first
        app["kins.daemon"] = self
        app[STATE_DIR_KEY] = self.state_dir
        app.router.add_get("/kins/v1/status", self._status)
        app.router.add_post("/kins/v1/agents/{node}", self._agent_report)
        netexec.add_routes(app, self.name, self.cfg)
        runner, port = await start(app, "127.0.0.1", 0, ssl_context=auth.server_ssl_context(cert, key))
        sock = self.state_dir / "api.sock"
        sock.unlink(missing_ok=True)
        site = web.UnixSite(runner, str(sock))
        await site.start()
        os.chmod(sock, 0o600)
        loop = asyncio.get_running_loop()
        # The agents start beside the rest of start-up: the cluster counts as running (and
        # takes objects) at once, and the kubelet finds the pods through its watch.
        agents_started = loop.run_in_executor(None, self.start_agents, f"unix:{sock}", token)
        # Before daemon.json: once a cluster counts as running, its kubeconfig is there.
        kubeconfig.write_kubeconfig(self.state_dir, self.name, f"https://127.0.0.1:{port}")
        DaemonInfo(
            name=self.name,
            pid=os.getpid(),
            url=f"https://127.0.0.1:{port}",
            socket=str(sock),
            ca_file=str(cert),
            state_dir=str(self.state_dir),
            started=time.time(),
        ).write()
        done = asyncio.Event()
        # Not loop.add_signal_handler: it routes signals through a wakeup socket that processes
        # forked by libraries (pyroute2's namespace helpers) inherit, so the SIGTERM those
        # helpers get when they are closed would reach this loop as if the daemon got it.
        me = os.getpid()

        def on_signal(sig: int, _frame: object) -> None:
            if os.getpid() != me:
                os._exit(128 + sig)  # a forked helper: die as the default action would
            loop.call_soon_threadsafe(self._signalled, sig, done)

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)
        await done.wait()
        await agents_started
        self.teardown_on_exit = (self.state_dir / "teardown").exists()
        # The agents go while the API still answers: the kubelet's last events reach it.
        await loop.run_in_executor(None, self.stop_agents)
        await runner.cleanup()

    def _signalled(self, sig: int, done: asyncio.Event) -> None:
        log.info("%s received: stopping", signal.Signals(sig).name)
        done.set()

    async def _status(self, request: web.Request) -> web.Response:
        # ?waitApplied=RV[&timeoutSeconds=S]: answer once every node applied resourceVersion RV
        # (or the timeout passed), so a client measures rule programming without polling.
        want = request.query.get("waitApplied")
        if want is not None and want.isdigit():
            timeout = float(request.query.get("timeoutSeconds", "10"))
            await asyncio.get_running_loop().run_in_executor(None, self.wait_applied, int(want), min(timeout, 60.0))
        agents = self.agents
        body = {
            "name": self.name,
            "resourceVersion": self.raw.resource_version,
            "network": self.network_status(),
            "kubelet": agents.kubelet.status() if agents is not None and agents.kubelet is not None else {},
        }
        return web.json_response(body)

    async def _agent_report(self, request: web.Request) -> web.Response:
        """A node agent process says what it applied (its heartbeat, too)."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            msg = {"kind": "Status", "status": "Failure", "reason": "BadRequest", "code": 400}
            return web.json_response({**msg, "message": "the report must be a JSON object"}, status=400)
        if self.agent_procs is not None:
            self.agent_procs.report(request.match_info["node"], body)
        return web.json_response({"kind": "Status", "status": "Success"})

    def shutdown(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)
        self.stop_agents()  # their sockets pin namespaces: closed before teardown
        if self.teardown_on_exit:
            # Anything still running in the cluster's namespaces (a process that left its
            # container's session) goes before the namespaces do: afterwards it could no longer
            # be told apart from the host's own processes.
            kill_cluster_processes(self.state_dir, self.name)
            with self.kernel_lock:
                teardown(self.name, self.state_dir)
        self.raw.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kins-daemon")
    ap.add_argument("--name", required=True)
    ap.add_argument("--state-dir", required=True, type=Path)
    a = ap.parse_args(argv)
    logging.basicConfig(
        filename=str(a.state_dir / "daemon.log"),
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per API request
    d = Daemon(a.name, a.state_dir)
    try:
        d.start_parts()
        asyncio.run(d.serve())
    except Exception:
        log.exception("daemon failed")
        (a.state_dir / "daemon.failed").write_text(repr(sys.exc_info()[1]) + "\n")
        d.teardown_on_exit = (a.state_dir / "teardown").exists()
        d.shutdown()
        return 1
    d.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
