"""Explicit checkpoints in the cluster engine (engine/cluster/checkpoints.py) and the reliability
accounting: closed forms, the shared storage pool, the limit to the old closed form, the
first-order ETTR model over seeds, and the lost-work invariant (issue #17 items 2, 3, 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster_sim.engine.cluster.failures import FailureModel, JobCheckpoint
from cluster_sim.engine.cluster.state import layout_from_node_groups
from cluster_sim.engine.simulation import Simulation
from cluster_sim.experiment.drivers import run_training
from cluster_sim.metrics.reliability import young_waste
from cluster_sim.policies import registry
from cluster_sim.workload.jobs import JobTable, TrainingJob

H = 3600.0
GB = 1e9


def _jobs(n, duration_s, cards=8):
    return JobTable.from_jobs([TrainingJob(name=f"j{k}", cards=cards, duration_s=duration_s) for k in range(n)])


def _run(jobs, fm, *, seed=0, nodes=2, horizon_s=None):
    sim = Simulation(layout_from_node_groups([("h100-sxm", 8, nodes)]), seed=seed, horizon_s=horizon_s)
    sim.meta["reliability"] = True
    sim.add_training(jobs, admission=registry.make("admission", "accept_all"),
                     ordering=registry.make("ordering", "fifo"), placement=registry.make("placement", "packed"),
                     preemption=registry.make("preemption", "none"), failures=fm)
    return run_training(simulation=sim)


def _ck(nbytes, cap=math.inf, copy_s=0.0):
    return JobCheckpoint(bytes=nbytes, write_cap_Bps=cap, copy_s=copy_s, cost_s=0.0)


def test_one_job_alone_pays_bytes_over_bandwidth_per_checkpoint():
    B, nbytes = 10 * GB, 600 * GB                       # 60 s per write
    fm = FailureModel(storage_bandwidth_Bps=B, checkpoint_interval_s=H, jobs={0: _ck(nbytes)})
    res = _run(_jobs(1, 9.5 * H), fm)
    j = res.jobs.iloc[0]
    assert j["checkpoints"] == 9                         # at 1 h ... 9 h of progress
    assert j["jct_s"] == pytest.approx(9.5 * H + 9 * nbytes / B, rel=1e-9)
    assert j["checkpoint_card_s"] == pytest.approx(9 * 60.0 * 8, rel=1e-9)
    assert res.summary["reliability.ettr"] == pytest.approx(9.5 * H / j["jct_s"], rel=1e-9)


def test_two_jobs_writing_at_once_each_take_twice_as_long():
    B, nbytes = 10 * GB, 600 * GB
    alone = _run(_jobs(1, 9.5 * H), FailureModel(storage_bandwidth_Bps=B, jobs={0: _ck(nbytes)}))
    both = _run(_jobs(2, 9.5 * H), FailureModel(storage_bandwidth_Bps=B, jobs={0: _ck(nbytes), 1: _ck(nbytes)}))
    stall_alone = alone.jobs["jct_s"].iloc[0] - 9.5 * H
    assert stall_alone == pytest.approx(9 * nbytes / B, rel=1e-9)
    for jct in both.jobs["jct_s"]:
        assert jct - 9.5 * H == pytest.approx(2 * stall_alone, rel=1e-9)   # B shared max-min: B/2 each


def test_a_write_capped_by_its_nodes_leaves_the_rest_to_the_other():
    B, nbytes = 10 * GB, 600 * GB
    fm = FailureModel(storage_bandwidth_Bps=B, jobs={0: _ck(nbytes, cap=2 * GB), 1: _ck(nbytes)})
    res = _run(_jobs(2, 1.5 * H), fm)
    slow, fast = res.jobs["jct_s"].to_numpy() - 1.5 * H
    assert slow == pytest.approx(nbytes / (2 * GB), rel=1e-9)              # its own cap
    # the other writes at 8 GB/s while both write, then alone at 10 GB/s
    first = nbytes / (8 * GB)
    assert fast == pytest.approx(first, rel=1e-9) and fast < slow


def test_async_checkpoint_stalls_only_for_the_copy_and_waits_for_its_persist():
    B, nbytes, copy = 10 * GB, 54_000 * GB, 60.0          # persist alone 1.5 h > the 1 h interval
    fm = FailureModel(storage_bandwidth_Bps=B, async_checkpoint=True, jobs={0: _ck(nbytes, copy_s=copy)})
    j = _run(_jobs(1, 9.9 * H), fm).jobs.iloc[0]
    # copies at 1, 2.5, 4, 5.5, 7, 8.5 h of progress: each next one waits for the 1.5 h persist
    assert j["jct_s"] == pytest.approx(9.9 * H + 6 * copy, rel=1e-9)
    assert j["checkpoints"] == 5                           # the 6th persist is still running at the finish
    sync = _run(_jobs(1, 9.9 * H), FailureModel(storage_bandwidth_Bps=B, jobs={0: _ck(nbytes)})).jobs.iloc[0]
    assert j["checkpoint_card_s"] < sync["checkpoint_card_s"]


def test_infinite_storage_bandwidth_reduces_to_the_closed_form_with_zero_cost():
    fail = dict(card_mtbf_s=300 * H, restart_delay_s=600.0, checkpoint_interval_s=H)
    closed = _run(_jobs(2, 200 * H), FailureModel(**fail, checkpoint_cost_s=0.0), seed=3, nodes=3)
    events = _run(_jobs(2, 200 * H), FailureModel(**fail, storage_bandwidth_Bps=1e30,
                                                  jobs={0: _ck(1e9), 1: _ck(1e9)}), seed=3, nodes=3)
    assert closed.summary["training.restarts"] >= 5
    assert events.summary["training.restarts"] == closed.summary["training.restarts"]
    np.testing.assert_allclose(events.jobs["jct_s"], closed.jobs["jct_s"], rtol=1e-9)
    np.testing.assert_allclose(events.jobs["lost_card_s.failure"], closed.jobs["lost_card_s.failure"],
                               rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize("storage", [None, 10 * GB])
def test_lost_work_is_at_most_one_interval_plus_the_write_per_interruption(storage):
    tau, nbytes = 1800.0, 300 * GB
    jobs = {k: _ck(nbytes) for k in range(4)} if storage else {}
    fm = FailureModel(card_mtbf_s=100 * H, restart_delay_s=600.0, checkpoint_interval_s=tau,
                      checkpoint_cost_s=30.0, storage_bandwidth_Bps=storage, jobs=jobs)
    res = _run(_jobs(4, 60 * H), fm, seed=5, nodes=5)
    j = res.jobs
    assert j["restarts"].sum() >= 10
    write = 4 * nbytes / storage if storage else 30.0       # worst case: all four write at once
    bound = j["restarts"] * (tau + write + 600.0 + 60.0) * j["num_cards"]
    assert (j["lost_card_s.failure"] >= 0).all() and (j["lost_card_s.failure"] <= bound).all()
    assert (j["lost_card_s.failure"] > 0).any()
    assert (j["surviving_card_s"] <= j["held_card_s"] + 1e-6).all()
    assert ((j["goodput"] > 0) & (j["goodput"] <= 1)).all() and ((j["ettr"] > 0) & (j["ettr"] <= 1)).all()
    s = res.summary
    assert s["reliability.interruptions.failure"] == s["training.restarts"]
    assert s["reliability.lost_card_h.failure"] == pytest.approx(j["lost_card_s.failure"].sum() / H)


def test_simulated_ettr_of_a_constant_job_matches_the_first_order_model():
    """8-card job, card MTBF 400 h: M = 50 h; tau 1 h, C 60 s, R = restart delay 600 s + the 60 s
    restart stall. ETTR ~ 1 - (C/tau + (tau/2 + R)/M) = 0.9697 (second-order terms ~ 5e-4)."""
    tau, C, R, M = H, 60.0, 660.0, 50 * H
    fm = FailureModel(card_mtbf_s=400 * H, restart_delay_s=600.0, checkpoint_interval_s=tau, checkpoint_cost_s=C)
    ettr = np.array([_run(_jobs(1, 500 * H), fm, seed=s).summary["reliability.ettr"] for s in range(24)])
    want = 1.0 - young_waste(C, tau, R, M)
    se = ettr.std(ddof=1) / math.sqrt(ettr.size)
    assert 0 < se < 0.002
    assert abs(ettr.mean() - want) < 3 * se + 1e-3


@settings(max_examples=25, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 50), min_size=1, max_size=5))
def test_writes_starting_together_share_the_storage_as_processor_sharing(sizes):
    """k uncapped writes of b_1 <= ... <= b_k bytes from t = 0 on B: the j-th ends at
    sum_{i<j} b_i / B + (k - j + 1) b_j / B (max-min = processor sharing on one link)."""
    B = 10 * GB
    nbytes = [s * 100 * GB for s in sizes]
    fm = FailureModel(storage_bandwidth_Bps=B, jobs={k: _ck(b) for k, b in enumerate(nbytes)})
    res = _run(_jobs(len(sizes), 1.5 * H), fm, nodes=len(sizes))
    order = sorted(nbytes)
    want = {}
    for j, b in enumerate(order):
        want.setdefault(b, (sum(order[:j]) + (len(order) - j) * b) / B)
    got = res.jobs["jct_s"].to_numpy() - 1.5 * H          # each job checkpoints once, at 1 h
    np.testing.assert_allclose(got, [want[b] for b in nbytes], rtol=1e-9)
