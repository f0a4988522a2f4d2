"""The sweep figure: each metric against the first factor, one line per combination of the
others, the 95% confidence interval as error bars (``cluster-sim sweep --out``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ClusterSimError
from .figure_base import LINE_COLORS, need

__all__ = ["sweep_lines"]


def sweep_lines(cells: pd.DataFrame, factors: Sequence[str], metrics: Sequence[str], *,
                title: str | None = None) -> Figure:
    """Small multiples, one axis per metric: the mean per value of ``factors[0]`` (x, in the
    frame's order) with its interval (``lo``..``hi``) as error bars, a line per combination of
    the other factors.

    Parameters
    ----------
    cells : DataFrame
        As ``experiment.sweep_stats.cell_stats`` returns it: the factor columns, ``metric``,
        ``n``, ``mean``, ``lo``, ``hi``.
    factors : sequence of str
        The sweep's factors, the first on the x axis.
    metrics : sequence of str
        One axis each, in this order (1 to 12).
    """
    df = need(cells, (*factors, "metric", "n", "mean", "lo", "hi"), "a sweep")
    if not factors:
        raise ClusterSimError("cannot plot a sweep: no factor given")
    if not 1 <= len(metrics) <= 12:
        raise ClusterSimError(f"cannot plot a sweep: {len(metrics)} metrics; give 1 to 12")
    absent = [m for m in metrics if m not in set(df["metric"])]
    if absent:
        raise ClusterSimError(f"cannot plot a sweep: no metric {', '.join(absent)} in the cells")
    xf, rest = factors[0], list(factors[1:])
    xs = list(pd.unique(df[xf]))
    series = [()] if not rest else list(dict.fromkeys(zip(*(df[f] for f in rest), strict=True)))
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig = Figure(figsize=(3.8 * ncols, 0.8 + 3.0 * nrows), dpi=110, layout="constrained")
    grid = fig.subplots(nrows, ncols, squeeze=False)
    x = np.arange(len(xs), dtype=float)
    for k, ax in enumerate(grid.ravel()):
        if k >= len(metrics):
            fig.delaxes(ax)
            continue
        sub = df[df["metric"] == metrics[k]]
        for j, combo in enumerate(series):
            rows = sub
            for f, v in zip(rest, combo, strict=True):
                rows = rows[rows[f] == v]
            rows = rows.set_index(xf).reindex(xs)
            mean = rows["mean"].to_numpy(float)
            err = np.vstack([mean - rows["lo"].to_numpy(float), rows["hi"].to_numpy(float) - mean])
            label = ", ".join(f"{f}={v}" for f, v in zip(rest, combo, strict=True)) or None
            shift = (j - (len(series) - 1) / 2) * 0.06  # keep overlapping error bars apart
            ax.errorbar(x + shift, mean, yerr=np.nan_to_num(err), marker="o", capsize=3,
                        color=LINE_COLORS[j % len(LINE_COLORS)], label=label)
        ax.set_xticks(x, [str(v) for v in xs], rotation=20 if len(xs) > 3 else 0, fontsize=8)
        ax.set_xlabel(xf, fontsize=8)
        ax.set_title(metrics[k], fontsize=9)
        ax.grid(True, alpha=0.3)
        if rest and k == 0:
            ax.legend(fontsize=7)
    fig.suptitle(title or "mean and 95% confidence interval over seeds")
    return fig
