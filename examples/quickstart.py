"""Quickstart: a training estimate, a what-if, a scaling curve and a run directory in a few seconds.

Run from anywhere::

    .venv/bin/python examples/quickstart.py            # writes runs/quickstart/
    .venv/bin/python examples/quickstart.py /tmp/qs    # or another directory
"""

from __future__ import annotations

import sys
from pathlib import Path

import cluster_sim as cs

REPO = Path(__file__).resolve().parents[1]


def main(out_dir: Path) -> None:
    # 1. One experiment file -> Result (summary dict, estimates, plots, run directory).
    cfg = cs.load_config(REPO / "workloads" / "train_llama3_70b.yaml")
    res = cs.simulate(cfg)
    s = res.summary
    print(f"{cfg.name}: MFU {s['training.mfu']:.1%}, step {s['training.step_time_s']:.2f} s, "
          f"{s['training.tokens_per_s'] / 1e6:.2f}M tokens/s, {s['training.days_to_train']:.0f} days for 15T tokens")
    print("step breakdown (s):", {k: round(v, 3) for k, v in res.estimates[0].estimate.breakdown.items()})

    # 2. What if: the same job with another pipeline depth, side by side (same code path as `cluster-sim compare`).
    table = cs.compare(cfg, "training.jobs.0.parallel.pp", [2, 4, 8])
    print(table[["training.jobs.0.parallel.pp", "training.mfu", "training.step_time_s"]].to_string(index=False))

    # 3. The performance model directly: weak scaling of a plan on a topology.
    topo = cs.load_topology(REPO / "topologies" / "h100-fattree-4to1-1024.yaml")
    plan = cs.ParallelPlan(tp=8, pp=4, dp=1, microbatches=16, recompute="selective")
    for p in cs.scaling_curve(cs.model("llama3-70b"), plan, topo, [32, 128, 512, 1024], seq_len=8192):
        print(f"{p.cards:5d} cards on {topo.name}: linear speedup {p.linear_speedup:.1%}, MFU {p.estimate.mfu:.1%}")

    # 4. Figures and the run directory (summary.json, parquet tables, plots/, report.html).
    res.plot.breakdown()
    path = res.save(out_dir)
    print(f"wrote {path}/report.html")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "runs" / "quickstart")
