"""Reliability: the first-order checkpoint model and the ``reliability.*`` summary (issue #17 item 6).

First-order model (DOMAIN.md section 5, "Checkpoint interval"), ``C`` checkpoint cost (stall),
``tau`` interval, ``R`` restart time, ``M`` job MTBF::

    waste = C / tau + (tau / 2 + R) / M          ETTR ~ 1 - waste           (young_waste)
    Young: tau* = sqrt(2 C M)                    (argmin of young_waste over tau)

Daly's simple form ``tau* = sqrt(2 C M) - C`` is the argmin of the same model when the work lost
to a failure spans the whole segment ``tau + C`` (a failure during a write loses it too):
``waste = C / (tau + C) + ((tau + C) / 2 + R) / M`` (:func:`daly_waste`). A job of ``k`` independent
units of MTBF ``M_u`` has ``M = M_u / k`` (:func:`job_mtbf`).

The summary (:func:`reliability_summary`) reads the per-job accounting columns of the cluster
engine's record (docs/faults_checkpoint.md, docs/metrics.md "F2"):

* ETTR of a job = time whose progress survives (running time minus checkpoint stalls minus the
  progress lost to failures) / wall-clock time from its first start to its finish (or the run end);
  the cluster's is the card-weighted ratio of the sums.
* goodput = that surviving card-time / the card-time the job held its cards (allocated);
* effective MFU = (useful FLOPs - FLOPs lost to failures) / peak FLOPs over the allocated time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["daly_interval", "daly_waste", "job_mtbf", "reliability_summary", "young_interval",
           "young_waste"]


def young_waste(C: float, tau: float, R: float, M: float) -> float:
    """First-order waste fraction ``C/tau + (tau/2 + R)/M`` (ETTR ~ 1 - waste)."""
    return C / tau + (tau / 2.0 + R) / M


def daly_waste(C: float, tau: float, R: float, M: float) -> float:
    """Waste when a failure loses the whole segment ``tau + C``: ``C/(tau+C) + ((tau+C)/2 + R)/M``."""
    return C / (tau + C) + ((tau + C) / 2.0 + R) / M


def young_interval(C: float, M: float) -> float:
    """Young's interval ``sqrt(2 C M)``."""
    return math.sqrt(2.0 * C * M)


def daly_interval(C: float, M: float) -> float:
    """Daly's simple form ``sqrt(2 C M) - C`` (valid for ``C < 2M``)."""
    if not C < 2.0 * M:
        raise ValueError(f"Daly's form needs C < 2M (C={C!r}, M={M!r})")
    return math.sqrt(2.0 * C * M) - C


def job_mtbf(unit_mtbf_s: float, units: float) -> float:
    """MTBF of a job on ``units`` independent units of MTBF ``unit_mtbf_s`` (series system)."""
    if not unit_mtbf_s > 0 or not units > 0:
        raise ValueError("unit_mtbf_s and units must be > 0")
    return unit_mtbf_s / units


def _f(x: float) -> float | None:
    return None if x != x or math.isinf(x) else float(x)


def reliability_summary(jobs: pd.DataFrame, t_end: float) -> dict[str, Any]:
    """``reliability.*`` keys from a jobs frame carrying the accounting columns (see module doc).

    Interruptions and lost card-hours by cause (``failure``, ``preemption``, ``eviction``),
    restart and checkpoint-stall card-hours, completed checkpoints, and the cluster's ETTR,
    goodput and effective MFU (None when no job started)."""
    s: dict[str, Any] = {}
    if not len(jobs) or "surviving_card_s" not in jobs:
        return s
    started = jobs[np.isfinite(jobs["first_start_s"].to_numpy(np.float64))]
    s["reliability.interruptions.failure"] = int(jobs["restarts"].sum())
    s["reliability.interruptions.preemption"] = int((jobs["preemptions"] - jobs["evictions"]).sum())
    s["reliability.interruptions.eviction"] = int(jobs["evictions"].sum())
    for cause in ("failure", "preemption", "eviction"):
        s[f"reliability.lost_card_h.{cause}"] = float(jobs[f"lost_card_s.{cause}"].sum()) / 3600.0
    s["reliability.restart_card_h"] = float(jobs["stall_card_s"].sum()) / 3600.0
    s["reliability.checkpoint_stall_card_h"] = float(jobs["checkpoint_card_s"].sum()) / 3600.0
    s["reliability.checkpoints"] = int(jobs["checkpoints"].sum())
    n_fail = s["reliability.interruptions.failure"]
    down = float(jobs["restart_wall_s"].sum())
    s["reliability.restart_s.mean"] = _f(down / n_fail) if n_fail else None
    if not len(started):
        s.update({"reliability.ettr": None, "reliability.goodput": None, "reliability.effective_mfu": None})
        return s
    end = np.where(np.isfinite(started["finish_s"]), started["finish_s"], t_end)
    cards = started["num_cards"].to_numpy(np.float64) * started["card_milli"].to_numpy(np.float64) / 1000.0
    wall = float(((end - started["first_start_s"].to_numpy(np.float64)) * cards).sum())
    surv = float(started["surviving_card_s"].sum())
    held = float(started["held_card_s"].sum())
    s["reliability.ettr"] = _f(surv / wall) if wall > 0 else None
    s["reliability.goodput"] = _f(surv / held) if held > 0 else None
    model = started[started["peak_flop_s"] > 0]   # model jobs (as training.jobs.mfu)
    s["reliability.effective_mfu"] = (_f(float((model["useful_flops"] - model["lost_flops"]).sum())
                                         / float(model["held_peak_flop_s"].sum())) if len(model) else None)
    return s
