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
  the broker's reclaims and lends (:func:`pool_day`).

>>> fig = breakdown({"pretrain": {"compute": 6.0, "dp_comm": 1.0, "pp_bubble": 0.5}})
>>> fig.axes[0].get_xlabel()
'seconds per optimizer step'
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator, PercentFormatter

from ..errors import ClusterSimError
from ..metrics.tariff import DAY_S, Tariff
from .files import write_bytes_atomic

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
_LINE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_LABELS = {
    "compute": "compute (GEMM)", "memory_bound": "memory-bound kernels", "tp_comm": "TP comm",
    "cp_comm": "CP comm", "ep_comm": "EP all-to-all", "pp_bubble": "pipeline bubble",
    "pp_p2p": "PP send/recv", "dp_comm": "DP grad sync (exposed)", "optimizer": "optimizer",
}


def _fig(width: float = 7.5, height: float = 4.2, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0].tolist()
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def _need(df: pd.DataFrame | None, cols: Sequence[str], what: str) -> pd.DataFrame:
    if df is None or len(df) == 0:
        raise ClusterSimError(f"cannot plot {what}: no data")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ClusterSimError(f"cannot plot {what}: missing column(s) {', '.join(missing)}; "
                              f"have {', '.join(map(str, df.columns))}")
    return df


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write the figure as a PNG file (atomically, parents created) and return its path."""
    return write_bytes_atomic(path, png_bytes(fig))


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
    fig, (ax,) = _fig(8.5, 1.6 + 0.7 * len(jobs))
    y = np.arange(len(jobs))[::-1]
    left = np.zeros(len(jobs))
    totals = np.array([sum(breakdowns[j].values()) for j in jobs])
    for i, c in enumerate(comps):
        vals = np.array([breakdowns[j].get(c, 0.0) for j in jobs])
        if not vals.any():
            continue
        color = COMPONENT_COLORS.get(c, _LINE_COLORS[i % len(_LINE_COLORS)])
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
    fig, (ax1, ax2) = _fig(11, 4.2, ncols=2)
    for i, (label, df) in enumerate(curves.items()):
        _need(df, ("cards", "linear_speedup", "mfu"), "scaling")
        color = _LINE_COLORS[i % len(_LINE_COLORS)]
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
def _time_axis(t_s: np.ndarray) -> tuple[np.ndarray, str]:
    span = float(np.nanmax(t_s)) if len(t_s) else 0.0
    for size, name in ((86400.0, "days"), (3600.0, "hours"), (60.0, "minutes")):
        if span >= 3 * size:
            return t_s / size, name
    return t_s, "seconds"


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
    df = _need(timeline, ("time_s",), "utilization")
    have = [c for c in levels if c in df.columns]
    if not have:
        raise ClusterSimError(f"cannot plot utilization: none of {', '.join(levels)} in the timeline")
    df = df.sort_values("time_s", kind="stable")
    t, unit = _time_axis(df["time_s"].to_numpy(float))
    cap = df[capacity].to_numpy(float) if capacity in df.columns else None
    fig, (ax,) = _fig()
    for i, c in enumerate(have):
        v = df[c].to_numpy(float)
        if cap is not None:
            v = np.divide(v, cap, out=np.zeros_like(v), where=cap > 0)
        # later levels dashed and thinner, so equal levels (busy == allocated) stay visible
        ax.step(t, v, where="post", color=_LINE_COLORS[i], lw=2.2 - 0.8 * min(i, 1), ls="-" if i == 0 else "--",
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
    df = _need(timeline, ("time_s", column), "queue length").sort_values("time_s", kind="stable")
    t, unit = _time_axis(df["time_s"].to_numpy(float))
    fig, (ax,) = _fig()
    ax.step(t, df[column].to_numpy(float), where="post", color=_LINE_COLORS[1])
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
    df = _need(jobs, (), "JCT")
    if "jct_s" in df.columns:
        jct = df["jct_s"]
    elif {"submit_s", "finish_s"} <= set(df.columns):
        jct = df["finish_s"] - df["submit_s"]
    else:
        raise ClusterSimError("cannot plot JCT: jobs need jct_s or submit_s and finish_s")
    fig, (ax,) = _fig()
    if by is not None and by in df.columns:
        for i, (key, idx) in enumerate(sorted(df.groupby(by).groups.items(), key=lambda kv: str(kv[0]))):
            _cdf(ax, jct.loc[idx].to_numpy(float), str(key), _LINE_COLORS[i % len(_LINE_COLORS)])
    else:
        _cdf(ax, jct.to_numpy(float), "all jobs", _LINE_COLORS[0])
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
    df = _need(requests, (), "latency")
    panels = [(c, n) for c, n in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "end-to-end"))
              if c in df.columns]
    if not panels:
        raise ClusterSimError("cannot plot latency: requests need ttft_s, tpot_s or e2e_s")
    fig, axes = _fig(4.0 * len(panels), 3.8, ncols=len(panels))
    groups = (sorted(df.groupby(by).groups.items(), key=lambda kv: str(kv[0]))
              if by is not None and by in df.columns else [("all requests", df.index)])
    for ax, (col, name) in zip(axes, panels, strict=True):
        for i, (key, idx) in enumerate(groups):
            _cdf(ax, df.loc[idx, col].to_numpy(float), str(key), _LINE_COLORS[i % len(_LINE_COLORS)])
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
    df = _need(points, ("rate_rps", "goodput_rps"), "goodput").sort_values("rate_rps")
    fig, (ax,) = _fig()
    r = df["rate_rps"].to_numpy(float)
    ax.plot(r, df["goodput_rps"], "o-", color=_LINE_COLORS[0], label="goodput")
    ax.plot(r, r, ls="--", color="grey", lw=0.8, label="offered load")
    ax.set_xlabel("arrival rate (requests/s)")
    ax.set_ylabel("goodput (requests/s within SLO)")
    if "slo_attainment" in df.columns:
        ax2 = ax.twinx()
        ax2.plot(r, df["slo_attainment"], "s:", color=_LINE_COLORS[1], label="SLO attainment")
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
    df = _need(timeline, ("time_s",), "KV occupancy").sort_values("time_s", kind="stable")
    cols = [c for c in df.columns if str(c).startswith(prefix)]
    if not cols:
        raise ClusterSimError(f"cannot plot KV occupancy: no {prefix}* column in the timeline")
    t, unit = _time_axis(df["time_s"].to_numpy(float))
    fig, (ax,) = _fig()
    for i, c in enumerate(cols):
        label = str(c)[len(prefix):].lstrip("._") or "all replicas"
        ax.step(t, df[c].to_numpy(float), where="post", color=_LINE_COLORS[i % len(_LINE_COLORS)], label=label)
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
    df = _need(summary, (factor, "metric", "n", "mean", "ci95"), "a comparison")
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
               color=[_LINE_COLORS[i % len(_LINE_COLORS)] for i in range(len(values))])
        ax.set_xticks(x, [str(v) for v in values], rotation=20 if len(values) > 3 else 0, fontsize=8)
        ns = sorted({int(n) for n in rows["n"].fillna(0)})
        ax.set_title(f"{metrics[k]}\n(n={'/'.join(map(str, ns))})", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(title or f"{factor}: mean and 95% confidence interval over seeds")
    return fig


# ---- one card pool over the day -------------------------------------------------------------
POOL_COLORS: dict[str, str] = {"serving": "#1f77b4", "moving": "#ff7f0e", "training": "#2ca02c",
                               "idle": "#d9d9d9", "down": "#d62728"}


def _per_bin(edges: np.ndarray, t: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Sum of ``weights`` (default 1) of the times ``t`` in each bin ``[edges[i], edges[i+1])``,
    the last bin closed; times outside the span are left out."""
    t = np.asarray(t, np.float64)
    w = np.ones(len(t)) if weights is None else np.asarray(weights, np.float64)
    keep = np.isfinite(t) & (t >= edges[0]) & (t <= edges[-1])
    idx = np.minimum(np.searchsorted(edges, t[keep], side="right") - 1, len(edges) - 2)
    return np.bincount(idx, weights=w[keep], minlength=len(edges) - 1).astype(np.float64)


