"""Per-cell statistics of a sweep: the mean over seeds and its 95% confidence interval.

* A mean-like metric (a rate, a utilisation, a count) gets the Student-t interval
  ``mean ± t_{0.975, n-1} * s / sqrt(n)`` (``s`` the sample standard deviation, ddof 1), as
  :func:`~cluster_sim.experiment.comparison.summarize_seeds` computes it.
* A percentile metric (a key ending in ``.pNN``, e.g. ``inference.ttft_s.p99``) is far from
  normal over seeds (heavy right tail), so its interval is the bootstrap percentile interval
  (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13): resample the seeds'
  values with replacement ``N_BOOT`` times, take the mean of each resample, and report the 2.5%
  and 97.5% quantiles of those means. The half-width is the larger side, ``max(mean - lo, hi - mean)``.

Both need n >= 2 (NaN below). The bootstrap draws from its own fixed-seed generator, so the
same values give the same interval.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .comparison import t_quantile_975

__all__ = ["BOOT_SEED", "N_BOOT", "bootstrap_ci", "cell_stats", "is_percentile", "mean_ci", "within_target"]

N_BOOT = 2000
"""Bootstrap resamples: Efron & Tibshirani (1993, sec. 13.3) advise 1000 or more for percentile
intervals; 2000 keeps the 2.5% quantile's Monte-Carlo error well under its sampling error."""
BOOT_SEED = 20240601
"""The bootstrap generator's seed (any fixed value: it makes the interval reproducible)."""

_PERCENTILE = re.compile(r"\.p\d+(\.\d+)?$")


def is_percentile(metric: str) -> bool:
    """A percentile key (``*.p50``, ``*.p99``, ``*.p99.9``): its interval is bootstrapped.

    >>> is_percentile("inference.ttft_s.p99"), is_percentile("training.mfu")
    (True, False)
    """
    return bool(_PERCENTILE.search(metric))


def bootstrap_ci(x: Sequence[float] | np.ndarray, stat: Callable[[np.ndarray], float] = np.mean, *,
                 n_boot: int = N_BOOT, seed: int = BOOT_SEED, level: float = 0.95) -> tuple[float, float]:
    """Bootstrap percentile interval ``(lo, hi)`` of ``stat`` over the values ``x`` (NaN if < 2 values).

    >>> lo, hi = bootstrap_ci([1.0, 2.0, 3.0, 4.0])
    >>> 1.0 <= lo < 2.5 < hi <= 4.0
    True
    """
    a = np.asarray(x, dtype=float)
    if len(a) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    stats = np.apply_along_axis(stat, 1, a[idx]) if stat is not np.mean else a[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(stats, tail)), float(np.quantile(stats, 1.0 - tail))


def mean_ci(metric: str, x: Sequence[float] | np.ndarray) -> dict[str, float | int | str]:
    """``n``, ``mean``, ``lo``, ``hi``, ``ci95`` (half-width) and ``method`` of the finite values ``x``."""
    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    n = len(a)
    mean = float(a.mean()) if n else math.nan
    if is_percentile(metric):
        lo, hi = bootstrap_ci(a)
        half = max(mean - lo, hi - mean) if n >= 2 else math.nan
        return {"n": n, "mean": mean, "lo": lo, "hi": hi, "ci95": half, "method": "bootstrap"}
    half = t_quantile_975(n - 1) * float(a.std(ddof=1)) / math.sqrt(n) if n >= 2 else math.nan
    return {"n": n, "mean": mean, "lo": mean - half, "hi": mean + half, "ci95": half, "method": "t"}


def within_target(mean: float, half: float, target: float) -> bool:
    """The interval's half-width is within ``target`` (a fraction) of the mean's magnitude.

    A zero-width interval always is (e.g. a metric that does not vary with the seed, mean 0
    included); an undefined one (n < 2) never is.

    >>> within_target(100.0, 4.0, 0.05), within_target(100.0, 6.0, 0.05), within_target(0.0, 0.0, 0.05)
    (True, False, True)
    """
    if not math.isfinite(half):
        return False
    return half == 0.0 or half <= target * abs(mean)


def cell_stats(runs: pd.DataFrame, factors: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """One row per (cell, metric), cells in the order of ``runs``: the factor columns, ``cell``
    (``"a=x, b=1"``), ``metric``, ``n``, ``mean``, ``lo``, ``hi``, ``ci95``, ``method``.

    Only runs with ``status == "ok"`` and a finite value count (``n``).
    """
    ok = runs[runs["status"] == "ok"] if "status" in runs.columns else runs
    cols = [*factors, "cell", "metric", "n", "mean", "lo", "hi", "ci95", "method"]
    out = []
    for label in pd.unique(runs["cell"]):
        first = runs[runs["cell"] == label].iloc[0]
        group = ok[ok["cell"] == label]
        for m in metrics:
            x = group[m].to_numpy(dtype=float) if m in group.columns else np.array([])
            out.append({**{f: first[f] for f in factors}, "cell": label, "metric": m, **mean_ci(m, x)})
    return pd.DataFrame(out, columns=cols)
