"""Hypothesis properties of fail-slow episodes over random clusters, job sets and straggler
models, with and without card failures (engine/cluster/stragglers.py).

After every event batch: the state's indices are exact, no job holds a drained card, every
drained card is down and covered by a detected episode, under ``replace`` no job holds a
card a detected episode covers, and every running job's speed carries
the min factor over its cards (a step counter guards against a run that never ends: each unit
is slow at most a tenth of the time, so the largest job finds its cards). At the end: every job ends exactly once (all finish without a
horizon: drained cards come back), the accounting is bounded by the slowed time and the factors'
range, and ``ignore`` neither replaces nor drains.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster_sim.engine.cluster.failures import FailureModel
from cluster_sim.engine.cluster.state import layout_from_node_groups
from cluster_sim.engine.cluster.stragglers import StragglerModel
from cluster_sim.engine.simulation import Simulation
from cluster_sim.metrics import result_from_record
from cluster_sim.policies import registry
from cluster_sim.workload.jobs import JobTable

groups = st.lists(st.tuples(st.sampled_from(["h100-sxm", "a100-80gb"]), st.sampled_from([1, 2, 4, 8]),
                            st.integers(1, 4)), min_size=1, max_size=3)


@st.composite
def scenario(draw):
    g = draw(groups)
    n = draw(st.integers(1, 30))
    seed = draw(st.integers(0, 2**31 - 1))
    lo = draw(st.floats(0.05, 0.95))
    model = StragglerModel(unit=draw(st.sampled_from(["node", "card"])), mtbf_s=draw(st.sampled_from([2e4, 6e4])),
                           slowdown=(lo, draw(st.floats(lo, 0.95))), duration_s=(20.0, draw(st.floats(20.0, 2000.0))),
                           detection_s=draw(st.sampled_from([0.0, 30.0, 500.0])),
                           policy=draw(st.sampled_from(["ignore", "replace"])), restart_delay_s=20.0)
    return g, n, seed, model, draw(st.booleans()), draw(st.sampled_from([None, 1500.0]))


@settings(max_examples=40, deadline=30_000, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_straggler_invariants(sc):
    g, n, seed, model, fail, horizon = sc
    rng = np.random.default_rng(seed)
    jobs = JobTable(job_id=np.arange(n), submit_s=np.round(rng.uniform(0, 800, n), 0),
                    num_cards=rng.choice([1, 2, 4, 8, 16], size=n), duration_s=rng.exponential(300.0, n) + 1.0)
    sim = Simulation(layout_from_node_groups(g, nodes_per_leaf=2), seed=seed, horizon_s=horizon)
    fm = FailureModel(card_mtbf_s=20000.0, restart_delay_s=30.0, repair_s=200.0) if fail else None
    pol = {s: registry.make(s, v) for s, v in (("admission", "accept_all"), ("ordering", "fifo"),
                                               ("placement", "packed"), ("preemption", "none"))}
    eng = sim.add_training(jobs, **pol, failures=fm, stragglers=model, preempt_overhead_s=5.0)
    orig = eng.step
    steps = [0]

    def step(t):
        steps[0] += 1
        assert steps[0] < 50_000, "no progress guard: the run should have ended long before"
        orig(t)
        st_ = sim.state
        st_.check()
        for c in eng._drain:
            assert st_.down[c] and not st_.jobs_on(c) and eng._wanted(c)
        if model.policy == "replace":  # a detected slow card is out of service: no job holds it
            for c in eng._card_eps:
                assert not (eng._wanted(c) and st_.jobs_on(c)), (t, c)
        for i in eng.running_set:
            cards = st_.alloc[i][0]
            f = float(eng.slow_card[cards].min())
            assert eng._job_f.get(i, 1.0) == f  # the open interval's factor is the job's now
            assert all(not st_.down[c] for c in cards.tolist())
    eng.step = step
    sim.run()
    res = result_from_record(sim.collect())
    j, s = res.jobs, res.summary
    assert set(j.status) <= {"finished", "running", "queued", "restarting", "rejected"}
    if horizon is None:
        assert set(j.status) <= {"finished", "rejected"}
    assert (j.slowed_s <= j.attained_s + 1e-6).all()
    cards = j.num_cards.to_numpy(float)
    slowed_card_h = float((cards * j.slowed_s).sum()) / 3600
    assert s["stragglers.card_hours_slowed"] == np.float64(slowed_card_h) or \
        abs(s["stragglers.card_hours_slowed"] - slowed_card_h) <= 1e-9 * max(1.0, slowed_card_h)
    lo, hi = model.slowdown
    assert (1 - hi) * slowed_card_h - 1e-9 <= s["stragglers.lost_card_hours"] <= (1 - lo) * slowed_card_h + 1e-9
    assert s["stragglers.detected"] <= s["stragglers.episodes"]
    if model.policy == "ignore":
        assert s["stragglers.replacements"] == 0 and s["stragglers.drained_card_hours"] == 0
    else:
        assert s["stragglers.replacements"] == int(j.preemptions.sum())
