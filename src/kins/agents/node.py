"""A node's agents, put together: informer, view, reconcilers and the loop they share.

The daemon runs one ``Agents`` for every node it serves in-process; ``kins agent --node N`` runs
one for a single node as a process of its own. Either way the agents see the cluster only
through the API (``connect`` makes a client for a URL or ``unix:`` socket) and write kernel
state only through the kernel layer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..api.config import ClusterConfig
from ..client import Client
from .healthcheck import HealthChecks
from .hosts import HostServices
from .informer import Informer
from .ipmasq import IPMasq
from .kubelet import Kubelet
from .kubelet.metrics import MetricsSampler, ensure_capacity, machine_capacity, own_processes, served_nodes
from .lbspeaker import LBSpeaker
from .loop import AgentLoop, Reconciler
from .netpol import PolicyAgent
from .overlay import OverlayAgent
from .proxy import ProxyAgent, SyncStats
from .view import ClusterView

NETWORK = frozenset({"overlay", "proxy", "policy"})  # the reconcilers "rules applied" waits for


class Agents:
    """The reconcilers of the nodes in ``only`` (every node when None) on one loop.

    ``network``: the overlay, proxy, LB speaker, health check and ipmasq agents; ``kubelet``:
    the kubelet; ``hosts``: the outside hosts' agent (the daemon keeps that one; a per-node
    ``kins agent`` process runs the rest for its node)."""

    def __init__(
        self,
        cfg: ClusterConfig,
        connect: Callable[[], Client],
        state_dir: Path,
        kernel_lock: threading.Lock,
        *,
        only: frozenset[str] | None = None,
        kubelet: bool = True,
        hosts: bool = True,
        network: bool = True,
    ) -> None:
        self.cfg = cfg
        self.client = connect()
        recs: list[Reconciler] = []
        kinds_view = {"Node", "Service", "EndpointSlice"}
        if network:
            kinds_view |= PolicyAgent.kinds
        if kubelet:
            kinds_view |= Kubelet.kinds
        self.informer = Informer(connect, kinds_view)
        self.view = ClusterView(self.informer, self.client)
        self.proxy: ProxyAgent | None = None
        self.policy: PolicyAgent | None = None
        # Each syncs on a worker of its own; the kubelet's and the outside hosts' first syncs
        # wait for the overlay's (a node's namespace exists before its pods).
        if network:
            speaker = LBSpeaker(cfg, self.view, only)
            self.proxy = ProxyAgent(cfg, self.view, only)
            self.policy = PolicyAgent(cfg, self.view, only, post_log=self.client.post_policy_log)
            recs += [
                OverlayAgent(cfg, self.view, state_dir, kernel_lock, only, announce=speaker.announce),
                self.proxy,
                self.policy,
                speaker,
                HealthChecks(cfg.name, self.view, only),
                IPMasq(cfg, self.view, only),
            ]
        if hosts:
            recs.append(HostServices(cfg, state_dir, kernel_lock))
        self.loop = AgentLoop(self.informer, recs)
        self._make_kubelet = kubelet
        self._only = only
        self._state_dir = state_dir
        self._kernel_lock = kernel_lock
        self.kubelet: Kubelet | None = None
        self.metrics: MetricsSampler | None = None

    def start(self) -> Agents:
        self.informer.start()
        self.loop.start()
        if self._make_kubelet:
            # Its runtime (the pods' fork server) starts while the overlay makes the nodes.
            self.kubelet = Kubelet(self.cfg, self.view, self._state_dir, self._kernel_lock, self._only)
            self.loop.add(self.kubelet)
            kubelet = self.kubelet
            capacity = machine_capacity()
            self.metrics = MetricsSampler(
                kubelet.pods,
                kubelet.lock,
                nodes=lambda: served_nodes(self.view, self._only),
                own=own_processes(lambda: kubelet.runtime.zygote_pid),
                post=self.client.post_metrics,
                register=lambda node: ensure_capacity(self.view, node, capacity),
            ).start()
        return self

    def wait_applied(self, rv: int, timeout: float) -> bool:
        return self.loop.wait_applied(rv, timeout, NETWORK)

    def network_status(self) -> dict[str, Any]:
        st = self.proxy.stats if self.proxy is not None else SyncStats()
        applied = self.loop.applied_rv(NETWORK)
        return {
            "syncs": st.syncs,
            "appliedResourceVersion": applied,
            "lastSyncSeconds": st.last,
            "nodes": {
                n: {"appliedResourceVersion": max(s.applied_rv, applied), "lastSyncSeconds": s.last_seconds}
                for n, s in st.nodes.items()
            },
            "agents": self.loop.stats(),
            "policyLastSyncSeconds": self.policy.phases if self.policy is not None else {},
            "relists": self.informer.relists,
        }

    def stop(self, *, teardown: bool = False) -> None:
        """Stop the loop and the informer; the kubelet tears its pods down or leaves them
        running (``teardown``), the other agents release their sockets and pools."""
        self.loop.stop(close=False)
        if self.metrics is not None:
            self.metrics.close()
        for rec in self.loop.reconcilers:
            if rec is self.kubelet:
                if teardown:
                    self.kubelet.teardown()
                else:
                    self.kubelet.close()
            else:
                rec.close()
        self.informer.stop()
        self.client.close()
