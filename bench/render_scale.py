"""Scale benchmark of the offline renderer: N Services x M endpoints (with their EndpointSlices).

For each size it writes a ``kind: List`` dump as JSON and as block-style YAML (bench/gen_dump.py),
then measures, in this process, each phase separately (parse, validate, converge, kube-proxy
model, restore text) and, as a user sees it, the whole ``kins render -f DUMP --node node1 --what
iptables`` process: wall seconds and peak memory (max RSS). Targets for 10,000 x 10 on a 2-core
machine, whole process: <= 2 s from JSON, <= 3 s from YAML.

    python bench/render_scale.py [--sizes 1000 10000] [--endpoints 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_dump import write_dump

from kins.api.config import default_cluster
from kins.api.core import Service
from kins.api.discovery import EndpointSlice
from kins.api.load import load_paths
from kins.api.validation import validate_all
from kins.control.offline import build_offline_state
from kins.render.proxy.iptables import render_restore
from kins.render.proxy.model import build_proxy_model


def phases(path: Path) -> dict[str, float]:
    cfg = default_cluster()
    gc.disable()
    try:
        t0 = time.perf_counter()
        objs = load_paths([str(path)])
        t1 = time.perf_counter()
        validate_all(objs, cfg)
        t2 = time.perf_counter()
        store = build_offline_state(cfg, objs)
        t3 = time.perf_counter()
        svcs = [s for s in store.list("Service")[0] if isinstance(s, Service)]
        slices = [s for s in store.list("EndpointSlice")[0] if isinstance(s, EndpointSlice)]
        model = build_proxy_model(svcs, slices, cfg, "node1", "192.168.0.21")
        t4 = time.perf_counter()
        text = render_restore(model, cfg)
        t5 = time.perf_counter()
    finally:
        gc.enable()
    return {
        "parse": t1 - t0,
        "validate": t2 - t1,
        "converge": t3 - t2,
        "model": t4 - t3,
        "render": t5 - t4,
        "lines": float(text.count("\n")),
    }


def whole_process(path: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one ``kins render`` process."""
    kins = shutil.which("kins") or "kins"
    t = time.perf_counter()
    with open(os.devnull, "wb") as null:
        p = subprocess.Popen([kins, "render", "-f", str(path), "--node", "node1", "--what", "iptables"], stdout=null)
        _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"kins render failed on {path}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3, help="whole-process runs per case (best and median shown)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kins-bench-"))
    try:
        print(
            f"{'case':<22}{'MB':>6}{'parse':>8}{'valid':>8}{'conv':>8}{'model':>8}{'render':>8}"
            f"{'rules':>9}   whole process (best/median s, peak MiB)"
        )
        for n in a.sizes:
            jpath, ypath = write_dump(tmp / f"dump{n}", n, a.endpoints)
            for path in (jpath, ypath):
                ph = phases(path)
                runs = sorted(whole_process(path) for _ in range(a.repeat))
                best, med = runs[0], runs[len(runs) // 2]
                case = f"{n}x{a.endpoints} {path.suffix[1:]}"
                mb = path.stat().st_size / 1e6
                print(
                    f"{case:<22}{mb:>6.1f}{ph['parse']:>8.2f}{ph['validate']:>8.2f}{ph['converge']:>8.2f}"
                    f"{ph['model']:>8.2f}{ph['render']:>8.2f}{int(ph['lines']):>9}   "
                    f"{best[0]:.2f}/{med[0]:.2f} s, {max(r[1] for r in runs):.0f} MiB"
                )
        print(f"(self: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
