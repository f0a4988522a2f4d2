"""Pool metrics over the day and over the demand: what one card ledger's run did with its cards.

Two views that the time-weighted ``pool.utilization.*`` shares do not give:

* **Over the day** (:func:`hourly`): the ledger's timeline folded onto the 24 hours of the day,
  the mean share of the cluster's cards in each state per hour. A day-long run shows when the
  cards sit idle (the valleys a pool policy can fill); a multi-day run averages the same hour of
  every day.
* **Demand served** (:func:`demand_served`): utilization that means work done. Busy counts a
  training job's progress while it happens, even when an eviction later throws it away; the
  demand-served share keeps only the work that survived (busy card-seconds minus the work lost
  to evictions, redone later), and the served share of each demand says how much of what was
  asked for was done: training work done / work that could have been done in the run (each
  job's reference run time, cut at the horizon), requests finished / requests that arrived.

>>> import pandas as pd
>>> tl = pd.DataFrame({"time_s": [0.0, 1800.0, 3600.0], "time_end_s": [1800.0, 3600.0, 5400.0],
...                    "idle": [4.0, 2.0, 0.0], "training": [4.0, 6.0, 8.0], "serving": [0.0] * 3,
...                    "moving": [0.0] * 3, "down": [0.0] * 3})
>>> hourly(tl, 8)[["hour", "idle", "allocated"]].to_dict("list")
{'hour': [0, 1], 'idle': [0.375, 0.0], 'allocated': [0.625, 1.0]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..engine.pool.ledger import STATES
from .costs import priced_energy_usd
from .tariff import Tariff

__all__ = ["HELD", "demand_served", "hourly", "hourly_keys", "priced_pool_energy_usd"]

HELD = ("training", "serving", "moving")
"""Ledger states in which a card is allocated (held by an engine)."""



def hourly(timeline: pd.DataFrame, n_cards: int) -> pd.DataFrame:
    """The ledger timeline folded onto the hours of the day.

    Parameters
    ----------
    timeline : DataFrame
        ``time_s``, ``time_end_s`` and the mean cards per ledger state per bin (the run's
        ``pool_timeline`` table).
    n_cards : int
        Cards in the cluster.

    Returns
    -------
    DataFrame
        One row per hour of the day that the run covers (``hour`` 0-23), with the time-weighted
        mean share of the cards in each state and ``allocated`` (training + serving + moving).
        A bin counts towards the hour of its midpoint (a 24-hour run's bins are 5 minutes, so
        each lies inside one hour).
    """
    cols = ["hour", *STATES, "allocated"]
    if not len(timeline) or n_cards <= 0:
        return pd.DataFrame(columns=cols)
    start = timeline["time_s"].to_numpy(np.float64)
    end = timeline["time_end_s"].to_numpy(np.float64)
    w = end - start
    hour = (((start + end) / 2.0) // 3600.0 % 24).astype(np.int64)
    wt = np.bincount(hour, weights=w, minlength=24)
    seen = np.flatnonzero(wt > 0)
    out: dict[str, Any] = {"hour": seen}
    for s in STATES:
        out[s] = np.bincount(hour, weights=timeline[s].to_numpy(np.float64) * w, minlength=24)[seen] / (
            wt[seen] * n_cards)
    out["allocated"] = sum(out[s] for s in HELD)
    return pd.DataFrame(out, columns=cols)


def hourly_keys(table: pd.DataFrame) -> dict[str, Any]:
    """``pool.hourly.allocated.{min,max}``: the least and most allocated hour of the day, and the
    hours they fall in (``..._hour``), from :func:`hourly`'s table (empty table: no keys)."""
    if not len(table):
        return {}
    a = table["allocated"].to_numpy(np.float64)
    h = table["hour"].to_numpy(np.int64)
    lo, hi = int(np.argmin(a)), int(np.argmax(a))
    return {"pool.hourly.allocated.min": float(a[lo]), "pool.hourly.allocated.min_hour": int(h[lo]),
            "pool.hourly.allocated.max": float(a[hi]), "pool.hourly.allocated.max_hour": int(h[hi])}


