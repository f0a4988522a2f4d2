"""ReplicaPerf: breakdowns agree with the fast paths, closed-form stretches, errors, MoE, comm, energy."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_sim.catalog import accelerator
from cluster_sim.errors import ConfigError, PerfModelError
from cluster_sim.network import collectives
from cluster_sim.perf.base import Breakdown
from cluster_sim.perf.inference import (
    UNBOUNDED_ITERATIONS,
    ReplicaPerf,
    causal_pairs,
)
from cluster_sim.perf.series import solve_series, sum_max_affine
from cluster_sim.topology.levels import CommLevel
from cluster_sim.units import GIB
from cluster_sim.workload.models import model

L70 = ReplicaPerf("llama3-70b", "h100-sxm", tp=8)
L8 = ReplicaPerf("llama3-8b", "h100-sxm")
DSV3 = ReplicaPerf("deepseek-v3", "h200", ep=8, dtype="fp8")
QWEN = ReplicaPerf("qwen3-235b-a22b", "h100-sxm", tp=4, ep=2)
REPLICAS = [L70, L8, DSV3, QWEN, ReplicaPerf("llama2-13b", "a100-80gb", overhead_s=0.0)]


def loop_stretch(r: ReplicaPerf, batch: int, ctx: float, n: int) -> float:
    return sum(r.decode_time_s(batch, ctx + k * batch) for k in range(n))


# ---- breakdowns == fast paths ----------------------------------------------------------------
@pytest.mark.parametrize("r", REPLICAS, ids=repr)
@pytest.mark.parametrize("batch,ctx", [(1, 0), (1, 4000), (32, 32 * 1500), (256, 256 * 300), (1024, 10)])
def test_decode_breakdown_matches_fast_path(r, batch, ctx):
    b = r.decode_breakdown(batch, ctx)
    assert isinstance(b, Breakdown)
    assert set(b) == {"compute", "memory", "tp_comm", "ep_comm", "overhead"}
    assert b.total == pytest.approx(r.decode_time_s(batch, ctx), rel=1e-12)


@pytest.mark.parametrize("r", REPLICAS, ids=repr)
@pytest.mark.parametrize("tokens,pairs", [(1, None), (512, None), (8192, None), (2048, causal_pairs(2048, 6000))])
def test_prefill_and_mixed_breakdowns_match(r, tokens, pairs):
    assert r.prefill_breakdown(tokens, pairs).total == pytest.approx(r.prefill_time_s(tokens, pairs), rel=1e-12)
    for batch, ctx in ((0, 0), (16, 16000), (200, 400000)):
        bd = r.mixed_iteration_breakdown(tokens, batch, ctx, pairs)
        assert bd.total == pytest.approx(r.mixed_iteration_time_s(tokens, batch, ctx, pairs), rel=1e-12)


def test_empty_work_costs_nothing():
    assert L70.decode_time_s(0, 0) == 0.0
    assert L70.prefill_time_s(0) == 0.0
    assert L70.mixed_iteration_time_s(0, 0, 0) == 0.0
    assert L70.decode_stretch_s(8, 100, 0) == 0.0
    assert L70.decode_breakdown(0, 0).total == 0.0


def test_mixed_iteration_reduces_to_its_parts():
    r = L70
    # prefill only / decode only
    assert r.mixed_iteration_time_s(1000, 0, 0) == pytest.approx(r.prefill_time_s(1000), rel=1e-12)
    assert r.mixed_iteration_time_s(0, 32, 40000) == pytest.approx(r.decode_time_s(32, 40000), rel=1e-12)
    # weights read once: cheaper than a prefill plus a decode iteration
    both = r.mixed_iteration_time_s(512, 32, 40000)
    assert max(r.prefill_time_s(512), r.decode_time_s(32, 40000)) <= both
    assert both < r.prefill_time_s(512) + r.decode_time_s(32, 40000)


def test_prefill_flops_match_model_spec():
    # compute component = ModelSpec.prefill_flops / (cards * peak * eta)
    m = model("llama3-8b")
    acc = accelerator("h100-sxm")
    rate = acc.peak_flops * acc.flops_efficiency
    for s, c in ((2048, 0), (512, 3000)):
        got = L8.prefill_breakdown(s, causal_pairs(s, c))["compute"]
        assert got == pytest.approx(m.prefill_flops(s, c) / rate, rel=1e-12)


# ---- closed-form stretch and search ----------------------------------------------------------
@settings(max_examples=60, deadline=10_000)
@given(r=st.sampled_from(REPLICAS), batch=st.integers(1, 600), ctx_per=st.floats(0, 8000),
       n=st.integers(0, 300))
def test_stretch_equals_loop(r, batch, ctx_per, n):
    ctx = batch * ctx_per
    assert r.decode_stretch_s(batch, ctx, n) == pytest.approx(loop_stretch(r, batch, ctx, n), rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=10_000)
@given(r=st.sampled_from(REPLICAS), batch=st.integers(1, 600), ctx_per=st.floats(0, 8000),
       budget=st.floats(0, 3.0))
def test_iterations_within_equals_loop_search(r, batch, ctx_per, budget):
    ctx = batch * ctx_per
    k = r.decode_iterations_within(batch, ctx, budget)
    # loop search on the per-iteration times
    total, j = 0.0, 0
    while True:
        t = r.decode_time_s(batch, ctx + j * batch)
        if total + t > budget:
            break
        total += t
        j += 1
    if k != j:  # only a float tie at the boundary may differ
        assert abs(k - j) == 1
        assert loop_stretch(r, batch, ctx, max(k, j)) == pytest.approx(budget, rel=1e-9)
    assert r.decode_stretch_s(batch, ctx, k) <= budget < r.decode_stretch_s(batch, ctx, k + 1)


@settings(max_examples=300, deadline=10_000)
@given(a1=st.floats(0, 10), b1=st.floats(0, 1), a2=st.floats(0, 10), b2=st.floats(0, 1), n=st.integers(0, 200))
def test_sum_of_max_of_two_lines(a1, b1, a2, b2, n):
    want = sum(max(a1 + b1 * k, a2 + b2 * k) for k in range(n))
    assert sum_max_affine(a1, b1, a2, b2, n) == pytest.approx(want, rel=1e-9, abs=1e-9)


@settings(max_examples=200, deadline=10_000)
@given(a=st.floats(1e-6, 10), b=st.floats(0, 1), budget=st.floats(0, 1000))
def test_series_solver_is_close(a, b, budget):
    n = solve_series(a, b, budget)
    s = lambda k: k * a + b * k * (k - 1) / 2  # noqa: E731
    assert s(n) <= budget * (1 + 1e-9) + 1e-12
    assert s(n + 2) > budget


def test_memory_first_then_compute_branch():
    # A card whose ridge (achievable FLOP/s per byte/s) is 2, below the 4 FLOP/byte of llama3-8b
    # attention (32 heads / 8 KV heads): decode starts memory-bound (weights) and becomes
    # compute-bound as the context grows.
    acc = dataclasses.replace(accelerator("h100-sxm"), bf16_tflops_dense=10.0, flops_efficiency=0.7,
                              hbm_tbyte_s=4.268292682926829, hbm_efficiency=0.82)
    r = ReplicaPerf("llama3-8b", acc, overhead_s=0.0)
    b0 = r.decode_breakdown(1, 0)
    assert b0["memory"] > 0  # memory-bound at short context
    # find the context of the crossover and start 40 iterations before it
    lo, hi = 0.0, 1e6
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if r.decode_breakdown(1, mid)["memory"] > 0 else (lo, mid)
    ctx = hi - 40.5
    assert r.decode_breakdown(1, ctx + 80)["memory"] == 0.0
    for n in (10, 40, 41, 100):
        assert r.decode_stretch_s(1, ctx, n) == pytest.approx(loop_stretch(r, 1, ctx, n), rel=1e-12)
    budget = loop_stretch(r, 1, ctx, 70) * 1.0000001
    assert r.decode_iterations_within(1, ctx, budget) == 70


def test_stretch_breakdown_sums():
    for r in REPLICAS:
        b = r.decode_stretch_breakdown(64, 64 * 3000, 500)
        assert b.total == pytest.approx(r.decode_stretch_s(64, 64 * 3000, 500), rel=1e-9)
        assert b["overhead"] == pytest.approx(500 * r.overhead_s)


def test_iterations_within_rejects_empty_batch():
    with pytest.raises(PerfModelError):
        L70.decode_iterations_within(0, 0, 1.0)
    assert L70.decode_iterations_within(4, 100, -1.0) == 0
    assert L70.decode_iterations_within(4, 100, math.inf) == UNBOUNDED_ITERATIONS


# ---- memory fit and sizes --------------------------------------------------------------------
def test_model_that_does_not_fit_names_missing_gib():
    with pytest.raises(ConfigError) as exc:
        ReplicaPerf("llama3-70b", "h100-sxm")
    msg = str(exc.value)
    assert msg.startswith("llama3-70b on 1 x h100-sxm")
    # by hand: weights 70.6e9 x 2 B = 131.5 GiB; usable = the catalog's HBM bytes (80 GiB x 0.97
    # = 77.6 GiB when written); workspace 1 GiB + 8192 x (4 x 8192 + 2 x 28672) x 2 B = 2.42 GiB;
    # KV 1024 x 327,680 B = 0.31 GiB  ->  131.5 + 0.31 - (77.6 - 2.42) = 56.6 GiB missing
    ws = GIB + 8192 * (4 * 8192 + 2 * 28672) * 2
    missing = (70.6e9 * 2 + 1024 * 327680 - (accelerator("h100-sxm").hbm_bytes - ws)) / GIB
    assert "weights need 131.5 GiB per card" in msg
    got = float(re.search(r"; ([\d.]+) GiB missing", msg).group(1))
    assert got == pytest.approx(missing, abs=0.05)


def test_fits_with_enough_cards_or_fp8():
    assert ReplicaPerf("llama3-70b", "h100-sxm", tp=2).kv_capacity_tokens > 0
    fp8 = ReplicaPerf("llama3-70b", "h100-sxm", dtype="fp8", kv_dtype="fp8")
    assert fp8.weight_bytes_per_card == pytest.approx(70.6e9)
    assert fp8.kv_bytes_per_token == 327680 / 2


def test_kv_replication_beyond_kv_heads():
    # llama3-70b has 8 KV heads: TP16 replicates each head on two cards
    r = ReplicaPerf("llama3-70b", "h100-sxm", tp=16)
    assert r.kv_bytes_per_token == 2 * 327680
    assert r.kv_bytes_per_token_unique == 327680
    # MLA latent is replicated on every TP rank
    d = ReplicaPerf("deepseek-v3", "h200", tp=8, dtype="fp8")
    assert d.kv_bytes_per_token == 8 * d.kv_bytes_per_token_unique


def test_moe_weights_touched_between_active_and_total():
    r = DSV3
    assert r.cards == 8
    dense_card = r._dense_card
    w1 = r._weights_read(1)
    w_many = r._weights_read(100000)
    assert dense_card < w1 < w_many
    assert w_many == pytest.approx(r.weight_bytes_per_card, rel=1e-9)
    # batch 1 reads ~N_act bytes: the non-expert part plus top_k / E of the routed experts
    m = model("deepseek-v3")
    per_card_act = (r.weight_bytes_per_card * 8 - (m.total_params - m.active_params)) / 8
    assert w1 == pytest.approx(per_card_act, rel=0.05)
    # decode iteration time grows with batch through the experts touched
    times = [r.decode_time_s(b, 0) for b in (1, 4, 16, 64)]
    assert times == sorted(times)


def test_validation_errors():
    with pytest.raises(ConfigError, match="dense"):
        ReplicaPerf("llama3-8b", "h100-sxm", ep=2)
    with pytest.raises(ConfigError, match="fanouts multiply to 4, expected 8"):
        ReplicaPerf("llama3-70b", "h100-sxm", tp=8,
                    comm_levels=(CommLevel("scaleup", 4, 450e9, 2e-6),))
    with pytest.raises(ConfigError, match="dtype"):
        ReplicaPerf("llama3-8b", "h100-sxm", dtype="fp4")
    with pytest.raises(ConfigError, match="tp"):
        ReplicaPerf("llama3-8b", "h100-sxm", tp=0)


# ---- communication ---------------------------------------------------------------------------
def test_tp_comm_is_two_allreduces_per_layer():
    # decode batch 1 on TP8 H100: 80 layers x 2 all-reduces of 8192 x 2 B
    b = L70.decode_breakdown(1, 0)
    bw = 450e9 * 0.82
    ring = 2 * 7 * 2e-6 + 2 * 7 / 8 * 16384 / bw
    tree = 2 * 3 * 2e-6 + 2 * 16384 / bw
    assert b["tp_comm"] == pytest.approx(160 * min(ring, tree), rel=1e-12)
    assert L8.decode_breakdown(1, 0)["tp_comm"] == 0.0


@pytest.mark.parametrize("tokens", [1, 7, 300, 8192])
def test_comm_matches_network_collectives(tokens):
    two = (CommLevel("scaleup", 4, 400e9, 1e-6, 0.8), CommLevel("scaleout", 2, 50e9, 5e-6, 0.9))
    r = ReplicaPerf("llama3-70b", "h100-sxm", tp=8, comm_levels=two)
    want = 160 * collectives.all_reduce(tokens * 8192 * 2, two).time_s
    assert r.prefill_breakdown(tokens)["tp_comm"] == pytest.approx(want, rel=1e-9)
    m = model("qwen3-235b-a22b")
    ep_lv = QWEN.ep_comm_levels
    # 2 all-to-alls per MoE layer; each card sends tokens/ep x top_k x h x 2 B / tp
    per_card = tokens / 2 * m.experts_per_token * m.hidden * 2 / 4
    want_ep = 2 * m.moe_layers * collectives.all_to_all(per_card, ep_lv).time_s
    assert QWEN.prefill_breakdown(tokens)["ep_comm"] == pytest.approx(want_ep, rel=1e-9)


def test_ep_comm_present_only_with_ep():
    assert DSV3.decode_breakdown(8, 0)["ep_comm"] > 0
    assert ReplicaPerf("deepseek-v3", "h200", tp=8, dtype="fp8").decode_breakdown(8, 0)["ep_comm"] == 0


def test_slower_scaleup_costs_more():
    slow = ReplicaPerf("llama3-70b", "h100-sxm", tp=8,
                       comm_levels=(CommLevel("scaleout", 8, 50e9, 5e-6, 0.9),))
    assert slow.prefill_breakdown(4096)["tp_comm"] > L70.prefill_breakdown(4096)["tp_comm"]


# ---- PD transfer and energy ------------------------------------------------------------------
def test_kv_transfer_time():
    # 1000 tokens x 327,680 B over 50 GB/s + 5 us
    assert L70.kv_transfer_time_s(1000, 50e9, 5e-6) == pytest.approx(327680e3 / 50e9 + 5e-6)
    full = L70.kv_transfer_time_s(1000, 50e9)
    hidden = L70.kv_transfer_time_s(1000, 50e9, overlap_s=1.0)
    assert hidden == pytest.approx(full / 80)  # only the last layer's share is exposed
    with pytest.raises(PerfModelError):
        L70.kv_transfer_time_s(10, 0.0)


def test_power_and_energy():
    a100 = REPLICAS[-1]
    assert a100.power_w("decode") == 250.0 and a100.power_w("prefill") == 400.0
    assert L70.power_w("decode") == 8 * 380.0 and L70.power_w("idle") == 8 * 75.0
    h20 = ReplicaPerf("llama3-8b", "h20")
    assert h20.power_w("decode") == pytest.approx(0.58 * 400.0)
    assert L70.energy_j("prefill", 2.0) == 8 * 700.0 * 2.0
    e = L70.decode_stretch_energy_j(16, 16000, 100)
    assert e == pytest.approx(8 * 380.0 * L70.decode_stretch_s(16, 16000, 100))
    with pytest.raises(PerfModelError):
        L70.power_w("training")


def test_fast_path_speed():
    import time

    t = time.perf_counter()
    for i in range(20000):
        L70.decode_time_s(32, 32000 + i)
    per_call = (time.perf_counter() - t) / 20000
    assert per_call < 20e-6  # ~1 us on a laptop; generous for a shared CI core
    assert math.isfinite(L70.ridge_batch())
