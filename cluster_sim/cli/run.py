"""``cluster-sim run EXP.yaml`` and ``cluster-sim compare EXP.yaml --factor key=a,b [--seeds N]``.

Also the helpers the experiment commands share: the ``EXP.yaml [--set k=v ...]`` arguments,
loading, the summary table; the progress bar is :mod:`cluster_sim.cli.progress`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..config import ExperimentConfig, load_config, user_scope
from ..errors import ClusterSimError, ConfigError
from ..experiment import HEADLINE_KEYS, Result, check_out_dir, compare, simulate
from ..experiment.comparison import headline_metrics, summarize_seeds
from ..experiment.store import to_jsonable
from ..experiment.sweep import sweep
from ..report.html import format_value
from ._common import emit_json, show_progress
from .progress import progress_bar

__all__ = ["add_experiment_args", "load_experiment", "parse_factor", "parse_overrides", "parse_seeds", "print_summary",
           "progress_bar", "register"]

RAW = argparse.RawDescriptionHelpFormatter


def add_experiment_args(p: argparse.ArgumentParser) -> None:
    """The positional experiment file and repeatable ``--set key=value`` overrides."""
    p.add_argument("experiment", metavar="EXP.yaml", help="experiment file (YAML or TOML)")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="override a config field by dotted path, e.g. --set training.jobs.0.cards=512 "
                   "(repeatable)")


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["seed=3", "duration=2h"]`` -> ``{"seed": "3", "duration": "2h"}`` (one ConfigError on a bad item)."""
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set seed=3")
        overrides[key.strip()] = value
    return overrides


def load_experiment(args: argparse.Namespace) -> ExperimentConfig:
    """Load ``args.experiment`` with ``args.overrides`` applied (one ConfigError on any mistake).

    The experiment's own models and cards (``models:``, ``catalog:``) stay in scope until the
    command returns (``args.scope``, an ExitStack that :func:`cluster_sim.cli.main` opens)."""
    cfg = load_config(args.experiment, overrides=parse_overrides(args.overrides))
    scope = getattr(args, "scope", None)
    if scope is not None:
        scope.enter_context(user_scope(cfg))
    return cfg


def parse_factor(text: str) -> tuple[str, list[str]]:
    """``"policy.training.placement=packed,spread"`` -> ``("policy.training.placement", ["packed", "spread"])``."""
    key, sep, values = text.partition("=")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not key.strip() or not items:
        raise ConfigError(f"--factor {text!r}: expected KEY=VALUE1,VALUE2,..., "
                          "e.g. --factor policy.training.placement=packed,topology_aware")
    return key.strip(), items


def parse_seeds(text: str) -> list[int]:
    """``"5"`` -> seeds ``[0, 1, 2, 3, 4]``; ``"0,3,7"`` -> ``[0, 3, 7]`` (one ConfigError naming --seeds)."""
    hint = "expected a count N >= 1 (seeds 0..N-1) or a list of seeds >= 0, e.g. --seeds 5 or --seeds 0,3,7"
    items = [v.strip() for v in text.split(",")]
    if "," in text:
        items = [v for v in items if v]
    if not items or not all(v.isascii() and v.isdigit() for v in items):
        raise ConfigError(f"--seeds {text!r}: {hint}")
    if "," not in text:
        count = int(items[0])
        if count < 1:
            raise ConfigError(f"--seeds {text!r}: {hint}")
        return list(range(count))
    seeds = [int(v) for v in items]
    dup = next((x for i, x in enumerate(seeds) if x in seeds[:i]), None)
    if dup is not None:
        raise ConfigError(f"--seeds {text!r}: seed {dup} is given twice")
    return seeds


def print_summary(console: Console, result: Result, *, full: bool = False) -> None:
    """Headline metrics (or every summary key with ``full``) as a two-column table, then notes."""
    s = result.summary
    keys = list(s) if full else [k for k in HEADLINE_KEYS if k in s]
    t = Table(title=f"{result.config.name}: summary", title_justify="left")
    t.add_column("metric", no_wrap=True)
    t.add_column("value", justify="right", no_wrap=True)
    for k in keys:
        t.add_row(Text(k), Text(format_value(k, s[k])))
    console.print(t)
    for note in result.notes:
        console.print(Text(f"note: {note}"), soft_wrap=True)


def print_compare_notes(console: Console, notes: dict[str, list[str]]) -> None:
    """A note every variant shares once; a variant's own notes with its value in brackets."""
    lists = list(notes.values())
    common = [n for n in lists[0] if all(n in other for other in lists[1:])] if lists else []
    for note in common:
        console.print(Text(f"note: {note}"), soft_wrap=True)
    for value, items in notes.items():
        for note in items:
            if note not in common:
                console.print(Text(f"note [{value}]: {note}"), soft_wrap=True)


