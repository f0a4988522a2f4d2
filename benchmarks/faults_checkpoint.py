"""Checkpoint-interval study and the ETTR / goodput-vs-scale figure (issue #17 items 3 and 6;
docs/faults_checkpoint.md). Regenerates the doc's table and ``docs/img/faults_scale.png``.

    python -m benchmarks.faults_checkpoint --table --seeds 8     # interval sweep (~1 min)
    python -m benchmarks.faults_checkpoint --plot                # figure (~1 min)

Table: ``workloads/faults_checkpoint_interval.yaml`` run over checkpoint intervals (the same
seeds for every interval: the failure times are the same, so differences are the interval's),
simulated ETTR (mean and 95% CI) against the first-order model 1 - (C/tau + (tau/2 + R)/M) and
the Young / Daly intervals.

Figure: a job on the whole cluster of ``n`` cards (8 per node) with node failures at the
DOMAIN.md 4.6 rates (2.34 and 6.50 per 1,000 node-days): left, ETTR at the Young interval from
the first-order model (lines) and simulated ETTR and goodput (points; a constant job, no perf
model, 20 days x 3 seeds, 2 days x 1 seed at 65,536 cards; C = 60 s, R = 10 min + the 60 s restore stall); right, job MTTF = 1 / (nodes x rate)
against job size, with the simulated mean time between a job's interruptions.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from cluster_sim.engine.cluster.failures import FailureModel
from cluster_sim.engine.cluster.state import layout_from_node_groups
from cluster_sim.engine.simulation import Simulation
from cluster_sim.experiment.drivers import compare, run_training
from cluster_sim.metrics.reliability import daly_interval, young_interval, young_waste
from cluster_sim.perf.checkpoint import BYTES_PER_PARAM
from cluster_sim.policies import registry
from cluster_sim.units import parse_duration
from cluster_sim.workload.jobs import JobTable, TrainingJob
from cluster_sim.workload.models import model

REPO = Path(__file__).resolve().parent.parent
WORKLOAD = REPO / "workloads" / "faults_checkpoint_interval.yaml"
INTERVALS = ("10m", "20m", "30m", "45m", "53m", "70m", "90m", "2h", "3h")
RATES = (2.34, 6.50)          # failures per 1,000 node-days (DOMAIN.md 4.6, Meta RSC-1/RSC-2)
DAY = 86400.0


def interval_table(seeds: int) -> str:
    """The markdown table of the interval sweep."""
    M = 3692 * 3600.0 / 128                        # the workload's node MTBF over its 128 nodes
    C = model("llama3-70b").total_params * BYTES_PER_PARAM / 20e9   # over its 20 GB/s storage
    R = 600.0 + 60.0                               # restart delay + the restore stall
    df = compare(str(WORKLOAD), "failures.checkpoint.interval", list(INTERVALS), seeds=list(range(seeds)))
    rows = ["| interval | simulated ETTR (95% CI) | goodput | restarts / run | first-order ETTR |",
            "|---|---:|---:|---:|---:|"]
    best = None
    for v in INTERVALS:
        sub = df[df["failures.checkpoint.interval"] == v]
        e = sub["reliability.ettr"].to_numpy(float)
        ci = 2.365 * e.std(ddof=1) / math.sqrt(e.size) if e.size > 1 else float("nan")
        tau = parse_duration(v)
        fo = 1.0 - young_waste(C, tau, R, M)
        rows.append(f"| {v} | {e.mean():.4f} ± {ci:.4f} | {sub['reliability.goodput'].mean():.4f} | "
                    f"{sub['training.restarts'].mean():.1f} | {fo:.4f} |")
        if best is None or e.mean() > best[1]:
            best = (v, e.mean())
    assert best is not None
    rows.append("")
    rows.append(f"C = {C:.1f} s, M = {M / 3600:.1f} h, R = {R:.0f} s: Young sqrt(2CM) = "
                f"{young_interval(C, M) / 60:.1f} min, Daly sqrt(2CM) - C = {daly_interval(C, M) / 60:.1f} min; "
                f"simulated optimum {best[0]} (ETTR {best[1]:.4f}).")
    return "\n".join(rows)


def _sim_point(cards: int, rate: float, seed: int, days: float) -> tuple[float, float, float, int]:
    """(ETTR, goodput, progress hours, failures) of a whole-cluster constant job."""
    nodes = cards // 8
    node_mtbf = 1000.0 / rate * DAY
    M = node_mtbf / nodes
    C, R = 60.0, 660.0
    tau = young_interval(C, M)
    sim = Simulation(layout_from_node_groups([("h100-sxm", 8, nodes)]), seed=seed)
    sim.meta["reliability"] = True
    jobs = JobTable.from_jobs([TrainingJob(name="big", cards=cards, duration_s=days * DAY)])
    sim.add_training(jobs, admission=registry.make("admission", "accept_all"),
                     ordering=registry.make("ordering", "fifo"), placement=registry.make("placement", "packed"),
                     preemption=registry.make("preemption", "none"),
                     failures=FailureModel(node_mtbf_s=node_mtbf, restart_delay_s=R - 60.0,
                                           checkpoint_interval_s=max(tau, 60.0), checkpoint_cost_s=C))
    res = run_training(simulation=sim)
    j = res.jobs.iloc[0]
    return float(j["ettr"]), float(j["goodput"]), float(j["progress_s"]) / 3600.0, int(j["restarts"])


def plot(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = np.logspace(3, 5, 60)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    C, R = 60.0, 660.0
    for rate, ls in zip(RATES, ("-", "--"), strict=True):
        M = 1000.0 / rate * DAY / (sizes / 8)
        tau = np.sqrt(2 * C * M)
        a.plot(sizes, 1 - (C / tau + (tau / 2 + R) / M), ls, color="C0",
               label=f"ETTR, first-order model at Young's interval ({rate}/1000 node-days)")
        b.plot(sizes, M / 3600.0, ls, color="C2", label=f"1 / (nodes x rate), {rate}/1000 node-days")
    runs = {1024: (20.0, 3), 4096: (20.0, 3), 16384: (20.0, 3), 65536: (2.0, 1)}   # cards: (days, seeds)
    pts = list(runs)
    for rate, mk in zip(RATES, ("o", "s"), strict=True):
        res = [[_sim_point(n, rate, s, days=runs[n][0]) for s in range(runs[n][1])] for n in pts]
        ettr = [np.mean([r[0] for r in x]) for x in res]
        good = [np.mean([r[1] for r in x]) for x in res]
        mttf = [sum(r[2] for r in x) / max(sum(r[3] for r in x), 1) for x in res]   # pooled over seeds
        a.plot(pts, ettr, mk, color="C0", label=f"ETTR, simulated ({rate})")
        a.plot(pts, good, mk, color="C1", mfc="none", label=f"goodput, simulated ({rate})")
        b.plot(pts, mttf, mk, color="C2", label=f"simulated time between interruptions ({rate})")
        for n, e, g, m in zip(pts, ettr, good, mttf, strict=True):
            print(f"rate {rate}: {n:>6} cards  ETTR {e:.4f}  goodput {g:.4f}  MTTF {m:.2f} h")
    for ax in (a, b):
        ax.set_xscale("log")
        ax.set_xlabel("cards in the job (= cluster, 8 per node)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    a.set_ylabel("ETTR / goodput")
    a.set_title("ETTR and goodput vs cluster size (C = 60 s, R = 11 min)")
    b.set_yscale("log")
    b.set_ylabel("job MTTF (h)")
    b.set_title("job MTTF vs job size")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--plot", action="store_true")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "faults_scale.png")
    args = ap.parse_args()
    if args.table:
        print(interval_table(args.seeds))
    if args.plot:
        plot(args.out)


if __name__ == "__main__":
    main()
