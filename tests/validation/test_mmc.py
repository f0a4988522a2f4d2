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
