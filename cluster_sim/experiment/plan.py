"""``plan``: fleet candidates for one workload, run through the sweep machinery, ranked by cost.

Each candidate (:mod:`.plan_spec`) is a set of config overrides on the workload; each is run once
per seed exactly as :func:`~cluster_sim.experiment.sweep.sweep` runs a cell (same run keys, the
same Parquet store and resume, the same Dask workers). Per candidate the planner reports the
mean ± 95% CI over seeds of the cost per day, the cost per million output tokens and every
objective metric, whether the means meet every objective, the Pareto frontier of cost against
the objective metrics, and the cheapest candidate that meets every objective (docs/planner.md).
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import ExperimentConfig, load_config
from ..errors import ClusterSimError, ConfigError
from .build import training_policies
from .outdir import staged_dir
from .plan_spec import Objective, PlanSpec, candidate_overrides, check_seeds, known_metrics
from .store import to_jsonable
from .sweep import CONNECT_TIMEOUT_S, _check_seeds, _Executor, _Run, _run_batch, _table, run_key
from .sweep_stats import cell_stats
from .sweep_store import ResultStore, RunRecord

__all__ = ["PlanResult", "cheapest_feasible", "fmt_value", "pareto_front", "plan", "rank", "save_plan", "verdict"]

COST = "cost_per_day_usd"
MTOK = "cost_per_mtok_usd"
DAY_S = 86_400.0
TIE_DIGITS = 10
"""Significant digits :func:`pareto_front` compares (float noise below them is a tie)."""


def pareto_front(values: np.ndarray, minimize: Sequence[bool]) -> np.ndarray:
    """Which rows are not dominated.

    Row ``q`` dominates row ``p`` when ``q`` is at least as good in every column and strictly
    better in one (better: lower where ``minimize``, higher elsewhere). Equal rows do not
    dominate each other, so ties are all on the frontier. Values are compared to
    :data:`TIE_DIGITS` significant digits, so floating-point noise (a drained run's cost per day
    off in the 13th digit) does not break a tie. NaN counts as the worst value.

    >>> pareto_front(np.array([[1.0, 0.9], [2.0, 0.95], [2.0, 0.9], [1.0, 0.9]]), [True, False]).tolist()
    [True, True, False, True]
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != len(minimize):
        raise ClusterSimError(f"pareto_front: expected an (n, {len(minimize)}) table, got shape {v.shape}")
    x = np.where(np.asarray(minimize, dtype=bool), v, -v)   # everything "lower is better"
    x = np.where(np.isnan(x), np.inf, x)
    finite = np.isfinite(x)
    x[finite] = [float(f"{t:.{TIE_DIGITS}g}") for t in x[finite]]
    le = (x[:, None, :] <= x[None, :, :]).all(axis=2)      # le[q, p]: q at least as good as p
    lt = (x[:, None, :] < x[None, :, :]).any(axis=2)
    return np.asarray(~(le & lt).any(axis=0), dtype=bool)


def cheapest_feasible(table: pd.DataFrame) -> str | None:
    """The ``candidate`` with ``meets`` and the lowest ``cost_per_day_usd`` (first in order on a tie)."""
    ok = table[table["meets"] & table[COST].notna()]
    if ok.empty:
        return None
    return str(ok.loc[ok[COST].idxmin(), "candidate"])


def _closest(table: pd.DataFrame) -> str | None:
    """Least total relative shortfall over the objectives, then the cheaper."""
    if table.empty:
        return None
    order = table.assign(_c=table[COST].fillna(math.inf)).sort_values(["shortfall", "_c"], kind="stable")
    return str(order.iloc[0]["candidate"])


def fmt_value(key: str, value: float) -> str:
    from ..report.html import format_value

    if key in (COST, MTOK) or key.endswith("cost_usd") or key.endswith("_usd"):
        return "-" if math.isnan(value) else f"${value:,.2f}" if abs(value) < 1000 else f"${value:,.0f}"
    return format_value(key, value)


def verdict(table: pd.DataFrame, objectives: Sequence[Objective]) -> str:
    """The one line: ``cheapest feasible: NAME (...)``, or none and the closest candidate."""
    pick = cheapest_feasible(table)
    if pick is not None:
        row = table.set_index("candidate").loc[pick]
        met = ", ".join(f"{o.metric} {fmt_value(o.metric, float(row[o.metric]))} {o.op} {o.target:g}"
                        for o in objectives)
        return f"cheapest feasible: {pick} ({fmt_value(COST, float(row[COST]))}/day; {met})"
    near = _closest(table)
    if near is None:
        return "cheapest feasible: none (no candidate ran)"
    row = table.set_index("candidate").loc[near]
    missed = "; ".join(f"{o.metric} {fmt_value(o.metric, float(row[o.metric]))}, needs {o.op} {o.target:g}"
                       for o in objectives if not o.met(float(row[o.metric])))
    return (f"cheapest feasible: none of the {len(table)} candidates meets every objective; "
            f"closest: {near} ({missed})")


