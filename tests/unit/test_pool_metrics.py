"""Pool metrics over the day (``hourly``) and over the demand (``demand_served``): closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_sim.metrics.pool import demand_served, hourly, hourly_keys

STATES = ("idle", "training", "serving", "moving", "down")


def _timeline(starts, ends, **cols):
    df = pd.DataFrame({"time_s": starts, "time_end_s": ends})
    for s in STATES:
        df[s] = cols.get(s, [0.0] * len(starts))
    return df


def test_two_days_fold_onto_the_same_hours():
    # 10 cards; hour 0 of day 1 all training, hour 0 of day 2 half idle; hour 1 both days serving
    tl = _timeline([0.0, 3600.0, 86400.0, 90000.0], [3600.0, 7200.0, 90000.0, 93600.0],
                   idle=[0.0, 0.0, 5.0, 0.0], training=[10.0, 0.0, 5.0, 0.0], serving=[0.0, 10.0, 0.0, 10.0])
    h = hourly(tl, 10)
    assert h["hour"].tolist() == [0, 1]
    assert h["idle"].tolist() == pytest.approx([0.25, 0.0])
    assert h["training"].tolist() == pytest.approx([0.75, 0.0])
    assert h["allocated"].tolist() == pytest.approx([0.75, 1.0])
    keys = hourly_keys(h)
    assert keys == {"pool.hourly.allocated.min": pytest.approx(0.75), "pool.hourly.allocated.min_hour": 0,
                    "pool.hourly.allocated.max": pytest.approx(1.0), "pool.hourly.allocated.max_hour": 1}


def test_a_short_last_bin_weighs_by_its_width():
    # bins of 1,800 s and a last one of 600 s, all in hour 0: weights 1800 / 1800 / 600 of 4200
    tl = _timeline([0.0, 1800.0, 3000.0], [1800.0, 3000.0, 3600.0], training=[4.0, 2.0, 0.0], idle=[0.0, 2.0, 4.0])
    h = hourly(tl, 4)
    want = (4 * 1800 + 2 * 1200 + 0 * 600) / (3600 * 4)
    assert h["training"].tolist() == pytest.approx([want])
    assert h["idle"].iloc[0] + h["training"].iloc[0] == pytest.approx(1.0)


def test_empty_timeline_has_no_hours_and_no_keys():
    assert hourly(_timeline([], []), 8).empty
    assert hourly_keys(hourly(_timeline([], []), 8)) == {}


@settings(deadline=2000, max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), min_size=1, max_size=300))
def test_hours_average_back_to_the_whole_run(levels):
    """5-minute bins over a whole number of days: every hour has the same weight, so the mean of
    the hourly allocated shares is the run's time-weighted allocated share."""
    n = 8
    days = -(-len(levels) // 288)
    rows = (levels + [(n, 0)] * (days * 288 - len(levels)))
    t = np.arange(len(rows)) * 300.0
    idle = [min(a, n) for a, _ in rows]
    train = [min(b, n - i) for (_, b), i in zip(rows, idle, strict=True)]
    serving = [n - i - tr for i, tr in zip(idle, train, strict=True)]
    tl = _timeline(t, t + 300.0, idle=idle, training=train, serving=serving)
    h = hourly(tl, n)
    assert len(h) == 24
    whole = (np.array(train) + np.array(serving)).sum() / (len(rows) * n)
    assert h["allocated"].mean() == pytest.approx(whole, abs=1e-12)
    assert (h[list(STATES)].sum(axis=1).to_numpy() == pytest.approx(np.ones(24)))


def test_demand_served_closed_form():
    jobs = {"num_cards": np.array([8, 4, 2]), "card_milli": np.array([1000, 1000, 500]),
            "submit_s": np.array([0.0, 5400.0, 0.0]), "duration_s": np.array([3600.0, 7200.0, 1000.0]),
            "remaining_s": np.array([0.0, 6000.0, 0.0]), "lost_card_s": np.array([0.0, 1200.0, 0.0])}
    req = pd.DataFrame({"status": ["finished", "finished", "rejected", "unfinished"]})
    out = demand_served(jobs, 7200.0, busy_card_s=40000.0, capacity_card_s=16 * 7200.0, requests=req)
    # could have done: 8 x 3600, 4 x min(7200, 1800), 1 card x 1000; done: 8 x 3600, 4 x 1200, 1 x 1000
    assert out["training.demand_served"] == pytest.approx((28800 + 4800 + 1000) / (28800 + 7200 + 1000))
    assert out["inference.demand_served"] == 0.5
    assert out["pool.utilization.demand_served"] == pytest.approx((40000 - 1200) / (16 * 7200))


def test_demand_served_without_jobs_or_requests():
    out = demand_served(None, 3600.0, busy_card_s=100.0, capacity_card_s=0.0)
    assert out == {"pool.utilization.demand_served": None}
    out = demand_served({"submit_s": np.array([])}, 3600.0, 50.0, 100.0)
    assert out == {"pool.utilization.demand_served": 0.5}


def test_pool_energy_priced_where_it_was_drawn():
    """Hand computation on two card types and a two-window day: held cards at idle power per
    ledger bin, training's and serving's busy extra (TDP - idle) per their own bins."""
    from cluster_sim.engine.pool.ledger import STATES as LEDGER_STATES
    from cluster_sim.metrics.pool import priced_pool_energy_usd
    from cluster_sim.metrics.tariff import Tariff

    day = Tariff.from_windows([(0.0, 43200.0, 0.1), (43200.0, 86400.0, 0.3)])
    starts, ends = np.array([0.0, 43200.0]), np.array([43200.0, 86400.0])
    cards = np.zeros((2, len(LEDGER_STATES), 2))
    cards[:, LEDGER_STATES.index("training"), 0] = [4.0, 2.0]   # type a: 4 then 2 training
    cards[:, LEDGER_STATES.index("serving"), 1] = [0.0, 2.0]    # type b: 2 serving after noon
    cards[:, LEDGER_STATES.index("moving"), 1] = [1.0, 0.0]
    tdp, idle = [700.0, 400.0], [100.0, 50.0]
    training = pd.DataFrame({"time_s": [0.0], "time_end_s": [86400.0], "busy_cards.a": [3.0], "busy_cards.b": [0.0]})
    serving = pd.DataFrame({"time_s": [43200.0], "width_s": [43200.0], "replica": [7], "busy_fraction": [0.5]})
    replicas = pd.DataFrame({"replica": [7], "cards": [2], "card_type": ["b"]})
    usd = priced_pool_energy_usd((starts, ends, cards), ("a", "b"), tdp, idle, 1.25, day,
                                 training=training, serving=serving, replicas=replicas)
    h = 12.0   # hours per window
    idle_kwh = [(4 * 100 + 1 * 50) * h / 1e3, (2 * 100 + 2 * 50) * h / 1e3]
    busy_kwh_train = [3 * 600 * h / 1e3, 3 * 600 * h / 1e3]
    busy_kwh_serve = [0.0, 2 * 0.5 * 350 * h / 1e3]
    want = 1.25 * sum(p * (i + bt + bs) for p, i, bt, bs in
                      zip((0.1, 0.3), idle_kwh, busy_kwh_train, busy_kwh_serve, strict=True))
    assert usd == pytest.approx(want, rel=1e-12)
