"""``compare``: one run per value of a config field, side by side (``cluster-sim compare``).

With ``seeds``, one run per (value, seed) pair, and :func:`summarize_seeds` aggregates them per
value: the number of runs, the mean and the 95% confidence half-width of each metric (Student's
t, :func:`t_quantile_975`).

A variant is the experiment exactly as ``run --set FACTOR=VALUE`` would load it: the file's
own mapping (plus the caller's overrides) with the factor as one more override, validated by
:func:`~cluster_sim.config.load_config`. Never a dump of the validated model: that would mark
every default as set by the user, so ``policy.training.scheduler`` presets (whose stages and
backfill apply only where the file leaves them unset) would silently stop applying.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import ExperimentConfig, load_config
from ..errors import ClusterSimError, ConfigError
from ..report.files import safe_filename
from ..report.html_report import write_sweep_report
from ..report.plots import compare_bars, save_png
from .build import training_policies
from .outdir import MARKER, check_out_dir, staged_dir
from .run import HEADLINE_KEYS, simulate
from .store import write_run

__all__ = ["compare", "headline_metrics", "run_dir_names", "summarize_seeds", "t_quantile_975",
           "variant_source"]

Source = ExperimentConfig | str | os.PathLike[str] | Mapping[str, Any]


NOTES = "__notes__"  # a row's notes travel beside its summary until the table is built


def variant_source(cfg: Source) -> str | os.PathLike[str] | Mapping[str, Any]:
    """What ``load_config`` re-reads for each variant: a file path or mapping as given, or, for an
    already validated config, only the fields the user set (``exclude_unset``), so defaults stay
    defaults and presets keep applying."""
    if isinstance(cfg, ExperimentConfig):
        return cfg.model_dump(mode="python", exclude_unset=True)
    return cfg


def run_dir_names(values: Sequence[Any], reserved: Sequence[str] = ()) -> list[str]:
    """One safe, distinct folder name per compared value (``a/b`` -> ``a_b``, repeats get ``-2``),
    never ``compare.csv``, ``report.html``, the marker file or a ``reserved`` name."""
    used = {"compare.csv", "report.html", MARKER, *reserved}
    out = []
    for v in values:
        base = safe_filename(v, default="value")
        name, k = base, 2
        while name in used:
            name, k = f"{base}-{k}", k + 1
        used.add(name)
        out.append(name)
    return out


def _where(factor: str, value: Any, seed: int | None) -> str:
    return f"--factor {factor}={value}" + ("" if seed is None else f", seed {seed}")


def _load_variant(source: Any, overrides: Mapping[str, Any], factor: str, value: Any,
                  seed: int | None = None) -> ExperimentConfig:
    """The variant exactly as ``run --set seed=SEED --set FACTOR=VALUE`` loads it (seed before factor)."""
    seeded = dict(overrides) if seed is None else {**overrides, "seed": seed}
    try:
        cfg = load_config(source, overrides={**seeded, factor: value})
        if cfg.training is not None:
            training_policies(cfg.policy.training)  # a bad scheduler or stage name fails before any run
        return cfg
    except ClusterSimError as exc:
        msg = str(exc).removeprefix("<config>: ")
        raise type(exc)(f"{_where(factor, value, seed)}: {msg}") from None


def _check_seeds(seeds: Sequence[int], factor: str, values: Sequence[Any],
                 overrides: Mapping[str, Any]) -> list[int]:
    out = list(seeds)
    if not out:
        raise ConfigError("--seeds: give at least one seed")
    for s in out:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ConfigError(f"--seeds: {s!r} is not a seed (an integer >= 0)")
    dup = next((s for i, s in enumerate(out) if s in out[:i]), None)
    if dup is not None:
        raise ConfigError(f"--seeds: seed {dup} is given twice")
    if factor == "seed":
        raise ConfigError("--seeds: the factor is the seed itself; drop --seeds or choose another factor")
    again = next((v for i, v in enumerate(values) if v in values[:i]), None)
    if again is not None:  # its runs would count twice in the mean and narrow the interval
        raise ConfigError(f"--factor {factor}: value {again} is given twice; with --seeds give each value once")
    if "seed" in overrides:
        raise ConfigError(f"--seeds: --set seed={overrides['seed']} also sets the seed; give one of the two")
    return [int(s) for s in out]


def compare(cfg: Source, factor: str, values: Sequence[Any], *,
            seeds: Sequence[int] | None = None,
            overrides: Mapping[str, Any] | None = None,
            out_dir: str | os.PathLike[str] | None = None,
            progress: Callable[[float, float], None] | None = None) -> pd.DataFrame:
    """Run ``cfg`` once per value of the dotted ``factor`` (and per seed); headline metrics first.

    Each row's summary equals ``simulate(load_config(file, overrides={**overrides, factor: value}))``,
    i.e. ``cluster-sim run FILE --set FACTOR=VALUE``, wall-clock keys aside; with ``seeds``,
    ``overrides={**overrides, "seed": seed, factor: value}`` (``run --set seed=S --set FACTOR=VALUE``).

    Parameters
    ----------
    cfg : ExperimentConfig, path or mapping
        The experiment; a path or mapping is re-read per variant exactly as ``run --set`` reads it.
    factor : str
        Dotted config path, e.g. ``policy.training.scheduler``.
    values : sequence
        Values of the factor (strings are parsed as ``--set`` values are).
    seeds : sequence of int, optional
        Run every value once per seed (distinct integers >= 0); the table gains a ``seed`` column
        after the factor and :func:`summarize_seeds` aggregates it. ``None``: one run per value
        with the experiment's own seed.
    overrides : mapping, optional
        Further ``--set`` overrides applied to every variant (before the seed and the factor).
    out_dir : path, optional
        Write each run to ``out_dir/<value>/`` (with seeds ``out_dir/<value>/seed-<s>/``; names
        made safe by :func:`~cluster_sim.report.files.safe_filename`) and the table to
        ``out_dir/compare.csv``; with seeds also ``compare_summary.csv`` (:func:`summarize_seeds`)
        and ``plots/compare.png`` (:func:`~cluster_sim.report.plots.compare_bars` of
        :func:`headline_metrics`); and an index ``report.html`` (the table, the plot, a link to each
        run's report: :func:`~cluster_sim.report.html_report.write_sweep_report`). All at once when
        every run is done (see
        :mod:`~cluster_sim.experiment.outdir`).
    progress : callable, optional
        ``progress(done, total)`` with ``total`` the number of runs (values x seeds).

    Raises
    ------
    ConfigError
        No value, a bad seed list, or a variant that does not validate (its value and seed named).
    ClusterSimError
        A run that fails, re-raised with its value and seed named; nothing is written.

    >>> compare(cfg, "policy.training.placement", ["packed", "topology_aware"])  # doctest: +SKIP
    >>> runs = compare(cfg, "policy.pool", ["separate", "static_partition"], seeds=range(5))  # doctest: +SKIP
    >>> summarize_seeds(runs, "policy.pool")  # doctest: +SKIP
    """
    if not values:
        raise ConfigError(f"--factor {factor}: give at least one value")
    overrides = overrides or {}
    seed_list = None if seeds is None else _check_seeds(seeds, factor, list(values), overrides)
    if out_dir is not None:
        check_out_dir(out_dir)  # before hours of simulation, not after
    source = variant_source(cfg)
    per_seed: list[int | None] = [None] if seed_list is None else list(seed_list)
    pairs = [(v, s) for v in values for s in per_seed]
    runs = [_load_variant(source, overrides, factor, v, s) for v, s in pairs]  # all validated before any run
    if seed_list is None:
        names = run_dir_names(values)
    else:
        per_value = run_dir_names(values, reserved=("compare_summary.csv", "plots"))
        names = [f"{per_value[i // len(seed_list)]}/seed-{s}" for i, (_, s) in enumerate(pairs)]

    def rows(root: Path | None) -> list[dict[str, Any]]:
        return [_row(i, factor, v, s, c, None if root is None else root / names[i], progress, len(pairs))
                for i, ((v, s), c) in enumerate(zip(pairs, runs, strict=True))]

    if out_dir is None:
        return _table(factor, rows(None), seeded=seed_list is not None)
    with staged_dir(out_dir, "compare") as tmp:
        df = _table(factor, rows(tmp), seeded=seed_list is not None)
        df.to_csv(tmp / "compare.csv", index=False)
        links = {"compare.csv": "compare.csv"}
        plots: list[str] = []
        if seed_list is not None:
            summary = summarize_seeds(df, factor)
            summary.to_csv(tmp / "compare_summary.csv", index=False)
            links["compare_summary.csv"] = "compare_summary.csv"
            metrics = headline_metrics(summary)
            if metrics:
                save_png(compare_bars(summary, factor, metrics), tmp / "plots" / "compare.png")
                plots.append("plots/compare.png")
        write_sweep_report(tmp, df, plots, title=f"compare {factor}", factors=[factor], headline=HEADLINE_KEYS,
                           runs=names, links=links)
    return df


def _row(i: int, factor: str, value: Any, seed: int | None, run_cfg: ExperimentConfig, folder: Path | None,
         progress: Callable[[float, float], None] | None, total: int) -> dict[str, Any]:
    if progress is not None:
        progress(i, total)
    try:
        res = simulate(run_cfg)
    except ClusterSimError as exc:
        raise type(exc)(f"{_where(factor, value, seed)}: {exc}") from exc
    except Exception as exc:  # a bug, not bad input: keep its traceback, but say which run it was
        add_note = getattr(exc, "add_note", None)  # Python >= 3.11
        if add_note is not None:
            add_note(f"while running {_where(factor, value, seed)}")
        raise
    if folder is not None:
        folder.parent.mkdir(parents=True, exist_ok=True)  # <value>/ of <value>/seed-<s>/
        write_run(res, folder)
    if progress is not None and i == total - 1:
        progress(total, total)
    seed_col = {} if seed is None else {"seed": seed}
    return {factor: value, **seed_col, **res.summary, NOTES: list(res.notes)}


def _table(factor: str, rows: list[dict[str, Any]], *, seeded: bool = False) -> pd.DataFrame:
    """Numeric summary columns, headline keys first; each variant's notes in ``df.attrs["notes"]``
    (``{value: [note, ...]}``, with seeds ``{"value, seed s": [...]}``), so a warning of one run is
    not lost in the table."""
    key = (lambda r: f"{r[factor]}, seed {r['seed']}") if seeded else (lambda r: str(r[factor]))
    notes = {key(r): r.pop(NOTES) for r in rows}
    df = pd.DataFrame(rows)
    lead = [factor, "seed"] if seeded else [factor]
    numeric = [c for c in df.columns if c not in lead and pd.api.types.is_numeric_dtype(df[c])]
    order = [k for k in HEADLINE_KEYS if k in numeric] + [c for c in numeric if c not in HEADLINE_KEYS]
    out = df[[*lead, *order]]
    out.attrs["notes"] = notes
    return out


# ---- seeds: mean and 95% confidence interval --------------------------------------------------
# Two-sided 95% critical values t_{0.975, dof} of Student's t for dof 1..30, three decimals, as in
# the NIST/SEMATECH e-Handbook of Statistical Methods, section 1.3.6.7.2 ("Critical values of the
# Student's t distribution"); any statistics table gives the same numbers.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
_Z975 = 1.959963984540054  # the standard normal's 0.975 quantile


def t_quantile_975(dof: int) -> float:
    """Student's t 0.975 quantile with ``dof`` degrees of freedom (the 95% CI multiplier).

    The table above for dof <= 30; beyond, the Cornish-Fisher expansion of t in powers of 1/dof
    around the normal quantile z (Abramowitz & Stegun 26.7.5, four terms), which matches the
    tables to the third decimal there (t_{0.975,60} = 2.000, t_{0.975,120} = 1.980) and tends
    to z = 1.960.

    >>> t_quantile_975(4), t_quantile_975(9)
    (2.776, 2.262)
    """
    if isinstance(dof, bool) or not isinstance(dof, (int, np.integer)) or dof < 1:
        raise ClusterSimError(f"t quantile: degrees of freedom must be an integer >= 1, got {dof!r}")
    if dof <= len(_T975):
        return _T975[dof - 1]
    z, n = _Z975, float(dof)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / n + g2 / n**2 + g3 / n**3 + g4 / n**4


def summarize_seeds(df: pd.DataFrame, factor: str) -> pd.DataFrame:
    """Per value of ``factor`` and metric: runs, mean and 95% confidence half-width over the seeds.

    Parameters
    ----------
    df : DataFrame
        The per-run table of ``compare(..., seeds=...)``: ``factor``, ``seed`` and numeric metric
        columns, one row per (value, seed).
    factor : str
        The factor column.

    Returns
    -------
    DataFrame
        Long format, one row per (value, metric) in the order of ``df``: ``factor``, ``metric``,
        ``n`` (runs where the metric is a number; a run without it, e.g. a percentile of no
        finished job, does not count), ``mean`` and ``ci95``, the half-width
        ``t_{0.975, n-1} * s / sqrt(n)`` with ``s`` the sample standard deviation (NaN when n < 2).

    >>> runs = pd.DataFrame({"p": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1], "x": [1.0, 3.0, 5.0, 5.0]})
    >>> summarize_seeds(runs, "p")[["p", "n", "mean", "ci95"]].round(3).values.tolist()
    [['a', 2, 2.0, 12.706], ['b', 2, 5.0, 0.0]]
    """
    if factor not in df.columns:
        raise ClusterSimError(f"summarize_seeds: no column {factor!r} in the table")
    metrics = [c for c in df.columns if c not in (factor, "seed") and pd.api.types.is_numeric_dtype(df[c])]
    out: list[dict[str, Any]] = []
    for value in pd.unique(df[factor]):
        group = df[df[factor] == value]
        for m in metrics:
            x = group[m].to_numpy(dtype=float)
            x = x[np.isfinite(x)]
            n = len(x)
            mean = float(x.mean()) if n else math.nan
            ci = t_quantile_975(n - 1) * float(x.std(ddof=1)) / math.sqrt(n) if n >= 2 else math.nan
            out.append({factor: value, "metric": m, "n": n, "mean": mean, "ci95": ci})
    return pd.DataFrame(out, columns=[factor, "metric", "n", "mean", "ci95"])


def headline_metrics(summary: pd.DataFrame, limit: int = 6) -> list[str]:
    """The first ``limit`` headline metrics of a :func:`summarize_seeds` frame that have a mean,
    wall-clock and event counts (``sim.*``) left out: what ``plots/compare.png`` shows."""
    have = set(summary.loc[summary["mean"].notna(), "metric"])
    return [k for k in HEADLINE_KEYS if k in have and not k.startswith("sim.")][:limit]
