"""queue_driven's scale-up lead time: the trend through the recent arrival rates (closed forms),
and the engine feeding it one (tick, rate) per tick."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
from cluster_sim.perf.linear_serving import LinearServingPerf
from cluster_sim.policies import registry
from cluster_sim.policies.serving.autoscaling import QueueDriven
from cluster_sim.workload.requests import RequestTable

PERF = LinearServingPerf(prefill_s=0.25, prefill_s_per_token=2.0**-6, decode_s=0.125,
                         decode_s_per_seq=2.0**-8, kv_capacity_tokens=10_000)


def _line(a, b, ticks, dt=60.0):
    return tuple((dt * k, a + b * dt * k) for k in range(1, ticks + 1))


def test_a_linear_ramp_is_forecast_exactly():
    p = QueueDriven(interval_s=60, lead_s=900, window_s=600)
    hist = _line(1.0, 0.002, 20)   # rate 1 + 0.002 t
    now = hist[-1][0]
    level = 1.0 + 0.002 * now
    assert p.growth(hist, now) == pytest.approx((level + 0.002 * 900) / level, rel=1e-9)


@pytest.mark.parametrize("hist", [_line(5.0, 0.0, 20), _line(5.0, -0.001, 20), _line(5.0, 0.01, 2), ()])
def test_flat_falling_or_too_short_a_history_adds_nothing(hist):
    now = hist[-1][0] if hist else 0.0
    assert QueueDriven(interval_s=60, lead_s=900).growth(hist, now) == 1.0


def test_only_the_window_counts():
    """An old ramp outside the window does not lift a flat recent load."""
    old = _line(1.0, 0.01, 10)
    flat = tuple((600.0 + 60.0 * k, 7.0) for k in range(1, 11))
    p = QueueDriven(interval_s=60, lead_s=600, window_s=540)
    assert p.growth(old + flat, flat[-1][0]) == 1.0
    assert QueueDriven(interval_s=60, lead_s=600, window_s=1200).growth(old + flat, flat[-1][0]) > 1.0


def test_bad_lead_is_a_field_named_error():
    with pytest.raises(ValueError, match="lead_s: must be a finite number of seconds >= 0"):
        QueueDriven(lead_s=-1)
    with pytest.raises(ValueError, match="window_s"):
        QueueDriven(window_s=math.inf)


class _Spy:
    """A queue_driven autoscaler that records the rate history of every view it is shown."""

    def __init__(self, inner: QueueDriven) -> None:
        self.inner, self.interval_s, self.seen = inner, inner.interval_s, []

    def scale(self, view):
        self.seen.append(view.rate_history)
        return self.inner.scale(view)


def test_the_engine_gives_one_rate_per_tick_and_keeps_the_last_64():
    n = 2000
    arrival = np.linspace(0.0, 99.9, n)   # 20 requests/s for 100 s
    reqs = RequestTable.from_arrays(arrival, [32] * n, [4] * n)
    spy = _Spy(QueueDriven(target_outstanding=64, interval_s=1.0, warmup_s=0.0))
    ServingEngine([ServiceSpec("s", reqs, (PoolSpec("colocated", 2, PERF),))], autoscaling=spy,
                  options=ServingOptions()).run()
    assert spy.seen[0] == ()                              # t = 0: no interval yet
    assert [len(h) for h in spy.seen[1:70]] == [min(k, 64) for k in range(1, 70)]
    h = spy.seen[80]
    assert [t for t, _ in h] == pytest.approx([17.0 + k for k in range(64)])
    assert np.mean([r for _, r in h]) == pytest.approx(20.0, rel=0.01)


def test_registry_builds_it_with_the_lead():
    p = registry.make("autoscaling", {"name": "queue_driven", "params": {"lead_s": 300, "interval_s": 30}},
                      "policy.serving.autoscaling")
    assert p.lead_s == 300 and p.window_s is None
