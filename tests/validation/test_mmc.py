"""M/M/c closed form: Poisson arrivals, exponential run times, c identical single-card servers,
FIFO, constant speed. The engine's mean queueing delay must match Erlang C."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cluster_sim.experiment.drivers import run_training
from cluster_sim.workload.generators import uniform_jobs


def erlang_c_wait(lam: float, mu: float, c: int) -> float:
    """Mean wait in queue of M/M/c (Erlang C)."""
    a = lam / mu
    rho = a / c
    tail = a ** c / math.factorial(c) / (1 - rho)
    p_wait = tail / (sum(a ** k / math.factorial(k) for k in range(c)) + tail)
    return p_wait / (c * mu - lam)


@pytest.mark.parametrize("c,rho", [(8, 0.8), (4, 0.6)])
def test_mean_wait_matches_erlang_c(c, rho):
    mu = 1 / 100.0
    lam = rho * c * mu
    waits = []
    for seed in range(3):
        jobs = uniform_jobs(20_000, rate_per_s=lam, mean_duration_s=1 / mu, rng=seed)
        res = run_training(cluster=[("h100-sxm", c, 1)], jobs=jobs, seed=seed)
        q = res.jobs["queueing_s"].to_numpy()
        waits.append(q[len(q) // 20:].mean())  # drop the warm-up
        assert res.summary["training.jobs.finished"] == 20_000
        # utilization = rho (time-weighted), within sampling noise
        assert res.summary["utilization.allocated"] == pytest.approx(rho, rel=0.05)
    expected = erlang_c_wait(lam, mu, c)
    assert np.mean(waits) == pytest.approx(expected, rel=0.08)


def test_shared_pool_training_is_mmc_on_the_cards_serving_leaves():
    """One pool, no preemption (``shared_pool``), a constant perf model: with one 8-card serving
    replica always on (fixed autoscaling: it claims its cards at t = 0 and never lends them),
    single-card training jobs see an M/M/c queue with c = the 8 cards serving leaves of 16."""
    import dataclasses

    from cluster_sim.engine.cluster.state import layout_from_topology
    from cluster_sim.engine.pool.broker import CardBroker
    from cluster_sim.engine.serving.engine import ServingEngine
    from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec
    from cluster_sim.engine.simulation import Simulation
    from cluster_sim.perf.linear_serving import LinearServingPerf
    from cluster_sim.policies import registry
    from cluster_sim.topology import rail_optimized
    from cluster_sim.workload.requests import RequestTable

    c, rho, mu = 8, 0.7, 1 / 100.0
    lam = rho * c * mu
    topo = rail_optimized("dgx-a100", 2)
    waits = []
    for seed in range(3):
        sim = Simulation(layout_from_topology(topo), seed=seed)
        broker = sim.add(CardBroker(registry.make("pool", "shared_pool")))
        jobs = uniform_jobs(20_000, rate_per_s=lam, mean_duration_s=1 / mu, rng=seed)
        sim.add_training(jobs, admission=registry.make("admission", "accept_all"),
                         ordering=registry.make("ordering", "fifo"), placement=registry.make("placement", "packed"),
                         preemption=registry.make("preemption", "none"))
        perf = dataclasses.replace(LinearServingPerf(prefill_s=0.01, decode_s=0.01, kv_capacity_tokens=10_000), cards=8)
        reqs = RequestTable.from_arrays(np.arange(0.0, 2e6, 1000.0), np.full(2000, 10), np.full(2000, 2))
        sim.add(ServingEngine([ServiceSpec("s", reqs, (PoolSpec("colocated", 1, perf, "a100-80gb", 8),))],
                              topology=topo, broker=broker))
        sim.run()
        rec = sim.collect()
        q = rec.jobs["first_start_s"] - rec.jobs["submit_s"]
        waits.append(q[len(q) // 20:].mean())
        assert (rec.jobs["status"] == "finished").all()
        assert rec.pool["card_seconds"]["serving"] == pytest.approx(8 * rec.t_end_s)   # never lent
    assert np.mean(waits) == pytest.approx(erlang_c_wait(lam, mu, c), rel=0.08)
