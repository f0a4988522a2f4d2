"""Elastic training jobs (engine/cluster/elastic.py, docs/faults.md "Elastic jobs"): closed forms
of a shrink, a refused shrink, the granularity, growing back at a checkpoint boundary, and the
invariants over random runs with failure classes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster_sim.engine.cluster.failures import FailureClass, FailureModel
from cluster_sim.engine.cluster.state import layout_from_node_groups
from cluster_sim.engine.cluster.views import RUNNING
from cluster_sim.engine.simulation import Simulation
from cluster_sim.experiment.elastic import shrunk_plan
from cluster_sim.metrics import result_from_record
from cluster_sim.policies import registry
from cluster_sim.workload.jobs import JobTable
from cluster_sim.workload.parallelism import ParallelPlan

POLICIES = {"admission": "accept_all", "ordering": "fifo", "placement": "packed", "preemption": "none"}
W, R, TAU = 10_000.0, 600.0, 1000.0   # work-seconds, restart delay, checkpoint interval


def engine(elastic, *, unit="node", repair=1e6, nodes=2, cards=(16,), dur=(W,), overhead=0.0, **fm_kw):
    lo = layout_from_node_groups([("h100-sxm", 8, nodes)])
    sim = Simulation(lo, seed=0)
    fm = FailureModel(classes=(FailureClass("x", unit, 1e15, repair),), restart_delay_s=R,
                      checkpoint_cost_s=0.0, checkpoint_interval_s=TAU, **fm_kw)
    n = len(cards)
    jobs = JobTable(job_id=np.arange(n), submit_s=[0.0] * n, num_cards=list(cards), duration_s=list(dur))
    eng = sim.add_training(jobs, failures=fm, preempt_overhead_s=overhead, elastic=elastic,
                           **{k: registry.make(k, v) for k, v in POLICIES.items()})
    return sim, eng


def run(sim):
    sim.run()
    return result_from_record(sim.collect())


@pytest.mark.parametrize("tf", [3000.0, 3500.0])
def test_shrink_to_half_finishes_at_the_closed_form(tf):
    """16 cards, node 1 fails at tf (repair far away): the job restarts after R on its 8 cards
    left at half speed from its last checkpoint, so it ends at tf + R + 2 (W - t_progress),
    t_progress = tf - (tf mod TAU); its shrunk card-seconds are 8 x (end - tf)."""
    sim, eng = engine({0: (8, 1)})
    eng._fp.inject("x", 1, tf)
    res = run(sim)
    rec = sim.collect().jobs
    kept = tf - tf % TAU
    end = tf + R + 2 * (W - kept)
    job = res.jobs.iloc[0]
    assert job["finish_s"] == pytest.approx(end, rel=1e-12)
    assert (job["shrinks"], job["regrows"], job["restarts"]) == (1, 0, 1)
    assert job["shrunk_card_s"] == pytest.approx(8 * (end - tf), rel=1e-12)
    s = res.summary
    assert s["training.elastic.shrinks"] == 1 and s["training.elastic.jobs"] == 1
    assert s["training.elastic.shrunk_card_hours"] == pytest.approx(8 * (end - tf) / 3600.0)
    # card-time at the size it ran: held 16 x tf + 8 x (end - tf); the surviving progress is
    # the job's whole work, W x 16 card-seconds (work conserved), after the 16 x (tf - kept) lost
    assert rec["held_card_s"][0] == pytest.approx(16 * tf + 8 * (end - tf), rel=1e-12)
    assert rec["lost_card_s.failure"][0] == pytest.approx(16 * (tf - kept), abs=1e-6)
    assert rec["surviving_card_s"][0] == pytest.approx(16 * W, rel=1e-12)


def test_restore_stall_adds_to_the_restart():
    """The restore stall (preempt_overhead_s) is held on the shrunk cards after the restart."""
    sim, eng = engine({0: (8, 1)}, overhead=60.0)
    eng._fp.inject("x", 1, 3000.0)
    assert run(sim).jobs.iloc[0]["finish_s"] == pytest.approx(3000 + R + 60 + 2 * (W - 3000))


def test_non_elastic_job_waits_for_the_repair():
    """Without the flag (or with an empty elastic map) the job queues for its 16 cards: it restarts
    when the node is repaired (repair 1e6 s > R) and the run has no elastic keys."""
    outs = []
    for el in (None, {}):
        sim, eng = engine(el)
        eng._fp.inject("x", 1, 3000.0)
        res = run(sim)
        assert res.jobs.iloc[0]["finish_s"] == pytest.approx(3000 + 1e6 + (W - 3000))
        assert not any(k.startswith("training.elastic") for k in res.summary)
        assert "shrinks" not in res.jobs
        outs.append({k: v for k, v in res.summary.items() if not k.startswith("sim.")})
    assert outs[0] == outs[1]


def test_min_cards_refuses_a_shrink_below_it():
    """min_cards 9 > the 8 cards left: the job queues as a non-elastic one does."""
    sim, eng = engine({0: (9, 1)})
    eng._fp.inject("x", 1, 3000.0)
    job = run(sim).jobs.iloc[0]
    assert job["finish_s"] == pytest.approx(3000 + 1e6 + (W - 3000))
    assert (job["shrinks"], job["shrunk_card_s"]) == (0, 0.0)


@pytest.mark.parametrize("g, left", [(1, 15), (8, 8), (4, 12)])
def test_card_failure_rounds_down_to_the_granularity(g, left):
    """A card failure leaves 15 cards; the job keeps a multiple of its granularity and runs at
    left / 16 of its speed: end = tf + R + (W - t_progress) x 16 / left."""
    sim, eng = engine({0: (4, g)}, unit="card")
    eng._fp.inject("x", 3, 3000.0)
    seen = []
    step = eng.step

    def probe(t):
        step(t)
        if eng.status[0] == RUNNING:
            seen.append(eng.state.alloc[0][0].copy())
    eng.step = probe
    job = run(sim).jobs.iloc[0]
    assert job["finish_s"] == pytest.approx(3000 + R + (W - 3000) * 16 / left, rel=1e-12)
    assert seen[0].size == 16 and seen[-1].size == left and 3 not in seen[-1].tolist()


def test_grows_back_at_the_next_checkpoint_boundary():
    """Node 1 fails at 3000 and is repaired at 4000. The shrunk job progresses from 3600 at half
    speed; at its boundary 3600 + TAU = 4600 its full placement is free, so it stops there
    (nothing lost) and restarts on 16 cards after the re-launch stall R (no detection): from 5200
    the rest, W - 3000 - 1000 / 2 work-seconds, at full speed."""
    sim, eng = engine({0: (8, 1)}, repair=1000.0)
    eng._fp.inject("x", 1, 3000.0)
    job = run(sim).jobs.iloc[0]
    assert job["finish_s"] == pytest.approx(5200 + W - 3000 - 500, rel=1e-12)
    assert (job["shrinks"], job["regrows"]) == (1, 1)
    assert job["shrunk_card_s"] == pytest.approx(8 * (4600 - 3000))
    rec = sim.collect().jobs
    assert rec["held_card_s"][0] == pytest.approx(16 * 3000 + 8 * 1600 + 16 * (job["finish_s"] - 4600))
    assert rec["surviving_card_s"][0] == pytest.approx(16 * W, rel=1e-12)


def test_no_regrow_while_another_job_holds_its_cards():
    """A second job queued behind takes the repaired node first: the shrunk job never gets its
    full placement back and finishes shrunk."""
    sim, eng = engine({0: (8, 1)}, repair=1000.0, cards=(16, 8), dur=(W, 50_000.0))
    eng._fp.inject("x", 1, 3000.0)
    res = run(sim)
    a, b = res.jobs.iloc[0], res.jobs.iloc[1]
    assert b["first_start_s"] == pytest.approx(4000.0)   # on the repaired node
    assert (a["shrinks"], a["regrows"]) == (1, 0)
    assert a["finish_s"] == pytest.approx(3000 + R + 2 * (W - 3000))


def test_second_failure_below_min_cards_requeues_at_full_size():
    """Shrunk to node 0, then node 0 fails too: nothing left, it queues for all 16 cards again and
    runs whole once both nodes are up (node 0 repaired at 4600 + 1e4, node 1 before)."""
    sim, eng = engine({0: (8, 1)}, repair=1e4, nodes=2)
    eng._fp.inject("x", 1, 3000.0)
    eng._fp.inject("x", 0, 4600.0)   # 1000 s into the shrunk spell (3600..4600)
    res = run(sim)
    job = res.jobs.iloc[0]
    # at 4600: 500 work-seconds done shrunk (a checkpoint at 4600 exactly) -> 6500 left
    assert job["finish_s"] == pytest.approx(4600 + 1e4 + 6500, rel=1e-12)
    assert (job["shrinks"], job["regrows"], job["restarts"]) == (1, 0, 2)
    seg = res.segments   # one row per run segment and scale-up domain: add a segment's domains up
    assert seg.groupby("start_s", sort=True)["num_cards"].sum().tolist() == [16, 8, 16]


def test_shrunk_plan_keeps_the_global_batch():
    p = ParallelPlan(tp=8, pp=4, dp=4, microbatches=8)
    q, ratio = shrunk_plan(p, 64)
    assert (q.dp, q.microbatches, ratio) == (2, 16, 1.0)
    p3 = ParallelPlan(tp=2, pp=1, dp=3, microbatches=5)
    q3, r3 = shrunk_plan(p3, 4)              # 15 micro-batches over 2 replicas: 8 each
    assert (q3.dp, q3.microbatches) == (2, 8) and r3 == pytest.approx(16 / 15)
    with pytest.raises(ValueError, match="multiple"):
        shrunk_plan(p, 60)


@pytest.mark.parametrize("spec", [{0: (0, 1)}, {0: (17, 1)}, {0: (8, 3)}])
def test_bad_engine_spec_is_refused(spec):
    with pytest.raises(ValueError, match="elastic job 0"):
        engine(spec)


@settings(max_examples=12, deadline=20_000, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), frac=st.sampled_from([0.5, 1.0]))
def test_invariants_over_random_runs(seed, frac):
    """Node (exponential) and card (Weibull) failures with spares and one technician on 4 x 8
    cards, 12 jobs of 2-16 cards: after every event batch no job holds a down card, each running
    job holds exactly its current size, a shrunk one at least min_cards in granularity steps;
    every job finishes with all its work done and the card-hours add up."""
    rng = np.random.default_rng(seed)
    n = 12
    cards = rng.choice([2, 4, 8, 16], n).tolist()
    dur = rng.uniform(2e4, 2e5, n).tolist()
    lo = layout_from_node_groups([("h100-sxm", 8, 4)])
    sim = Simulation(lo, seed=seed)
    fm = FailureModel(classes=(FailureClass("host", "node", 4e5, 2e4),
                               FailureClass("gpu", "card", 2e6, 1e4, shape=0.8)),
                      restart_delay_s=300.0, checkpoint_cost_s=30.0, checkpoint_interval_s=1800.0,
                      spare_nodes=1, technicians=1)
    el = {j: (max(1, c // 2), 2 if c % 2 == 0 else 1) for j, c in enumerate(cards) if rng.random() < frac}
    jobs = JobTable(job_id=np.arange(n), submit_s=np.sort(rng.uniform(0, 5e4, n)).tolist(),
                    num_cards=cards, duration_s=dur)
    eng = sim.add_training(jobs, failures=fm, preempt_overhead_s=60.0, elastic=el,
                           **{k: registry.make(k, v) for k, v in POLICIES.items()})
    step = eng.step
    checked = [0]

    def probe(t):
        step(t)
        state = eng.state
        for i, (cs, _m) in state.alloc.items():
            assert not state.down[cs].any()
            assert cs.size == eng.num[i]
            if i in eng.el_full:
                lo_c, g = eng.el[i]
                assert lo_c <= cs.size < eng.el_full[i] and cs.size % g == 0
            else:
                assert cs.size == cards[i]
        checked[0] += 1
    eng.step = probe
    res = run(sim)
    assert checked[0] > 0
    assert res.summary["training.elastic.regrows"] <= res.summary["training.elastic.shrinks"]
    assert res.summary["training.elastic.shrinks"] <= res.summary["training.restarts"]
    assert (res.jobs["status"] == "finished").all()
    assert np.allclose(res.jobs["remaining_s"], 0.0)
    s = res.summary
    total = sum(s[f"failures.card_hours.{k}"] for k in ("up", "waiting", "repairing", "swapping"))
    assert total == pytest.approx(32 * res.record.t_end_s / 3600.0, rel=1e-9)
