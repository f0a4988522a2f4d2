"""One simulated year of a ~100,000-card heterogeneous cluster with ~1,000,000 training jobs.

DESIGN.md 6 target: < 10 minutes and < 4 GB. The cluster is ``topologies/h100-cluster-100k.yaml``
(32k H100 + 24k A100 + 20k H20 + 24k Ascend 910B, 2:1 oversubscribed RoCE fat-tree); jobs come
from ``industry_mix`` at a constant arrival rate of 1M jobs per year, so ``--jobs N`` simulates
``N / 1M`` of a year and the load is the same at every size (cost per job should be flat).
``--load X`` scales every run time so the offered load is X of the cluster (the natural mix offers
about 8% of 100,000 cards). Each size runs in its own process so peak memory is per size.

    python -m benchmarks.cluster_year                     # 10k, 100k, 1M jobs; JSON + table
    python -m benchmarks.cluster_year --jobs 10000        # one size
    python -m benchmarks.cluster_year --jobs 100000 --profile   # cProfile top functions
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, peak_rss_mib, single_run, table, write_json

YEAR_S = 365 * 86400.0
REPO = Path(__file__).resolve().parents[1]
TOPOLOGY = REPO / "topologies" / "h100-cluster-100k.yaml"


def run_one(n_jobs: int, *, load: float | None, placement: str, backfill: bool, seed: int,
            profile: bool = False) -> dict[str, Any]:
    """Build and run one size in this process; returns its measurements."""
    from cluster_sim.engine.cluster.state import layout_from_topology
    from cluster_sim.experiment.drivers import run_training
    from cluster_sim.topology import load_topology
    from cluster_sim.workload.generators import industry_mix

    t0 = time.perf_counter()
    layout = layout_from_topology(load_topology(TOPOLOGY))
    horizon = YEAR_S * n_jobs / 1_000_000
    jobs = industry_mix(n_jobs, jobs_per_hour=1_000_000 / (YEAR_S / 3600), rng=seed, card_types=layout.card_types)
    offered = float(jobs.card_seconds.sum() / (layout.n_cards * horizon))
    if load is not None:
        jobs = jobs.replace(duration_s=jobs.duration_s * (load / offered))
    build_s = time.perf_counter() - t0
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t1 = time.perf_counter()
    res = run_training(cluster=layout, jobs=jobs, placement=placement, backfill=backfill, seed=seed,
                       horizon_s=horizon, max_segments=0)
    wall = time.perf_counter() - t1
    if prof is not None:
        prof.disable()
        import pstats

        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    s = res.summary
    return {
        "jobs": n_jobs, "cards": layout.n_cards, "simulated_days": horizon / 86400, "placement": placement,
        "backfill": backfill, "offered_load": load if load is not None else offered,
        "build_s": build_s, "run_wall_s": wall, "engine_wall_s": s["sim.wall_s"],
        "jobs_per_s": n_jobs / wall, "events": s["sim.events"], "events_per_s": s["sim.events"] / wall,
        "cycles": s["sim.cycles"], "peak_rss_mib": peak_rss_mib(),
        "finished": s["training.jobs.finished"], "utilization_allocated": s["utilization.allocated"],
        "queueing_p50_s": s["training.queueing_s.p50"], "queueing_p99_s": s["training.queueing_s.p99"],
        "jct_p50_s": s["training.jct_s.p50"], "mfu": s["training.jobs.mfu"],
        "finished_frac": s["training.jobs.finished"] / max(n_jobs, 1),
    }


def process_vs_heap(n_jobs: int = 200_000, seed: int = 0) -> dict[str, float]:
    """Time the two ways to drive job finishes: one SimPy process per job vs one process + a heap.

    Both handle the same arrivals and finishes (no scheduling work), so the difference is the
    cost of the event machinery alone; a tenth of the jobs change speed once (a bandwidth share
    moves), which a per-job process must handle with an interrupt and the heap with a new entry.
    """
    import heapq

    import numpy as np
    import simpy

    rng = np.random.default_rng(seed)
    submit = np.cumsum(rng.exponential(1.0, n_jobs)).tolist()
    dur = rng.exponential(100.0, n_jobs).tolist()
    change = (rng.random(n_jobs) < 0.1).tolist()
    out: dict[str, float] = {"jobs": float(n_jobs)}

    env = simpy.Environment()
    done = [0]

    def job(i: int):  # one process per job
        yield env.timeout(submit[i])
        left = dur[i]
        if change[i]:
            try:
                yield env.timeout(left)
            except simpy.Interrupt:
                left = left / 2  # progress made, then the rest at a new rate
                yield env.timeout(left)
        else:
            yield env.timeout(left)
        done[0] += 1

    def changer(procs):
        for i in range(n_jobs):
            if change[i]:
                yield env.timeout(max(submit[i] + dur[i] / 2 - env.now, 0))
                if procs[i].is_alive:
                    procs[i].interrupt()

    t0 = time.perf_counter()
    procs = [env.process(job(i)) for i in range(n_jobs)]
    env.process(changer(procs))
    env.run()
    out["per_job_process_s"] = time.perf_counter() - t0

    env = simpy.Environment()

    def loop():  # one process, a heap of (time, kind, job, version)
        heap = [(submit[i], 0, i, 0) for i in range(n_jobs)]
        heapq.heapify(heap)
        ver = [0] * n_jobs
        finished = 0
        while heap:
            t, kind, i, v = heapq.heappop(heap)
            if t > env.now:
                yield env.timeout(t - env.now)
            if kind == 0:
                heapq.heappush(heap, (t + dur[i], 1, i, 0))
                if change[i]:
                    heapq.heappush(heap, (t + dur[i] / 2, 2, i, 0))
            elif kind == 2:  # speed change: new finish entry, the old one goes stale
                ver[i] += 1
                heapq.heappush(heap, (t + dur[i] / 2, 1, i, ver[i]))
            elif ver[i] == v:
                finished += 1
        done[0] = finished

    t0 = time.perf_counter()
    env.process(loop())
    env.run()
    out["one_process_heap_s"] = time.perf_counter() - t0
    out["per_job_process_jobs_per_s"] = n_jobs / out["per_job_process_s"]
    out["one_process_heap_jobs_per_s"] = n_jobs / out["one_process_heap_s"]
    return out


COLS = [("jobs", "jobs", ",d"), ("offered_load", "load", ".2f"), ("simulated_days", "sim days", ".1f"),
        ("run_wall_s", "wall s", ".1f"), ("jobs_per_s", "jobs/s", ",.0f"), ("events", "events", ",d"),
        ("events_per_s", "events/s", ",.0f"), ("peak_rss_mib", "peak MiB", ",.0f"),
        ("utilization_allocated", "U_alloc", ".3f"), ("queueing_p99_s", "queue p99 s", ",.0f")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, action="append", help="job counts (default 10k, 100k, 1M)")
    ap.add_argument("--load", type=float, default=None, help="scale run times to this offered load")
    ap.add_argument("--placement", default="packed")
    ap.add_argument("--backfill", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", action="store_true", help="cProfile the run (single size, in process)")
    ap.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/results JSON")
    ap.add_argument("--process-vs-heap", type=int, metavar="N", help="only time the two event drivers")
    args = ap.parse_args(argv)
    if args.process_vs_heap:
        res = process_vs_heap(args.process_vs_heap)
        print(json.dumps(res))
        if not args.no_write:
            write_json("cluster_year_drivers", {"benchmark": "process_vs_heap", "machine": machine(), **res})
        return 0
    sizes = args.jobs or [10_000, 100_000, 1_000_000]
    if args.single or args.profile:
        out = run_one(sizes[0], load=args.load, placement=args.placement, backfill=args.backfill,
                      seed=args.seed, profile=args.profile)
        print(json.dumps(out))
        return 0
    rows = []
    for n in sizes:
        cmd = [sys.executable, "-m", "benchmarks.cluster_year", "--single", "--jobs", str(n),
               "--placement", args.placement, "--seed", str(args.seed)]
        if args.load is not None:
            cmd += ["--load", str(args.load)]
        if args.backfill:
            cmd.append("--backfill")
        rows.append(single_run(cmd, cwd=REPO))
        print(table(rows[-1:], COLS), flush=True)
    print()
    print(table(rows, COLS))
    if not args.no_write:
        name = "cluster_year" if args.load is None else f"cluster_year_load{args.load:g}"
        path = write_json(name, {"benchmark": "cluster_year", "machine": machine(), "runs": rows,
                                 "target": "1M jobs, 100k cards, 1 simulated year: < 600 s, < 4096 MiB"})
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