def demand_served(jobs: Mapping[str, np.ndarray] | None, t_end_s: float, busy_card_s: float,
                  capacity_card_s: float, requests: pd.DataFrame | None = None) -> dict[str, Any]:
    """The demand-served keys of a pooled run.

    Parameters
    ----------
    jobs : mapping of str to array, optional
        The training engine's job columns (a run record's ``jobs``: ``num_cards``,
        ``card_milli``, ``submit_s``, ``duration_s``, ``remaining_s``, ``lost_card_s``).
    t_end_s : float
        Run length.
    busy_card_s, capacity_card_s : float
        Busy card-seconds (both engines) and cards x run time.
    requests : DataFrame, optional
        The serving engine's per-request table (``status``).

    Returns
    -------
    dict
        ``pool.utilization.demand_served`` = (busy card-seconds - work lost to evictions, at the
        card-seconds it held: exact when the job ran at its isolated speed) / capacity;
        ``training.demand_served`` = card-seconds of training work done (at reference speed,
        surviving evictions) / the card-seconds each submitted job could have done in the run (``cards x min(duration, t_end - submit)``; above 1 when jobs ran faster than their
        reference card); ``inference.demand_served`` = finished / arrived requests.
    """
    out: dict[str, Any] = {}
    lost = 0.0
    if jobs is not None and len(jobs.get("submit_s", ())):
        cards = np.asarray(jobs["num_cards"], np.float64) * np.asarray(jobs["card_milli"], np.float64) / 1000.0
        submit = np.asarray(jobs["submit_s"], np.float64)
        could = np.clip(np.minimum(np.asarray(jobs["duration_s"], np.float64), t_end_s - submit), 0.0, None)
        offered = float((cards * could).sum())
        left = np.clip(np.asarray(jobs["remaining_s"], np.float64), 0.0, None)
        done = float((cards * np.clip(np.asarray(jobs["duration_s"], np.float64) - left, 0.0, None)).sum())
        out["training.demand_served"] = done / offered if offered > 0 else None
        if "lost_card_s" in jobs:
            lost = float(np.asarray(jobs["lost_card_s"], np.float64).sum())
    if requests is not None and len(requests):
        out["inference.demand_served"] = float((requests["status"] == "finished").mean())
    out["pool.utilization.demand_served"] = (max(busy_card_s - lost, 0.0) / capacity_card_s
                                             if capacity_card_s > 0 else None)
    return out


def priced_pool_energy_usd(ledger_bins: tuple[np.ndarray, np.ndarray, np.ndarray], card_types: Sequence[str],
                           tdp_w: Sequence[float], idle_w: Sequence[float], pue: float, tariff: Tariff, *,
                           training: pd.DataFrame | None = None, serving: pd.DataFrame | None = None,
                           replicas: pd.DataFrame | None = None) -> float:
    """``cost.energy_usd`` of a run on one card ledger: its energy (``pool.energy_kwh``) priced
    by ``tariff`` where it was drawn.

    The ledger's IT power is ``Σ_k idle_k · held_k(t) + (TDP_k − idle_k) · busy_k(t)``: every held
    card at idle power, plus the extra of a busy card. Each part is priced on the bins it is
    known on: the held cards on the ledger's bins (``ledger_bins``: :meth:`CardLedger.timeline_by_type
    <cluster_sim.engine.pool.ledger.CardLedger.timeline_by_type>`), training's busy cards on the
    cluster engine's timeline (``training``: ``time_s``, ``time_end_s``, ``busy_cards.<type>``),
    serving's on the serving timeline (``serving``: ``time_s``, ``width_s``, ``replica``,
    ``busy_fraction``, with ``replicas``: ``replica``, ``cards``, ``card_type``). Within a bin the
    power is its mean, so the price is exact when the tariff's windows start on bin edges and
    ``Σ`` over a flat price is ``pool.energy_kwh`` x the price.
    """
    starts, ends, cards = ledger_bins
    types = list(card_types)
    idle = np.asarray(idle_w, np.float64)
    extra = np.asarray(tdp_w, np.float64) - idle
    held = cards[:, [STATES.index(s) for s in HELD], :].sum(axis=1)   # (bins, types)
    usd = priced_energy_usd(starts, ends, held @ idle, pue, tariff) if len(starts) else 0.0
    if training is not None and len(training):
        w = np.zeros(len(training))
        for k, t in enumerate(types):
            if f"busy_cards.{t}" in training:
                w += extra[k] * training[f"busy_cards.{t}"].to_numpy(np.float64)
        usd += priced_energy_usd(training["time_s"].to_numpy(np.float64),
                                 training["time_end_s"].to_numpy(np.float64), w, pue, tariff)
    if serving is not None and len(serving) and replicas is not None and len(replicas):
        rep = replicas.set_index("replica")
        per_card = pd.Series(dict(zip(types, extra.tolist(), strict=True)))
        rep_w = rep["cards"].to_numpy(np.float64) * per_card.loc[rep["card_type"]].to_numpy()
        w = serving["busy_fraction"].to_numpy(np.float64) * pd.Series(rep_w, index=rep.index).reindex(
            serving["replica"]).to_numpy()
        t0 = serving["time_s"].to_numpy(np.float64)
        usd += priced_energy_usd(t0, t0 + serving["width_s"].to_numpy(np.float64), w, pue, tariff)
    return float(usd)