@dataclass
class PlanResult:
    """What :func:`plan` returns.

    Attributes
    ----------
    table : DataFrame
        One row per candidate in plan order: ``candidate``, ``runs``, ``failed``, then per metric
        (``cost_per_day_usd``, ``cost_per_mtok_usd`` with services, each objective metric) its mean
        and ``<metric>.ci95``, then ``meets``, ``shortfall``, ``pareto``.
    runs : DataFrame
        One row per run (candidate x seed), as :attr:`SweepResult.runs` with the derived keys.
    cells : DataFrame
        :func:`~cluster_sim.experiment.sweep_stats.cell_stats` of the metrics per candidate.
    objectives : list of Objective
    metrics : list of str
    pick : str or None
        The cheapest candidate that meets every objective.
    line : str
        :func:`verdict`.
    overrides : dict
        Each candidate's config overrides.
    """

    table: pd.DataFrame
    runs: pd.DataFrame
    cells: pd.DataFrame
    objectives: list[Objective]
    metrics: list[str]
    pick: str | None
    line: str
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    executed: int = 0
    skipped: int = 0
    failed: int = 0


def _where_metric(metric: str, known: list[str]) -> str:
    near = difflib.get_close_matches(metric, known, n=3)
    hint = f"nearest: {', '.join(near)}" if near else f"known: {', '.join(known[:12])}, ..."
    return f"objectives.{metric}: the runs do not produce this metric ({hint})"


def _load(source: str, overrides: Mapping[str, Any], name: str, seed: int) -> ExperimentConfig:
    try:
        cfg = load_config(source, overrides={**overrides, "seed": seed})
        if cfg.training is not None:
            training_policies(cfg.policy.training)
        return cfg
    except ClusterSimError as exc:
        raise type(exc)(f"candidate {name}, seed {seed}: {str(exc).removeprefix('<config>: ')}") from None


def plan_runs(spec: PlanSpec, *, seeds: int | Sequence[int] | None = None,
              overrides: Mapping[str, Any] | None = None
              ) -> tuple[ExperimentConfig, dict[str, dict[str, Any]], list[_Run]]:
    """Everything :func:`plan` checks before any run: the workload with the common overrides,
    each candidate's overrides, and one validated config per (candidate, seed), in plan order
    (``cluster-sim validate`` of a plan file stops here). Raises :class:`ConfigError` as
    :func:`plan` documents."""
    seed_spec = spec.seeds if seeds is None else seeds
    check_seeds(seed_spec)
    seed_list = _check_seeds(seed_spec)
    common = {**spec.overrides, **dict(overrides or {})}
    if "seed" in common:
        raise ConfigError("set: the seed is set by seeds:/--seeds; do not override it")
    base = load_config(spec.experiment, overrides=common)
    known = known_metrics(base)
    for o in spec.objectives:
        if o.metric not in known:
            raise ConfigError(_where_metric(o.metric, known))
    per_cand = {c.name: candidate_overrides(c.fields, base, f"candidates[{c.name}]") for c in spec.candidates}
    batch = []
    for i, c in enumerate(spec.candidates):
        for s in seed_list:
            cfg = _load(spec.experiment, {**common, **per_cand[c.name]}, c.name, s)
            batch.append(_Run(i, s, cfg, run_key(cfg, s), {"candidate": c.name}))
    return base, per_cand, batch


def plan(spec: PlanSpec, *, seeds: int | Sequence[int] | None = None, workers: int | None = None,
         scheduler: str | None = None, store: str | os.PathLike[str] | None = None,
         overrides: Mapping[str, Any] | None = None, connect_timeout: float = CONNECT_TIMEOUT_S,
         progress: Callable[[int, int, int], None] | None = None) -> PlanResult:
    """Run every candidate of ``spec`` once per seed and rank them.

    Parameters
    ----------
    spec : PlanSpec
        From :func:`~cluster_sim.experiment.plan_spec.load_plan_file`.
    seeds : int or sequence of int, optional
        Overrides ``spec.seeds``.
    workers, scheduler, store, connect_timeout, progress
        As :func:`~cluster_sim.experiment.sweep.sweep` takes them.
    overrides : mapping, optional
        ``--set`` overrides for every run, after the plan file's ``set:``.

    Raises
    ------
    ConfigError
        Before any run: seeds <= 0, an objective metric the workload does not produce, a bad
        candidate field or an override that does not validate (the candidate and seed named).
    """
    base, per_cand, batch = plan_runs(spec, seeds=seeds, overrides=overrides)
    names = [c.name for c in spec.candidates]
    res_store = ResultStore(store).open() if store is not None else None
    records: dict[str, RunRecord] = {}
    counts = {"executed": 0, "skipped": 0}
    with _Executor(scheduler, workers, connect_timeout) as ex:
        _run_batch(batch, ex, res_store, records, counts, progress)
    runs = _derive(_table(batch, records, [{"candidate": n} for n in names], ["candidate"]))
    metrics = [COST, *([MTOK] if base.inference is not None else [])]
    metrics += [m for m in dict.fromkeys(o.metric for o in spec.objectives) if m not in metrics]
    cells = cell_stats(runs, ["candidate"], metrics)
    table = rank(_candidate_table(runs, cells, names, metrics), spec.objectives)
    return PlanResult(table=table, runs=runs, cells=cells, objectives=list(spec.objectives), metrics=metrics,
                      pick=cheapest_feasible(table), line=verdict(table, spec.objectives), overrides=per_cand,
                      executed=counts["executed"], skipped=counts["skipped"],
                      failed=int((runs["status"] != "ok").sum()))


