"""Co-location speed: training and serving on one 2,048-card cluster for 24 h (issue #13 target:
the whole run under a minute with a million requests).

Scenario: ``workloads/pool_peak_shaving.yaml`` (2,048 H100, a diurnal Llama-3-405B chat service
with about 1.0 M requests, a 1,024-card pretraining job and ~1,100 fine-tune / mid-size jobs)
under each pool policy. Each policy runs in a fresh subprocess (its own peak memory). ``wall_s``
is all of ``cluster_sim.simulate`` (config to summary: request generation, engine build, both
engines on one clock, frames and summary); ``engine_s`` is the shared simulation's own clock
(``sim.wall_s``).

    python -m benchmarks.colocation                       # peak_shaving, shared_pool, static_partition
    python -m benchmarks.colocation --pool peak_shaving --single
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, peak_rss_mib, single_run, table, write_json

WORKLOAD = Path(__file__).resolve().parent.parent / "workloads" / "pool_peak_shaving.yaml"
POOLS = ("peak_shaving", "shared_pool", "static_partition")


def run_one(pool: str, duration: str | None = None) -> dict[str, Any]:
    """One measured run in this process."""
    import cluster_sim as cs

    overrides: dict[str, Any] = {"policy.pool": pool}
    if duration:
        overrides["duration"] = duration
    cfg = cs.load_config(WORKLOAD, overrides=overrides)
    t0 = time.perf_counter()
    res = cs.simulate(cfg)
    wall = time.perf_counter() - t0
    s = res.summary
    return {"pool": pool, "cards": s.get("cluster.cards"), "requests": len(res.requests), "jobs": len(res.jobs),
            "wall_s": wall, "engine_s": s.get("sim.wall_s"), "events": int(s.get("sim.events") or 0),
            "requests_per_wall_s": len(res.requests) / wall, "peak_rss_mib": peak_rss_mib(),
            "slo_attainment": s.get("inference.slo_attainment"), "jobs_finished": int(s.get("training.jobs.finished") or 0),
            "pool_allocated": s.get("pool.utilization.allocated"), "pool_busy": s.get("pool.utilization.busy")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", choices=POOLS, action="append", help="pool policies to run (default: all three)")
    ap.add_argument("--duration", help="override the 24 h horizon (e.g. 2h, to check the benchmark runs)")
    ap.add_argument("--single", action="store_true", help="run in this process and print JSON")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/colocation.json")
    args = ap.parse_args(argv)
    pools = args.pool or list(POOLS)
    if args.single:
        for p in pools:
            print(json.dumps(run_one(p, args.duration)))
        return 0
    rows = []
    for p in pools:
        cmd = [sys.executable, "-m", "benchmarks.colocation", "--single", "--pool", p]
        if args.duration:
            cmd += ["--duration", args.duration]
        rows.append(single_run(cmd))
    print(table(rows, [("pool", "pool policy", "s"), ("requests", "requests", ",d"), ("jobs", "jobs", ",d"),
                       ("wall_s", "wall s", ".1f"), ("engine_s", "engine s", ".1f"), ("events", "events", ",d"),
                       ("requests_per_wall_s", "req/s", ",.0f"), ("peak_rss_mib", "peak MiB", ",.0f"),
                       ("slo_attainment", "SLO", ".3f"), ("jobs_finished", "jobs done", ",d"),
                       ("pool_allocated", "alloc", ".3f"), ("pool_busy", "busy", ".3f")]))
    if not args.no_write and not args.duration:
        path = write_json("colocation", {"workload": "workloads/pool_peak_shaving.yaml", "machine": machine(),
                                         "runs": rows})
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