def _cmd_run(args: argparse.Namespace, console: Console) -> int:
    cfg = load_experiment(args)
    if args.out:
        check_out_dir(args.out)  # refuse a bad --out before the run, not after
    with progress_bar(show_progress(args), f"simulating {cfg.name}") as progress:
        result = simulate(cfg, progress=progress)
    out = result.save(args.out) if args.out else None
    if args.json:
        emit_json(to_jsonable({**result.summary, "notes": list(result.notes)}))
        return 0
    print_summary(console, result, full=args.all)
    if out is not None:
        console.print(f"run directory: {out} (summary.json, report.html, plots/)")
    return 0


def _compare_grid(args: argparse.Namespace, cfg: ExperimentConfig, factors: list[tuple[str, list[str]]],
                  seeds: list[int] | None, progress: Callable[[float, float], None] | None) -> tuple[str, pd.DataFrame]:
    """Several factors (or --workers): the grid as a small sweep, one column ``"a, b"`` of values
    ``"x, 1"`` so the one-factor tables print it; a failed run fails the command as in compare."""
    if args.out:
        raise ConfigError("--out with several --factor or --workers: use `cluster-sim sweep ... --out DIR` "
                          "(compare --out writes one run directory per value of one factor)")
    grid = dict(factors)
    if len(grid) < len(factors):
        dup = next(k for i, (k, _) in enumerate(factors) if k in [f for f, _ in factors[:i]])
        raise ConfigError(f"--factor {dup}: given twice; give each field once")
    res = sweep(args.experiment, grid, seeds if seeds is not None else [cfg.seed],
                overrides=parse_overrides(args.overrides), workers=0 if args.workers is None else args.workers,
                progress=None if progress is None else (lambda d, t, f: progress(d, t)))
    bad = res.runs[res.runs["status"] != "ok"]
    if len(bad):
        r = bad.iloc[0]
        raise ClusterSimError(f"cell {r['cell']}, seed {r['seed']}: {r['error']}")
    label = ", ".join(grid)
    values = res.runs[list(grid)].astype(str).agg(", ".join, axis=1)
    lead = {label: values, **({"seed": res.runs["seed"]} if seeds is not None else {})}
    drop = [*grid, "cell", "seed", "key", "status", "error"]
    table = pd.concat([pd.DataFrame(lead), res.runs.drop(columns=drop)], axis=1)
    table.attrs["notes"] = {v + (f", seed {s}" if seeds is not None else ""): res.notes[f"{c}, seed {s}"]
                            for v, c, s in zip(values, res.runs["cell"], res.runs["seed"], strict=True)}
    return label, table


def _cmd_compare(args: argparse.Namespace, console: Console) -> int:
    cfg = load_experiment(args)
    factors = [parse_factor(f) for f in args.factor]
    seeds = None if args.seeds is None else parse_seeds(args.seeds)
    factor = ", ".join(f for f, _ in factors)
    with progress_bar(show_progress(args), f"compare {factor}") as progress:
        if len(factors) == 1 and args.workers is None:
            factor, values = factors[0]
            # each variant re-reads the file with --set (the seed) and the factor, exactly as `run --set` does
            table = compare(args.experiment, factor, values, seeds=seeds, overrides=parse_overrides(args.overrides),
                            out_dir=args.out, progress=progress)
        else:
            factor, table = _compare_grid(args, cfg, factors, seeds, progress)
    if seeds is not None:
        return _print_seeded(console, args, cfg, factor, seeds, table)
    if args.json:
        emit_json(to_jsonable(table.to_dict(orient="records")))
        return 0
    keys = [c for c in table.columns if c in HEADLINE_KEYS]
    t = Table(title=f"{cfg.name}: {factor}", title_justify="left")  # one column per value
    t.add_column("metric", no_wrap=True)
    for v in table[factor]:
        t.add_column(Text(str(v)), justify="right", no_wrap=True)
    for k in keys:
        t.add_row(Text(k), *[Text(format_value(k, x)) for x in table[k]])
    console.print(t)
    print_compare_notes(console, table.attrs.get("notes", {}))
    if args.out:
        console.print(f"wrote {Path(args.out) / 'compare.csv'} and one run directory per value under {args.out}")
    return 0


