"""Queueing delays of the serving engine against closed forms (DESIGN 5: M/M/1 and M/D/1).

One replica, batch size 1 (``max_batch_seqs=1``), a constant-time perf model: a request's
service time is ``prefill + (output - 1) x decode`` and no other request runs beside it, so the
replica is a single FCFS server. Poisson arrivals at rate ``lambda``:

* **M/D/1** (fixed lengths, deterministic service ``S``): mean wait in queue
  ``Wq = rho S / (2 (1 - rho))`` (Pollaczek-Khinchine with ``E[S^2] = S^2``).
* **M/M/1** (geometric outputs with a long mean: service ~ exponential of mean ``1/mu``):
  ``Wq = rho / (mu - lambda)`` and time in system ``W = 1 / (mu - lambda)``. The discrete
  geometric service has ``E[S^2]`` slightly off ``2/mu^2``; the exact M/G/1 value is checked too.

The engine's queueing delay is admission - arrival; the sample size keeps the statistical error
of the mean to about 2% (tolerance 5%).
"""

from __future__ import annotations

import numpy as np
import pytest

from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
from cluster_sim.perf.linear_serving import LinearServingPerf
from cluster_sim.workload.arrivals import poisson
from cluster_sim.workload.requests import RequestTable


def _serve(arrival, output, perf):
    n = len(arrival)
    reqs = RequestTable.from_arrays(arrival, np.full(n, 100), output)
    svc = ServiceSpec("q", reqs, (PoolSpec("colocated", 1, perf),))
    return ServingEngine([svc], options=ServingOptions(max_batch_seqs=1)).run().requests


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_md1_mean_wait(rho):
    perf = LinearServingPerf(prefill_s=0.02, decode_s=0.01)
    s = 0.02 + 9 * 0.01                 # 10 output tokens: 0.11 s, deterministic
    lam = rho / s
    arrival = poisson(lam, 60_000 * s / rho * 1.0, rng=7)
    df = _serve(arrival, np.full(len(arrival), 10), perf)
    assert (df.status == "finished").all()
    assert np.allclose(df.e2e_s - df.queueing_s, s)         # service time is exactly S
    wq = rho * s / (2 * (1 - rho))
    assert df.queueing_s.mean() == pytest.approx(wq, rel=0.05)


def test_mm1_mean_wait_and_sojourn():
    d = 0.001
    mean_tokens = 500                     # service = (n - 1) d, n ~ geometric(1/500): ~ exponential
    rng = np.random.default_rng(11)
    lam, n = 1.4, 60_000
    arrival = poisson(lam, n / lam, rng=rng)
    output = rng.geometric(1 / mean_tokens, len(arrival))
    df = _serve(arrival, output, LinearServingPerf(decode_s=d))
    service = (output - 1) * d
    es, es2 = service.mean(), (service ** 2).mean()
    mu = 1 / ((mean_tokens - 1) * d)
    rho = lam / mu
    assert rho == pytest.approx(0.7, rel=0.01)
    assert df.queueing_s.mean() == pytest.approx(rho / (mu - lam), rel=0.06)     # M/M/1
    assert df.e2e_s.mean() == pytest.approx(1 / (mu - lam), rel=0.06)
    assert df.queueing_s.mean() == pytest.approx(lam * es2 / (2 * (1 - lam * es)), rel=0.05)  # exact M/G/1
