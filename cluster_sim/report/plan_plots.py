"""The planner's figure: cost per day against each objective metric, one point per candidate
with its 95% interval, the Pareto frontier highlighted, the objective as a dashed line and the
cheapest feasible candidate annotated (``cluster-sim plan --out``)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ClusterSimError
from .figure_base import LINE_COLORS, need

__all__ = ["pareto_plot"]

COST = "cost_per_day_usd"


def pareto_plot(table: pd.DataFrame, objectives: Sequence[tuple[str, str, float]], *,
                pick: str | None = None, title: str | None = None) -> Figure:
    """One axis per objective metric (1 to 6): x the cost per day, y the metric.

    Parameters
    ----------
    table : DataFrame
        As :attr:`~cluster_sim.experiment.plan.PlanResult.table`: ``candidate``,
        ``cost_per_day_usd`` (and ``.ci95``), each metric (and ``.ci95``), ``meets``, ``pareto``.
    objectives : sequence of (metric, op, target)
        ``op`` is ``">="`` or ``"<="``; the target is drawn as a dashed line.
    pick : str, optional
        The candidate to annotate (the cheapest feasible one).
    """
    metrics = list(dict.fromkeys(m for m, _, _ in objectives))
    df = need(table, ("candidate", COST, "meets", "pareto", *metrics), "a plan")
    if not 1 <= len(metrics) <= 6:
        raise ClusterSimError(f"cannot plot a plan: {len(metrics)} objective metrics; give 1 to 6")
    fig = Figure(figsize=(4.6 * len(metrics), 4.2), dpi=110, layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    x = df[COST].to_numpy(float)
    xe = np.nan_to_num(df.get(f"{COST}.ci95", pd.Series(0.0, index=df.index)).to_numpy(float))
    front = df["pareto"].to_numpy(bool)
    ok = df["meets"].to_numpy(bool)
    for ax, m in zip(axes, metrics, strict=True):
        y = df[m].to_numpy(float)
        ye = np.nan_to_num(df.get(f"{m}.ci95", pd.Series(0.0, index=df.index)).to_numpy(float))
        ax.errorbar(x, y, xerr=xe, yerr=ye, fmt="none", ecolor="#999999", elinewidth=0.8, capsize=2)
        ax.scatter(x[~front], y[~front], color="#bbbbbb", s=28, label="dominated", zorder=2)
        ax.scatter(x[front & ~ok], y[front & ~ok], color=LINE_COLORS[1], s=40, label="frontier, infeasible",
                   zorder=3)
        ax.scatter(x[front & ok], y[front & ok], color=LINE_COLORS[0], s=46, label="frontier, feasible",
                   zorder=3)
        order = np.argsort(x[front], kind="stable")
        ax.plot(x[front][order], y[front][order], color=LINE_COLORS[0], lw=1.0, alpha=0.6, zorder=1)
        for op, target in ((o, t) for mm, o, t in objectives if mm == m):
            ax.axhline(target, color="#444444", ls="--", lw=0.9, label=f"objective {op} {target:g}")
        _labels(ax, df["candidate"].astype(str).tolist(), x, y, pick)
        _limits(ax, y, [t for mm, _, t in objectives if mm == m])
        ax.set_xlabel("cost per day (USD)", fontsize=8)
        ax.set_ylabel(m, fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6.5, loc="best")
    head = "plan: cost per day vs the objectives (mean ± 95% CI over seeds)"
    width = int(14 * 4.6 * len(metrics))  # characters of 8-point text across the figure
    fig.suptitle(head + ("\n" + textwrap.fill(title, width) if title else ""), fontsize=8)
    return fig


def _labels(ax: object, names: list[str], x: np.ndarray, y: np.ndarray, pick: str | None) -> None:
    """One label per distinct point: coincident candidates share it (``a; b`` or ``a (+3 equal)``)."""
    groups: dict[tuple[float, float], list[str]] = {}
    for name, xi, yi in zip(names, x, y, strict=True):
        if np.isfinite(xi) and np.isfinite(yi):
            groups.setdefault((float(f"{xi:.6g}"), float(f"{yi:.6g}")), []).append(name)
    for (xi, yi), group in groups.items():
        text = "; ".join(group) if len(group) <= 2 else f"{group[0]} (+{len(group) - 1} equal)"
        bold = pick in group
        ax.annotate(("cheapest feasible: " if bold else "") + text, (xi, yi),  # type: ignore[attr-defined]
                    textcoords="offset points", xytext=(4, 4), fontsize=8 if bold else 6.5,
                    fontweight="bold" if bold else "normal")


def _limits(ax: object, y: np.ndarray, targets: list[float]) -> None:
    """The y range of the means and targets (padded), so a wide interval does not flatten the points."""
    vals = np.array([*y[np.isfinite(y)], *targets], dtype=float)
    if len(vals):
        lo, hi = float(vals.min()), float(vals.max())
        pad = 0.15 * (hi - lo) if hi > lo else 0.1 * (abs(hi) or 1.0)
        ax.set_ylim(lo - pad, hi + pad)  # type: ignore[attr-defined]
