"""``kins agent``: one node's agents (network and kubelet) as a process of their own.

It needs nothing but the API: the cluster's settings come from the ``kube-system/kins-cluster``
ConfigMap (as kube-proxy and flanneld read theirs from ConfigMaps), the nodes, Services,
EndpointSlices and the node's pods from watches. After each change it applied it reports to the
API server (``POST /kins/v1/agents/<node>``: the version it applied, its pid, its agents'
counters), which is how ``waitApplied`` and ``kins status`` know about it. SIGTERM stops it; the
node's kernel state and pods stay as they are (the pods in the node's runtime server), and an
agent started again takes them over: a full sync that changes nothing already right, and the
kubelet adopting the running sandboxes.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from .._errors import KinsError, NotFound
from ..api.config import ClusterConfig, cluster_from_text
from ..api.core import ConfigMap
from ..client import Client, connect
from ..heap import settle_periodically
from .node import Agents

log = logging.getLogger("kins.agent")

CONFIG_NAMESPACE = "kube-system"
CONFIG_NAME = "kins-cluster"
CONFIG_KEY = "cluster.yaml"
HEARTBEAT = 5.0  # seconds between reports when nothing changes


def fetch_config(client: Client, timeout: float) -> ClusterConfig:
    """The cluster file the API publishes, waiting (with back-off) for the API to answer."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        try:
            cm = client.get("ConfigMap", CONFIG_NAMESPACE, CONFIG_NAME)
            assert isinstance(cm, ConfigMap)
            text = (cm.data or {}).get(CONFIG_KEY)
            if text is None:
                raise KinsError(f"configmap {CONFIG_NAMESPACE}/{CONFIG_NAME} has no {CONFIG_KEY}")
            return cluster_from_text(text, f"configmap {CONFIG_NAMESPACE}/{CONFIG_NAME}")
        except KinsError:
            raise
        except Exception as e:
            if time.monotonic() + delay > deadline:
                raise KinsError(f"the API at hand does not answer: {e}") from e
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


class Reporter:
    """Tells the API server what the node's agents applied, as soon as it moves."""

    def __init__(self, agents: Agents, node: str, connect_api: Callable[[], Client]) -> None:
        self.agents = agents
        self.node = node
        self.client: Client = connect_api()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="reporter", daemon=True)

    def start(self) -> Reporter:
        self.thread.start()
        return self

    def body(self) -> dict[str, object]:
        st = self.agents.network_status()
        return {
            "node": self.node,
            "pid": os.getpid(),
            "appliedResourceVersion": st["appliedResourceVersion"],
            "lastSyncSeconds": st["nodes"].get(self.node, {}).get("lastSyncSeconds", 0.0),
            "agents": st["agents"],
            "relists": st["relists"],
        }

    def _run(self) -> None:
        sent = -1
        last = 0.0
        while not self.stop.is_set():
            self.agents.wait_applied(sent + 1, 0.5)
            body = self.body()
            applied = int(body["appliedResourceVersion"])  # type: ignore[call-overload]
            if applied == sent and time.monotonic() - last < HEARTBEAT:
                continue
            try:
                self.client.raw_post(f"/kins/v1/agents/{self.node}", body)
                sent, last = applied, time.monotonic()
            except Exception as e:  # the API is away: the next round tries again
                log.info("report not sent: %s", e)
                self.stop.wait(0.5)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.client.close()


def run(node: str, api: str, token: str, ca_file: str | None, state_dir: Path | None) -> int:
    def connect_api() -> Client:
        return connect(api, token, ca_file)

    with connect_api() as client:
        cfg = fetch_config(client, timeout=60.0)
        try:
            client.get("Node", None, node)
        except NotFound:
            raise KinsError(f'--node: nodes "{node}" not found (kins node add {node} makes one)') from None
    if state_dir is None:
        state_dir = Path(os.environ.get("KINS_STATE_DIR") or "/var/lib/kins") / cfg.name
    state_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    me = os.getpid()

    def on_signal(sig: int, _frame: FrameType | None) -> None:
        if os.getpid() != me:
            os._exit(128 + sig)  # a helper forked by a library: die as the default action would
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    agents = Agents(cfg, connect_api, state_dir, threading.Lock(), only=frozenset({node}), hosts=False).start()
    reporter = Reporter(agents, node, connect_api).start()
    settle_periodically(stop)
    log.info("agents of node %s running (pid %d) on %s", node, me, api)
    stop.wait()
    log.info("stopping")
    reporter.close()
    agents.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kins agent", description="One node's agents (network and kubelet), on the API.")
    ap.add_argument("--node", required=True)
    ap.add_argument("--api", required=True, help="https://host:port or unix:/path/to/api.sock")
    ap.add_argument("--token-file", required=True, type=Path)
    ap.add_argument("--ca-file")
    ap.add_argument("--state-dir", type=Path)
    ap.add_argument("--log-file", type=Path)
    a = ap.parse_args(argv)
    logging.basicConfig(
        filename=str(a.log_file) if a.log_file else None,
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s agent[{a.node}] %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per API request
    try:
        token = a.token_file.read_text().strip()
    except OSError as e:
        sys.stderr.write(f"error: --token-file: {e.strerror}: {a.token_file}\n")
        return 1
    try:
        return run(a.node, a.api, token, a.ca_file, a.state_dir)
    except KinsError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
