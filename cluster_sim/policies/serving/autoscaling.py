"""Autoscaling: how many replicas of a pool serve, within the pool's provisioned maximum.

* ``fixed`` — every provisioned replica serves, always.
* ``queue_driven`` — a concurrency target (Knative-KPA-like): aim for
  ``ceil((queued + running) / target_outstanding)`` replicas, at least ``min_replicas``.
* ``latency_driven`` — feedback on the service's recent p90 TTFT and TPOT against its SLOs:
  one more replica when ``max(p90/SLO) > upper``, one fewer when it is ``< lower`` and nothing
  is queued, else hold.

The engine asks at ``t = 0`` (policies answer ``initial_replicas``, default all) and every
``interval_s`` seconds after; new replicas serve after ``warmup_s`` (loading weights).
"""

from __future__ import annotations

import math

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
    """

    name = "queue_driven"
    family = "autoscaling"

    def __init__(self, *, target_outstanding: float = 32.0, min_replicas: int = 1,
                 initial_replicas: int | None = None, interval_s: float = 10.0,
                 warmup_s: float = 30.0) -> None:
        self.target_outstanding = target_outstanding
        self.min_replicas = min_replicas
        self.initial_replicas = initial_replicas
        self.interval_s = interval_s
        self.warmup_s = warmup_s

    def scale(self, view: AutoscalingView) -> ScaleDecision:
        """Replicas needed for the outstanding requests at the target concurrency."""
        if view.now_s <= 0.0:
            return ScaleDecision(_initial(view, self.initial_replicas), self.warmup_s)
        want = math.ceil((view.queue_len + view.running) / self.target_outstanding)
        return ScaleDecision(max(self.min_replicas, want), self.warmup_s)


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
