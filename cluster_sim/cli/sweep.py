"""``cluster-sim sweep SWEEP.yaml | EXP.yaml --factor a=x,y --factor b=1,2 --seeds 5``.

Every cell of the grid once per seed, on local Dask workers (or ``--scheduler tcp://...``), with
a resumable results store (``--store DIR``); per-cell mean ± 95% CI of each metric.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ..config import read_mapping
from ..errors import ConfigError
from ..experiment import check_out_dir
from ..experiment.store import to_jsonable
from ..experiment.sweep import SweepResult, sweep
from ..experiment.sweep_out import save_sweep
from ..experiment.sweep_spec import SweepSpec, is_sweep_file, load_sweep_file
from ..report.html import format_value
from ._common import emit_json, show_progress, stderr_console
from .run import parse_factor, parse_overrides, parse_seeds

__all__ = ["register"]

SHOWN = 5
"""Metrics in the terminal table when none is named (all of them are in --json and --out)."""


@contextmanager
def sweep_progress(enabled: bool) -> Iterator[Callable[[int, int, int], None] | None]:
    """Runs done / total, failures and ETA on stderr, only when ``enabled`` and stderr is a TTY."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("runs, {task.fields[failed]} failed"),
                  TextColumn("ETA"), TimeRemainingColumn(), console=stderr_console(), transient=True) as bar:
        task = bar.add_task("sweep", total=1, failed=0)

        def update(done: int, total: int, failed: int) -> None:
            bar.update(task, completed=done, total=total, failed=failed)

        yield update


def _spec(args: argparse.Namespace) -> SweepSpec:
    """The sweep file, or the experiment file with the flags; flags override the file's fields."""
    data = read_mapping(args.target)
    if is_sweep_file(data):
        spec = load_sweep_file(args.target, data)
    else:
        spec = SweepSpec(experiment=args.target, factors={})
    for text in args.factor:
        key, values = parse_factor(text)
        spec.factors[key] = list(values)
    spec.overrides.update(parse_overrides(args.overrides))
    if args.seeds is not None:
        seeds = parse_seeds(args.seeds)
        spec.seeds = len(seeds) if seeds == list(range(len(seeds))) else seeds
    if args.metric:
        spec.metrics = list(args.metric)
    if args.ci_target is not None:
        spec.ci_target = args.ci_target
    if args.max_seeds is not None:
        spec.max_seeds = args.max_seeds
    if not spec.factors:
        raise ConfigError(f"{args.target}: no factor: give --factor KEY=V1,V2 (or factors: in a sweep file)")
    return spec


def _cell_text(key: str, n: int, mean: float, ci: float) -> str:
    if n == 0:
        return "-"
    return format_value(key, mean) if pd.isna(ci) else f"{format_value(key, mean)} ± {format_value(key, ci)}"


def _print(console: Console, res: SweepResult, spec: SweepSpec, named: bool) -> None:
    metrics = res.metrics if named else res.metrics[:SHOWN]
    t = Table(title=f"sweep of {Path(spec.experiment).name}: mean ± 95% CI over seeds "
              "(t; bootstrap for percentiles)", title_justify="left")
    for f in res.factors:
        t.add_column(f, no_wrap=True)
    t.add_column("runs", justify="right")
    for m in metrics:
        t.add_column(m, justify="right", no_wrap=True)
    cells = res.cells.set_index(["cell", "metric"])
    for label in pd.unique(res.runs["cell"]):
        rows = res.runs[res.runs["cell"] == label]
        ok = int((rows["status"] == "ok").sum())
        runs = f"{ok}" if ok == len(rows) else f"{ok}/{len(rows)}"
        vals = [_cell_text(m, int(cells.loc[(label, m), "n"]), float(cells.loc[(label, m), "mean"]),
                           float(cells.loc[(label, m), "ci95"])) for m in metrics]
        t.add_row(*[Text(str(rows.iloc[0][f])) for f in res.factors], Text(runs), *map(Text, vals))
    console.print(t)
    if len(metrics) < len(res.metrics):
        console.print(f"{len(metrics)} of {len(res.metrics)} metrics shown; --metric KEY to choose, "
                      "--json or --out for all")
    console.print(f"runs: {len(res.runs)} ({res.executed} run now, {res.skipped} from the store, "
                  f"{res.failed} failed)")
    for r in res.runs[res.runs["status"] != "ok"].itertuples():
        console.print(Text(f"failed [{r.cell}, seed {r.seed}]: {str(r.error).splitlines()[0]}"), soft_wrap=True)
    if spec.ci_target is not None:
        if res.capped:
            console.print(Text(f"ci target ±{spec.ci_target:.0%} not met within the seed cap in: "
                               + "; ".join(res.capped)), soft_wrap=True)
        else:
            console.print(f"ci target ±{spec.ci_target:.0%} met in every cell")


