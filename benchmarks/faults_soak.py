"""Soak test of the failure processes (issue #17, "Speed and memory"): 30 simulated days of a
10,000-card cluster under failures, with a generated job mix.

The cluster is 1,250 HGX-H100 nodes (10,000 cards) on a non-blocking 3-tier NDR fat-tree; jobs
come from ``industry_mix`` at 30 an hour, a share of them elastic (``--elastic-fraction``,
default 0.2); failures are three classes — host (node, exponential, 4.0 per 1,000 node-days),
gpu (card, Weibull k 0.8, 2.0 per 1,000 node-days), tor (leaf switch, 0.1 per 1,000 node-days) —
with 20 spare nodes, 8 technicians, 5 min detection, the automatic restart delay and hourly
checkpoints (closed form, 1 min). The same configuration runs for 10, 20 and 30 simulated days,
each in a fresh process, so each run's peak memory is its own (``ru_maxrss`` of that process,
Linux ``getrusage``; ``rss_built_mib`` is the same after imports and the build, before the run,
so ``peak - built`` is what the run itself added). Equal seeds: the 10-day run is the first
third of the 30-day one.

At the end of each run it asserts the invariants:

* card-hours add up: ``failures.card_hours.{up,waiting,repairing,swapping}`` sum to
  cards x simulated hours;
* no job holds a down card, and each running job holds exactly its current size;
* per job, the progress lost to failures is at most its interruptions x (checkpoint interval +
  its restart delay) x its cards.

    python -m benchmarks.faults_soak                 # 10, 20, 30 days; JSON + table
    python -m benchmarks.faults_soak --days 2 --no-write   # a quick check that it runs
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, peak_rss_mib, single_run, table, write_json

REPO = Path(__file__).resolve().parents[1]
DAY_S = 86400.0
INTERVAL_S = 3600.0


def config(days: float, seed: int, elastic_fraction: float) -> dict[str, Any]:
    """The soak experiment as a config mapping (the same content as a YAML file)."""
    return {
        "name": f"faults-soak-{days:g}d", "seed": seed, "duration": f"{days:g}d",
        "cluster": {"topology": {"name": "h100-10k-fattree", "builder": "fat_tree", "system": "hgx-h100",
                                 "nodes": 1250, "fabric": "ib_ndr", "tiers": 3}},
        "training": {"generator": {"kind": "industry_mix", "jobs_per_hour": 30,
                                   "elastic_fraction": elastic_fraction}},
        "failures": {
            "classes": [
                {"name": "host", "unit": "node", "rate_per_1000_node_days": 4.0, "repair": "24h"},
                {"name": "gpu", "unit": "card", "rate_per_1000_node_days": 2.0, "distribution": "weibull",
                 "shape": 0.8, "repair": "12h"},
                {"name": "tor", "unit": "switch", "rate_per_1000_node_days": 0.1, "repair": "6h"},
            ],
            "spare_nodes": 20, "swap_time": "20min", "technicians": 8, "detection": "5min",
            "restart_delay": "auto",
            "checkpoint": {"interval": "1h", "cost": "1min"},
        },
    }


def check_invariants(sim: Any, summary: dict[str, Any]) -> dict[str, float]:
    """Assert the soak's invariants (module docstring); returns the quantities checked."""
    import numpy as np

    eng, st = sim.training, sim.state
    t_end = float(getattr(sim, "t_end_s", sim.env.now))
    cards = int(np.asarray(st.type_capacity).sum())
    states = sum(summary[f"failures.card_hours.{k}"] for k in ("up", "waiting", "repairing", "swapping"))
    expect = cards * t_end / 3600.0
    assert abs(states - expect) <= 1e-9 * expect, f"card-hours {states} != cards x span {expect}"
    for i, (cs, _milli) in st.alloc.items():
        assert not st.down[cs].any(), f"job row {i} holds a down card"
        assert cs.size == eng.num[i], f"job row {i} holds {cs.size} cards, its size is {eng.num[i]}"
    fm = eng.failures
    worst = 0.0
    for i, lost in eng.lost_fail_card_s.items():
        k = int(eng.restarts[i])
        c = eng.num[i] * eng.milli[i] / 1000.0
        if eng.el_full.get(i):
            c = max(c, eng.el_full[i] * eng.milli[i] / 1000.0)
        bound = k * (fm.checkpoint_interval_s + fm.restart_for(int(c))) * c
        assert lost <= bound * (1 + 1e-9), f"job row {i} lost {lost} card-s > bound {bound}"
        worst = max(worst, lost / bound) if bound > 0 else worst
    return {"card_hours_states": states, "card_hours_expected": expect, "lost_over_bound_max": worst}


