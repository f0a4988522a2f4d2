"""Failure classes (docs/faults.md): closed forms of the processes, the repair queue, spares,
link failures and the restart delay, on small clusters through the engine."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cluster_sim.engine.cluster.failure_process import uplinks_per_leaf
from cluster_sim.engine.cluster.failures import FailureClass, FailureModel
from cluster_sim.engine.cluster.state import layout_from_node_groups
from cluster_sim.engine.simulation import Simulation
from cluster_sim.metrics import result_from_record
from cluster_sim.policies import registry
from cluster_sim.workload.jobs import JobTable

POLICIES = {"admission": "accept_all", "ordering": "fifo", "placement": "packed", "preemption": "none"}


def jobs_of(cards, dur, submit=None):
    n = len(cards)
    return JobTable(job_id=np.arange(n), submit_s=submit or [0.0] * n, num_cards=cards, duration_s=dur)


def simulation(groups, jobs, fm, *, seed=0, horizon=None, overhead=0.0, **lo_kw):
    lo = layout_from_node_groups(groups, **lo_kw)
    sim = Simulation(lo, seed=seed, horizon_s=horizon)
    sim.add_training(jobs, failures=fm, preempt_overhead_s=overhead,
                     **{k: registry.make(k, v) for k, v in POLICIES.items()})
    return sim


def finish(sim):
    sim.run()
    return result_from_record(sim.collect())


def test_weibull_scale_gives_the_mean():
    c = FailureClass("x", "card", mtbf_s=1000.0, repair_s=1.0, shape=2.0)
    assert c.weibull_scale_s * math.gamma(1.5) == pytest.approx(1000.0)
    assert FailureClass("x", "card", 1000.0, 1.0).weibull_scale_s == 1000.0


@pytest.mark.parametrize("shape", [None, 1.0])
def test_interruptions_of_a_constant_job_are_poisson(shape):
    """A job always on 8 of 32 cards (restart delay 0, no stall, short repairs) is hit at rate
    8 / mtbf: over 30 seeds the count has mean lambda*T (4 standard errors) and a Poisson
    dispersion (variance / mean within the two-sided 1% chi-square bounds, 29 degrees of
    freedom). Weibull shape 1 is the same process."""
    mtbf, horizon = 4e5, 1e6
    lam = 8 / mtbf * horizon   # 20 interruptions expected
    fm = FailureModel(classes=(FailureClass("gpu", "card", mtbf, 600.0, shape),), restart_delay_s=0.0,
                      checkpoint_cost_s=0.0)
    counts = []
    for seed in range(30):
        res = finish(simulation([("h100-sxm", 8, 4)], jobs_of([8], [1e12]), fm, seed=seed, horizon=horizon))
        s = res.summary
        assert s["failures.gpu.job_interruptions"] == s["training.restarts"]
        counts.append(s["failures.gpu.job_interruptions"])
    c = np.asarray(counts, float)
    assert abs(c.mean() - lam) < 4 * math.sqrt(lam / c.size)
    assert 13.12 / 29 < c.var(ddof=1) / lam < 52.34 / 29


def test_weibull_mean_time_to_failure():
    """Every one of 1,000 cards fails once within 4 scales (P(T > 4 scale) = e^-16): the mean
    first time to failure is scale * Gamma(1 + 1/k) within 4 standard errors."""
    k, mtbf = 2.0, 1e5
    c = FailureClass("hbm", "card", mtbf, 1.0, shape=k)
    scale = c.weibull_scale_s
    sim = simulation([("h100-sxm", 8, 125)], jobs_of([1], [1.0]), FailureModel(classes=(c,)),
                     seed=5, horizon=4 * scale)
    res = finish(sim)
    out = res.record.meta["failures"]["outages"]
    units, ttf = np.asarray(out["unit"]), np.asarray(out["ttf_s"])
    t_fail = np.asarray(out["t_fail_s"])
    first = np.array([ttf[units == u][np.argmin(t_fail[units == u])] for u in np.unique(units)])
    assert first.size == 1000
    sd = scale * math.sqrt(math.gamma(1 + 2 / k) - math.gamma(1 + 1 / k) ** 2)
    assert scale == pytest.approx(mtbf / math.gamma(1 + 1 / k))
    assert abs(first.mean() - mtbf) < 4 * sd / math.sqrt(first.size)   # mtbf = scale * Gamma(1 + 1/k)
    # renewals: a later failure's time to failure counts from the unit's return to service
    later = t_fail[ttf < t_fail - 1e-9]
    assert later.size > 0


def node_model(**kw):
    return FailureModel(classes=(FailureClass("host", "node", 1e12, 1000.0),), **kw)


def test_one_technician_queues_two_simultaneous_repairs():
    """Two nodes fail at t=0, one technician, repairs of R = 1000 s: the first is back at R, the
    second waits R and is back at 2R; card-hours: waiting 8R, repairing 16R (of 8-card nodes)."""
    sim = simulation([("h100-sxm", 8, 3)], jobs_of([1], [1.0]), node_model(technicians=1), horizon=5000.0)
    fp = sim.training._fp
    fp.inject("host", 0, 0.0)
    fp.inject("host", 1, 0.0)
    res = finish(sim)
    rec = res.record.meta["failures"]
    assert rec["outages"]["t_up_s"] == [1000.0, 2000.0]
    cs = rec["card_s"]
    assert cs["waiting"] == pytest.approx(8 * 1000.0) and cs["repairing"] == pytest.approx(16 * 1000.0)
    assert res.summary["failures.mttr_h"] == pytest.approx(1500.0 / 3600.0)
    assert rec["repair_wait_s"] == pytest.approx(1000.0)
    # unlimited technicians: both back at R
    sim = simulation([("h100-sxm", 8, 3)], jobs_of([1], [1.0]), node_model(), horizon=5000.0)
    sim.training._fp.inject("host", 0, 0.0)
    sim.training._fp.inject("host", 1, 0.0)
    assert finish(sim).record.meta["failures"]["outages"]["t_up_s"] == [1000.0, 1000.0]


def test_spare_refills_a_slot_and_the_repaired_node_becomes_the_next_spare():
    """One spare, swap 100 s, repair 1000 s, two nodes fail at 0: slot 0 is refilled at 100;
    slot 1 waits for the first repaired node (1000) and is refilled at 1100."""
    fm = node_model(spare_nodes=1, swap_s=100.0)
    sim = simulation([("h100-sxm", 8, 3)], jobs_of([1], [1.0]), fm, horizon=5000.0)
    sim.training._fp.inject("host", 0, 0.0)
    sim.training._fp.inject("host", 1, 0.0)
    res = finish(sim)
    rec = res.record.meta["failures"]
    assert rec["outages"]["t_up_s"] == [100.0, 1100.0]
    assert rec["card_s"]["swapping"] == pytest.approx(8 * 200.0)
    assert rec["card_s"]["waiting"] == pytest.approx(8 * 1000.0)
    assert rec["card_s"]["repairing"] == 0.0   # repairs happen off the slots
    assert rec["swaps"] == 2 and rec["repair_s"] == pytest.approx(2000.0)


def test_a_job_on_a_failed_node_restarts_after_detection_and_the_size_dependent_delay():
    """A 16-card job, its node fails at 50 s: it notices after 30 s, restarts after
    base 200 + 60 s x 16/1000 ranks, resumes from its last checkpoint (none yet: all 50 s lost)."""
    fm = node_model(detection_s=30.0, restart_auto=True, restart_base_s=200.0, init_per_1k_ranks_s=60.0,
                    checkpoint_cost_s=0.0)
    sim = simulation([("h100-sxm", 8, 4)], jobs_of([16], [1000.0]), fm, horizon=5000.0)
    sim.training._fp.inject("host", 0, 50.0)
    res = finish(sim)
    j = res.jobs.iloc[0]
    restart = 50.0 + 30.0 + 200.0 + 60.0 * 16 / 1000
    assert j.finish_s == pytest.approx(restart + 1000.0)
    s = res.summary
    assert s["failures.host.job_interruptions"] == 1 and s["failures.host.interruptions"] == 1
    assert s["failures.detection_card_hours"] == pytest.approx(16 * 30.0 / 3600.0)
    assert FailureModel(restart_auto=True).restart_for(16_000) == pytest.approx(300.0 + 30.0 * 16)


def test_link_failures_slow_the_jobs_that_cross_the_leaf_until_repaired():
    """Two non-blocking leaves of 16 cards (16 uplinks each). Half of leaf 0's uplinks fail at 0
    for R = 1000 s: the 24-card job across both leaves gets share 0.5 there, speed
    1 / (1 + c/2) with c = 0.05 log2 24 (engine/cluster/speed.py), and full speed after R; the
    8-card job inside leaf 1 is not slowed."""
    full, n_up = uplinks_per_leaf(layout_from_node_groups([("h100-sxm", 8, 4)], nodes_per_leaf=2))
    assert n_up.tolist() == [16, 16]
    fm = FailureModel(classes=(FailureClass("cable", "link", 1e12, 1000.0),), checkpoint_cost_s=0.0)
    sim = simulation([("h100-sxm", 8, 4)], jobs_of([24, 8], [3000.0, 3000.0]), fm, nodes_per_leaf=2)
    for u in range(8):
        sim.training._fp.inject("cable", u, 0.0)
    res = finish(sim)
    c = 0.05 * math.log2(24)
    slow = 1.0 / (1.0 + c / 2)
    j = res.jobs.set_index("job_id")
    assert j.loc[0, "finish_s"] == pytest.approx(1000.0 + (3000.0 - 1000.0 * slow))
    assert j.loc[1, "finish_s"] == pytest.approx(3000.0)
    s = res.summary
    assert s["failures.cable.failures"] == 8 and s["failures.cable.job_interruptions"] == 0
    assert s["failures.link_hours_down"] == pytest.approx(8 * 1000.0 / 3600.0)


def test_a_switch_failure_fails_every_job_under_the_leaf():
    fm = FailureModel(classes=(FailureClass("tor", "switch", 1e12, 500.0),), restart_delay_s=0.0,
                      checkpoint_cost_s=0.0)
    sim = simulation([("h100-sxm", 8, 4)], jobs_of([8, 8, 8], [1000.0] * 3), fm, nodes_per_leaf=2)
    sim.training._fp.inject("tor", 0, 100.0)
    res = finish(sim)
    s = res.summary
    assert s["failures.tor.interruptions"] == 1 and s["failures.tor.job_interruptions"] == 2
    assert res.record.meta["failures"]["card_s"]["repairing"] == pytest.approx(16 * 500.0)


def test_card_hours_add_up_and_match_the_ledger():
    classes = (FailureClass("gpu", "card", 2e5, 3000.0), FailureClass("host", "node", 4e5, 5000.0, shape=1.5),
               FailureClass("tor", "switch", 1e6, 2000.0), FailureClass("cable", "link", 1e5, 1000.0))
    fm = FailureModel(classes=classes, technicians=2, spare_nodes=1, swap_s=300.0, restart_delay_s=60.0)
    sim = simulation([("h100-sxm", 8, 8)], jobs_of([16, 8, 24, 4], [1e9] * 4), fm, seed=2, horizon=2e6,
                     nodes_per_leaf=2, overhead=30.0)
    res = finish(sim)
    s = res.summary
    parts = [s[f"failures.card_hours.{k}"] for k in ("up", "waiting", "repairing", "swapping")]
    assert sum(parts) == pytest.approx(64 * 2e6 / 3600.0)
    down = res.record.pool["card_seconds"]["down"] / 3600.0
    assert sum(parts[1:]) == pytest.approx(down) and down > 0
    assert s["failures.failures"] == sum(s[f"failures.{c.name}.failures"] for c in classes)
    assert min(s[f"failures.{c.name}.failures"] for c in classes) > 0
    assert s["failures.swaps"] > 0 and s["failures.repair_wait_hours"] > 0


def test_model_refuses_bad_classes():
    with pytest.raises(ValueError, match="shape"):
        FailureClass("x", "card", 1.0, 1.0, shape=0.0)
    with pytest.raises(ValueError, match="unit"):
        FailureClass("x", "rack", 1.0, 1.0)
    with pytest.raises(ValueError, match="not both"):
        FailureModel(card_mtbf_s=1e6, classes=(FailureClass("x", "card", 1.0, 1.0),))
    with pytest.raises(ValueError, match="technicians"):
        FailureModel(technicians=0)
