"""Autoscaling: how many replicas of a pool serve, within the pool's provisioned maximum.

* ``fixed`` — every provisioned replica serves, always.
* ``queue_driven`` — a concurrency target (Knative-KPA-like): aim for
  ``ceil((queued + running) / target_outstanding)`` replicas, at least ``min_replicas``. With a
  lead time ``lead_s`` it scales up for the load expected ``lead_s`` ahead (a linear trend
  through the recent arrival rates), so replicas whose cards must first be reclaimed and loaded
  are ready when a ramp arrives.
* ``latency_driven`` — feedback on the service's recent p90 TTFT and TPOT against its SLOs:
  one more replica when ``max(p90/SLO) > upper``, one fewer when it is ``< lower`` and nothing
  is queued, else hold.

The engine asks at ``t = 0`` (policies answer ``initial_replicas``, default all) and every
``interval_s`` seconds after; new replicas serve after ``warmup_s`` (loading weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..base import Policy
from .base import AutoscalingView, ScaleDecision

__all__ = ["FixedReplicas", "LatencyDriven", "QueueDriven"]


def _initial(view: AutoscalingView, initial: int | None) -> int:
    return view.max_replicas if initial is None else initial


class FixedReplicas(Policy):
    """All provisioned replicas serve for the whole run."""

    name = "fixed"
    family = "autoscaling"

    interval_s: float | None = None

    def scale(self, view: AutoscalingView) -> ScaleDecision:
        """Always the pool maximum."""
        return ScaleDecision(view.max_replicas)


class QueueDriven(Policy):
    """Scale on outstanding requests per replica (queued + running).

    Parameters
    ----------
    target_outstanding : float
        Outstanding requests one replica should carry.
    min_replicas : int
        Floor of the target.
    initial_replicas : int, optional
        Replicas serving at ``t = 0`` (default: the pool maximum).
    interval_s : float
        Seconds between decisions.
    warmup_s : float
        Seconds before a started replica serves.
    lead_s : float
        Scale-up lead time (default 0: react to the load now). With ``lead_s > 0`` the
        outstanding requests are scaled by ``max(1, forecast / level)``: a least-squares line
        through the pool's per-tick arrival rates of the last ``window_s`` (the view's
        ``rate_history``) gives the rate now (``level``) and ``lead_s`` ahead (``forecast``). Only
        growth is anticipated; scaling down follows the load now. Use it when a replica's
        cards must first be reclaimed and its weights loaded: the lead covers that time.
    window_s : float, optional
        Span of the trend fit (default ``max(lead_s, 4 x interval_s)``): longer is steadier
        against Poisson noise, shorter follows a turn sooner.

    >>> from cluster_sim.policies.serving.base import AutoscalingView
    >>> nan = float("nan")
    >>> def view(k, rates):   # tick k of 60 s; 40 requests outstanding; the rates of the ticks so far
    ...     hist = tuple((60.0 * (i + 1), r) for i, r in enumerate(rates[:k]))
    ...     return AutoscalingView(60.0 * k, "chat", "colocated", 16, 4, 0, 0, 40, rates[k - 1],
    ...                            nan, nan, nan, nan, 0.5, rate_history=hist)
    >>> ramp = [1.0 + 0.6 * k for k in range(1, 8)] + [5.2] * 6   # +0.01 req/s per second, then flat
    >>> p = QueueDriven(target_outstanding=10, interval_s=60, lead_s=600)   # trend over 600 s
    >>> [p.scale(view(k, ramp)).target_replicas for k in range(1, 14)]
    [4, 4, 13, 12, 11, 10, 9, 8, 8, 7, 7, 7, 6]
    >>> QueueDriven(target_outstanding=10).scale(view(7, ramp)).target_replicas   # no lead
    4
    """

    name = "queue_driven"
    family = "autoscaling"

    def __init__(self, *, target_outstanding: float = 32.0, min_replicas: int = 1,
                 initial_replicas: int | None = None, interval_s: float = 10.0,
                 warmup_s: float = 30.0, lead_s: float = 0.0, window_s: float | None = None) -> None:
        for name, v in (("lead_s", lead_s), ("window_s", window_s)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or not math.isfinite(v) or v < 0):
                raise ValueError(f"{name}: must be a finite number of seconds >= 0, got {v!r:.40}")
        self.target_outstanding = target_outstanding
        self.min_replicas = min_replicas
        self.initial_replicas = initial_replicas
        self.interval_s = interval_s
        self.warmup_s = warmup_s
        self.lead_s = lead_s
        self.window_s = window_s

    def scale(self, view: AutoscalingView) -> ScaleDecision:
        """Replicas needed for the outstanding requests at the target concurrency."""
        if view.now_s <= 0.0:
            return ScaleDecision(_initial(view, self.initial_replicas), self.warmup_s)
        outstanding: float = view.queue_len + view.running
        if self.lead_s > 0:
            outstanding *= self.growth(view.rate_history, view.now_s)
        want = math.ceil(outstanding / self.target_outstanding)
        return ScaleDecision(max(self.min_replicas, want), self.warmup_s)

    def growth(self, history: Sequence[tuple[float, float]], now_s: float) -> float:
        """``max(1, forecast / level)`` of a least-squares line through the ``(t, rate)`` points
        of the last ``window_s`` (1 with fewer than three points, or no load now)."""
        window = self.window_s if self.window_s is not None else max(self.lead_s, 4.0 * self.interval_s)
        pts = [(t, r) for t, r in history if t >= now_s - window]
        if len(pts) < 3:   # two noisy rates are no trend
            return 1.0
        t = np.array([p[0] for p in pts]) - now_s
        r = np.array([p[1] for p in pts])
        slope, level = np.polyfit(t, r, 1)
        if not level > 0:
            return 1.0
        g = float((level + slope * self.lead_s) / level)
        return g if g > 1.0 + 1e-9 else 1.0   # a flat fit's rounding must not add a replica


class LatencyDriven(Policy):
    """Feedback on recent p90 latency relative to the SLOs.

    Parameters
    ----------
    upper, lower : float
        Scale up when ``max(ttft_p90 / slo_ttft, tpot_p90 / slo_tpot) > upper``; down when it
        is below ``lower`` and no request is queued.
    step : int
        Replicas added or removed per decision.
    min_replicas : int
        Floor of the target.
    initial_replicas : int, optional
        Replicas serving at ``t = 0`` (default: the pool maximum).
    interval_s, warmup_s : float
        Seconds between decisions; seconds before a started replica serves.
    """

    name = "latency_driven"
    family = "autoscaling"

    def __init__(self, *, upper: float = 0.8, lower: float = 0.4, step: int = 1, min_replicas: int = 1,
                 initial_replicas: int | None = None, interval_s: float = 10.0,
                 warmup_s: float = 30.0) -> None:
        self.upper = upper
        self.lower = lower
        self.step = step
        self.min_replicas = min_replicas
        self.initial_replicas = initial_replicas
        self.interval_s = interval_s
        self.warmup_s = warmup_s

    def scale(self, view: AutoscalingView) -> ScaleDecision:
        """One step up or down, or hold, from the latency ratio."""
        if view.now_s <= 0.0:
            return ScaleDecision(_initial(view, self.initial_replicas), self.warmup_s)
        ratios = [x / s for x, s in ((view.ttft_p90_s, view.slo_ttft_s), (view.tpot_p90_s, view.slo_tpot_s))
                  if s > 0 and not math.isnan(x)]
        current = view.active + view.warming
        if not ratios:
            return ScaleDecision(max(self.min_replicas, current), self.warmup_s)
        ratio = max(ratios)
        if ratio > self.upper:
            current += self.step
        elif ratio < self.lower and view.queue_len == 0:
            current -= self.step
        return ScaleDecision(max(self.min_replicas, current), self.warmup_s)