def _derive(runs: pd.DataFrame) -> pd.DataFrame:
    """Per run: ``cost_per_day_usd = cost_usd / sim.end_s x 86,400`` and ``cost_per_mtok_usd``."""
    out = runs.copy()
    cost = out["cost_usd"] if "cost_usd" in out.columns else pd.Series(np.nan, index=out.index)
    end = out["sim.end_s"] if "sim.end_s" in out.columns else pd.Series(np.nan, index=out.index)
    end = end.where(end > 0)
    out[COST] = cost.astype(float) / end.astype(float) * DAY_S
    if "inference.cost_per_mtok_usd" in out.columns:
        out[MTOK] = out["inference.cost_per_mtok_usd"].astype(float)
    return out


def _candidate_table(runs: pd.DataFrame, cells: pd.DataFrame, names: list[str], metrics: list[str]) -> pd.DataFrame:
    by = cells.set_index(["cell", "metric"])
    rows = []
    for n in names:
        mine = runs[runs["candidate"] == n]
        row: dict[str, Any] = {"candidate": n, "runs": int((mine["status"] == "ok").sum()),
                               "failed": int((mine["status"] != "ok").sum())}
        for m in metrics:
            label = f"candidate={n}"
            row[m] = float(by.loc[(label, m), "mean"]) if (label, m) in by.index else math.nan
            row[f"{m}.ci95"] = float(by.loc[(label, m), "ci95"]) if (label, m) in by.index else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def rank(table: pd.DataFrame, objectives: Sequence[Objective]) -> pd.DataFrame:
    """Add ``meets`` (every objective met by the mean), ``shortfall`` (summed relative misses) and
    ``pareto`` (:func:`pareto_front` of cost per day and the objective metrics) to a table with
    a ``candidate`` column, ``cost_per_day_usd`` and one column per objective metric."""
    out = table.copy()
    vals = {o.metric: out[o.metric].to_numpy(dtype=float) for o in objectives}
    out["meets"] = [all(o.met(float(vals[o.metric][i])) for o in objectives) for i in range(len(out))]
    out["shortfall"] = [sum(o.shortfall(float(vals[o.metric][i])) for o in objectives) for i in range(len(out))]
    axes = [COST, *dict.fromkeys(o.metric for o in objectives)]
    lower = [True] + [next(o.op == "<=" for o in objectives if o.metric == m) for m in axes[1:]]
    ran = out[COST].notna().to_numpy()
    front = pareto_front(out[axes].to_numpy(dtype=float), lower) if len(out) else np.zeros(0, bool)
    out["pareto"] = front & ran
    return out


def save_plan(res: PlanResult, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``plan.csv`` (the candidate table, the overrides as JSON), ``runs.parquet`` (every
    run) and ``plots/pareto.png`` (:func:`~cluster_sim.report.plan_plots.pareto_plot`) atomically."""
    from ..report.figure_base import save_png
    from ..report.plan_plots import pareto_plot

    with staged_dir(out_dir, "plan") as tmp:
        table = res.table.copy()
        table["overrides"] = [json.dumps(to_jsonable(res.overrides.get(c, {})), sort_keys=True, default=str)
                              for c in table["candidate"]]
        table.to_csv(tmp / "plan.csv", index=False)
        runs = res.runs.copy()
        runs["candidate"] = runs["candidate"].astype(str)
        runs.to_parquet(tmp / "runs.parquet", index=False)
        objs = [(o.metric, o.op, o.target) for o in res.objectives]
        save_png(pareto_plot(res.table, objs, pick=res.pick, title=res.line), tmp / "plots" / "pareto.png")
    return Path(out_dir)
