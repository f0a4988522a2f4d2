"""The training engine end to end on tiny clusters: timing, queueing, backfill, rejection, speed,
contention, preemption, failures, errors, and hosting other subsystems."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cluster_sim.engine.cluster.failures import FailureModel
from cluster_sim.engine.cluster.state import layout_from_node_groups
from cluster_sim.engine.cluster.terms import assumed_throughput
from cluster_sim.engine.simulation import Simulation
from cluster_sim.errors import PlacementError
from cluster_sim.experiment.drivers import run_training
from cluster_sim.policies.base import Params, Placement
from cluster_sim.workload.jobs import ANY_TYPE, KIND_MID, JobTable


def table(submit, cards, dur, **cols):
    n = len(submit)
    return JobTable(job_id=np.arange(n), submit_s=submit, num_cards=cards, duration_s=dur, **cols)


ONE_NODE = [("h100-sxm", 8, 1)]


def test_single_job_runs_for_its_duration():
    res = run_training(cluster=ONE_NODE, jobs=table([10.0], [4], [100.0]), horizon_s=200.0)
    j = res.jobs.iloc[0]
    assert j.status == "finished" and j.first_start_s == 10.0
    assert j.finish_s == pytest.approx(110.0) and j.jct_s == pytest.approx(100.0) and j.slowdown == pytest.approx(1.0)
    s = res.summary
    assert s["utilization.allocated"] == pytest.approx(4 * 100 / (8 * 200))
    assert s["utilization.busy"] == pytest.approx(s["utilization.allocated"])
    assert s["training.jobs.finished"] == 1 and s["sim.t_end_s"] == 200.0
    tl = res.timeline
    assert (tl["allocated_cards"] <= tl["available_cards"] + 1e-9).all()
    width = tl["time_end_s"] - tl["time_s"]
    assert (tl["allocated_cards"] * width).sum() == pytest.approx(400.0)


def test_fifo_queueing_and_strict_order():
    # job 0 takes the node; job 1 (8 cards) waits; job 2 (1 card) must not pass without backfill
    jobs = table([0.0, 1.0, 2.0], [6, 8, 1], [100.0, 50.0, 10.0])
    res = run_training(cluster=ONE_NODE, jobs=jobs)
    j = res.jobs.set_index("job_id")
    assert j.loc[1, "first_start_s"] == pytest.approx(100.0)
    assert j.loc[2, "first_start_s"] == pytest.approx(150.0)
    assert j.loc[1, "queueing_s"] == pytest.approx(99.0)
    assert res.summary["fragmentation.unallocated_cards"] > 0


def test_easy_backfill_starts_short_jobs_only():
    # head (job 1, 8 cards) has shadow time 100; job 2 (10 s) ends before it, job 3 (500 s) would delay it
    jobs = table([0.0, 1.0, 2.0, 3.0], [6, 8, 1, 2], [100.0, 50.0, 10.0, 500.0])
    res = run_training(cluster=ONE_NODE, jobs=jobs, backfill=True)
    j = res.jobs.set_index("job_id")
    assert j.loc[2, "first_start_s"] == pytest.approx(2.0)  # backfilled
    assert j.loc[1, "first_start_s"] == pytest.approx(100.0)  # the head is not delayed
    assert j.loc[3, "first_start_s"] == pytest.approx(150.0)  # not backfilled


def test_jobs_that_can_never_fit_are_rejected_with_a_reason():
    jobs = table([0.0, 0.0, 0.0], [16, 2, 2], [10.0, 10.0, 10.0],
                 card_types=("h100-sxm", "mi300x"), type_mask=[ANY_TYPE, 0b10, 0b01])
    res = run_training(cluster=ONE_NODE, jobs=jobs)
    j = res.jobs.set_index("job_id")
    assert j.loc[0, "status"] == "rejected" and "needs 16 cards" in j.loc[0, "reject_reason"]
    assert j.loc[1, "status"] == "rejected" and "mi300x" in j.loc[1, "reject_reason"]
    assert j.loc[2, "status"] == "finished" and j.loc[2, "reject_reason"] == ""
    assert res.summary["training.jobs.rejected"] == 2


def test_tenant_quota_admission():
    from cluster_sim.policies.training.admission import TenantQuota

    jobs = table([0.0, 0.0, 0.0, 0.0], [4, 4, 4, 4], [10.0] * 4, tenant=[0, 0, 0, 1], tenants=("a", "b"))
    res = run_training(cluster=[("h100-sxm", 8, 2)], jobs=jobs, admission=TenantQuota(quota_cards=8))
    j = res.jobs.set_index("job_id")
    assert j.status.tolist() == ["finished", "finished", "rejected", "finished"]
    assert "tenant 'a' quota 8" in j.loc[2, "reject_reason"]


def test_slower_card_type_runs_slower():
    lo = layout_from_node_groups([("h100-sxm", 8, 1), ("a100-80gb", 8, 1)])
    # reference = first type on a tie (h100); a job pinned to a100 has its own reference (a100)
    jobs = table([0.0, 0.0], [8, 8], [100.0, 100.0])
    res = run_training(cluster=lo, jobs=jobs, placement="packed")
    tp = assumed_throughput(lo)  # a node inventory (no topology): the assumed fallback, noted
    ratio = tp[0, 1] / tp[0, 0]  # finetune kind on a100 vs h100
    j = res.jobs.set_index("job_id")
    assert j.loc[0, "card_type"] == "h100-sxm" and j.loc[0, "jct_s"] == pytest.approx(100.0)
    assert j.loc[1, "card_type"] == "a100-80gb" and j.loc[1, "jct_s"] == pytest.approx(100.0 / ratio)
    assert 0 < j.loc[1, "mfu"] <= 1 if not math.isnan(j.loc[1, "mfu"]) else True
    assert any("node inventory without a topology" in n for n in res.notes), res.notes


def test_cross_leaf_contention_slows_jobs_and_reschedules_finishes():
    # 4 nodes of 8 per leaf, 2 leaves, 4:1 oversubscribed uplinks
    lo = layout_from_node_groups([("h100-sxm", 8, 8)], nodes_per_leaf=4, oversubscription=4.0)
    one = table([0.0], [64], [1000.0], kind=KIND_MID)
    solo = run_training(cluster=lo, jobs=one, placement="spread").jobs.iloc[0]
    assert solo.n_leaves == 2
    # share: leaf uplink = 32 x 50 GB/s / 4 = 400 GB/s; demand 32 x 50 -> share 1/4
    c = min(0.35, 0.05 * 6)
    assert solo.jct_s == pytest.approx(1000.0 * ((1 - c) + c / 2 + c / 2 * 4))
    packed = run_training(cluster=layout_from_node_groups([("h100-sxm", 8, 8)], nodes_per_leaf=8,
                                                          oversubscription=4.0),
                          jobs=one, placement="spread").jobs.iloc[0]
    assert packed.n_leaves == 1 and packed.jct_s == pytest.approx(1000.0)


def test_rate_change_when_a_competitor_leaves():
    lo = layout_from_node_groups([("h100-sxm", 8, 4)], nodes_per_leaf=2, oversubscription=2.0)
    # two 16-card jobs, spread puts each over both leaves (one node per leaf)
    jobs = table([0.0, 0.0], [16, 16], [100.0, 1000.0], kind=KIND_MID)
    res = run_training(cluster=lo, jobs=jobs, placement="spread")
    j = res.jobs.set_index("job_id")
    assert (j.n_leaves == 2).all()
    c = 0.05 * 4
    # leaf uplink 16 x 50 / 2 = 400 GB/s; both jobs demand 8 x 50 = 400 per leaf -> share 1/2
    slow = (1 - c) + c / 2 + c / 2 * 2
    t0 = 100.0 * slow
    assert j.loc[0, "jct_s"] == pytest.approx(t0)
    # after job 0 leaves, job 1 gets share 1 (demand 400 = capacity)
    done = t0 / slow
    assert j.loc[1, "jct_s"] == pytest.approx(t0 + (1000.0 - done) * 1.0)


class _Greedy(Params):
    """A broken placement policy: always card 0."""

    registry_name = "greedy_zero"

    def place(self, job, cluster):
        return Placement([0] * job.num_cards)


def test_over_allocating_policy_raises_placement_error_naming_it():
    jobs = table([0.0, 1.0], [1, 1], [100.0, 100.0])
    with pytest.raises(PlacementError, match="greedy_zero.*over-allocation"):
        run_training(cluster=ONE_NODE, jobs=jobs, placement=_Greedy())
    with pytest.raises(PlacementError, match="greedy_zero.*twice"):
        run_training(cluster=ONE_NODE, jobs=table([0.0], [2], [1.0]), placement=_Greedy())


def test_priority_preemption_checkpoints_and_resumes():
    jobs = table([0.0, 10.0], [8, 8], [100.0, 20.0], priority=[0, 5], preemptible=[True, False])
    res = run_training(cluster=ONE_NODE, jobs=jobs, ordering="priority", preemption="priority",
                       preempt_overhead_s=5.0)
    j = res.jobs.set_index("job_id")
    assert j.loc[1, "first_start_s"] == pytest.approx(10.0) and j.loc[1, "finish_s"] == pytest.approx(30.0)
    assert j.loc[0, "preemptions"] == 1
    # 10 s done, 90 s left after a 5 s restart stall from t=30
    assert j.loc[0, "finish_s"] == pytest.approx(30.0 + 5.0 + 90.0)
    assert j.loc[0, "attained_s"] == pytest.approx(10.0 + 95.0)
    assert res.summary["training.preemptions"] == 1


def test_no_preemption_of_non_preemptible_or_equal_priority():
    jobs = table([0.0, 10.0], [8, 8], [100.0, 20.0], priority=[0, 5], preemptible=[False, False])
    res = run_training(cluster=ONE_NODE, jobs=jobs, ordering="priority", preemption="priority")
    assert res.jobs.set_index("job_id").loc[1, "first_start_s"] == pytest.approx(100.0)


def test_failures_restart_from_checkpoint():
    lo = layout_from_node_groups([("h100-sxm", 8, 2)])
    jobs = table([0.0] * 4, [8, 8, 4, 4], [20000.0] * 4)
    fm = FailureModel(card_mtbf_s=2e4 * 4, restart_delay_s=300.0, checkpoint_interval_s=1800.0,
                      checkpoint_cost_s=0.0)
    res = run_training(cluster=lo, jobs=jobs, failures=fm, seed=3)
    j = res.jobs
    assert j["restarts"].sum() > 0
    assert (j["status"] == "finished").all()
    failed = j[j.restarts > 0]
    # every restart costs the restart delay plus lost work since the last checkpoint
    assert (failed["jct_s"] > failed["duration_s"] + 300.0 * failed["restarts"] - 1e-6).all()
    base = run_training(cluster=lo, jobs=jobs, seed=3)
    assert base.summary["training.restarts"] == 0
    assert res.summary["training.makespan_s"] > base.summary["training.makespan_s"]


def test_simulation_hosts_other_subsystems():
    lo = layout_from_node_groups(ONE_NODE)
    sim = Simulation(lo, seed=1, horizon_s=100.0)
    seen = []

    class Ticker:
        def connect(self, s):
            def proc():
                while True:
                    seen.append(s.env.now)
                    yield s.env.timeout(30.0)
            s.env.process(proc())

        def finalize(self, t):
            seen.append(("end", t))

    sim.add(Ticker())
    sim.add_training(table([5.0], [1], [10.0]), admission=_p("admission", "accept_all"),
                     ordering=_p("ordering", "fifo"), placement=_p("placement", "packed"),
                     preemption=_p("preemption", "none"))
    sim.run()
    assert seen == [0.0, 30.0, 60.0, 90.0, ("end", 100.0)]
    rec = sim.collect()
    assert rec.jobs["status"].tolist() == ["finished"]


def _p(family, name):
    from cluster_sim.policies import registry

    return registry.make(family, name)



def test_another_subsystem_borrows_cards_and_pokes():
    lo = layout_from_node_groups(ONE_NODE)
    sim = Simulation(lo, seed=1)

    class Borrower:  # takes 6 cards from t=10 to t=60 (e.g. an inference replica)
        def connect(self, s):
            def proc():
                yield s.env.timeout(10.0)
                s.state.allocate(-1, [2, 3, 4, 5, 6, 7], 1000, "borrower")
                yield s.env.timeout(50.0)
                s.state.release(-1)
                s.training.poke()
            s.env.process(proc())

        def finalize(self, t):
            pass

    sim.add_training(table([0.0, 20.0], [2, 4], [1000.0, 10.0]), admission=_p("admission", "accept_all"),
                     ordering=_p("ordering", "fifo"), placement=_p("placement", "packed"),
                     preemption=_p("preemption", "none"))
    sim.add(Borrower())
    sim.run()
    j = result_from_record_(sim).jobs.set_index("job_id")
    assert j.loc[1, "first_start_s"] == pytest.approx(60.0)  # started by the poke, not by job 0's finish
    assert j.loc[0, "finish_s"] == pytest.approx(1000.0)


def result_from_record_(sim):
    from cluster_sim.metrics import result_from_record

    return result_from_record(sim.collect())
