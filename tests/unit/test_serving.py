"""Serving engine (colocated): hand-computed timings, batching limits, KV wait/preempt, rejections,
chunked prefill, prefix cache, autoscaling, hosting in SimPy, determinism."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import simpy

from cluster_sim.config.load import load_config
from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
from cluster_sim.errors import ConfigError, PlacementError
from cluster_sim.experiment.build import services_from_config
from cluster_sim.perf.inference import ReplicaPerf
from cluster_sim.perf.linear_serving import LinearServingPerf
from cluster_sim.policies.serving.autoscaling import LatencyDriven, QueueDriven
from cluster_sim.policies.serving.base import RouteDecision
from cluster_sim.policies.serving.routing import LeastLoaded, PrefixAware, RoundRobin
from cluster_sim.workload.requests import RequestTable

# prefill 0.25 s + 1/64 s per token; decode 1/8 s per iteration + 1/256 s per sequence
PERF = LinearServingPerf(prefill_s=0.25, prefill_s_per_token=2.0**-6, decode_s=0.125,
                         decode_s_per_seq=2.0**-8, kv_capacity_tokens=10_000)


def serve(arrival, prompt, output, perf=PERF, replicas=1, routing=None, autoscaling=None, blocks=None,
          max_context=None, **opt):
    kw = {}
    if blocks is not None:
        offsets = np.cumsum([0] + [len(b) for b in blocks])
        kw = dict(block_hashes=np.concatenate([np.asarray(b, dtype=np.int64) for b in blocks]),
                  block_offsets=offsets)
    reqs = RequestTable(np.asarray(arrival, float), np.asarray(prompt, np.int32), np.asarray(output, np.int32), **kw)
    svc = ServiceSpec("s", reqs, (PoolSpec("colocated", replicas, perf),), max_context=max_context)
    return ServingEngine([svc], routing=routing, autoscaling=autoscaling, options=ServingOptions(**opt)).run()


def test_single_request_times_by_hand():
    run = serve([1.0], [64], [5])
    r = run.requests.iloc[0]
    prefill = 0.25 + 64 / 64          # 1.25 s
    decode = 0.125 + 1 / 256          # one sequence
    assert r.first_token_s == 1.0 + prefill
    assert r.last_token_s == pytest.approx(1.0 + prefill + 4 * decode)
    assert r.ttft_s == prefill and r.queueing_s == 0.0
    assert r.tpot_s == pytest.approx(decode)
    assert r.e2e_s == pytest.approx(prefill + 4 * decode)
    assert r.generated_tokens == 5 and r.status == "finished"


def test_simultaneous_arrivals_prefill_together_and_decode_as_a_batch():
    run = serve([0.0, 0.0], [32, 32], [3, 3])
    first = 0.25 + 64 / 64
    decode2 = 0.125 + 2 / 256
    df = run.requests
    assert df.first_token_s.tolist() == [first, first]
    assert df.last_token_s.tolist() == pytest.approx([first + 2 * decode2] * 2)


def test_arrival_during_decode_joins_at_next_iteration_boundary():
    # request 0 decodes from 1.25 s in 0.12890625 s steps; request 1 arrives at 1.3 s
    run = serve([0.0, 1.3], [64, 64], [10, 2])
    d1 = 0.125 + 1 / 256
    boundary = 1.25 + d1   # the iteration in progress at 1.3 s ends here
    r1 = run.requests.iloc[1]
    assert r1.admit_s == pytest.approx(boundary)
    assert r1.first_token_s == pytest.approx(boundary + 1.25)
    # request 0's decoding paused for that prefill, then runs in a batch of two
    r0 = run.requests.iloc[0]
    d2 = 0.125 + 2 / 256
    assert r0.last_token_s == pytest.approx(boundary + 1.25 + d2 + 7 * d1)


def test_max_batch_seqs_and_tokens_limit_admission():
    run = serve([0.0] * 3, [64] * 3, [2] * 3, max_batch_seqs=2)
    df = run.requests
    assert df.admit_s.tolist()[:2] == [0.0, 0.0] and df.admit_s.iloc[2] > 0
    run = serve([0.0] * 3, [64] * 3, [2] * 3, max_batch_tokens=100)  # one 64-token prompt per iteration
    assert run.requests.first_token_s.tolist() == pytest.approx([1.25, 2.5, 3.75])


def test_kv_full_wait_queues_and_preempt_recomputes():
    perf = LinearServingPerf(prefill_s=0.01, decode_s=0.01, kv_capacity_tokens=300)
    wait = serve([0.0, 0.0], [100, 100], [90, 90], perf=perf, on_kv_full="wait")
    df = wait.requests
    # 190 + 190 > 300: the second waits for the first to finish
    assert df.admit_s.iloc[1] == pytest.approx(df.last_token_s.iloc[0])
    assert df.preemptions.sum() == 0
    pre = serve([0.0, 0.0], [100, 100], [90, 90], perf=perf, on_kv_full="preempt", kv_watermark=0.0)
    df = pre.requests
    assert df.preemptions.tolist() == [0, 1]  # the newest is preempted when the batch outgrows KV
    assert (df.status == "finished").all() and (df.generated_tokens == 90).all()
    assert df.last_token_s.iloc[1] > df.last_token_s.iloc[0]


def test_rejections_name_the_reason():
    perf = LinearServingPerf(decode_s=0.01, kv_capacity_tokens=1000)
    run = serve([0, 0, 0, 0, 0, 0], [10, 5000, 1500, 900, 500, 0], [10, 10, 10, 200, 600, 5], perf=perf,
                max_context=2048)
    df = run.requests
    assert df.reason.tolist() == ["", "prompt_exceeds_context", "prompt_exceeds_kv", "request_exceeds_kv",
                                  "request_exceeds_kv", "empty_request"]
    assert df.status.tolist() == ["finished"] + ["rejected"] * 5
    run = serve([0], [1000], [2000], perf=LinearServingPerf(kv_capacity_tokens=10**6), max_context=2048)
    assert run.requests.reason.iloc[0] == "request_exceeds_context"


def test_model_that_does_not_fit_names_missing_memory():
    cfg = load_config({"cluster": {"topology": "x.yaml"}, "inference": {"services": [{
        "name": "big", "model": "llama3-70b", "deployment": {"replicas": 1, "card_type": "h100-sxm"},
        "arrivals": {"rate": 1.0}}]}, "duration": "1m"})
    with pytest.raises(ConfigError, match=r"inference.services\[0\].deployment: .*GiB missing"):
        services_from_config(cfg)


def test_chunked_prefill_caps_decode_stalls():
    perf = ReplicaPerf("llama3-8b", "h100-sxm")
    arrival = [0.0] + [0.5 + 0.05 * i for i in range(20)]
    prompt, output = [100] + [4000] * 20, [400] + [4] * 20
    plain = serve(arrival, prompt, output, perf=perf)
    chunk = serve(arrival, prompt, output, perf=perf, chunked_prefill=True, chunk_tokens=512)
    # the long-running request's TPOT suffers less from prompts when they come in 512-token chunks
    assert chunk.requests.tpot_s.iloc[0] < plain.requests.tpot_s.iloc[0]
    assert (chunk.requests.status == "finished").all()


def test_prefix_cache_skips_cached_blocks_and_prefix_aware_routes_to_them():
    blocks = [[1, 2, 3, 4], [1, 2, 3, 9], [7, 8]]
    run = serve([0.0, 100.0, 200.0], [2048, 2048, 1024], [2, 2, 2], blocks=blocks, replicas=2,
                routing=PrefixAware())
    df = run.requests
    assert df.cached_tokens.tolist() == [0, 3 * 512, 0]
    assert df.replica.iloc[1] == df.replica.iloc[0]
    assert df.ttft_s.iloc[1] == pytest.approx(0.25 + 512 / 64)
    assert run.info["prefix_hit_rate"] == pytest.approx(3 / 10)
    # round robin sends request 1 elsewhere: no hit
    rr = serve([0.0, 100.0, 200.0], [2048, 2048, 1024], [2, 2, 2], blocks=blocks, replicas=2)
    assert rr.requests.cached_tokens.tolist() == [0, 0, 0]
    off = serve([0.0, 100.0], [2048, 2048], [2, 2], blocks=blocks[:2], prefix_cache=False)
    assert off.requests.cached_tokens.tolist() == [0, 0]


def test_least_loaded_balances_and_bad_router_is_caught():
    run = serve([0.0] * 6, [64] * 6, [50] * 6, replicas=3, routing=LeastLoaded())
    assert sorted(run.requests.replica.value_counts().tolist()) == [2, 2, 2]

    class Bad:
        def route(self, view):
            return RouteDecision(99)

    with pytest.raises(PlacementError, match="chose replica 99"):
        serve([0.0, 0.0], [10, 10], [2, 2], replicas=2, routing=Bad())


def test_queue_driven_autoscaling_scales_up_after_warmup():
    arrival = np.linspace(0, 60, 600)
    run = serve(arrival, [64] * 600, [20] * 600, replicas=4,
                autoscaling=QueueDriven(target_outstanding=4, initial_replicas=1, interval_s=5, warmup_s=10))
    reps = run.replicas
    assert reps.allocated_s.iloc[0] == pytest.approx(run.end_s)
    assert reps.allocated_s.iloc[1:].tolist() == pytest.approx([run.end_s - 5] * 3)  # started at the 5 s tick
    first_use = run.requests.groupby("replica").admit_s.min()
    assert first_use.loc[0] == 0.0 and (first_use.drop(0) >= 15.0).all()
    assert (run.requests.status == "finished").all()


def test_latency_driven_autoscaling_holds_without_data_and_reacts_to_slo():
    s = LatencyDriven(initial_replicas=2)
    arrival = np.linspace(0, 40, 400)
    reqs = RequestTable.from_arrays(arrival, [64] * 400, [20] * 400)
    svc = ServiceSpec("s", reqs, (PoolSpec("colocated", 4, PERF),), slo_ttft_s=0.5, slo_tpot_s=0.2)
    run = ServingEngine([svc], autoscaling=s, options=ServingOptions()).run()
    assert (run.replicas.allocated_s > 0).sum() >= 3   # TTFT > SLO drives scale-up


def test_hosted_in_simpy_matches_standalone():
    arrival = np.sort(np.random.default_rng(0).uniform(0, 20, 200))
    args = (arrival, [200] * 200, [30] * 200)
    alone = serve(*args, replicas=2, horizon_s=15.0)
    reqs = RequestTable.from_arrays(*args)
    eng = ServingEngine([ServiceSpec("s", reqs, (PoolSpec("colocated", 2, PERF),))],
                        options=ServingOptions(horizon_s=15.0))
    env = simpy.Environment()
    proc = env.process(eng.process(env))
    env.run()
    hosted = proc.value
    assert env.now == 15.0
    cols = ["status", "admit_s", "first_token_s", "last_token_s", "generated_tokens"]
    assert hosted.requests[cols].equals(alone.requests[cols])


def test_round_robin_is_default_and_deterministic():
    a = serve([0.0, 0.1, 0.2, 0.3], [10] * 4, [3] * 4, replicas=2)
    b = serve([0.0, 0.1, 0.2, 0.3], [10] * 4, [3] * 4, replicas=2, routing=RoundRobin())
    assert a.requests.replica.tolist() == [0, 1, 0, 1]
    assert a.requests.equals(b.requests)


SCRIPT = """
from cluster_sim.config.load import load_config
from cluster_sim.experiment.drivers import run_serving
cfg = load_config({"seed": 3, "duration": "60s", "cluster": {"topology": "none"}, "inference": {"services": [
    {"name": "a", "model": "llama3-8b", "slo": {"ttft": "1s", "tpot": "50ms"},
     "deployment": {"mode": "disaggregated", "prefill": {"replicas": 2, "card_type": "h100-sxm"},
                    "decode": {"replicas": 2, "card_type": "h100-sxm"}},
     "arrivals": {"kind": "gamma", "rate": 20, "cv": 2}}]},
    "policy": {"serving": {"routing": "least_loaded"}}})
res = run_serving(cfg, topology=False)
print(res.requests.drop(columns=["request_id"]).to_json())
"""


def test_same_seed_same_records_under_any_hash_seed():
    outs = [subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout for seed in ("0", "12345")]
    assert outs[0] == outs[1] and len(outs[0]) > 1000


def test_attaches_to_a_simulation_as_a_subsystem():
    from types import SimpleNamespace

    arrival = np.sort(np.random.default_rng(1).uniform(0, 20, 100))
    args = (arrival, [200] * 100, [30] * 100)
    alone = serve(*args, horizon_s=12.0)
    eng = ServingEngine([ServiceSpec("s", RequestTable.from_arrays(*args), (PoolSpec("colocated", 1, PERF),))])
    sim = SimpleNamespace(env=simpy.Environment(), horizon_s=12.0)
    eng.connect(sim)
    sim.env.run(until=12.0)
    eng.finalize(12.0)
    assert eng.result.requests.equals(alone.requests) and eng.result.end_s == 12.0
