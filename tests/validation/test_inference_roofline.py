"""Inference roofline against hand-worked numbers (DOMAIN.md 5).

Peaks are the datasheet numbers (A100-80GB 312 TFLOPS BF16 and 2.039 TB/s; H100-SXM 989.4
TFLOPS and 3.35 TB/s). The calibration factors (achievable fractions of peak, usable HBM) are
read from the catalog, whose calibration is ``docs/catalog.md``'s business; their values at the
time of writing are quoted in the comments.
"""

from __future__ import annotations

import pytest

from cluster_sim.catalog import accelerator
from cluster_sim.perf.inference import ReplicaPerf
from cluster_sim.units import GIB

A100, H100 = accelerator("a100-80gb"), accelerator("h100-sxm")
A100_BW = 2.039e12 * A100.hbm_efficiency  # achievable bytes/s (x 0.80 = 1.6312 TB/s)
A100_P = 312e12 * A100.flops_efficiency  # achievable FLOP/s (x 0.64 = 199.7 TFLOP/s)
H100_BW = 3.35e12 * H100.hbm_efficiency  # x 0.82 = 2.747 TB/s
H100_P = 989.4e12 * H100.flops_efficiency  # x 0.70 = 692.6 TFLOP/s


def test_llama2_13b_a100_decode_batch1_is_weight_read():
    r = ReplicaPerf("llama2-13b", "a100-80gb", overhead_s=0.0)
    # 13.0e9 params x 2 B = 26 GB read per token over 2.039 TB/s x 0.80 = 1.6312 TB/s -> 15.94 ms
    assert r.decode_time_s(1, 0) == pytest.approx(26e9 / A100_BW, rel=1e-12)
    assert r.decode_time_s(1, 0) == pytest.approx(26e9 / (2.039e12 * A100.hbm_efficiency), rel=1e-12)
    # + the KV of a 1,000-token context: 2 x 40 layers x 40 heads x 128 x 2 B = 819,200 B/token
    assert r.decode_time_s(1, 1000) == pytest.approx((26e9 + 819200 * 1000) / A100_BW, rel=1e-12)
    # tokens/s at batch 1 = 62.7; the compute share is 2 x 13e9 / 199.7 TFLOP/s = 0.13 ms
    b = r.decode_breakdown(1, 0)
    assert b["compute"] == pytest.approx(2 * 13e9 / A100_P, rel=1e-12)
    assert b["memory"] > 100 * b["compute"]
    assert r.overhead_s == 0.0 and ReplicaPerf("llama2-13b", "a100-80gb").overhead_s == 3e-3


def test_decode_becomes_compute_bound_near_the_ridge_batch():
    r = ReplicaPerf("llama2-13b", "a100-80gb", overhead_s=0.0)
    # at zero context: 2 N B / P = W / BW  ->  B* = P / BW (x W / 2N = 1 for BF16) = 122.4
    ridge = A100_P / A100_BW
    assert r.ridge_batch() == pytest.approx(ridge, rel=1e-6)
    assert r.decode_breakdown(int(ridge) - 1, 0)["memory"] > 0  # memory-bound below
    assert r.decode_breakdown(int(ridge) + 2, 0)["memory"] == 0  # compute-bound above
    # with 1,000 tokens of context per sequence, KV reads push the ridge out of reach:
    # per sequence compute 2N + 4 l h c = 26.82 GFLOP vs KV 0.8192 GB: 32.7 FLOP/B < ridge, so the
    # batch can never become compute-bound
    assert r.ridge_batch(1000) == float("inf")
    # memory-bound throughput grows ~linearly with batch until the ridge
    t1, t64 = r.decode_time_s(1, 0), r.decode_time_s(64, 0)
    assert t64 == pytest.approx(t1, rel=1e-12)  # same weight read, 64x the tokens


def test_prefill_is_compute_bound():
    r = ReplicaPerf("llama3-8b", "h100-sxm", overhead_s=0.0)
    s = 2048
    # FLOPs = 2 x 8.03e9 x 2048 + 2 x 32 layers x 4096 x 2048^2 = 3.289e13 + 1.100e12
    flops = 2 * 8.03e9 * s + 2 * 32 * 4096 * s * s
    b = r.prefill_breakdown(s)
    assert b["compute"] == pytest.approx(flops / H100_P, rel=1e-12)  # 49.1 ms
    assert b["memory"] == 0.0  # 16.06 GB weights / 2.747 TB/s = 5.8 ms < compute
    assert b.total == pytest.approx(3.3990e13 / (989.4e12 * H100.flops_efficiency), rel=1e-4)
    # a single-token prefill is memory-bound (it is a decode step)
    assert r.prefill_breakdown(1)["memory"] > 0


def test_llama3_70b_tp8_h100_kv_capacity():
    r = ReplicaPerf("llama3-70b", "h100-sxm", tp=8)
    usable = H100.hbm_bytes  # 80 GiB x 0.97 = 77.6 GiB = 83.32 GB per card
    weights = 70.6e9 * 2 / 8  # 17.65 GB per card
    workspace = GIB + 8192 * (4 * 8192 + 2 * 28672 / 8) * 2  # 1 GiB + 654 MB = 1.728 GB
    free = usable - weights - workspace  # 63.94 GB per card
    kv = 2 * 80 * 8 * 128 * 2  # 327,680 B per token
    assert r.weight_bytes_per_card == pytest.approx(weights)
    assert r.workspace_bytes_per_card == pytest.approx(workspace)
    assert r.kv_bytes_per_token == kv
    assert r.kv_capacity_tokens == int(free * 8 // kv)  # 511.6 GB / 327,680 B = 1,561,140 tokens
    assert 1.3e6 < r.kv_capacity_tokens < 1.7e6  # ~190 sequences of 8,192 tokens


def test_llama3_70b_tp8_decode_step():
    r = ReplicaPerf("llama3-70b", "h100-sxm", tp=8)
    # batch 1 at 1,000 context: weights/card 17.65 GB + KV 327,680 x 1000 / 8 B over 2.747 TB/s
    mem = (70.6e9 * 2 / 8 + 327680 * 1000 / 8) / H100_BW
    b = r.decode_breakdown(1, 1000)
    assert b["compute"] + b["memory"] == pytest.approx(mem, rel=1e-12)  # 6.44 ms
    # + 160 tree all-reduces of 16 KiB (12.1 us each) + 3 ms overhead = 11.4 ms per token
    assert b.total == pytest.approx(mem + 160 * (12e-6 + 2 * 16384 / (450e9 * 0.82)) + 3e-3, rel=1e-9)
    assert 9e-3 < b.total < 15e-3  # ~70-110 tokens/s per sequence, as vLLM/TRT-LLM report
