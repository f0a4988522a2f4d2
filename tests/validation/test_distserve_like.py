"""DistServe's qualitative finding (DOMAIN 4.5, Zhong et al., OSDI'24), on the roofline perf model.

Workload (DistServe-like chat): 13B dense model (llama2-13b) on A100-80GB, Poisson arrivals,
prompts uniform in [512, 1536] tokens, outputs uniform in [64, 192]; SLOs TTFT 1 s, TPOT 30 ms
(the isolated decode step is ~20 ms, so the TPOT SLO is tight). Same cards: colocated = 2
replicas; disaggregated = 1 prefill + 1 decode replica. Colocated prefills stall the batch's
decodes (prefill-decode interference) and inflate TPOT; separated decodes never wait for a
prefill. Expected: similar at low load; disaggregation reaches a clearly higher goodput at
moderate load; colocated keeps the lower TTFT (two replicas prefill), so under a tight TTFT
and loose TPOT SLO the ordering flips.
"""

from __future__ import annotations

import numpy as np
import pytest

from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec
from cluster_sim.metrics.serving import summarize
from cluster_sim.perf.inference import ReplicaPerf
from cluster_sim.policies.serving.routing import LeastLoaded
from cluster_sim.workload.arrivals import poisson
from cluster_sim.workload.requests import RequestTable

PERF = ReplicaPerf("llama2-13b", "a100-80gb")


def _summary(rate, mode, ttft=1.0, tpot=0.03):
    rng = np.random.default_rng(5)
    arrival = poisson(rate, 1200 / rate, rng=rng)
    n = len(arrival)
    reqs = RequestTable.from_arrays(arrival, rng.integers(512, 1537, n), rng.integers(64, 193, n))
    if mode == "colocated":
        pools = (PoolSpec("colocated", 2, PERF, "a100-80gb"),)
    else:
        pools = (PoolSpec("prefill", 1, PERF, "a100-80gb"), PoolSpec("decode", 1, PERF, "a100-80gb"))
    svc = ServiceSpec("chat", reqs, pools, slo_ttft_s=ttft, slo_tpot_s=tpot, max_context=4096)
    return summarize(ServingEngine([svc], routing=LeastLoaded()).run())


@pytest.fixture(scope="module")
def sweep():
    return {(rate, mode): _summary(rate, mode) for rate in (1.0, 2.0, 3.0, 4.0)
            for mode in ("colocated", "disaggregated")}


def test_similar_at_low_load(sweep):
    for mode in ("colocated", "disaggregated"):
        assert sweep[(1.0, mode)]["inference.slo_attainment"] >= 0.99


def test_disaggregation_wins_goodput_under_tight_tpot_at_moderate_load(sweep):
    for rate in (3.0, 4.0):
        colo, pd = sweep[(rate, "colocated")], sweep[(rate, "disaggregated")]
        assert pd["inference.goodput_rps"] > 1.3 * colo["inference.goodput_rps"]
        assert pd["inference.tpot_s.p90"] < colo["inference.tpot_s.p90"]
        assert colo["inference.ttft_s.p90"] < pd["inference.ttft_s.p90"]   # the price: TTFT

    def capacity(mode):  # highest tested rate with >= 90% attainment (DistServe's goodput)
        return max(r for r in (1.0, 2.0, 3.0, 4.0) if sweep[(r, mode)]["inference.slo_attainment"] >= 0.9)

    assert capacity("disaggregated") > capacity("colocated")


def test_ordering_flips_under_tight_ttft_loose_tpot():
    colo = _summary(4.0, "colocated", ttft=0.3, tpot=0.2)
    pd = _summary(4.0, "disaggregated", ttft=0.3, tpot=0.2)
    assert colo["inference.slo_attainment"] > pd["inference.slo_attainment"] + 0.2
