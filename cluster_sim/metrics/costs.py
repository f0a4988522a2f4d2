"""Cost and energy from what a run held and drew; shared by the cluster and serving summaries.

* **Cost** (rented view, DOMAIN.md 2): ``price x card-hours held``. Held means allocated to a
  job (cluster engine) or provisioned for a replica, warming or serving (serving engine), so a
  placement that slows jobs or an autoscaler that keeps replicas up costs more. The catalog has
  no electricity price, so energy is not priced. Installed cards are costed apart
  (``cost.installed_usd``).
* **Energy**: IT energy of the cards (busy at their busy power, held-but-idle at idle power)
  times PUE. :func:`facility_kwh` is the ONLY place PUE is applied, for both engines.

Formulas: docs/metrics.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ..errors import ConfigError

__all__ = ["DEFAULT_PUE", "J_PER_KWH", "card_it_joules", "facility_kwh", "held_cost_usd"]

DEFAULT_PUE = 1.2
"""Facility power / IT power when the experiment sets none (DOMAIN.md 3.4: 1.1-1.25)."""

J_PER_KWH = 3.6e6


def facility_kwh(it_joules: float, pue: float) -> float:
    """Facility energy in kWh of ``it_joules`` of IT energy: ``PUE x E_IT / 3.6e6``.

    Raises
    ------
    ConfigError
        ``pue`` below 1 or not finite (facility power cannot be below IT power).
    """
    if not (math.isfinite(pue) and pue >= 1.0):
        raise ConfigError(f"pue: must be a finite number >= 1 (facility / IT power), got {pue!r}")
    return float(it_joules) * pue / J_PER_KWH


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
