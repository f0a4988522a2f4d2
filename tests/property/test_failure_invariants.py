"""Hypothesis properties of the failure classes (docs/faults.md) over random clusters, classes,
technicians and spares: no job ever runs on a down card, a card is down in the cluster state
exactly when one of its outages is open, and the card-hours in the four states add up to
cards x span and their down part equals the card ledger's ``down`` card-seconds.

Every example has a finite deadline.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster_sim.engine.cluster.failures import FailureClass, FailureModel
from cluster_sim.engine.cluster.state import layout_from_node_groups
from cluster_sim.engine.simulation import Simulation
from cluster_sim.metrics import result_from_record
from cluster_sim.policies import registry
from cluster_sim.workload.jobs import JobTable

POLICIES = {"admission": "accept_all", "ordering": "fifo", "placement": "packed", "preemption": "none"}
failure_class = st.tuples(st.sampled_from(["card", "node", "switch", "link"]),
                          st.floats(2e3, 5e5), st.floats(10.0, 5e3),
                          st.one_of(st.none(), st.floats(0.5, 3.0)))


@st.composite
def scenario(draw):
    nodes = draw(st.integers(2, 8))
    classes = draw(st.lists(failure_class, min_size=1, max_size=4))
    fm = FailureModel(classes=tuple(FailureClass(f"c{k}", u, m * (8 * nodes if u == "card" else nodes), r, sh)
                                    for k, (u, m, r, sh) in enumerate(classes)),
                      technicians=draw(st.one_of(st.none(), st.integers(1, 3))),
                      spare_nodes=draw(st.integers(0, nodes)), swap_s=draw(st.floats(0.0, 500.0)),
                      detection_s=draw(st.floats(0.0, 100.0)), restart_delay_s=draw(st.floats(0.0, 300.0)),
                      checkpoint_interval_s=600.0)
    seed = draw(st.integers(0, 2**31 - 1))
    return nodes, fm, seed


@settings(max_examples=40, deadline=30_000, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_failure_invariants(sc):
    nodes, fm, seed = sc
    rng = np.random.default_rng(seed)
    n = 12
    jobs = JobTable(job_id=np.arange(n), submit_s=np.round(rng.uniform(0, 2e4, n)),
                    num_cards=rng.choice([1, 2, 8, 16], size=n), duration_s=rng.exponential(2e4, n) + 1.0)
    lo = layout_from_node_groups([("h100-sxm", 8, nodes)], nodes_per_leaf=2, oversubscription=2.0)
    horizon = 1e5
    sim = Simulation(lo, seed=seed, horizon_s=horizon)
    sim.add_training(jobs, failures=fm, preempt_overhead_s=20.0,
                     **{k: registry.make(k, v) for k, v in POLICIES.items()})
    eng, state = sim.training, sim.state
    fp = eng._fp
    every = np.arange(state.n_cards)
    orig = eng.step

    def step(t):
        orig(t)
        state.check()
        for i in eng.running_set:
            assert not state.down[state.alloc[i][0]].any(), f"job row {i} runs on a down card at {t}"
        assert ((fp._cls(every) != 0) == state.down).all()
    eng.step = step
    sim.run()
    res = result_from_record(sim.collect())
    s = res.summary
    parts = [s[f"failures.card_hours.{k}"] for k in ("up", "waiting", "repairing", "swapping")]
    assert min(parts) >= -1e-9
    assert abs(sum(parts) - 8 * nodes * horizon / 3600.0) < 1e-6 * sum(parts)
    down = res.record.pool["card_seconds"]["down"] / 3600.0
    assert abs(sum(parts[1:]) - down) <= 1e-6 * max(down, 1.0)
    assert s["failures.failures"] >= s["failures.interruptions"]
    assert s["failures.job_interruptions"] == s["training.restarts"]
