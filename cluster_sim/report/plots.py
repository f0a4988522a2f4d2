"""Figures of a run: each function takes DataFrames or dicts and returns a matplotlib ``Figure``.

No engine imports and no pyplot state: figures are built with :class:`matplotlib.figure.Figure`
and rendered to PNG by the Agg renderer, so they work headless, in notebooks (``display(fig)``)
and in parallel sweeps, and never change the user's pyplot backend.

Inputs (columns are SI units, named with their unit):

* step breakdowns: ``{job: {component: seconds}}``;
* scaling curves: ``{label: DataFrame[cards, linear_speedup, mfu]}``;
* ``timeline``: time-weighted levels, wide, one row per time bin (the cluster engine's): ``time_s``
  plus level columns (``allocated_cards``, ``busy_cards``, ``available_cards``, ``queued_jobs``;
  ``kv_occupancy[.<pool>]`` in 0-1 for serving);
* ``jobs``: one row per training job with ``jct_s`` (or ``submit_s`` and ``finish_s``);
* ``requests``: one row per request with ``ttft_s``, ``tpot_s``, ``e2e_s`` (``arrival_s`` for the load);
* ``pool_timeline`` / ``pool_events``: a shared card ledger's mean cards per state per bin, and
  the broker's reclaims and lends (:func:`pool_day`, in :mod:`.pool_plots`, re-exported here).

The shared helpers (figure factory, input checks, time axis, PNG output) are in
:mod:`.figure_base`.

>>> fig = breakdown({"pretrain": {"compute": 6.0, "dp_comm": 1.0, "pp_bubble": 0.5}})
>>> fig.axes[0].get_xlabel()
'seconds per optimizer step'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator, PercentFormatter

from ..errors import ClusterSimError
from .figure_base import LINE_COLORS, need, new_figure, png_bytes, save_png, time_axis
from .pool_plots import POOL_COLORS, pool_day

__all__ = [
    "COMPONENT_COLORS",
    "POOL_COLORS",
    "breakdown",
    "compare_bars",
    "goodput_vs_rate",
    "jct_cdf",
    "kv_occupancy",
    "latency_cdf",
    "png_bytes",
    "pool_day",
    "queue_length",
    "save_png",
    "scaling",
    "utilization",
]

# Fixed colours so the same component looks the same in every figure.
COMPONENT_COLORS: dict[str, str] = {
    "compute": "#1f77b4",
    "memory_bound": "#9ecae1",
    "tp_comm": "#ff7f0e",
    "cp_comm": "#fdae6b",
    "ep_comm": "#e6550d",
    "pp_bubble": "#969696",
    "pp_p2p": "#bcbddc",
    "dp_comm": "#d62728",
    "optimizer": "#2ca02c",
}
_LABELS = {
    "compute": "compute (GEMM)", "memory_bound": "memory-bound kernels", "tp_comm": "TP comm",
    "cp_comm": "CP comm", "ep_comm": "EP all-to-all", "pp_bubble": "pipeline bubble",
    "pp_p2p": "PP send/recv", "dp_comm": "DP grad sync (exposed)", "optimizer": "optimizer",
}


# ---- training performance -------------------------------------------------------------------
def breakdown(
    breakdowns: Mapping[str, Mapping[str, float]],
    *,
    mfu: Mapping[str, float] | None = None,
    title: str = "Training step time breakdown",
) -> Figure:
    """Stacked horizontal bar per job: exposed seconds by component, labelled with % and MFU.

    Parameters
    ----------
    breakdowns : mapping job name -> {component: seconds}
        Components are exposed (non-overlapped) time, so each bar's length is the step time.
    mfu : mapping job name -> MFU (0-1), optional
        Written after each bar.
    """
    if not breakdowns:
        raise ClusterSimError("cannot plot a breakdown: no training jobs")
    jobs = list(breakdowns)
    comps: list[str] = [c for c in COMPONENT_COLORS if any(c in b for b in breakdowns.values())]
    comps += sorted({c for b in breakdowns.values() for c in b} - set(comps))
    fig, (ax,) = new_figure(8.5, 1.6 + 0.7 * len(jobs))
    y = np.arange(len(jobs))[::-1]
    left = np.zeros(len(jobs))
    totals = np.array([sum(breakdowns[j].values()) for j in jobs])
    for i, c in enumerate(comps):
        vals = np.array([breakdowns[j].get(c, 0.0) for j in jobs])
        if not vals.any():
            continue
        color = COMPONENT_COLORS.get(c, LINE_COLORS[i % len(LINE_COLORS)])
        ax.barh(y, vals, left=left, height=0.6, color=color, label=_LABELS.get(c, c), edgecolor="white")
        for k, v in enumerate(vals):
            share = v / totals[k] if totals[k] > 0 else 0.0
            if share >= 0.07:
                ax.text(left[k] + v / 2, y[k], f"{share:.0%}", ha="center", va="center", fontsize=8,
                        color="white" if c in ("compute", "dp_comm", "ep_comm", "optimizer") else "black")
        left += vals
    for k, j in enumerate(jobs):
        tail = f"  {totals[k]:.3g} s" + (f", MFU {mfu[j]:.1%}" if mfu and j in mfu else "")
        ax.text(totals[k], y[k], tail, ha="left", va="center", fontsize=9)
    ax.set_yticks(y, jobs)
    ax.set_xlabel("seconds per optimizer step")
    ax.set_xlim(0, totals.max() * 1.3 if totals.max() > 0 else 1)
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    ax.grid(False, axis="y")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(jobs) < 3 else -0.18),
              ncols=min(4, len(comps)), fontsize=8, frameon=False)
    return fig


def scaling(
    curves: Mapping[str, pd.DataFrame],
    *,
    title: str = "Scaling",
    mode: str = "weak",
) -> Figure:
    """Linear speedup and MFU against card count, one line per topology (fabric).

    Parameters
    ----------
    curves : mapping label -> DataFrame
        Columns ``cards``, ``linear_speedup`` (``X(N) / ((N/N0) X(N0))``) and ``mfu`` (0-1).
    mode : str
        'weak' or 'strong' scaling (shown in the title).
    """
    if not curves:
        raise ClusterSimError("cannot plot scaling: no curves")
    fig, (ax1, ax2) = new_figure(11, 4.2, ncols=2)
    for i, (label, df) in enumerate(curves.items()):
        need(df, ("cards", "linear_speedup", "mfu"), "scaling")
        color = LINE_COLORS[i % len(LINE_COLORS)]
        ax1.plot(df["cards"], df["linear_speedup"], "o-", color=color, label=label)
        ax2.plot(df["cards"], df["mfu"], "o-", color=color, label=label)
    cards = sorted({int(c) for df in curves.values() for c in df["cards"]})
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(cards, [f"{c:,}" for c in cards])
        ax.minorticks_off()
        ax.set_xlabel("cards")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax1.axhline(1.0, color="black", lw=0.8, ls="--", label="ideal")
    ax1.axhline(0.9, color="grey", lw=0.8, ls=":", label="90% (good network)")
    lo = min(float(df["linear_speedup"].min()) for df in curves.values())
    ax1.set_ylim(min(0.5, lo - 0.05), 1.05)
    ax1.set_ylabel("linear speedup  X(N) / (N/N0 · X(N0))")
    ax1.set_title(f"Linear speedup ({mode} scaling)")
    ax1.legend(fontsize=8)
    top = max(float(df["mfu"].max()) for df in curves.values())
    ax2.set_ylim(0, min(1.0, top * 1.25 + 0.02))
    ax2.set_ylabel("MFU (model FLOPs / dense peak)")
    ax2.set_title("MFU")
    ax2.legend(fontsize=8)
    fig.suptitle(title)
    return fig


# ---- cluster scheduling ---------------------------------------------------------------------
def utilization(
    timeline: pd.DataFrame,
    *,
    levels: Sequence[str] = ("allocated_cards", "busy_cards"),
    capacity: str = "available_cards",
    title: str = "Cluster utilization",
) -> Figure:
    """Time-weighted levels (cards allocated, busy) over simulated time, as a share of capacity.

    ``timeline`` has ``time_s`` and one column per level (cards); the ``capacity`` column, when
    present, normalises them to 0-1. Each row's level holds until the next row (step plot).
    """
    df = need(timeline, ("time_s",), "utilization")
    have = [c for c in levels if c in df.columns]
    if not have:
        raise ClusterSimError(f"cannot plot utilization: none of {', '.join(levels)} in the timeline")
    df = df.sort_values("time_s", kind="stable")
    t, unit = time_axis(df["time_s"].to_numpy(float))
    cap = df[capacity].to_numpy(float) if capacity in df.columns else None
    fig, (ax,) = new_figure()
    for i, c in enumerate(have):
        v = df[c].to_numpy(float)
        if cap is not None:
            v = np.divide(v, cap, out=np.zeros_like(v), where=cap > 0)
        # later levels dashed and thinner, so equal levels (busy == allocated) stay visible
        ax.step(t, v, where="post", color=LINE_COLORS[i], lw=2.2 - 0.8 * min(i, 1), ls="-" if i == 0 else "--",
                label=str(c).removesuffix("_cards"))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel("share of cards" if cap is not None else "level")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def queue_length(timeline: pd.DataFrame, *, column: str = "queued_jobs",
                 title: str = "Training jobs waiting") -> Figure:
    """Number of queued jobs (or requests) over simulated time (step plot)."""
    df = need(timeline, ("time_s", column), "queue length").sort_values("time_s", kind="stable")
    t, unit = time_axis(df["time_s"].to_numpy(float))
    fig, (ax,) = new_figure()
    ax.step(t, df[column].to_numpy(float), where="post", color=LINE_COLORS[1])
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel(column.replace("_", " "))
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    return fig


def _cdf(ax, x: np.ndarray, label: str, color: str) -> None:
    x = np.sort(x[np.isfinite(x)])
    if len(x) == 0:
        return
    ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", color=color, label=f"{label} (n={len(x):,})")


_NICE_S = (1e-3, 1e-2, 0.1, 1.0, 10.0, 60.0, 600.0, 3600.0, 6 * 3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0)


def _seconds_formatter(ax, log: bool = False) -> None:
    if log:  # ticks at round durations (1 min, 10 min, 1 h, ...) instead of powers of ten seconds
        lo, hi = ax.get_xlim()
        ticks = [t for t in _NICE_S if lo <= t <= hi]
        if len(ticks) >= 2:
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _fmt_s(v)))


def _fmt_s(v: float) -> str:
    if v <= 0:
        return "0"
    for size, name in ((86400.0, "d"), (3600.0, "h"), (60.0, "min"), (1.0, "s"), (1e-3, "ms")):
        if v >= size:
            return f"{v / size:.3g}{name}"
    return f"{v * 1e6:.3g}us"


def jct_cdf(jobs: pd.DataFrame, *, by: str | None = None, title: str = "Job completion time") -> Figure:
    """Empirical CDF of JCT (finish − submit), log time axis; one line per ``by`` group."""
    df = need(jobs, (), "JCT")
    if "jct_s" in df.columns:
        jct = df["jct_s"]
    elif {"submit_s", "finish_s"} <= set(df.columns):
        jct = df["finish_s"] - df["submit_s"]
    else:
        raise ClusterSimError("cannot plot JCT: jobs need jct_s or submit_s and finish_s")
    fig, (ax,) = new_figure()
    if by is not None and by in df.columns:
        for i, (key, idx) in enumerate(sorted(df.groupby(by).groups.items(), key=lambda kv: str(kv[0]))):
            _cdf(ax, jct.loc[idx].to_numpy(float), str(key), LINE_COLORS[i % len(LINE_COLORS)])
    else:
        _cdf(ax, jct.to_numpy(float), "all jobs", LINE_COLORS[0])
    ax.set_xscale("log")
    _seconds_formatter(ax, log=True)
    ax.set_xlabel("JCT (finish − submit)")
    ax.set_ylabel("fraction of finished jobs")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


# ---- serving ----------------------------------------------------------------------------------
def latency_cdf(
    requests: pd.DataFrame,
    *,
    slo: Mapping[str, float | None] | None = None,
    by: str | None = None,
    title: str = "Request latency",
) -> Figure:
    """CDFs of TTFT, TPOT and end-to-end latency, with SLO lines (``{"ttft": s, "tpot": s}``)."""
    df = need(requests, (), "latency")
    panels = [(c, n) for c, n in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "end-to-end"))
              if c in df.columns]
    if not panels:
        raise ClusterSimError("cannot plot latency: requests need ttft_s, tpot_s or e2e_s")
    fig, axes = new_figure(4.0 * len(panels), 3.8, ncols=len(panels))
    groups = (sorted(df.groupby(by).groups.items(), key=lambda kv: str(kv[0]))
              if by is not None and by in df.columns else [("all requests", df.index)])
    for ax, (col, name) in zip(axes, panels, strict=True):
        for i, (key, idx) in enumerate(groups):
            _cdf(ax, df.loc[idx, col].to_numpy(float), str(key), LINE_COLORS[i % len(LINE_COLORS)])
        limit = (slo or {}).get(name.lower() if name != "end-to-end" else "e2e")
        if limit:
            ax.axvline(limit, color="black", ls="--", lw=0.9, label=f"SLO {_fmt_s(limit)}")
        _seconds_formatter(ax)
        ax.set_xlabel(f"{name}")
        ax.set_ylim(0, 1.02)
        ax.set_title(name)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("fraction of requests")
    fig.suptitle(title)
    return fig


def goodput_vs_rate(points: pd.DataFrame, *, title: str = "Goodput against offered load") -> Figure:
    """Goodput (requests/s within SLO) and SLO attainment against arrival rate.

    ``points`` has ``rate_rps``, ``goodput_rps`` and optionally ``slo_attainment`` (0-1).
    """
    df = need(points, ("rate_rps", "goodput_rps"), "goodput").sort_values("rate_rps")
    fig, (ax,) = new_figure()
    r = df["rate_rps"].to_numpy(float)
    ax.plot(r, df["goodput_rps"], "o-", color=LINE_COLORS[0], label="goodput")
    ax.plot(r, r, ls="--", color="grey", lw=0.8, label="offered load")
    ax.set_xlabel("arrival rate (requests/s)")
    ax.set_ylabel("goodput (requests/s within SLO)")
    if "slo_attainment" in df.columns:
        ax2 = ax.twinx()
        ax2.plot(r, df["slo_attainment"], "s:", color=LINE_COLORS[1], label="SLO attainment")
        ax2.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax2.set_ylim(0, 1.05)
        ax2.set_ylabel("SLO attainment")
        ax2.legend(loc="lower right", fontsize=8)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title)
    return fig


def kv_occupancy(timeline: pd.DataFrame, *, prefix: str = "kv_occupancy",
                 title: str = "KV-cache occupancy") -> Figure:
    """KV-cache occupancy (0-1 of capacity) over simulated time; one line per column starting with
    ``prefix`` (e.g. ``kv_occupancy`` or ``kv_occupancy.decode``)."""
    df = need(timeline, ("time_s",), "KV occupancy").sort_values("time_s", kind="stable")
    cols = [c for c in df.columns if str(c).startswith(prefix)]
    if not cols:
        raise ClusterSimError(f"cannot plot KV occupancy: no {prefix}* column in the timeline")
    t, unit = time_axis(df["time_s"].to_numpy(float))
    fig, (ax,) = new_figure()
    for i, c in enumerate(cols):
        label = str(c)[len(prefix):].lstrip("._") or "all replicas"
        ax.step(t, df[c].to_numpy(float), where="post", color=LINE_COLORS[i % len(LINE_COLORS)], label=label)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel("KV cache used / capacity")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


# ---- comparisons over seeds -----------------------------------------------------------------
def compare_bars(summary: pd.DataFrame, factor: str, metrics: Sequence[str], *,
                 title: str | None = None) -> Figure:
    """Small multiples, one axis per metric: a bar per value of ``factor`` at the mean over the
    seeds, with the 95% confidence half-width as its error bar (none where it is undefined, n < 2).

    Parameters
    ----------
    summary : DataFrame
        Long format as ``experiment.comparison.summarize_seeds`` returns it: ``factor``,
        ``metric``, ``n``, ``mean``, ``ci95``.
    factor : str
        The compared field (its values are the bars, in the frame's order).
    metrics : sequence of str
        The metrics to show, one axis each, in this order (at most 12).
    """
    df = need(summary, (factor, "metric", "n", "mean", "ci95"), "a comparison")
    if not metrics:
        raise ClusterSimError("cannot plot a comparison: no metric given")
    if len(metrics) > 12:
        raise ClusterSimError(f"cannot plot a comparison: {len(metrics)} metrics, at most 12 fit")
    absent = [m for m in metrics if m not in set(df["metric"])]
    if absent:
        raise ClusterSimError(f"cannot plot a comparison: no metric {', '.join(absent)} in the summary")
    values = list(pd.unique(df[factor]))
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig = Figure(figsize=(3.6 * ncols, 0.6 + 2.9 * nrows), dpi=110, layout="constrained")
    grid = fig.subplots(nrows, ncols, squeeze=False)
    x = np.arange(len(values))
    for k, ax in enumerate(grid.ravel()):
        if k >= len(metrics):
            fig.delaxes(ax)
            continue
        rows = df[df["metric"] == metrics[k]].set_index(factor).reindex(values)
        mean = rows["mean"].to_numpy(float)
        ci = rows["ci95"].to_numpy(float)
        ax.bar(x, mean, yerr=ci, capsize=4, width=0.6, edgecolor="white",
               color=[LINE_COLORS[i % len(LINE_COLORS)] for i in range(len(values))])
        ax.set_xticks(x, [str(v) for v in values], rotation=20 if len(values) > 3 else 0, fontsize=8)
        ns = sorted({int(n) for n in rows["n"].fillna(0)})
        ax.set_title(f"{metrics[k]}\n(n={'/'.join(map(str, ns))})", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(title or f"{factor}: mean and 95% confidence interval over seeds")
    return fig


