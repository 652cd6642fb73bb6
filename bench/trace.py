"""Packet traces per second: the article's cluster, and a cluster with 10,000 Services.

    python bench/trace.py [--seconds 2] [--baseline DIR] [--cpu]

Rules are parsed and indexed once per node (as ``kins trace`` does); every trace then walks
the full path (pods, bridges, VXLAN, both nodes' iptables, every load-balancing branch and
the reply). Four figures per cluster, side by side: the same few tuples over and over (what
the flow cache is best at), DISTINCT (source, destination, port, source port) tuples with the
cache on (each one new: no two traces share a 5-tuple), every cache off (the flow cache, and
on older trees the memoised rule walks, emptied before each trace: the cold path), and the
cold path with each trace turned into its JSON document (a trace writes its steps' text only
when it is read, so this is what ``kins trace -o json`` costs, less the printing).
``--baseline DIR`` runs the same measurement against the sources in DIR (say an export of an
older commit: ``git archive HEAD~3 src | tar -x -C DIR``) and prints both, side by side.
``--cpu`` counts the process's CPU time instead of the wall clock (for a machine busy with
other work, whose run queue the wall clock would measure too).
The 10k case renders the Services and EndpointSlices of ``gen_dump.make_objects`` straight into
node plans and traces from node1 to Service addresses spread over the set.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_dump import make_objects

from kins.api.config import default_cluster
from kins.api.core import Service
from kins.api.discovery import EndpointSlice
from kins.api.load import load_documents
from kins.offline import open_offline
from kins.render.cluster import render_node
from kins.sim.endpoint import Endpoint, resolve_endpoint
from kins.sim.format import trace_to_json
from kins.sim.packet import Trace
from kins.sim.trace import trace, view_of
from kins.sim.view import ClusterView

ROOT = Path(__file__).resolve().parent.parent
SRC = Endpoint("host", "client", "192.168.0.100")


# time.perf_counter, or with --cpu time.process_time: traces per CPU-second of this process,
# which a machine busy with other work disturbs much less than the wall clock
CLOCK: list[Callable[[], float]] = [time.perf_counter]
MODES = ("repeated", "distinct", "cache off", "off + json")


def rate(fn: Callable[[int, int], Trace], n_cases: int, seconds: float, view: ClusterView, mode: str) -> float:
    """Traces per second over the cases, round-robin. ``fn(i, sport)``: "repeated" keeps the
    source port, "distinct" gives every trace a source port never used before (no two traces
    share a 5-tuple), "cache off" empties every cache before every trace, "off + json" also
    turns every trace into its ``-o json`` document (every step's text written). Every mode
    starts from empty caches and one pass over the cases (the distinct mode's with a source
    port it then never uses), so no mode inherits another's work."""
    if mode == "off + json":
        walk = fn

        def fn(i: int, sport: int) -> Trace:
            t = walk(i, sport)
            trace_to_json(t)
            return t

    clear_caches(view)
    for i in range(n_cases):
        fn(i, 1023 if mode == "distinct" else 1024)
    done = 0
    sport = 1024
    clock = CLOCK[0]
    start = clock()
    while clock() - start < seconds:
        for i in range(n_cases):
            if mode in ("cache off", "off + json"):
                clear_caches(view)
            if mode != "repeated":
                sport = sport + 1 if sport < 65535 else 1024
            fn(i, sport)
        done += n_cases
    return done / (clock() - start)


def clear_caches(view: ClusterView) -> None:
    """Empty the flow caches, and the rulesets' memoised walks on trees that have them."""
    for v in (view, *view.subviews.values()):
        v.flow_cache.clear()
    for st in view.states.values():
        memo = getattr(st._rules, "_cache", None)
        if memo is not None:
            memo.clear()


ARTICLE = [
    str(ROOT / "src/kins/data/article" / f)
    for f in ("business-manager.yaml", "data-product.yaml", "ingress-nginx.yaml")
]


def article(seconds: float, mode: str) -> float:
    oc = open_offline(ARTICLE)
    view = view_of(oc.cfg, oc.store)
    pods = [resolve_endpoint(k, oc.cfg, oc.store) for k in sorted(view.pods)]
    srcs = [*pods, *(resolve_endpoint(n, oc.cfg, oc.store) for n in ("node1", "node2", "client"))]
    svcs = [resolve_endpoint(s, oc.cfg, oc.store) for s in ("default/business-manager", "default/data-product")]
    nodes = [resolve_endpoint(n, oc.cfg, oc.store) for n in ("192.168.0.21", "192.168.0.22")]
    cases: list[tuple[Endpoint, Endpoint, int | None]] = [(p, s, None) for p in srcs for s in svcs]
    cases += [(a, b, port) for a in srcs for b in pods if a != b for port in (8080, 50051, 9999)]
    cases += [(a, n, port) for a in srcs for n in nodes for port in (30799, 22)]
    return rate(lambda i, sp: trace(view, *cases[i], "tcp", sport=sp), len(cases), seconds, view, mode)


def default_route() -> Any:
    """eth0's default route, in the records of the sources that run (``--baseline`` runs older
    ones, where the simulator had records of its own)."""
    try:
        from kins.model.netstate import Route
    except ImportError:
        from kins.sim.addr import ip_int  # type: ignore[import-not-found]

        from kins.sim.state import RouteEntry  # type: ignore[attr-defined]

        return RouteEntry(0, 0, "eth0", via=ip_int("192.168.0.1"))
    return Route("default", "eth0", via="192.168.0.1")


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
    node1.routes.append(default_route())
    step = 7  # spread the traced Services over the whole KUBE-SERVICES chain
    dsts = [Endpoint("ip", s.key, s.spec.clusterIP or "", 80) for s in svcs[::step]]
    trace(view, SRC, dsts[0], None, "tcp", node_only="node1")  # parse and index the rules once
    return view, dsts


def ten_thousand(seconds: float, mode: str, view: ClusterView, dsts: list[Endpoint]) -> float:
    return rate(
        lambda i, sp: trace(view, SRC, dsts[i], None, "tcp", node_only="node1", sport=sp),
        len(dsts),
        seconds,
        view,
        mode,
    )


ROWS = ("article cluster", "10,000 Services")


def measure(seconds: float) -> dict[str, list[float]]:
    big = ten_thousand_view()
    return {
        ROWS[0]: [article(seconds, m) for m in MODES],
        ROWS[1]: [ten_thousand(seconds, m, *big) for m in MODES],
    }


def baseline(src_dir: str, seconds: float, cpu: bool) -> dict[str, list[float]]:
    """The same measurement in a fresh interpreter importing kins from ``src_dir``/src."""
    env = {**os.environ, "PYTHONPATH": str(Path(src_dir).resolve() / "src")}
    argv = [sys.executable, __file__, "--seconds", str(seconds), "--json", *(["--cpu"] if cpu else [])]
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout
    data: dict[str, list[float]] = json.loads(out)
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--baseline", metavar="DIR", help="also measure the kins sources under DIR/src")
    ap.add_argument("--cpu", action="store_true", help="count this process's CPU time, not the wall clock")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.cpu:
        CLOCK[0] = time.process_time
    if a.json:
        print(json.dumps(measure(a.seconds)))
        return
    before = baseline(a.baseline, a.seconds, a.cpu) if a.baseline else None
    now = measure(a.seconds)
    if before is None:
        print(f"{'traces/s':<18}" + "".join(f"{m:>14}" for m in MODES))
        for row in ROWS:
            print(f"{row:<18}" + "".join(f"{v:14.0f}" for v in now[row]))
        return
    print(f"{'traces/s':<18}" + "".join(f"{m + ' before':>18}{m + ' after':>18}" for m in MODES))
    for row in ROWS:
        print(f"{row:<18}" + "".join(f"{b:18.0f}{n:18.0f}" for b, n in zip(before[row], now[row], strict=True)))


if __name__ == "__main__":
    main()
