"""``cluster-sim plan PLAN.yaml [--workers N] [--seeds N] [--store DIR] [--out DIR] [--json]``.

Every fleet candidate of the plan file once per seed (through the sweep machinery: Dask workers,
the resumable store), then the cost vs performance table with the Pareto frontier marked and the
cheapest candidate that meets every objective named (docs/planner.md).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..experiment import check_out_dir
from ..experiment.plan import COST, MTOK, PlanResult, fmt_value, plan, save_plan
from ..experiment.plan_spec import load_plan_file
from ..experiment.store import to_jsonable
from ._common import emit_json, show_progress
from .run import parse_overrides, parse_seeds
from .sweep import sweep_progress

__all__ = ["register"]


def _cell(key: str, mean: float, ci: float) -> str:
    if math.isnan(mean):
        return "-"
    return fmt_value(key, mean) if math.isnan(ci) else f"{fmt_value(key, mean)} ± {fmt_value(key, ci)}"


def _print(console: Console, res: PlanResult, name: str) -> None:
    t = Table(title=f"plan of {name}: mean ± 95% CI over seeds; * = Pareto frontier (cost per day vs "
              "the objectives)", title_justify="left")
    metrics = list(res.metrics)
    heads = {COST: "cost/day", MTOK: "cost/Mtok"}
    t.add_column("candidate", no_wrap=True)
    t.add_column("runs", justify="right")
    for m in metrics:
        t.add_column(heads.get(m, m), justify="right", no_wrap=True)
    t.add_column("meets", justify="center")
    t.add_column("pareto", justify="center")
    for r in res.table.to_dict(orient="records"):
        runs = f"{r['runs']}" if not r["failed"] else f"{r['runs']}/{r['runs'] + r['failed']}"
        t.add_row(Text(str(r["candidate"])), Text(runs),
                  *[Text(_cell(m, float(r[m]), float(r[f"{m}.ci95"]))) for m in metrics],
                  Text("yes" if r["meets"] else "no"), Text("*" if r["pareto"] else ""))
    console.print(t)
    console.print("objectives: " + "; ".join(str(o) for o in res.objectives), soft_wrap=True)
    console.print(Text(res.line), soft_wrap=True)
    console.print(f"runs: {len(res.runs)} ({res.executed} run now, {res.skipped} from the store, "
                  f"{res.failed} failed)")
    for r in res.runs[res.runs["status"] != "ok"].itertuples():
        console.print(Text(f"failed [{r.candidate}, seed {r.seed}]: {str(r.error).splitlines()[0]}"),
                      soft_wrap=True)


def _cmd_plan(args: argparse.Namespace, console: Console) -> int:
    spec = load_plan_file(args.plan)
    seeds: Any = None
    if args.seeds is not None:
        s = parse_seeds(args.seeds)
        seeds = len(s) if s == list(range(len(s))) else s
    if args.out:
        check_out_dir(args.out)  # refuse a bad --out before the runs, not after
    with sweep_progress(show_progress(args)) as progress:
        res = plan(spec, seeds=seeds, workers=args.workers, scheduler=args.scheduler, store=args.store,
                   overrides=parse_overrides(args.overrides), connect_timeout=args.timeout, progress=progress)
    if args.out:
        save_plan(res, args.out)
    if args.json:
        emit_json(to_jsonable({
            "objectives": [str(o) for o in res.objectives], "metrics": res.metrics, "pick": res.pick,
            "line": res.line, "executed": res.executed, "skipped": res.skipped, "failed": res.failed,
            "overrides": res.overrides, "candidates": res.table.to_dict(orient="records")}))
        return 0
    _print(console, res, Path(args.plan).name)
    if args.out:
        console.print(f"wrote plan.csv, runs.parquet and plots/pareto.png under {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``plan`` command."""
    p = sub.add_parser(
        "plan", help="run fleet/topology candidates for a workload and name the cheapest that meets its SLOs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run each candidate of a plan file (topology, card type, oversubscription, a split over "
        "two data centres, P:D ratios) once per seed through the sweep machinery, then print the cost vs "
        "performance table with the Pareto frontier and the cheapest candidate that meets every objective "
        "(docs/planner.md).\n\nexamples:\n"
        "  cluster-sim plan workloads/plan_serving_pd.yaml --workers 0\n"
        "  cluster-sim plan workloads/plan_supernode.yaml --seeds 3 --store runs/plan-store --out runs/plan")
    p.add_argument("plan", metavar="PLAN.yaml", help="the plan file (experiment:, candidates:/grid:, objectives:)")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="override a config field in every run (repeatable; after the plan's set:)")
    p.add_argument("--seeds", metavar="N|S1,S2,...", help="N seeds 0..N-1, or the listed seeds (default: the plan's)")
    p.add_argument("--workers", type=int, metavar="N", help="local worker processes (default one per core; "
                   "0 runs in this process without Dask)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="use this running Dask scheduler")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds to reach --scheduler (default 5)")
    p.add_argument("--store", metavar="DIR", help="results store: each run is written here as it finishes; "
                   "a re-run skips the stored runs")
    p.add_argument("--out", metavar="DIR", help="write plan.csv, runs.parquet and plots/pareto.png here")
    p.add_argument("--json", action="store_true", help="print the candidate table as JSON and nothing else")
    p.set_defaults(handler=_cmd_plan)
