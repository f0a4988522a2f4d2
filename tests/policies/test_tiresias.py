"""Tiresias (discretized 2D-LAS with preemption) against closed-form schedules on one 8-card node.

Threshold 800 card-seconds: an 8-card job is demoted after 100 s of running. Restarting from a
checkpoint stalls 5 s (``preempt_overhead_s``). Every time below follows from those two numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from cluster_sim.config import load_config
from cluster_sim.errors import ConfigError
from cluster_sim.experiment.build import training_policies
from cluster_sim.experiment.drivers import run_training
from cluster_sim.policies import registry
from cluster_sim.policies.base import JobsView, JobView, readonly
from cluster_sim.policies.training.ordering import Tiresias
from cluster_sim.policies.training.presets import PRESETS
from cluster_sim.workload.jobs import ANY_TYPE, JobTable

ONE_NODE = [("h100-sxm", 8, 1)]


def _jobs(submit, dur, cards=None):
    n = len(submit)
    return JobTable(job_id=np.arange(n), submit_s=submit, num_cards=cards or [8] * n, duration_s=dur,
                    preemptible=[True] * n)


def _run(jobs, scheduler, **params):
    if scheduler == "fifo":
        return run_training(cluster=ONE_NODE, jobs=jobs, preempt_overhead_s=5.0).jobs.set_index("job_id")
    order = Tiresias(thresholds=(800.0,), **params)
    return run_training(cluster=ONE_NODE, jobs=jobs, ordering=order, preemption="order",
                        preempt_overhead_s=5.0).jobs.set_index("job_id")


def test_short_job_preempts_a_demoted_long_job():
    # A (1000 s) runs from 0; B (50 s) arrives at 10. FIFO: B waits for A.
    jobs = _jobs([0.0, 10.0], [1000.0, 50.0])
    fifo = _run(jobs, "fifo")
    assert fifo.loc[0, "finish_s"] == pytest.approx(1000.0) and fifo.loc[1, "first_start_s"] == pytest.approx(1000.0)
    assert fifo.loc[1, "finish_s"] == pytest.approx(1050.0)
    # Tiresias: both start in queue 0, so B waits until A crosses 800 card-s at t = 100 and is
    # demoted; B (queue 0) then preempts it, runs 100 -> 150; A resumes at 150, stalls 5 s and
    # does its last 900 s: 150 + 5 + 900 = 1055.
    t = _run(jobs, "tiresias")
    assert t.loc[1, "first_start_s"] == pytest.approx(100.0) and t.loc[1, "finish_s"] == pytest.approx(150.0)
    assert t.loc[0, "preemptions"] == 1 and t.loc[1, "preemptions"] == 0
    assert t.loc[0, "finish_s"] == pytest.approx(1055.0)
    # average JCT: FIFO (1000 + 1040) / 2 = 1020; Tiresias (1055 + 140) / 2 = 597.5
    assert (t.finish_s - t.submit_s).mean() == pytest.approx(597.5)


def test_equal_queues_never_preempt_each_other():
    # A and B both demoted: once B has run 100 s (t = 200) it is in A's queue and keeps running.
    t = _run(_jobs([0.0, 50.0], [1000.0, 1000.0]), "tiresias")
    assert t.loc[1, "first_start_s"] == pytest.approx(100.0) and t.loc[1, "finish_s"] == pytest.approx(1100.0)
    assert t.loc[0, "finish_s"] == pytest.approx(1100.0 + 5.0 + 900.0)
    assert t.loc[0, "preemptions"] == 1 and t.loc[1, "preemptions"] == 0


def test_starvation_guard_promotes_the_waiting_job():
    # starve = 0.5: a demoted job waiting 0.5 x its service time (since its last promotion)
    # returns to queue 0 with a fresh counter. A is preempted at 100 (service 100 s) and promoted
    # at 150; B is demoted at 200 and A preempts it. From then on they swap every 100 s, each
    # restart costing 5 s: A runs [0,100] + 9 x 95 s in [200k, 200k+100], then its last 45 s
    # from 2000 (+5 stall) -> 2050; B [100,200] + 9 x 95 s, then 45 s from 2050 (+5) -> 2100.
    t = _run(_jobs([0.0, 50.0], [1000.0, 1000.0]), "tiresias", starve=0.5)
    assert t.loc[0, "finish_s"] == pytest.approx(2050.0)
    assert t.loc[1, "finish_s"] == pytest.approx(2100.0)
    assert t.loc[0, "preemptions"] == 10 and t.loc[1, "preemptions"] == 10


def test_queue_keys_thresholds_and_hooks():
    p = Tiresias(thresholds=(100.0, 1000.0), starve=2.0)
    cols = dict(idx=np.arange(4), submit_s=np.zeros(4), duration_s=np.full(4, 1e4), num_cards=np.array([1, 2, 4, 1]),
                card_milli=np.array([1000, 1000, 1000, 500]), priority=np.zeros(4, int), tenant=np.zeros(4, int),
                attained_s=np.array([0.0, 50.0, 300.0, 199.0]), kind=np.zeros(4, int))
    keys = p.keys(JobsView(**{k: readonly(v) for k, v in cols.items()})).keys
    # card-seconds 0, 100 (exactly the threshold: demoted), 1200, 99.5
    assert keys.tolist() == [0.0, 1.0, 2.0, 0.0]

    def view(num, att):
        return JobView(0, 0, num, 1000, int(ANY_TYPE), 0, 0, 0, True, 0.0, 1e4, att)
    assert p.rerank_after_s(view(2, 10.0)) == pytest.approx(40.0)  # 100 card-s at 2 cards
    assert p.rerank_after_s(view(2, 50.0)) == pytest.approx(450.0)  # next: 1000 card-s
    assert p.rerank_after_s(view(2, 600.0)) == float("inf")  # bottom queue
    assert p.promote_after_s(view(2, 10.0)) == float("inf")  # top queue: never starved
    assert p.promote_after_s(view(2, 60.0)) == pytest.approx(120.0)
    assert Tiresias().promote_after_s(view(8, 1e4)) == float("inf")  # guard off by default


@pytest.mark.parametrize("params", [{"thresholds": [100.0, 50.0]}, {"thresholds": [0.0]}, {"starve": 0}])
def test_bad_params_are_config_errors(params):
    ref = type("R", (), {"name": "tiresias", "params": params})()
    with pytest.raises(ConfigError, match="policy.ordering.params: .*must be"):
        registry.make("ordering", ref)


def test_tiresias_preset_is_preemptive_las_and_presets_differ():
    cfg = load_config({"cluster": {"topology": "x.yaml"}, "policy": {"training": {"scheduler": "tiresias"}}})
    pol = training_policies(cfg.policy.training)
    assert pol["ordering"].name == "tiresias" and pol["preemption"].name == "order"
    assert pol["ordering"].get_params() == {"thresholds": (3250.0,), "starve": None}
    # no two presets are the same configuration
    combos = [tuple(sorted(v.items())) for v in PRESETS.values()]
    assert len(set(combos)) == len(combos)
