"""Off-peak shifting (错峰, issue #13): deferrable jobs, the OffPeak release decision, the engine's
hold, and the deferral / deadline summary keys, against closed forms."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_sim import catalog
from cluster_sim.config import load_config
from cluster_sim.errors import ConfigError
from cluster_sim.experiment import simulate
from cluster_sim.experiment.build import offpeak_releases
from cluster_sim.experiment.drivers import run_training
from cluster_sim.metrics.tariff import DAY_S, Tariff
from cluster_sim.policies.training.offpeak import OffPeak
from cluster_sim.workload.generators import industry_mix, uniform_jobs
from cluster_sim.workload.jobs import COLUMNS, KIND_FINETUNE, JobTable, TrainingJob

H = 3600.0
CHEAP, PEAK = 0.05, 0.12
DAY = Tariff.from_windows([(0.0, 8 * H, CHEAP), (8 * H, 24 * H, PEAK)])  # cheap 0h-8h


def job(name: str, submit: str = "10h", **kw) -> dict:
    return {"name": name, "model": "llama3-8b", "cards": 8, "duration": "2h", "submit": submit, **kw}


def experiment(*jobs: dict, offpeak: bool = True, duration: str = "50h") -> dict:
    # 50 h / 500 timeline bins = 360 s bins: 10h and 24h fall on bin edges, so every bin has one price
    return {
        "name": "offpeak", "duration": duration,
        "cluster": {"topology": {"builder": "node_groups", "groups": [["h100-sxm", 8, 1]]}},
        "energy": {"tariff": [{"from": "0h", "to": "8h", "usd_per_kwh": CHEAP},
                              {"from": "8h", "to": "24h", "usd_per_kwh": PEAK}]},
        "training": {"jobs": list(jobs)},
        "policy": {"training": {"offpeak": {"max_usd_per_kwh": CHEAP}}} if offpeak else {},
    }


# ---- the decision ------------------------------------------------------------------------------
def test_release_at_closed_forms():
    p = OffPeak(max_usd_per_kwh=CHEAP)
    assert p.release_at(10 * H, 2 * H, 24 * H, DAY) == 24 * H  # 24h + 2h <= 10h + 24h: next midnight
    assert p.release_at(10 * H, 2 * H, 12 * H, DAY) == 10 * H  # 24h + 2h > 22h: runs now
    assert p.release_at(10 * H, 2 * H, 16 * H, DAY) == 24 * H  # exactly on time counts as on time
    assert p.release_at(3 * H, 2 * H, 24 * H, DAY) == 3 * H    # already in a cheap window
    assert p.release_at(10 * H, 2 * H, math.inf, DAY) == 24 * H  # no deadline
    assert p.release_at(DAY_S + 9 * H, H, 24 * H, DAY) == 2 * DAY_S  # day 1 -> midnight of day 2
    assert OffPeak(max_usd_per_kwh=0.01).release_at(10 * H, H, math.inf, DAY) == 10 * H  # none so cheap
    with pytest.raises(ValueError, match="max_usd_per_kwh"):
        OffPeak(max_usd_per_kwh=-1.0)


def test_release_times_moves_only_deferrable_rows():
    p = OffPeak(max_usd_per_kwh=CHEAP)
    out = p.release_times(np.array([10 * H, 10 * H, 10 * H]), np.full(3, 2 * H), np.full(3, 24 * H),
                          np.array([True, False, True]), DAY)
    assert out.tolist() == [24 * H, 10 * H, 24 * H]


TARIFFS = st.lists(st.tuples(st.integers(1, 23), st.sampled_from([0.03, 0.05, 0.08, 0.12, 0.2])),
                   min_size=1, max_size=5, unique_by=lambda w: w[0])


@settings(max_examples=150, deadline=2000)
@given(TARIFFS, st.floats(0, 5 * DAY_S), st.floats(1.0, 2 * DAY_S), st.floats(1.0, 3 * DAY_S),
       st.sampled_from([0.03, 0.05, 0.08, 0.12]))
def test_release_is_cheap_on_time_and_the_earliest(cuts, submit, dur, deadline, thr):
    cuts = sorted(cuts)
    starts = [0.0, *[c * H for c, _ in cuts]]
    prices = [0.1, *[p for _, p in cuts]]
    tariff = Tariff(tuple(starts), tuple(prices))
    r = OffPeak(max_usd_per_kwh=thr).release_at(submit, dur, deadline, tariff)
    nxt = tariff.next_window_at_or_below(submit, thr)
    if r != submit:  # moved: to the next cheap instant, and the deadline still holds from there
        assert r == nxt and r > submit and tariff.price_at(r) <= thr
        assert r + dur <= submit + deadline
    else:  # not moved: already cheap, nothing cheap, or the deadline forbids waiting
        assert nxt == submit or nxt == math.inf or nxt + dur > submit + deadline


# ---- job tables and generators ---------------------------------------------------------------------
def test_job_table_release_and_deadline_columns():
    t = JobTable(job_id=[0, 1], submit_s=[5.0, 0.0], num_cards=1, duration_s=1.0)
    assert t.release_s.tolist() == [5.0, 0.0] and t.deadline_s.tolist() == [math.inf, math.inf]
    assert not t.deferrable.any() and {"release_s", "deadline_s", "deferrable"} <= set(COLUMNS)
    held = t.replace(release_s=[9.0, 0.0])
    assert held.replace(submit_s=[6.0, 1.0]).release_s.tolist() == [10.0, 1.0]  # the hold is kept
    assert held.sorted().release_s.tolist() == [0.0, 9.0]
    with pytest.raises(ConfigError, match="column release_s: row 0: must be >= submit_s"):
        t.replace(release_s=[4.0, 0.0])
    with pytest.raises(ConfigError, match="column deadline_s: row 1: must be > 0"):
        t.replace(deadline_s=[math.inf, 0.0])
    spec = TrainingJob("a", duration_s=60.0, deferrable=True, deadline_s=600.0)
    ft = JobTable.from_jobs([spec, TrainingJob("b", duration_s=60.0)])
    assert ft.deferrable.tolist() == [True, False] and ft.deadline_s.tolist() == [600.0, math.inf]
    with pytest.raises(ConfigError, match="deadline_s: must be a positive number"):
        TrainingJob("c", duration_s=60.0, deadline_s=0.0)


def test_generators_mark_deferrable_jobs_without_changing_the_rest():
    base, marked = industry_mix(3000, rng=2), industry_mix(3000, rng=2, deferrable_fraction=0.5,
                                                           deadline_s=24 * H)
    for col in set(COLUMNS) - {"deferrable", "deadline_s"}:
        np.testing.assert_array_equal(getattr(base, col), getattr(marked, col))
    assert not base.deferrable.any()
    d = marked.deferrable
    assert not (d & (marked.kind != KIND_FINETUNE)).any()  # only fine-tunes
    share = d.sum() / (marked.kind == KIND_FINETUNE).sum()
    assert share == pytest.approx(0.5, abs=0.04)
    assert (marked.deadline_s[d] == 24 * H).all() and np.isinf(marked.deadline_s[~d]).all()
    u0, u = uniform_jobs(400, 0.01, 600.0, rng=1), uniform_jobs(400, 0.01, 600.0, rng=1, deferrable_fraction=1.0)
    np.testing.assert_array_equal(u0.duration_s, u.duration_s)
    assert u.deferrable.all() and np.isinf(u.deadline_s).all()
    with pytest.raises(ConfigError, match="uniform_jobs.deferrable_fraction"):
        uniform_jobs(4, 0.01, 600.0, rng=1, deferrable_fraction=1.5)
    with pytest.raises(ConfigError, match="industry_mix.deadline_s: applies to deferrable jobs"):
        industry_mix(10, rng=1, deadline_s=H)


# ---- the engine and the summary ---------------------------------------------------------------------
def test_deferred_job_waits_for_the_cheap_window_and_counts_from_submit():
    res = run_training(experiment(job("late", deferrable=True, deadline="24h"),
                                  job("tight", deferrable=True, deadline="12h"),
                                  job("plain", submit="12h", deadline="1h")))
    j = res.jobs.set_index("name")
    assert j.loc["late", "release_s"] == 24 * H and j.loc["late", "first_start_s"] == 24 * H
    assert j.loc["late", "jct_s"] == 16 * H      # 24h + 2h - 10h: from submit
    assert j.loc["late", "queueing_s"] == 14 * H and j.loc["late", "wait_s"] == 14 * H
    assert j.loc["tight", "release_s"] == 10 * H and j.loc["tight", "first_start_s"] == 10 * H
    # one 8-card node: plain (submit 12h) waits for tight to finish at 12h, not for late
    assert j.loc["plain", "release_s"] == 12 * H and j.loc["plain", "finish_s"] == 14 * H
    s = res.summary
    assert s["training.jobs.submitted"] == 3 and s["training.jobs.finished"] == 3
    assert s["training.jobs.deferred"] == 1 and s["training.deferred_hours.mean"] == 14.0
    assert s["training.jobs.missed_deadline"] == 1  # plain: 2 h of work, a 1 h deadline


def test_non_deferrable_jobs_are_never_moved():
    res = run_training(experiment(job("a", deadline="24h"), job("b", submit="30h")))
    assert (res.jobs["release_s"] == res.jobs["submit_s"]).all()
    assert res.jobs["first_start_s"].tolist() == [10 * H, 30 * H]
    assert res.summary["training.jobs.deferred"] == 0 and res.summary["training.deferred_hours.mean"] is None


def test_without_the_policy_deferrable_jobs_run_now():
    res = run_training(experiment(job("late", deferrable=True, deadline="24h"), offpeak=False))
    assert res.jobs["first_start_s"].tolist() == [10 * H] and res.summary["training.jobs.deferred"] == 0


def test_held_job_and_a_deadline_passed_at_the_horizon():
    res = run_training(experiment(job("late", deferrable=True, deadline="24h"), job("x", submit="1h",
                                  duration="30h", deadline="5h"), duration="20h"))
    j = res.jobs.set_index("name")
    assert j.loc["late", "status"] == "pending" and math.isnan(j.loc["late", "first_start_s"])
    s = res.summary  # late is due at 34h (not yet), x at 6h (passed, still running at 20h)
    assert s["training.jobs.deferred"] == 1 and s["training.jobs.missed_deadline"] == 1
    assert s["training.jobs.running_at_end"] == 1


def test_deferral_lowers_the_energy_cost_by_the_price_difference():
    late = job("late", deferrable=True, deadline="24h")
    on, off = simulate(experiment(late)).summary, simulate(experiment(late, offpeak=False)).summary
    tdp = catalog.accelerator("h100-sxm").tdp_w
    kwh = 8 * tdp * 2 * H * on["energy.pue"] / 3.6e6  # 8 cards busy at TDP for 2 h, x PUE
    assert on["energy_kwh"] == pytest.approx(kwh, rel=1e-12) and off["energy_kwh"] == pytest.approx(kwh, rel=1e-12)
    assert on["cost.energy_usd"] == pytest.approx(kwh * CHEAP, rel=1e-9)   # 24h-26h at 0.05
    assert off["cost.energy_usd"] == pytest.approx(kwh * PEAK, rel=1e-9)   # 10h-12h at 0.12
    assert off["cost.energy_usd"] - on["cost.energy_usd"] == pytest.approx(kwh * (PEAK - CHEAP), rel=1e-9)


def test_offpeak_releases_is_a_no_op_without_deferrable_jobs():
    cfg = load_config(experiment(job("a")))
    t = JobTable.from_jobs([TrainingJob("a", duration_s=2 * H, submit_s=10 * H)])
    assert offpeak_releases(cfg, t) is t


@pytest.mark.parametrize(("change", "message"), [
    ({"energy": None}, "policy.training.offpeak: needs a time-of-use energy.tariff"),
    ({"energy": {"usd_per_kwh": 0.1}}, "a flat energy.usd_per_kwh has none"),
    ({"policy": {"training": {"offpeak": {"max_usd_per_kwh": 0.01}}}},
     "policy.training.offpeak.max_usd_per_kwh: 0.01 is below every energy.tariff window"),
])
def test_offpeak_config_errors(change, message):
    cfg = copy.deepcopy(experiment(job("a", deferrable=True)))
    cfg.update(change)
    if cfg["energy"] is None:
        del cfg["energy"]
    with pytest.raises(ConfigError, match=message):
        load_config(cfg)
