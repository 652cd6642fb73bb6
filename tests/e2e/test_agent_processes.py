"""Root test: node agents as separate ``kins agent`` processes (``agents.mode: process``).

A node's agents (network and kubelet) only talk to the API; one killed with SIGKILL under
traffic is started again by the daemon, takes its node's kernel state and pods over without
disturbing them, and follows the next change. Nothing is lost: traffic, objects, rules, pods.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from e2e_helpers import Cluster, cluster_namespaces, dead, pods, poll, running_cluster, snapshot, traffic_to

from kins.api.core import Service
from kins.daemon.state import DaemonInfo
from kins.runtime import load_sandbox

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    text = resources.files("kins").joinpath("data/default-cluster.yaml").read_text()
    path = tmp_path_factory.mktemp("agents") / "cluster.yaml"
    path.write_text(text + "agents: {mode: process}\n")
    with running_cluster(cluster_file=str(path)) as c:
        yield c


def agent_pids(c: Cluster) -> dict[str, int]:
    nodes = c.status()["network"]["nodes"]
    return {n: int(v["pid"]) for n, v in nodes.items() if v.get("pid")}


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def rules(c: Cluster, node: str) -> list[str]:
    """The node's nat rules as iptables-save prints them, counters left out."""
    text = c.node_exec(node, "iptables-save", "-t", "nat").stdout
    return [re.sub(r"^\[\d+:\d+\] ", "", ln) for ln in text.splitlines() if ln.startswith(("-A", ":KUBE"))]


def test_each_node_has_its_agent_process_on_the_api(cluster: Cluster) -> None:
    pids = agent_pids(cluster)
    assert sorted(pids) == ["node1", "node2"]
    for node, pid in pids.items():
        argv = cmdline(pid)
        assert "kins.agents.process" in argv and f"--node {node}" in argv and "--api unix:" in argv
        # The agent's view is the API's: it reached the store's version through its watches.
    cluster.wait_rules_synced()
    st = cluster.status()["network"]
    for node in pids:
        agents = st["nodes"][node]["agents"]
        assert {"overlay", "proxy", "lb-speaker", "healthcheck", "ipmasq"} <= set(agents)
        assert all(a["failures"] == 0 for a in agents.values())


