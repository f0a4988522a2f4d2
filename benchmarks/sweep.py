"""Sweep speed-up: a 200-run sweep on 2 local Dask workers against 1 (issue #16 target: >= 1.8x).

Scenario: ``workloads/schedulers.yaml`` over 3 simulated days (128 cards, 0.3-0.8 s a run
depending on the scheduler), four schedulers x 50 seeds = 200 runs, no store. With runs of ~0.1 s (12 h) the fixed costs (the LocalCluster's start, about 4 s
here, and each run's config validation in the client) are a third of a 1-worker sweep and the
speed-up measures them rather than the parallel runs; ``--duration 12h`` shows that case. ``wall_s`` is all of ``cluster_sim.sweep``
(validating the 200 variants, starting the ``LocalCluster``, the runs, the table and the cell
statistics); ``runs_s`` is from the first finished run to the last, the steady state without the
cluster's start-up. Each worker count runs in a fresh subprocess.

    python -m benchmarks.sweep                 # 200 runs, 1 and 2 workers, writes results/sweep.json
    python -m benchmarks.sweep --runs 20 --no-write
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, single_run, table, write_json

WORKLOAD = Path(__file__).resolve().parent.parent / "workloads" / "schedulers.yaml"
SCHEDULERS = ["fifo", "sjf", "easy", "tiresias"]


def run_one(workers: int, runs: int, duration: str = "3d") -> dict[str, Any]:
    """One measured sweep in this process."""
    import cluster_sim as cs

    seeds = max(1, runs // len(SCHEDULERS))
    marks: dict[str, float] = {}

    def progress(done: int, total: int, failed: int) -> None:
        if done == 1 and "first" not in marks:
            marks["first"] = time.perf_counter()
        marks["last"] = time.perf_counter()

    t0 = time.perf_counter()
    res = cs.sweep(WORKLOAD, {"policy.training.scheduler": SCHEDULERS}, seeds=seeds,
                   overrides={"duration": duration}, workers=workers, progress=progress)
    wall = time.perf_counter() - t0
    return {"workers": workers, "runs": len(res.runs), "failed": res.failed, "wall_s": wall,
            "runs_s": marks["last"] - marks["first"], "sim_s": float(res.runs["sim.wall_s"].sum())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200, help="runs per sweep (default 200)")
    ap.add_argument("--duration", default="3d", help="simulated time per run (default 3d)")
    ap.add_argument("--single", type=int, metavar="WORKERS", help="run one sweep in this process, print JSON")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/sweep.json")
    args = ap.parse_args(argv)
    if args.single is not None:
        print(json.dumps(run_one(args.single, args.runs, args.duration)))
        return 0
    rows = []
    for w in (1, 2):
        cmd = [sys.executable, "-m", "benchmarks.sweep", "--single", str(w), "--runs", str(args.runs),
               "--duration", args.duration]
        rows.append(single_run(cmd))
    for r in rows:
        r["speedup"] = rows[0]["wall_s"] / r["wall_s"]
        r["runs_speedup"] = rows[0]["runs_s"] / r["runs_s"]
    print(table(rows, [("workers", "workers", "d"), ("runs", "runs", "d"), ("failed", "failed", "d"),
                       ("wall_s", "wall s", ".1f"), ("runs_s", "runs s", ".1f"), ("sim_s", "sum sim.wall_s", ".1f"),
                       ("speedup", "speed-up", ".2f"), ("runs_speedup", "runs speed-up", ".2f")]))
    if not args.no_write and args.runs == 200:
        path = write_json("sweep", {"workload": f"workloads/schedulers.yaml --set duration={args.duration}",
                                    "machine": machine(),
                                    "runs": rows})
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