def _cmd_sweep(args: argparse.Namespace, console: Console) -> int:
    spec = _spec(args)
    if args.out:
        check_out_dir(args.out)  # refuse a bad --out before the runs, not after
    with sweep_progress(show_progress(args)) as progress:
        res = sweep(spec.experiment, spec.factors, spec.seeds, overrides=spec.overrides,
                    metrics=spec.metrics or None, scheduler=args.scheduler, workers=args.workers,
                    store=args.store, ci_target=spec.ci_target, max_seeds=spec.max_seeds,
                    connect_timeout=args.timeout, progress=progress)
    if args.out:
        save_sweep(res, args.out)
    if args.json:
        payload: dict[str, Any] = {
            "factors": res.factors, "metrics": res.metrics, "executed": res.executed, "skipped": res.skipped,
            "failed": res.failed, "capped": res.capped, "runs": res.runs.to_dict(orient="records"),
            "cells": res.cells.to_dict(orient="records")}
        emit_json(to_jsonable(payload))
        return 0
    _print(console, res, spec, named=bool(spec.metrics))
    if args.out:
        console.print(f"wrote {Path(args.out) / 'runs.parquet'}, cells.csv and plots/sweep.png under {args.out}")
    return 0


def _fraction(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction such as 0.05, got {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` command."""
    p = sub.add_parser(
        "sweep", help="run every combination of several config fields x seeds on Dask workers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the full grid of the factors once per seed on local Dask workers (one per core) "
        "or an existing Dask cluster, store each run as it finishes, skip stored runs on a re-run, and "
        "print the per-cell mean ± 95% CI of each metric (docs/sweeps.md).\n\nexamples:\n"
        "  cluster-sim sweep workloads/schedulers.yaml --set duration=12h "
        "--factor policy.training.scheduler=fifo,sjf --seeds 3 --store runs/sched-store\n"
        "  cluster-sim sweep SWEEP.yaml --workers 2 --out runs/sweep")
    p.add_argument("target", metavar="SWEEP.yaml|EXP.yaml", help="a sweep file (with experiment:) or an "
                   "experiment file")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="override a config field in every run (repeatable)")
    p.add_argument("--factor", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a factor and its values (repeatable: the grid of all of them)")
    p.add_argument("--seeds", metavar="N|S1,S2,...", help="N seeds 0..N-1, or the listed seeds")
    p.add_argument("--metric", action="append", default=[], metavar="KEY",
                   help="a summary key to report (repeatable; default the headline keys)")
    p.add_argument("--workers", type=int, metavar="N", help="local worker processes (default one per core; "
                   "0 runs in this process without Dask)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="use this running Dask scheduler")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="seconds to reach --scheduler (default 5)")
    p.add_argument("--store", metavar="DIR", help="results store: each run is written here as it finishes; "
                   "a re-run skips the stored runs")
    p.add_argument("--ci-target", type=_fraction, metavar="FRACTION", help="add seeds until every metric's "
                   "95%% CI half-width is within this fraction of its mean (e.g. 0.05)")
    p.add_argument("--max-seeds", type=int, metavar="N", help="the seed cap of --ci-target (default 4 batches)")
    p.add_argument("--out", metavar="DIR", help="write runs.parquet, cells.csv and plots/sweep.png here")
    p.add_argument("--json", action="store_true", help="print runs and cells as JSON and nothing else")
    p.set_defaults(handler=_cmd_sweep)
