"""A time-of-use electricity tariff and the exact price of a piecewise-constant power draw.

The tariff repeats every day: windows ``[start, end)`` in seconds of the local clock, together
covering ``[0, 24 h)`` exactly once, each with a price in USD per kWh. ``t = 0`` of a run is
midnight of day 0. The experiment file's ``energy:`` section (validated in
:mod:`cluster_sim.config.schema`) becomes one through :meth:`Tariff.from_windows`.

>>> day = Tariff.from_windows([(0, 8 * 3600, 0.05), (8 * 3600, 22 * 3600, 0.12),
...                            (22 * 3600, 24 * 3600, 0.05)])
>>> day.price_at(9 * 3600), day.price_at(86400 + 3600)
(0.12, 0.05)
>>> round(day.cost_usd([(0.0, 86400.0, 1000.0)]), 6)   # 1 kW for a day: 8*0.05 + 14*0.12 + 2*0.05
2.18
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

__all__ = ["DAY_S", "Tariff", "power_rows"]

DAY_S = 86400.0
_J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class Tariff:
    """Daily time-of-use price: ``starts[i] <= t mod day < starts[i+1]`` costs ``prices[i]``.

    Attributes
    ----------
    starts : tuple of float
        Window starts in seconds of the day, ascending, the first 0.
    prices : tuple of float
        USD per kWh of each window (finite, >= 0).
    """

    starts: tuple[float, ...]
    prices: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.starts or len(self.starts) != len(self.prices):
            raise ConfigError("tariff: needs one price per window and at least one window")
        if self.starts[0] != 0.0 or any(b <= a for a, b in zip(self.starts, self.starts[1:], strict=False)) \
                or self.starts[-1] >= DAY_S:
            raise ConfigError(f"tariff: window starts must rise from 0 and stay below 24h, got {self.starts}")
        bad = [p for p in self.prices if not (math.isfinite(p) and p >= 0)]
        if bad:
            raise ConfigError(f"tariff: prices must be finite and >= 0 USD/kWh, got {bad[0]!r}")

    @classmethod
    def flat(cls, usd_per_kwh: float) -> Tariff:
        """One price all day.

        >>> Tariff.flat(0.08).price_at(12345.0)
        0.08
        """
        return cls((0.0,), (float(usd_per_kwh),))

    @classmethod
    def from_windows(cls, windows: Iterable[tuple[float, float, float]]) -> Tariff:
        """From ``(start_s, end_s, usd_per_kwh)`` windows that tile ``[0, 24 h)`` (any order).

        Raises
        ------
        ConfigError
            A gap, an overlap, or a window outside ``[0, 24 h]``.
        """
        ws = sorted((float(a), float(b), float(p)) for a, b, p in windows)
        t = 0.0
        for a, b, _ in ws:
            if not (0.0 <= a < b <= DAY_S):
                raise ConfigError(f"tariff: window {a:g}s-{b:g}s must satisfy 0 <= from < to <= 24h")
            if a != t:
                raise ConfigError(f"tariff: windows {'overlap' if a < t else 'leave a gap'} at {min(a, t):g}s")
            t = b
        if t != DAY_S:
            raise ConfigError(f"tariff: windows end at {t:g}s, not at 24h")
        return cls(tuple(a for a, _, _ in ws), tuple(p for _, _, p in ws))

    def _index(self, t_s: float) -> int:
        return int(np.searchsorted(self.starts, t_s % DAY_S, side="right")) - 1

    def _end(self, i: int) -> float:
        return self.starts[i + 1] if i + 1 < len(self.starts) else DAY_S

    def price_at(self, t_s: float) -> float:
        """USD per kWh at run time ``t_s`` (seconds after midnight of day 0).

        >>> Tariff((0.0, 8 * 3600.0), (0.05, 0.12)).price_at(8 * 3600.0)
        0.12
        """
        return self.prices[self._index(t_s)]

    def energy_price_integral(self, t0: float, t1: float) -> float:
        """``∫_{t0}^{t1} price(t) dt`` in USD/kWh x s (whole days in closed form, the rest
        window by window).

        >>> Tariff((0.0, 43200.0), (0.0, 1.0)).energy_price_integral(0.0, 2 * 86400.0 + 50000.0)
        93200.0
        """
        if t1 <= t0:
            return 0.0
        ends = [*self.starts[1:], DAY_S]
        per_day = sum(p * (e - s) for s, e, p in zip(self.starts, ends, self.prices, strict=True))
        return self._from_midnight(t1, per_day) - self._from_midnight(t0, per_day)

    def _from_midnight(self, t: float, per_day: float) -> float:
        """``∫_0^t price`` for ``t >= 0``."""
        days = math.floor(t / DAY_S)
        r = t - days * DAY_S
        acc = days * per_day
        for i, s in enumerate(self.starts):
            if s >= r:
                break
            acc += self.prices[i] * (min(self._end(i), r) - s)
        return acc

    def cost_usd(self, power: Iterable[tuple[float, float, float]] | np.ndarray) -> float:
        """Exact cost of a piecewise-constant power draw: ``Σ_bins W · ∫_bin price dt / 3.6e6``.

        Parameters
        ----------
        power : rows of ``(start_s, end_s, watts)``
            Bins of constant (facility) power; a bin straddling a window boundary is split there.

        >>> Tariff((0.0, 8 * 3600.0, 22 * 3600.0), (0.05, 0.12, 0.05)).cost_usd(
        ...     [(7 * 3600.0, 9 * 3600.0, 1000.0)])   # 1 h at 0.05 and 1 h at 0.12
        0.17
        """
        total = 0.0
        for t0, t1, w in power:
            if w:
                total += float(w) * self.energy_price_integral(float(t0), float(t1))
        return total / _J_PER_KWH

    def next_window_at_or_below(self, t_s: float, usd_per_kwh: float) -> float:
        """The earliest time ``>= t_s`` at which the price is at most ``usd_per_kwh`` (``t_s``
        itself inside such a window); ``inf`` if no window of the day is that cheap.

        >>> day = Tariff((0.0, 8 * 3600.0, 22 * 3600.0), (0.05, 0.12, 0.05))
        >>> day.next_window_at_or_below(10 * 3600.0, 0.05) / 3600
        22.0
        >>> day.next_window_at_or_below(3600.0, 0.05) / 3600
        1.0
        >>> day.next_window_at_or_below(0.0, 0.01)
        inf
        """
        if not any(p <= usd_per_kwh for p in self.prices):
            return math.inf
        i = self._index(t_s)
        if self.prices[i] <= usd_per_kwh:
            return float(t_s)
        day0 = math.floor(t_s / DAY_S) * DAY_S
        n = len(self.starts)
        for k in range(1, n + 1):
            j = (i + k) % n
            if self.prices[j] <= usd_per_kwh:
                return day0 + self.starts[j] + (DAY_S if i + k >= n else 0.0)
        raise AssertionError("unreachable: a cheap window exists")  # pragma: no cover

    def cheap_hours(self, usd_per_kwh: float) -> tuple[tuple[float, float], ...]:
        """The ``(start_s, end_s)`` windows of the day priced at most ``usd_per_kwh``, adjacent
        ones merged.

        >>> Tariff((0.0, 8 * 3600.0, 22 * 3600.0), (0.05, 0.12, 0.05)).cheap_hours(0.05)
        ((0.0, 28800.0), (79200.0, 86400.0))
        """
        out: list[tuple[float, float]] = []
        for i, p in enumerate(self.prices):
            if p <= usd_per_kwh:
                s, e = self.starts[i], self._end(i)
                if out and out[-1][1] == s:
                    out[-1] = (out[-1][0], e)
                else:
                    out.append((s, e))
        return tuple(out)


def power_rows(starts: Sequence[float], ends: Sequence[float], watts: Sequence[float]) -> np.ndarray:
    """Stack bin starts, ends and watts into the ``(n, 3)`` rows :meth:`Tariff.cost_usd` takes."""
    return np.column_stack([np.asarray(starts, np.float64), np.asarray(ends, np.float64),
                            np.asarray(watts, np.float64)]) if len(starts) else np.zeros((0, 3))