def test_an_agent_for_a_node_that_does_not_exist_is_refused(cluster: Cluster) -> None:
    before = cluster_namespaces(cluster.name)
    done = cluster.kins(
        "agent", "--node", "nope", "--api", f"unix:{cluster.state / 'api.sock'}",
        "--token-file", str(cluster.state / "token"), check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert 'nodes "nope" not found' in done.stderr
    assert cluster_namespaces(cluster.name) == before


def test_sigkilled_agent_restarts_and_loses_neither_traffic_nor_objects(cluster: Cluster) -> None:
    client = cluster.client
    cluster.wait_rules_synced()
    before = snapshot(client)
    pods_before = pods(client)
    svc = client.get("Service", "default", "data-product")
    assert isinstance(svc, Service) and svc.spec.clusterIP
    # From a business-manager pod; its node's rules DNAT its Service traffic, and that node's
    # agent is the one killed.
    bm = min(k for k in pods_before if k.startswith("default/business-manager"))
    node = pods_before[bm].spec.nodeName
    assert node is not None
    rules_before = rules(cluster, node)
    on_node = sorted(k for k, p in pods_before.items() if p.spec.nodeName == node)
    sandboxes = {k: load_sandbox(cluster.state, k) for k in on_node}
    # The node's pods run in its kubelet's own runtime server, which outlives the agent.
    assert (cluster.state / f"zygote-{node}.log").exists()
    with traffic_to(load_sandbox(cluster.state, bm).netns_path, (svc.spec.clusterIP, 50051)) as traffic:
        poll(lambda: traffic.answered(1), 20, "a first answer")
        old = agent_pids(cluster)[node]
        os.kill(old, signal.SIGKILL)
        poll(lambda: dead(old), 10, "the agent gone")
        killed_at = traffic.ok
        new = poll(lambda: (p := agent_pids(cluster).get(node)) != old and p, 20, "the agent started again")
        assert "kins.agents.process" in cmdline(new)
        assert cluster.status()["network"]["nodes"][node]["restarts"] == 1
        cluster.wait_rules_synced(timeout=20)
        poll(lambda: traffic.answered(killed_at + 20), 20, "answers after the restart")
    assert traffic.failures == []
    assert len(traffic.answered_by) == 3
    after = snapshot(client)
    assert {k: v for k, v in after.items() if k[0] != "Event"} == {k: v for k, v in before.items() if k[0] != "Event"}
    # The restarted agent's first (full) sync rewrote nothing that was right, and its kubelet
    # adopted the node's pods: the very same processes, no restart.
    assert rules(cluster, node) == rules_before
    for key in on_node:
        assert load_sandbox(cluster.state, key) == sandboxes[key]
        p = pods(client)[key]
        assert p.ready and p.status is not None
        assert [cs.restartCount for cs in p.status.containerStatuses or []] == [0] * len(p.spec.containers)

    # And it follows the next change: a new Service's chains appear on the node.
    cluster.apply_text(
        """
apiVersion: v1
kind: Service
metadata: {name: after-restart, namespace: default}
spec:
  selector: {app: data-product}
  ports: [{name: grpc, port: 50052, targetPort: 50051}]
"""
    )
    cluster.wait_rules_synced(timeout=20)
    assert any('"default/after-restart:grpc' in ln for ln in rules(cluster, node))


def test_a_removed_node_drains_before_its_agent_goes(cluster: Cluster) -> None:
    """`kins node add` starts the new node's agent; a pod bound there runs; `kins node remove`
    lets that agent's kubelet stop the pod before the agent and the node's namespace go."""
    cluster.kins("node", "add", "node3")
    poll(lambda: "node3" in agent_pids(cluster), 20, "node3's agent")
    cluster.apply_text(
        """
apiVersion: v1
kind: Pod
metadata: {name: on-node3, namespace: default}
spec:
  nodeName: node3
  containers:
  - name: agnhost
    image: registry.k8s.io/e2e-test-images/agnhost:2.47
    args: [netexec, --http-port=8080]
"""
    )
    cluster.wait_ready("on-node3", 1)
    agent = agent_pids(cluster)["node3"]
    cluster.kins("node", "remove", "node3")
    poll(lambda: not cluster.pods("on-node3"), 30, "the pod on node3 gone")
    poll(lambda: "node3" not in agent_pids(cluster) and dead(agent), 30, "node3's agent gone")
    poll(lambda: not [n for n in cluster_namespaces(cluster.name) if "node3" in n], 20, "node3's namespace gone")


def test_a_restarted_daemon_replaces_the_agents_of_the_one_before(cluster: Cluster) -> None:
    """The daemon is SIGKILLed (its agent processes live on, reporting to nobody); the daemon
    started again stops them and runs its own, one per node."""
    old = agent_pids(cluster)
    info = DaemonInfo.read(cluster.state)
    assert info is not None
    cluster.close()  # the client of the daemon that goes
    os.kill(info.pid, signal.SIGKILL)
    poll(lambda: dead(info.pid), 10, "the daemon gone")
    assert all(not dead(pid) for pid in old.values()), old  # agents outlive their daemon
    cluster.kins("up", "--name", cluster.name, "-q", "--timeout", "60", timeout=90)
    new = poll(lambda: (p := agent_pids(cluster)) and len(p) == 2 and p, 20, "the new daemon's agents")
    assert set(new.values()).isdisjoint(old.values()), (old, new)
    poll(lambda: all(dead(pid) for pid in old.values()), 10, "the earlier agents stopped")

    def running() -> list[int]:
        return sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and _is_agent(int(p), cluster))

    # an agent forking a tool (iptables-save, ipset) shows a child with its command line until
    # the exec: only the two agents stay
    poll(lambda: running() == sorted(new.values()), 10, f"only the new agents {new} running")
    cluster.wait_rules_synced(timeout=20)


def _is_agent(pid: int, c: Cluster) -> bool:
    try:
        argv = cmdline(pid)
    except OSError:
        return False
    return "kins.agents.process" in argv and str(c.state) in argv
