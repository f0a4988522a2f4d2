"""Arrival processes: sorted float64 arrays of arrival times in seconds, vectorised.

Used for inference requests and for training-job arrivals. Every function takes
``rng: Generator | int | None`` and is deterministic for a given seed.

* :func:`poisson` - homogeneous Poisson process (exponential gaps, CV 1).
* :func:`gamma` - renewal process with gamma gaps of a given CV (bursty for CV > 1).
* :func:`diurnal` - non-homogeneous Poisson process with a daily sinusoid or a 24-value
  hourly table, by thinning (Lewis-Shedler).
* :func:`generate` - dispatch by kind name (``poisson``, ``gamma``, ``diurnal``) for configs.

>>> t = poisson(10.0, 100.0, rng=1)
>>> bool((t[1:] >= t[:-1]).all() and t[-1] < 100.0)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..rng import as_generator

__all__ = ["ARRIVAL_KINDS", "diurnal", "gamma", "generate", "poisson"]


def _check(rate_per_s: float, horizon_s: float, what: str) -> None:
    if not rate_per_s >= 0 or not math.isfinite(rate_per_s):
        raise ConfigError(f"{what}.rate_per_s: must be a finite number >= 0, got {rate_per_s!r}")
    if not horizon_s >= 0 or not math.isfinite(horizon_s):
        raise ConfigError(f"{what}.horizon_s: must be a finite number >= 0, got {horizon_s!r}")


def poisson(rate_per_s: float, horizon_s: float, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Arrival times of a Poisson process of ``rate_per_s`` on ``[0, horizon_s)``.

    Draws the count ``N ~ Poisson(rate * horizon)`` and sorts ``N`` uniform times (exact).
    """
    _check(rate_per_s, horizon_s, "arrivals")
    gen = as_generator(rng, "arrivals")
    n = int(gen.poisson(rate_per_s * horizon_s))
    t = gen.uniform(0.0, horizon_s, size=n)
    t.sort()
    return t


def _renewal(gaps_fn: Any, mean_gap: float, horizon_s: float, rate_per_s: float) -> np.ndarray:
    """Cumulative sums of gap draws up to ``horizon_s``, in chunks sized by the expected count."""
    expected = rate_per_s * horizon_s
    parts: list[np.ndarray] = []
    now = 0.0
    while True:
        chunk = int(expected + 6.0 * math.sqrt(expected) + 16)
        t = now + np.cumsum(gaps_fn(chunk))
        if t[-1] >= horizon_s:
            parts.append(t[: int(np.searchsorted(t, horizon_s, side="left"))])
            break
        parts.append(t)
        now = float(t[-1])
        expected = max(1.0, (horizon_s - now) / mean_gap)
    return np.concatenate(parts) if parts else np.zeros(0)


def gamma(rate_per_s: float, cv: float, horizon_s: float, rng: np.random.Generator | int | None = None
          ) -> np.ndarray:
    """Renewal process with gamma-distributed gaps: mean ``1/rate_per_s``, coefficient of variation ``cv``.

    Shape ``k = 1/cv**2``, scale ``1/(rate k)``; ``cv = 1`` is a Poisson process, ``cv > 1`` bursty.
    The first arrival comes one gap after time 0.
    """
    _check(rate_per_s, horizon_s, "arrivals")
    if not cv > 0 or not math.isfinite(cv):
        raise ConfigError(f"arrivals.cv: must be a finite number > 0, got {cv!r}")
    if rate_per_s == 0 or horizon_s == 0:
        return np.zeros(0)
    gen = as_generator(rng, "arrivals")
    shape = 1.0 / (cv * cv)
    scale = 1.0 / (rate_per_s * shape)
    return _renewal(lambda n: gen.gamma(shape, scale, size=n), 1.0 / rate_per_s, horizon_s, rate_per_s)


def _rate_shape(t: np.ndarray, peak_to_trough: float, period_s: float, phase_s: float,
                hourly: np.ndarray | None) -> np.ndarray:
    """Relative rate (mean 1 over a period) at times ``t``."""
    if hourly is not None:
        slot = ((t - phase_s) % period_s) * (len(hourly) / period_s)
        return hourly[np.minimum(slot.astype(np.int64), len(hourly) - 1)]
    a = (peak_to_trough - 1.0) / (peak_to_trough + 1.0)
    return 1.0 - a * np.cos(2.0 * np.pi * (t - phase_s) / period_s)


def diurnal(mean_rate_per_s: float, horizon_s: float, rng: np.random.Generator | int | None = None,
            peak_to_trough: float = 3.0, period_s: float = 86400.0, phase_s: float = 0.0,
            hourly: Sequence[float] | None = None) -> np.ndarray:
    """Non-homogeneous Poisson arrivals with a daily cycle, by thinning.

    Rate ``mean_rate (1 - a cos(2 pi (t - phase_s) / period_s))`` with
    ``a = (r - 1)/(r + 1)`` for ``r = peak_to_trough``: the trough is at ``t = phase_s``
    (midnight by default), the peak half a period later, peak / trough = ``r``, and the
    mean over a whole period is ``mean_rate_per_s``.

    ``hourly``: instead of the sinusoid, a table of relative rates (24 values = one per hour,
    any length works: each value covers ``period_s / len(hourly)`` seconds starting at
    ``phase_s``), rescaled to mean 1.
    """
    _check(mean_rate_per_s, horizon_s, "arrivals")
    if not period_s > 0:
        raise ConfigError(f"arrivals.period_s: must be > 0, got {period_s!r}")
    table = None
    if hourly is not None:
        table = np.asarray(hourly, dtype=np.float64)
        if table.ndim != 1 or len(table) == 0 or not np.isfinite(table).all() or (table < 0).any() \
                or table.sum() <= 0:
            raise ConfigError("arrivals.hourly: expected a list of rates >= 0 with a positive sum")
        table = table / table.mean()
        peak = float(table.max())
    else:
        if not peak_to_trough >= 1.0 or not math.isfinite(peak_to_trough):
            raise ConfigError(f"arrivals.peak_to_trough: must be >= 1, got {peak_to_trough!r}")
        peak = 1.0 + (peak_to_trough - 1.0) / (peak_to_trough + 1.0)
    gen = as_generator(rng, "arrivals")
    t = poisson(mean_rate_per_s * peak, horizon_s, gen)
    keep = gen.uniform(0.0, peak, size=len(t)) < _rate_shape(t, peak_to_trough, period_s, phase_s, table)
    return t[keep]


ARRIVAL_KINDS: Mapping[str, Callable[..., np.ndarray]] = MappingProxyType(
    {"poisson": poisson, "gamma": gamma, "diurnal": diurnal})


def generate(kind: str, rate_per_s: float, horizon_s: float, rng: np.random.Generator | int | None = None,
             **params: Any) -> np.ndarray:
    """Arrival times of process ``kind`` with mean rate ``rate_per_s`` (extra ``params`` passed on).

    >>> len(generate("gamma", 5.0, 10.0, rng=0, cv=2.0)) > 0
    True
    """
    if kind not in ARRIVAL_KINDS:
        raise ConfigError(f"arrivals.kind: unknown {kind!r}; known: {', '.join(sorted(ARRIVAL_KINDS))}")
    if kind == "gamma":
        params.setdefault("cv", 1.0)
    try:
        return ARRIVAL_KINDS[kind](rate_per_s, horizon_s=horizon_s, rng=rng, **params)
    except TypeError as exc:
        raise ConfigError(f"arrivals ({kind}): {exc}") from None
