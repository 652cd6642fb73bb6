"""Packet traces per second: the article's cluster, and a cluster with 10,000 Services.

    python bench/trace.py [--seconds 2]

Rules are parsed and indexed once per node (as ``kins trace`` does); every trace then walks
the full path (pods, bridges, VXLAN, both nodes' iptables, every load-balancing branch and
the reply). The 10k case renders the Services and EndpointSlices of ``gen_dump.make_objects``
straight into node plans and traces from node1 to Service addresses spread over the set.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_dump import make_objects

from kins.api.config import default_cluster
from kins.api.core import Service
from kins.api.discovery import EndpointSlice
from kins.api.load import load_documents
from kins.offline import open_offline
from kins.render.cluster import render_node
from kins.sim.addr import ip_int
from kins.sim.endpoint import Endpoint, resolve_endpoint
from kins.sim.state import RouteEntry
from kins.sim.trace import trace, view_of
from kins.sim.view import ClusterView

ROOT = Path(__file__).resolve().parent.parent
SRC = Endpoint("host", "client", "192.168.0.100")


def rate(fn: Callable[[int], object], n_cases: int, seconds: float, view: ClusterView, cold: bool) -> float:
    """Traces per second over the cases, round-robin. ``cold`` empties the flow cache before
    every trace, so each one walks every hook (parsed rules stay cached per node)."""
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i in range(n_cases):
            if cold:
                view.flow_cache.clear()
            fn(i)
        done += n_cases
    return done / (time.perf_counter() - start)


def article(seconds: float, cold: bool) -> float:
    oc = open_offline([str(ROOT / "examples/article")])
    view = view_of(oc.cfg, oc.store)
    pods = [resolve_endpoint(k, oc.cfg, oc.store) for k in sorted(view.pods)]
    svcs = [resolve_endpoint(s, oc.cfg, oc.store) for s in ("default/business-manager", "default/data-product")]
    cases: list[tuple[Endpoint, Endpoint, int | None]] = [(p, s, None) for p in pods for s in svcs]
    cases += [(a, b, 8080) for a in pods for b in pods if a != b]
    for i in range(len(cases)):  # warm the per-node rule caches once
        trace(view, *cases[i], "tcp")
    return rate(lambda i: trace(view, *cases[i], "tcp"), len(cases), seconds, view, cold)


def ten_thousand_view() -> tuple[ClusterView, list[Endpoint]]:
    cfg = default_cluster()
    objs = load_documents(make_objects(10000, 10), "gen_dump")
    svcs = [o for o in objs if isinstance(o, Service)]
    slices = [o for o in objs if isinstance(o, EndpointSlice)]
    plans = {n.name: render_node(cfg, n.name, [], svcs, slices) for n in cfg.nodes}
    view = ClusterView.from_plans(plans, cfg)
    # A real node has an uplink: with a default route the DNATed packets (their endpoints are
    # outside the pod subnets) go on through FORWARD and POSTROUTING instead of stopping.
    node1 = view.nodes["node1"]
    node1.routes.append(RouteEntry(0, 0, "eth0", via=ip_int("192.168.0.1")))
    step = 97  # spread the traced Services over the whole KUBE-SERVICES chain
    dsts = [Endpoint("ip", s.key, s.spec.clusterIP or "", 80) for s in svcs[::step]]
    trace(view, SRC, dsts[0], None, "tcp", node_only="node1")  # parse and index the rules once
    return view, dsts


def ten_thousand(seconds: float, cold: bool, view: ClusterView, dsts: list[Endpoint]) -> float:
    sub = view.only("node1")
    return rate(lambda i: trace(view, SRC, dsts[i], None, "tcp", node_only="node1"), len(dsts), seconds, sub, cold)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    big = ten_thousand_view()
    for cold in (False, True):
        how = "flow cache off" if cold else "flow cache on "
        print(f"article cluster ({how}): {article(a.seconds, cold):10.0f} traces/s")
        print(f"10,000 Services ({how}): {ten_thousand(a.seconds, cold, *big):10.0f} traces/s")


if __name__ == "__main__":
    main()
