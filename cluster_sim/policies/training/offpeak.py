"""Off-peak shifting (错峰): hold deferrable batch work until cheap electricity hours.

One decision, made before the run for each deferrable job (``experiment/build.py`` applies it to
the job table's ``release_s``; the cluster engine then keeps the job out of the queue until
then): :meth:`OffPeak.release_at`. The job is held until the start of the next tariff window
priced at most ``max_usd_per_kwh`` if it can still meet its deadline from there at its
reference speed (``release + expected duration <= submit + deadline``); otherwise, or when it is
submitted inside such a window, it is released at submit (runs now).

Not a registry family: the decision is about when a job may start, not a stage of the
scheduling cycle, and it needs the tariff (``policy.training.offpeak`` with ``energy.tariff``).

>>> class Day:  # cheap 0h-8h: the next such window from t
...     def next_window_at_or_below(self, t, usd_per_kwh):
...         return t if t % 86400 < 8 * 3600 else (t // 86400 + 1) * 86400
>>> p = OffPeak(max_usd_per_kwh=0.05)
>>> h = 3600.0
>>> p.release_at(10 * h, 2 * h, 24 * h, Day()) / h   # 24h + 2h <= 10h + 24h: wait for midnight
24.0
>>> p.release_at(10 * h, 2 * h, 12 * h, Day()) / h   # 24h + 2h > 22h: run now
10.0
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from ..base import Policy

__all__ = ["OffPeak", "TariffLike"]


class TariffLike(Protocol):
    """What the decision needs of a tariff (``cluster_sim.metrics.tariff.Tariff`` has it)."""

    def next_window_at_or_below(self, t_s: float, usd_per_kwh: float) -> float:
        """Earliest time ``>= t_s`` priced at most ``usd_per_kwh`` (``inf`` if none)."""
        ...


class OffPeak(Policy):
    """Release deferrable jobs at the next cheap window when their deadline allows it.

    Parameters
    ----------
    max_usd_per_kwh : float
        A window is cheap when its price is at most this (USD per kWh, >= 0).
    """

    name = "offpeak"
    family = ""

    def __init__(self, *, max_usd_per_kwh: float = 0.0) -> None:
        if isinstance(max_usd_per_kwh, bool) or not (isinstance(max_usd_per_kwh, (int, float))
                                                     and math.isfinite(max_usd_per_kwh) and max_usd_per_kwh >= 0):
            raise ValueError(f"max_usd_per_kwh: must be a finite number >= 0, got {max_usd_per_kwh!r}")
        self.max_usd_per_kwh = max_usd_per_kwh

    def release_at(self, submit_s: float, expected_duration_s: float, deadline_s: float,
                   tariff: TariffLike) -> float:
        """Earliest start of a deferrable job submitted at ``submit_s`` that runs
        ``expected_duration_s`` and should finish ``deadline_s`` after submit (``inf`` = no
        deadline): the next cheap window's start if ``start + expected <= submit + deadline``,
        else ``submit_s``."""
        start = tariff.next_window_at_or_below(submit_s, self.max_usd_per_kwh)
        if submit_s < start < math.inf and start + expected_duration_s <= submit_s + deadline_s:
            return float(start)
        return float(submit_s)

    def release_times(self, submit_s: np.ndarray, expected_duration_s: np.ndarray, deadline_s: np.ndarray,
                      deferrable: np.ndarray, tariff: TariffLike) -> np.ndarray:
        """:meth:`release_at` of every ``deferrable`` row; the others are released at submit."""
        out = np.array(submit_s, dtype=np.float64, copy=True)
        for i in np.flatnonzero(deferrable).tolist():
            out[i] = self.release_at(float(submit_s[i]), float(expected_duration_s[i]), float(deadline_s[i]),
                                     tariff)
        return out
