"""One card pool over the day: the figure of a shared card ledger's run (:func:`pool_day`).

Inputs: ``pool_timeline`` (a shared card ledger's mean cards per state per bin), ``pool_events``
(the card broker's reclaims and lends), the requests' ``arrival_s`` and the tariff.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ClusterSimError
from ..metrics.tariff import DAY_S, Tariff
from .figure_base import LINE_COLORS, need, need_cols, time_axis

__all__ = ["POOL_COLORS", "pool_day"]

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
    df = need(pool_timeline, ("time_s", "time_end_s", *POOL_COLORS), "the pool day")
    df = df.sort_values("time_s", kind="stable")
    t0, t1 = df["time_s"].to_numpy(float), df["time_end_s"].to_numpy(float)
    if t0[0] < 0 or not (t1 > t0).all() or not np.array_equal(t0[1:], t1[:-1]):
        raise ClusterSimError("cannot plot the pool day: bins must be contiguous from time_s >= 0, "
                              "each time_end_s above its time_s and equal to the next time_s")
    edges = np.append(t0, t1[-1])
    x, unit = time_axis(edges)
    per = edges[-1] / x[-1]
    ev = None if events is None else need_cols(events, ("time_s", "kind", "cards"), "pool events")
    req = None if requests is None else need_cols(requests, ("arrival_s",), "the inference load")
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
                   color=LINE_COLORS[4], lw=1.6, label="tariff")
        axt.set_ylim(0, max(day.prices) * 1.2 or 1.0)
        axt.set_ylabel("USD/kWh")
    for a in axes:
        a.grid(True, alpha=0.3)
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5), fontsize=8,
               frameon=False)
    axes[-1].set_xlim(x[0], x[-1])
    axes[-1].set_xlabel(f"simulated time ({unit})")
    return fig
