"""Node leases (underlay address, pod subnet) and the pods of Nodes that are gone."""

from __future__ import annotations

import random

from kins.api.config import ClusterConfig, NodeConfig, default_cluster, parse_cluster
from kins.api.core import Event, Node, Pod
from kins.api.load import load_text
from kins.control.base import run_until_stable
from kins.control.defaults import default_controllers
from kins.control.events import EventRecorder
from kins.control.nodeipam import NodeIPAMController, leased
from kins.control.offline import build_offline_state, node_object
from kins.control.scheduler import fits
from kins.render.cluster import nodes_config
from kins.store.memory import MemoryStore


class Env:
    """The node IPAM controller over a MemoryStore holding the cluster file's Nodes."""

    def __init__(self, cfg: ClusterConfig) -> None:
        self.cfg = cfg
        self.store = MemoryStore()
        self.events = EventRecorder(self.store)
        self.ctrl = NodeIPAMController(self.store, cfg, self.events)
        for n in cfg.nodes:
            self.store.create(node_object(n))

    def join(self, name: str, ip: str | None = None, cidr: str | None = None) -> Node:
        self.store.create(node_object(NodeConfig(name=name, ip=ip, podCIDR=cidr)))
        self.settle()
        return self.node(name)

    def settle(self) -> None:
        run_until_stable(self.store, [self.ctrl])
        self.events.flush()

    def node(self, name: str) -> Node:
        n = self.store.get("Node", None, name)
        assert isinstance(n, Node)
        return n

    def warnings(self, name: str) -> list[tuple[str | None, str | None]]:
        evs = [e for e in self.store.list("Event")[0] if isinstance(e, Event) and e.involvedObject.name == name]
        return [(e.reason, e.message) for e in evs if e.type == "Warning"]


def test_a_node_without_values_gets_what_the_cluster_file_would_give_it() -> None:
    env = Env(default_cluster())
    n = env.join("node3")
    assert (n.internal_ip, n.spec.podCIDR, n.spec.podCIDRs) == ("192.168.0.23", "172.30.1.0/24", ["172.30.1.0/24"])
    assert n.status is not None and [a.type for a in n.status.addresses or []] == ["InternalIP", "Hostname"]
    # The same choice as a cluster file listing the live nodes plus the new one.
    data = {
        "nodes": [{"name": m.name, "ip": m.ip, "podCIDR": m.podCIDR} for m in default_cluster().nodes]
        + [{"name": "node3"}],
        "hosts": [{"name": h.name, "ip": h.ip} for h in default_cluster().hosts],
    }
    ref = parse_cluster(data).node("node3")
    assert (ref.ip, ref.podCIDR) == (n.internal_ip, n.spec.podCIDR)
    assert env.join("node4").internal_ip == "192.168.0.24" and env.node("node4").spec.podCIDR == "172.30.2.0/24"
    assert env.warnings("node3") == []


def test_given_values_are_kept_and_the_rest_leased() -> None:
    env = Env(default_cluster())
    n = env.join("node3", ip="192.168.0.50")
    assert (n.internal_ip, n.spec.podCIDR) == ("192.168.0.50", "172.30.1.0/24")
    n = env.join("node4", cidr="172.30.200.0/24")
    assert (n.internal_ip, n.spec.podCIDR) == ("192.168.0.23", "172.30.200.0/24")


def test_conflicting_values_are_refused_with_a_warning() -> None:
    env = Env(default_cluster())
    cases = {
        "taken": ("192.168.0.21", None, "AddressNotAvailable", "192.168.0.21 is already used by node1"),
        "host": ("192.168.0.100", None, "AddressNotAvailable", "192.168.0.100 is already used by client"),
        "far": ("10.1.1.1", None, "AddressNotAvailable", "10.1.1.1 is outside underlay.cidr 192.168.0.0/24"),
        "gw": ("192.168.0.1", None, "AddressNotAvailable", "192.168.0.1 is the underlay's gateway address"),
        "overlap": (None, "172.30.76.0/25", "CIDRNotAvailable", "172.30.76.0/25 overlaps node node1's podCIDR"),
        "outside": (None, "10.9.0.0/24", "CIDRNotAvailable", "10.9.0.0/24 is outside podNetwork.cidr 172.30.0.0/16"),
    }
    for name, (ip, cidr, reason, why) in cases.items():
        n = env.join(name, ip=ip, cidr=cidr)
        assert not leased(n), name
        ((got_reason, msg),) = env.warnings(name)
        assert got_reason == reason and msg is not None and msg.startswith(f"Node {name}: {why}"), (name, msg)
    # The older node keeps its address: node1 is not refused because of "taken".
    assert env.warnings("node1") == []


def test_exhaustion_is_refused_until_a_node_leaves() -> None:
    cfg = parse_cluster({"name": "small", "nodes": [{"name": "n1"}], "podNetwork": {"cidr": "172.30.0.0/23"}})
    env = Env(cfg)
    assert env.node("n1").spec.podCIDR == "172.30.1.0/24"
    n2 = env.join("n2")
    assert not leased(n2)
    assert env.warnings("n2") == [("CIDRNotAvailable", "Node n2: no free /24 left in podNetwork.cidr 172.30.0.0/23")]
    env.store.delete("Node", None, "n1")
    env.settle()
    assert env.node("n2").spec.podCIDR == "172.30.1.0/24"


def test_unleased_nodes_get_no_pods_and_no_network() -> None:
    (pod,) = load_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}")
    assert isinstance(pod, Pod)
    bare = node_object(NodeConfig(name="node3"))
    assert not fits(pod, bare)
    assert fits(pod, node_object(NodeConfig(name="node3", ip="192.168.0.23", podCIDR="172.30.1.0/24")))
    live = [node_object(n) for n in default_cluster().nodes] + [bare]
    assert [n.name for n in nodes_config(default_cluster(), live).nodes] == ["node1", "node2"]


# --- pods of Nodes that are gone ----------------------------------------------------------------

WORKLOADS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 6
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: web}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: c, image: agent}]}
---
apiVersion: v1
kind: Pod
metadata: {name: bare}
spec: {nodeName: node3, containers: [{name: c}]}
"""


def _placement(store: MemoryStore) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in store.list("Pod")[0]:
        assert isinstance(p, Pod)
        out.setdefault(p.spec.nodeName or "", []).append(p.name)
    return out


def test_pods_of_a_removed_node_are_evicted_and_replaced() -> None:
    cfg = default_cluster()
    cfg.nodes.append(NodeConfig(name="node3", ip="192.168.0.23", podCIDR="172.30.1.0/24"))
    store = build_offline_state(cfg, load_text(WORKLOADS))
    before = _placement(store)
    assert "bare" in before["node3"] and len(before["node3"]) == 3  # 2 web, the agent and bare
    store.delete("Node", None, "node3")
    run_until_stable(store, default_controllers(store, cfg, random.Random(0)))
    after = _placement(store)
    assert "node3" not in after
    assert sorted(len([p for p in v if p.startswith("web-")]) for v in after.values()) == [3, 3]
    assert sorted(len([p for p in v if p.startswith("agent-")]) for v in after.values()) == [1, 1]
    assert all("bare" not in v for v in after.values())  # nobody owned it: it is simply gone
