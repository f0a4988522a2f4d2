"""Sliced cards on one card ledger: ``slices`` replicas share each card (MIG-like partitions).

Invariants over random slice counts, card groups, request streams and horizons, hosted in one
:class:`Simulation` beside a training job stream on the rest of the cluster (always with a horizon:
without one, a hosted serving engine with nothing to synchronise runs ahead of the host clock and
the ledger's run ends at t = 0, before the replicas' busy time):

* placement: a pool of ``g x slices`` replicas holds exactly ``g`` distinct cards, replica ``i`` on
  card ``i // slices``, and those ``g`` cards are ``serving`` in the ledger (each taken once);
* card-hours add up: the ledger's states sum to cards x run time and ``serving`` is ``g`` x run
  time, whatever the slices;
* busy: a card's busy share is the mean of its slices' busy time, so serving busy card-seconds
  (``pool.utilization.busy`` x cards x T minus training's) equal ``sum_r busy_r / slices`` and
  never exceed the serving card-seconds; no card is busier than it is held.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster_sim.engine.cluster.state import layout_from_topology
from cluster_sim.engine.pool.ledger import SERVING
from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
from cluster_sim.engine.simulation import Simulation
from cluster_sim.experiment.drivers import pool_summary
from cluster_sim.perf.slices import SlicedReplicaPerf
from cluster_sim.policies import registry
from cluster_sim.policies.pool.partition import PoolView
from cluster_sim.topology import rail_optimized
from cluster_sim.workload.generators import uniform_jobs
from cluster_sim.workload.requests import RequestTable

PERFS = {s: SlicedReplicaPerf("qwen2.5-0.5b", "a100-80gb", slices=s) for s in range(1, 8)}


@settings(max_examples=20, deadline=20_000, suppress_health_check=[HealthCheck.too_slow])
@given(slices=st.integers(1, 7), groups=st.integers(1, 4), n_req=st.integers(0, 60),
       n_jobs=st.integers(0, 10), horizon=st.sampled_from([30.0, 120.0, 600.0]), seed=st.integers(0, 2**16))
def test_sliced_cards_add_up(slices, groups, n_req, n_jobs, horizon, seed):
    topo = rail_optimized("dgx-a100", 2)
    layout = layout_from_topology(topo)
    n = layout.n_cards
    pol = registry.make("pool", {"name": "static_partition", "params": {"inference_fraction": 0.25}})
    partition = pol.partition(PoolView(layout.card_types, layout.card_type, layout.card_domain)).inference_cards
    sim = Simulation(layout, seed=seed, horizon_s=horizon, reserved_cards=partition)
    if n_jobs:
        jobs = uniform_jobs(n_jobs, rate_per_s=0.05, mean_duration_s=60.0, rng=seed, num_cards=2)
        sim.add_training(jobs, admission=registry.make("admission", "accept_all"),
                         ordering=registry.make("ordering", "fifo"),
                         placement=registry.make("placement", "packed"),
                         preemption=registry.make("preemption", "none"))
    rng = np.random.default_rng(seed)
    reqs = RequestTable.from_arrays(np.sort(rng.uniform(0, 100, n_req)), rng.integers(1, 2000, n_req),
                                    rng.integers(1, 200, n_req))
    replicas = groups * slices
    pool = PoolSpec("colocated", replicas, PERFS[slices], "a100-80gb", slices=slices)
    svc = ServiceSpec("s", reqs, (pool,), slo_ttft_s=1.0)
    eng = sim.add(ServingEngine([svc], options=ServingOptions(horizon_s=horizon), topology=topo,
                                cards=partition))
    cards = [r.cards for r in eng.replicas]
    assert all(c.size == 1 for c in cards)
    ids = [int(c[0]) for c in cards]
    assert len(set(ids)) == groups == pool.cards
    assert all(ids[i] == ids[(i // slices) * slices] for i in range(replicas))   # card i // slices
    assert set(ids) <= set(partition.tolist())
    assert int((sim.ledger.state == SERVING).sum()) == groups
    sim.run()
    sim.ledger.check()
    rec = sim.collect()
    t = rec.t_end_s
    cs = rec.pool["card_seconds"]
    assert abs(sum(cs.values()) - n * t) <= 1e-9 * max(n * t, 1.0)
    assert cs["serving"] == pytest.approx(groups * t, rel=1e-12)
    rep = eng.result.replicas
    busy_r = (rep["busy_prefill_s"] + rep["busy_decode_s"] + rep["busy_mixed_s"]).to_numpy()
    assert (rep["cards"] == 1.0 / slices).all() if slices > 1 else (rep["cards"] == 1).all()
    assert t == horizon
    per_card = np.bincount(np.arange(replicas) // slices, weights=busy_r) / slices   # mean of its slices
    assert (per_card <= t * (1 + 1e-12)).all()
    no_serving = pool_summary(rec.pool, rec, None)
    with_serving = pool_summary(rec.pool, rec, eng.result)
    serving_busy = (with_serving["pool.utilization.busy"] - no_serving["pool.utilization.busy"]) * n * t
    assert serving_busy == pytest.approx(per_card.sum(), rel=1e-9, abs=1e-9)
    assert serving_busy <= cs["serving"] * (1 + 1e-12)
