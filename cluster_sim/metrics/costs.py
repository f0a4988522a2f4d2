"""Cost and energy from what a run held and drew; shared by the cluster and serving summaries.

* **Cost** (rented view, DOMAIN.md 2): ``price x card-hours held``. Held means allocated to a
  job (cluster engine) or provisioned for a replica, warming or serving (serving engine), so a
  placement that slows jobs or an autoscaler that keeps replicas up costs more. The catalog has
  no electricity price; energy is priced only when the experiment gives a tariff (``energy:``,
  :func:`priced_energy_usd`, ``cost.energy_usd``). Installed cards are costed apart
  (``cost.installed_usd``).
* **Energy**: IT energy of the cards (busy at their busy power, held-but-idle at idle power)
  times PUE. :func:`facility_w` is the ONLY place PUE is applied, for both engines (energy
  through :func:`facility_kwh`, power per time bin for the tariff).

Formulas: docs/metrics.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:
    from .tariff import Tariff

__all__ = ["DEFAULT_PUE", "J_PER_KWH", "card_it_joules", "facility_kwh", "facility_w", "held_cost_usd",
           "priced_energy_usd"]

DEFAULT_PUE = 1.2
"""Facility power / IT power when the experiment sets none (DOMAIN.md 3.4: 1.1-1.25)."""

J_PER_KWH = 3.6e6


def facility_w(it: np.ndarray, pue: float) -> np.ndarray:
    """Facility power (or energy) of IT power (or energy) ``it``: ``PUE x it``.

    Raises
    ------
    ConfigError
        ``pue`` below 1 or not finite (facility power cannot be below IT power).
    """
    if not (math.isfinite(pue) and pue >= 1.0):
        raise ConfigError(f"pue: must be a finite number >= 1 (facility / IT power), got {pue!r}")
    return np.asarray(it, dtype=np.float64) * pue


def facility_kwh(it_joules: float, pue: float) -> float:
    """Facility energy in kWh of ``it_joules`` of IT energy: ``PUE x E_IT / 3.6e6``.

    Raises
    ------
    ConfigError
        ``pue`` below 1 or not finite (facility power cannot be below IT power).
    """
    return float(facility_w(np.float64(it_joules), pue)) / J_PER_KWH


def priced_energy_usd(start_s: Sequence[float] | np.ndarray, end_s: Sequence[float] | np.ndarray,
                      it_w: Sequence[float] | np.ndarray, pue: float, tariff: Tariff) -> float:
    """Facility energy priced by ``tariff``: ``Σ_bins ∫_bin price(t) dt · PUE · P_IT,bin / 3.6e6``
    for IT power ``it_w`` constant over each bin ``[start_s, end_s)`` (exact across window
    boundaries, :meth:`~cluster_sim.metrics.tariff.Tariff.cost_usd`).

    >>> from cluster_sim.metrics.tariff import Tariff
    >>> round(priced_energy_usd([0.0], [3600.0], [1000.0], 1.5, Tariff.flat(0.1)), 9)   # 1.5 kWh
    0.15
    """
    w = facility_w(np.asarray(it_w, dtype=np.float64), pue)
    return tariff.cost_usd(zip(np.asarray(start_s, np.float64), np.asarray(end_s, np.float64), w, strict=True))


def card_it_joules(busy_card_s: Sequence[float], held_card_s: Sequence[float],
                   busy_w: Sequence[float], idle_w: Sequence[float]) -> float:
    """IT energy of cards, per type ``k``: ``busy_w_k * busy_k + idle_w_k * (held_k - busy_k)``.

    ``busy_card_s`` and ``held_card_s`` are card-seconds (busy <= held); the powers come from the
    catalog (``tdp_w``, ``idle_w``).
    """
    return float(sum(b * pb + max(h - b, 0.0) * pi
                     for b, h, pb, pi in zip(busy_card_s, held_card_s, busy_w, idle_w, strict=True)))


def held_cost_usd(card_s: Iterable[float], price_usd_per_hour: Iterable[float]) -> float:
    """Rented cost ``sum_k price_k * card_s_k / 3600`` of card-seconds per type."""
    return float(sum(p * c / 3600.0 for c, p in zip(card_s, price_usd_per_hour, strict=True)))