def _mean_ci(key: str, n: int, runs: int, mean: float, ci: float) -> str:
    """``mean ± ci`` (only the mean when n < 2), with ``(n=k)`` when some runs lack the metric."""
    if n == 0:
        return "-"
    text = format_value(key, mean) if pd.isna(ci) else f"{format_value(key, mean)} ± {format_value(key, ci)}"
    return text if n == runs else f"{text} (n={n})"


def _print_seeded(console: Console, args: argparse.Namespace, cfg: ExperimentConfig, factor: str,
                  seeds: list[int], table: pd.DataFrame) -> int:
    """The --seeds output: one column per value, ``mean ± 95% CI`` of each headline metric."""
    summary = summarize_seeds(table, factor)
    if args.json:
        emit_json(to_jsonable({"runs": table.to_dict(orient="records"),
                               "summary": summary.to_dict(orient="records")}))
        return 0
    values = list(pd.unique(table[factor]))
    runs = {v: int((table[factor] == v).sum()) for v in values}
    cells = summary.set_index([factor, "metric"])
    keys = [k for k in HEADLINE_KEYS if k in set(summary["metric"])]
    shown = ",".join(map(str, seeds)) if len(seeds) <= 8 else f"{seeds[0]},...,{seeds[-1]}"
    t = Table(title=f"{cfg.name}: {factor}, mean ± 95% CI over seeds {shown}", title_justify="left")
    t.add_column("metric", no_wrap=True)
    for v in values:
        t.add_column(Text(str(v)), justify="right", no_wrap=True)
    t.add_row(Text("runs (n)"), *[Text(str(runs[v])) for v in values])
    for k in keys:
        t.add_row(Text(k), *[Text(_mean_ci(k, int(cells.loc[(v, k), "n"]), runs[v], cells.loc[(v, k), "mean"],
                                           cells.loc[(v, k), "ci95"])) for v in values])
    console.print(t)
    print_compare_notes(console, table.attrs.get("notes", {}))
    if args.out:
        plot = ", plots/compare.png" if headline_metrics(summary) else ""
        console.print(f"wrote {Path(args.out) / 'compare.csv'}, compare_summary.csv{plot} and one run "
                      f"directory per value and seed (<value>/seed-<s>/) under {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``run`` and ``compare`` commands."""
    r = sub.add_parser(
        "run", help="run an experiment (estimates, scheduling, serving) and print its summary",
        formatter_class=RAW,
        description="Run an experiment: training step estimates, scaling curves, the cluster scheduling "
        "engine and the serving engine, as the file asks.\n\nexample:\n"
        "  cluster-sim run workloads/demo.yaml --set seed=3 --out runs/demo-seed3")
    add_experiment_args(r)
    r.add_argument("--out", metavar="DIR", help="write the run directory (summary.json, parquet tables, "
                   "plots/, report.html) here, atomically")
    r.add_argument("--json", action="store_true", help="print summary.json on stdout and nothing else")
    r.add_argument("--all", action="store_true", help="print every summary key, not only the headline ones")
    r.set_defaults(handler=_cmd_run)

    c = sub.add_parser(
        "compare", help="run an experiment once per value of a config field (or per cell of several)",
        formatter_class=RAW,
        description="Run the experiment once per value of a dotted config field and print the headline "
        "metrics side by side; with --seeds, once per value and seed, and the mean and 95% confidence "
        "interval of each metric over the seeds.\n\nexamples:\n"
        "  cluster-sim compare workloads/demo.yaml --factor policy.training.placement=packed,topology_aware\n"
        "  cluster-sim compare workloads/pool_static_partition.yaml --factor policy.pool=separate,static_partition "
        "--seeds 5")
    add_experiment_args(c)
    c.add_argument("--factor", required=True, action="append", metavar="KEY=V1,V2,...",
                   help="the field and its values; repeat it for the grid of several fields (a small sweep)")
    c.add_argument("--workers", type=int, metavar="N", help="run on N local Dask worker processes "
                   "(as `cluster-sim sweep`; default: one after another in this process)")
    c.add_argument("--seeds", metavar="N|S1,S2,...", help="run every value once per seed: N seeds 0..N-1, or "
                   "the listed seeds; prints mean ± 95%% CI (Student's t) per value")
    c.add_argument("--out", metavar="DIR", help="write compare.csv and one run directory per value here "
                   "(with --seeds also compare_summary.csv, plots/compare.png, DIR/<value>/seed-<s>/)")
    c.add_argument("--json", action="store_true", help="print the table as JSON records and nothing else "
                   "(with --seeds: {\"runs\": [...], \"summary\": [...]})")
    c.set_defaults(handler=_cmd_compare)
