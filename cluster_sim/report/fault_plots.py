"""The SLO-attainment and goodput dip around serving replica failures (:func:`serving_faults`).

Input: :func:`cluster_sim.metrics.serving_faults.fault_series` (per service and arrival bin) and
its ``fault_events`` (failure times).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from .figure_base import LINE_COLORS, need, time_axis

__all__ = ["serving_faults"]


def serving_faults(series: pd.DataFrame, *, events: pd.DataFrame | None = None,
                   title: str = "Serving through replica failures") -> Figure:
    """SLO attainment (top) and goodput (bottom) per arrival bin, one line per service, with
    the bins' mean replicas down shaded and a tick at every failure.

    Parameters
    ----------
    series : DataFrame
        ``service``, ``time_s``, ``width_s``, ``slo_attainment``, ``goodput_rps``, ``replicas_down``.
    events : DataFrame, optional
        ``time_s``, ``kind`` (``fail`` rows are marked).
    """
    df = need(series, ("service", "time_s", "width_s", "slo_attainment", "goodput_rps", "replicas_down"),
              "serving faults")
    fig = Figure(figsize=(7.5, 5.2), dpi=110, layout="constrained")
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    mid = df["time_s"].to_numpy(float) + df["width_s"].to_numpy(float) / 2
    x_all, unit = time_axis(mid)
    scale = mid[0] / x_all[0] if len(mid) and x_all[0] else 1.0
    down = df.groupby("time_s")["replicas_down"].sum()
    xd = (down.index.to_numpy(float) + df["width_s"].iloc[0] / 2) / scale
    axd = ax2.twinx()
    axd.fill_between(xd, down.to_numpy(float), step="mid", color="#d62728", alpha=0.15, label="replicas down")
    axd.set_ylabel("replicas down (mean)")
    axd.set_ylim(bottom=0)
    for i, (name, part) in enumerate(df.groupby("service", sort=True)):
        x = (part["time_s"].to_numpy(float) + part["width_s"].to_numpy(float) / 2) / scale
        c = LINE_COLORS[i % len(LINE_COLORS)]
        ax1.plot(x, part["slo_attainment"], "-", color=c, lw=1.2, label=str(name))
        ax2.plot(x, part["goodput_rps"], "-", color=c, lw=1.2, label=str(name))
    if events is not None and len(events):
        fails = events.loc[events["kind"] == "fail", "time_s"].to_numpy(float) / scale
        for ax in (ax1, ax2):
            ax.plot(fails, np.zeros_like(fails), "v", color="#d62728", ms=5, clip_on=False,
                    transform=ax.get_xaxis_transform(), label="failure" if ax is ax1 else None)
    ax1.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    lo = float(np.nanmin(df["slo_attainment"].to_numpy(float))) if df["slo_attainment"].notna().any() else 0.0
    ax1.set_ylim(max(0.0, lo - 0.05), 1.005)   # the dip, not the empty range below it
    ax1.set_ylabel("SLO attainment")
    ax1.legend(fontsize=7, loc="lower left")
    ax2.set_ylabel("goodput (requests/s)")
    ax2.set_xlabel(f"arrival time ({unit})")
    fig.suptitle(title)
    return fig
