"""Mooncake's routing finding on its own trace (DOMAIN 4.5, Qin et al., FAST'25), direction only.

The real hour of long-context chat (``conversation_trace.jsonl``, 512-token prefix-block hashes)
on 4 colocated replicas of a 32k-context 7B model on H100, each with an LRU prefix cache of
20,000 blocks: KV-cache-centric routing (prefix overlap + load, ``prefix_aware``) gives the
lowest mean and p90 TTFT; cache-aware-only routing (``load_weight=0``) has the highest hit rate
but piles requests on the replicas holding popular prefixes; load-only and random routing
reuse less of the cache.
"""

from __future__ import annotations

import pytest

from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
from cluster_sim.metrics.serving import summarize
from cluster_sim.perf.inference import ReplicaPerf
from cluster_sim.policies.serving.routing import LeastLoaded, PrefixAware, RandomRouting


@pytest.fixture(scope="module")
def results(traces):
    from cluster_sim.workload.traces import mooncake

    table = mooncake.read(traces / "mooncake_fast25" / "conversation_trace.jsonl")
    perf = ReplicaPerf("qwen2.5-7b", "h100-sxm")
    out = {}
    for name, policy in (("random", RandomRouting()), ("load_only", LeastLoaded(metric="tokens")),
                         ("cache_only", PrefixAware(load_weight=0.0)), ("kv_centric", PrefixAware())):
        svc = ServiceSpec("chat", table, (PoolSpec("colocated", 4, perf, "h100-sxm"),), max_context=32768)
        run = ServingEngine([svc], routing=policy, options=ServingOptions(prefix_cache_blocks=20_000)).run()
        out[name] = summarize(run)
    return out


def test_kv_centric_routing_has_the_best_ttft(results):
    best = results["kv_centric"]
    for other in ("random", "load_only", "cache_only"):
        assert best["inference.ttft_s.mean"] < results[other]["inference.ttft_s.mean"]
        assert best["inference.ttft_s.p90"] < results[other]["inference.ttft_s.p90"]


def test_cache_hits_need_cache_aware_routing(results):
    hit = {k: v["inference.prefix_hit_rate"] for k, v in results.items()}
    assert hit["cache_only"] >= hit["kv_centric"] > 1.4 * max(hit["random"], hit["load_only"])
    assert hit["cache_only"] < 0.366   # below the trace's repeated-block share (infinite cache bound)