def run_one(days: float, seed: int, elastic_fraction: float) -> dict[str, Any]:
    """Build and run one duration in this process; returns its measurements."""
    from cluster_sim.config import load_config
    from cluster_sim.experiment.build import build_simulation
    from cluster_sim.metrics import result_from_record

    t0 = time.perf_counter()
    sim = build_simulation(load_config(config(days, seed, elastic_fraction)))
    build_s = time.perf_counter() - t0
    built = peak_rss_mib()
    t1 = time.perf_counter()
    sim.run()
    wall = time.perf_counter() - t1
    res = result_from_record(sim.collect())
    s = res.summary
    inv = check_invariants(sim, s)
    events = int(s["sim.events"])
    return {
        "days": days, "cards": int(sim.layout.n_cards), "seed": seed, "elastic_fraction": elastic_fraction,
        "jobs": int(s["training.jobs.submitted"]), "finished": int(s["training.jobs.finished"]),
        "events": events, "run_wall_s": wall, "build_s": build_s, "events_per_s": events / wall,
        "rss_built_mib": built, "peak_rss_mib": peak_rss_mib(),
        "failures": int(s["failures.failures"]), "job_interruptions": int(s["failures.job_interruptions"]),
        "restarts": int(s["training.restarts"]), "swaps": int(s["failures.swaps"]),
        "shrinks": int(s.get("training.elastic.shrinks", 0)), "regrows": int(s.get("training.elastic.regrows", 0)),
        "utilization_allocated": s["utilization.allocated"], "ettr": s.get("reliability.ettr"), **inv,
    }


COLS = [("days", "sim days", ".0f"), ("jobs", "jobs", ",d"), ("events", "events", ",d"),
        ("run_wall_s", "wall s", ".1f"), ("events_per_s", "events/s", ",.0f"),
        ("rss_built_mib", "built MiB", ",.0f"), ("peak_rss_mib", "peak MiB", ",.0f"),
        ("failures", "failures", ",d"), ("restarts", "restarts", ",d"), ("shrinks", "shrinks", ",d"),
        ("regrows", "regrows", ",d"), ("utilization_allocated", "U_alloc", ".3f")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, action="append", help="simulated days (default 10, 20, 30)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--elastic-fraction", type=float, default=0.2)
    ap.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/results JSON")
    args = ap.parse_args(argv)
    sizes = args.days or [10.0, 20.0, 30.0]
    if args.single:
        print(json.dumps(run_one(sizes[0], args.seed, args.elastic_fraction)))
        return 0
    rows = []
    for d in sizes:
        cmd = [sys.executable, "-m", "benchmarks.faults_soak", "--single", "--days", str(d),
               "--seed", str(args.seed), "--elastic-fraction", str(args.elastic_fraction)]
        rows.append(single_run(cmd, cwd=REPO))
        print(table(rows[-1:], COLS), flush=True)
    print()
    print(table(rows, COLS))
    if not args.no_write:
        path = write_json("faults_soak", {"benchmark": "faults_soak", "machine": machine(), "runs": rows,
                                          "memory": "ru_maxrss of a fresh process per duration"})
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