def pool_day(pool_timeline: pd.DataFrame, *, events: pd.DataFrame | None = None,
             requests: pd.DataFrame | None = None,
             tariff: Tariff | Sequence[tuple[float, float, float]] | None = None,
             title: str = "One card pool over the day") -> Figure:
    """Cards by ledger state (stacked), inference load, reclaims and lends, and the tariff.

    Parameters
    ----------
    pool_timeline : DataFrame
        Contiguous bins ``time_s``, ``time_end_s`` with the mean cards ``serving``, ``moving``,
        ``training``, ``idle``, ``down`` over each; stacked in that order from the bottom.
    events : DataFrame, optional
        Broker events ``time_s``, ``kind``, ``cards``: a middle panel of the cards ``reclaim``-ed
        (up) and ``lend``-ed (down) per bin. Zero rows draw an empty panel; ``None`` none.
    requests : DataFrame, optional
        ``arrival_s`` of every request: arrivals per second per bin on a twin axis.
    tariff : Tariff or ``(start_s, end_s, usd_per_kwh)`` windows of the day, optional
        A bottom panel of the price over the run, repeated daily from midnight at ``t = 0``.
    """
    df = _need(pool_timeline, ("time_s", "time_end_s", *POOL_COLORS), "the pool day")
    df = df.sort_values("time_s", kind="stable")
    t0, t1 = df["time_s"].to_numpy(float), df["time_end_s"].to_numpy(float)
    if t0[0] < 0 or not (t1 > t0).all() or not np.array_equal(t0[1:], t1[:-1]):
        raise ClusterSimError("cannot plot the pool day: bins must be contiguous from time_s >= 0, "
                              "each time_end_s above its time_s and equal to the next time_s")
    edges = np.append(t0, t1[-1])
    x, unit = _time_axis(edges)
    per = edges[-1] / x[-1]
    ev = None if events is None else _need_cols(events, ("time_s", "kind", "cards"), "pool events")
    req = None if requests is None else _need_cols(requests, ("arrival_s",), "the inference load")
    ratios = [3] + [1] * ((ev is not None) + (tariff is not None))   # cards, [moves], [tariff]
    fig = Figure(figsize=(9.0, 3.6 + 1.2 * (len(ratios) - 1)), dpi=110, layout="constrained")
    axes = fig.subplots(len(ratios), 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": ratios})[:, 0].tolist()
    ax = axes[0]
    base = np.zeros(len(df))
    for state, color in POOL_COLORS.items():
        v = df[state].to_numpy(float)
        ax.stairs(base + v, x, baseline=base, fill=True, color=color, label=state)
        base = base + v
    ax.set_ylim(0, max(float(base.max()), 1.0) * 1.05)
    ax.set_ylabel("cards (mean per bin)")
    ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    if req is not None:
        rate = _per_bin(edges, req["arrival_s"].to_numpy(float)) / np.diff(edges)
        ax2 = ax.twinx()
        ax2.stairs(rate, x, baseline=None, color="black", lw=1.4, label="inference load")
        ax2.set_ylim(0, max(float(rate.max()), 1e-9) * 1.1)
        ax2.set_ylabel("requests/s")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    k = 1
    if ev is not None:
        kind, t = ev["kind"].astype(str), ev["time_s"].to_numpy(float)
        cards = ev["cards"].to_numpy(float)
        axe = axes[k]
        k += 1
        for name, sign, color, label in (("reclaim", 1.0, "#a63603", "reclaimed from training"),
                                         ("lend", -1.0, "#00441b", "lent to training")):
            m = (kind == name).to_numpy()
            axe.bar(x[:-1], sign * _per_bin(edges, t[m], cards[m]), width=np.diff(x), align="edge",
                    color=color, edgecolor=color, lw=0.8, label=label)  # edges: thin bars show
        axe.axhline(0.0, color="black", lw=0.6)
        axe.set_ylabel("cards moved")
        h3, l3 = axe.get_legend_handles_labels()
        handles, labels = handles + h3, labels + l3
    if tariff is not None:
        day = tariff if isinstance(tariff, Tariff) else Tariff.from_windows(tariff)
        first = np.floor(edges[0] / DAY_S)
        starts = (first + np.arange(int(np.ceil(edges[-1] / DAY_S) - first) + 1))[:, None] * DAY_S
        cuts = (starts + np.asarray(day.starts)[None, :]).ravel()
        inside = cuts[(cuts > edges[0]) & (cuts < edges[-1])]
        breaks = np.unique(np.concatenate([[edges[0], edges[-1]], inside]))
        axt = axes[k]
        axt.stairs([day.price_at(b) for b in breaks[:-1]], breaks / per, baseline=None,
                   color=_LINE_COLORS[4], lw=1.6, label="tariff")
        axt.set_ylim(0, max(day.prices) * 1.2 or 1.0)
        axt.set_ylabel("USD/kWh")
    for a in axes:
        a.grid(True, alpha=0.3)
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5), fontsize=8,
               frameon=False)
    axes[-1].set_xlim(x[0], x[-1])
    axes[-1].set_xlabel(f"simulated time ({unit})")
    return fig


def _need_cols(df: pd.DataFrame, cols: Sequence[str], what: str) -> pd.DataFrame:
    """Like :func:`_need` but zero rows are allowed (an optional input with nothing in it)."""
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ClusterSimError(f"cannot plot {what}: missing column(s) {', '.join(missing)}; "
                              f"have {', '.join(map(str, df.columns))}")
    return df
