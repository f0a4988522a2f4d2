"""The training performance model: closed forms, invariants and errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cluster_sim.catalog import accelerator
from cluster_sim.errors import ConfigError
from cluster_sim.network import collectives as coll
from cluster_sim.perf.memory import (
    expert_data_parallel,
    param_split,
    params_per_card,
    training_memory,
)
from cluster_sim.perf.training import (
    OPTIMIZER_BYTES_PER_PARAM,
    estimate_step,
    pick_cards,
    scaling_curve,
)
from cluster_sim.topology import builders as B
from cluster_sim.units import GIB
from cluster_sim.workload.models import ModelSpec, model
from cluster_sim.workload.parallelism import ParallelPlan

# 4 MoE layers, h 64, 4 heads of 16, 8 gated experts of width 32, vocab 100 (untied):
# attention 4 * 64 * 64 = 16,384 and router 64 * 8 = 512 per layer; one expert 3 * 64 * 32 = 6,144;
# routed 4 * 8 * 6,144 = 196,608; embeddings 2 * 100 * 64 = 12,800; total 276,992, dense 80,384.
TINY_MOE = ModelSpec(name="tiny-moe", layers=4, hidden=64, heads=4, vocab=100, gated_ffn=True,
                     experts=8, experts_per_token=2, moe_ffn_hidden=32)


@pytest.fixture(scope="module")
def h100():
    return B.rail_optimized("hgx-h100", 64, fabric="ib_ndr")


@pytest.fixture(scope="module")
def a100():
    return B.fat_tree("dgx-a100", 16, fabric="ib_hdr")


def test_bubble_matches_closed_form(h100):
    plan = ParallelPlan(tp=8, pp=4, dp=2, microbatches=8)
    e = estimate_step(model("llama3-70b"), plan, h100, seq_len=4096)
    per_mb = sum(e.breakdown.get(k, 0.0) for k in
                 ("compute", "output_layer", "memory_bound", "tp_comm", "cp_comm", "ep_comm"))
    per_mb /= plan.microbatches
    assert e.breakdown["pp_bubble"] == pytest.approx((plan.pp - 1) * per_mb)
    # bubble / (bubble + ideal) = (p-1)/(m+p-1)
    ideal = per_mb * plan.microbatches
    frac = e.breakdown["pp_bubble"] / (e.breakdown["pp_bubble"] + ideal)
    assert frac == pytest.approx(plan.bubble_fraction)
    interleaved = estimate_step(model("llama3-70b"), dataclasses.replace(plan, virtual_stages=2), h100,
                                seq_len=4096)
    assert interleaved.breakdown["pp_bubble"] == pytest.approx(e.breakdown["pp_bubble"] / 2)


def test_mfu_bounds_and_recompute_hfu(a100):
    m = model("megatron-3.6b")
    plan = ParallelPlan(tp=2, dp=4, microbatches=4, recompute="full")
    e = estimate_step(m, plan, a100, seq_len=2048)
    assert 0 < e.mfu < 1
    # full recompute adds one forward pass of the layers (not of the embedding or output layer),
    # causal attention as flash runs it: 16 blocks of 128 per row, (16 + 1) / (2 * 16) of them
    layers = 6 * (m.active_params - m.embedding_params) + m.attention_flops_per_token(2048) * 17 / 32
    assert e.hfu == pytest.approx(e.mfu * (1 + layers / 3 / m.train_flops_per_token(2048)))
    assert 1.2 < e.hfu / e.mfu < 4 / 3
    none = estimate_step(m, dataclasses.replace(plan, recompute="none"), a100, seq_len=2048)
    assert none.hfu == pytest.approx(none.mfu)
    assert none.step_time_s < e.step_time_s


def test_rates_are_consistent(h100):
    plan = ParallelPlan(tp=8, pp=2, dp=4, microbatches=8)
    e = estimate_step(model("llama3-70b"), plan, h100, seq_len=4096)
    assert e.tokens_per_s == pytest.approx(plan.global_batch * 4096 / e.step_time_s)
    assert e.step_time_s == pytest.approx(sum(e.breakdown.values()))
    assert e.days_to_train(1e12) == pytest.approx(1e12 / e.tokens_per_s / 86400)
    flops = model("llama3-70b").train_flops_per_token(4096) * e.tokens_per_s
    assert e.mfu == pytest.approx(flops / (64 * 989.4e12))


def test_dp_sync_without_overlap_equals_all_reduce(a100):
    m = model("megatron-1.7b")
    plan = ParallelPlan(dp=16, microbatches=2, dp_overlap=0.0, zero=0)
    e = estimate_step(m, plan, a100, seq_len=2048)
    cards = pick_cards(a100, 16)
    grads = m.total_params * 2
    assert e.breakdown["dp_comm"] == pytest.approx(coll.all_reduce(grads, a100.comm_levels(cards)).time_s)
    hidden = estimate_step(m, dataclasses.replace(plan, dp_overlap=1.0), a100, seq_len=2048)
    assert hidden.breakdown["dp_comm"] < e.breakdown["dp_comm"]


def test_less_bandwidth_is_never_faster(h100):
    plan = ParallelPlan(tp=8, pp=2, dp=8, microbatches=4, dp_overlap=0.0)
    times = [estimate_step(model("llama3-70b"), plan, h100, seq_len=4096, scaleout_share=s).step_time_s
             for s in (1.0, 0.5, 0.25)]
    assert times[0] < times[1] < times[2]


def test_heterogeneous_job_runs_at_slowest_stage():
    topo = B.heterogeneous([("dgx-a100", 2), ("hgx-h100", 2)], fabric="ib_ndr")
    m = model("megatron-7.5b")
    plan = ParallelPlan(tp=8, pp=4, dp=1, microbatches=8)
    by = topo.cards_by_type()
    mixed = np.concatenate([np.sort(by["a100-80gb"]), np.sort(by["h100-sxm"])])
    e_mixed = estimate_step(m, plan, topo, mixed, seq_len=2048)
    e_a100 = estimate_step(m, ParallelPlan(tp=8, pp=2, dp=1, microbatches=8), topo,
                           np.sort(by["a100-80gb"]), seq_len=2048)
    assert any("paced by a100-80gb" in n for n in e_mixed.notes)
    # all four stages march at the A100 stage's pace: per-stage compute equals the A100 job's
    # per-stage compute with half the layers
    assert e_mixed.breakdown["compute"] == pytest.approx(e_a100.breakdown["compute"] / 2, rel=1e-9)
    assert set(e_mixed.card_types) == {"a100-80gb", "h100-sxm"}


def test_tp_across_domains_is_noted_and_slower(h100):
    m = model("megatron-18.4b")
    inside = estimate_step(m, ParallelPlan(tp=8, dp=2, microbatches=4), h100, seq_len=2048)
    cards = np.array([0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15])
    across = estimate_step(m, ParallelPlan(tp=8, dp=2, microbatches=4), h100, cards, seq_len=2048)
    assert any("crosses scale-up domains" in n for n in across.notes)
    assert across.breakdown["tp_comm"] > 1.5 * inside.breakdown["tp_comm"]


def test_plan_must_match_cards(h100):
    with pytest.raises(ConfigError, match=r"tp\*pp\*dp\*cp = 8\*1\*3\*1 = 24 does not match the job's 16"):
        estimate_step(model("llama3-8b"), ParallelPlan(tp=8, dp=3), h100, np.arange(16))


def test_plan_that_does_not_fit_says_by_how_much(h100):
    with pytest.raises(ConfigError, match=r"needs .* GiB per card, .* GiB usable \(\d+\.\d GiB short\)"):
        estimate_step(model("llama3-70b"), ParallelPlan(tp=1, dp=8, microbatches=1), h100, seq_len=4096)


def test_global_batch_tokens_must_split(h100):
    plan = ParallelPlan(tp=8, dp=4)
    e = estimate_step(model("llama3-8b"), plan, h100, seq_len=4096, global_batch_tokens=4096 * 64)
    assert e.plan.microbatches == 16 and e.global_batch == 64
    with pytest.raises(ConfigError, match="does not split into whole micro-batches"):
        estimate_step(model("llama3-8b"), plan, h100, seq_len=4096, global_batch_tokens=4096 * 6)


def test_model_split_errors(h100):
    with pytest.raises(ConfigError, match="does not divide the model's 40 attention heads"):
        estimate_step(model("llama2-13b"), ParallelPlan(tp=3, dp=1), h100, np.arange(3))
    with pytest.raises(ConfigError, match="expert parallelism 2 on a dense model"):
        estimate_step(model("llama3-8b"), ParallelPlan(tp=1, dp=2, ep=2), h100, np.arange(2))


def test_pick_cards_errors(h100):
    with pytest.raises(ConfigError, match="card_type 'a100-80gb' is not in the topology"):
        pick_cards(h100, 8, "a100-80gb")
    with pytest.raises(ConfigError, match="needs 1024 h100-sxm cards; the topology has 512"):
        pick_cards(h100, 1024, "h100-sxm")


def test_moe_expert_parallel_all_to_all(h100):
    m = model("qwen3-235b-a22b")
    plan = ParallelPlan(tp=1, pp=4, dp=32, ep=8, microbatches=8, recompute="full", zero=1)
    e = estimate_step(m, plan, h100, seq_len=4096)
    assert e.breakdown["ep_comm"] > 0
    assert 0 < e.mfu < 0.7
    # the optimizer reads/writes the states this card keeps: dense / dp + experts / dp_expert (4)
    dense, expert = param_split(m, plan)
    hbm = accelerator("h100-sxm").achievable_hbm_bytes_per_s
    assert e.breakdown["optimizer"] == pytest.approx(
        (dense / 32 + expert / 4) * OPTIMIZER_BYTES_PER_PARAM / hbm, rel=1e-12)


def test_moe_memory_closed_form():
    assert TINY_MOE.total_params == 276_992
    plan = ParallelPlan(tp=2, pp=2, dp=4, ep=4, zero=1)  # dp_expert = 4 * 2 * 1 / 4 = 2
    assert expert_data_parallel(plan) == 2
    dense, expert = 80_384 / (2 * 2), 196_608 / (4 * 2)  # 20,096 over tp*pp, 24,576 over ep*pp
    assert param_split(TINY_MOE, plan) == (dense, expert)
    assert params_per_card(TINY_MOE, plan) == dense + expert
    mem = training_memory(TINY_MOE, plan, seq_len=16)
    assert (mem.weights_bytes, mem.gradients_bytes) == (2 * 44_672, 2 * 44_672)
    assert mem.optimizer_bytes == 12 * (dense / 4 + expert / 2) == 207_744
    z2 = training_memory(TINY_MOE, dataclasses.replace(plan, zero=2), seq_len=16)
    assert (z2.weights_bytes, z2.gradients_bytes) == (2 * 44_672, 2 * 17_312)
    z3 = training_memory(TINY_MOE, dataclasses.replace(plan, zero=3), seq_len=16)
    assert (z3.weights_bytes, z3.gradients_bytes, z3.optimizer_bytes) == (2 * 17_312, 2 * 17_312, 207_744)
    z0 = training_memory(TINY_MOE, dataclasses.replace(plan, zero=0), seq_len=16)
    assert z0.optimizer_bytes == 12 * 44_672
    # ep over every dp*tp rank: each expert shard has one copy, ZeRO cannot shard expert states
    full_ep = ParallelPlan(tp=2, pp=2, dp=4, ep=8, zero=3)
    assert expert_data_parallel(full_ep) == 1
    assert training_memory(TINY_MOE, full_ep, 16).optimizer_bytes == 12 * (dense / 4 + 196_608 / 16)


def test_qwen3_235b_tp1_ep8_does_not_fit_on_8_h100(h100):
    """Issue 7: 8 experts' shards of 16 bytes per parameter, one copy each (dp_expert 1): ~440 GiB."""
    m = model("qwen3-235b-a22b")
    plan = ParallelPlan(tp=1, dp=8, ep=8, zero=3, recompute="full")
    mem = training_memory(m, plan, seq_len=4096)
    _, expert = param_split(m, plan)
    assert expert_data_parallel(plan) == 1
    assert mem.optimizer_bytes > 12 * expert > 300 * GIB
    with pytest.raises(ConfigError) as exc:
        estimate_step(m, plan, h100, seq_len=4096)
    assert str(exc.value).endswith(
        "needs 443.2 GiB per card, 77.6 GiB usable (365.6 GiB short); raise tp/pp; expert states "
        "shard only over the dp*tp*cp/ep = 1 copies of each expert shard")


def test_deepseek_v3_published_plan_still_fits():
    """DeepSeek-V3 report (arXiv 2412.19437, 3.2): 2,048 H800, PP 16, EP 64 over 8 nodes, ZeRO-1 DP,
    no TP; 4K sequences. dp = 128, dp_expert = 128 / 64 = 2."""
    m = model("deepseek-v3")
    plan = ParallelPlan(tp=1, pp=16, dp=128, ep=64, microbatches=16, recompute="selective", zero=1)
    assert plan.cards == 2048 and expert_data_parallel(plan) == 2
    mem = training_memory(m, plan, seq_len=4096)
    dense, expert = param_split(m, plan)
    assert mem.optimizer_bytes == pytest.approx(12 * (dense / 128 + expert / 2))
    assert mem.total_bytes < accelerator("h800").hbm_bytes
    assert mem.total_bytes / GIB == pytest.approx(68.7, abs=0.05)


def test_scaling_curve_weak_and_strong(h100):
    m = model("llama3-8b")
    plan = ParallelPlan(tp=8, dp=1, microbatches=8)
    weak = scaling_curve(m, plan, h100, [8, 64, 512], seq_len=4096)
    assert weak[0].linear_speedup == 1.0
    assert all(0.5 < p.linear_speedup <= 1.0 + 1e-9 for p in weak)
    assert [p.estimate.global_batch for p in weak] == [8, 64, 512]
    strong = scaling_curve(m, ParallelPlan(tp=8, dp=1, microbatches=64), h100, [8, 64, 512],
                           mode="strong", seq_len=4096)
    assert {p.estimate.global_batch for p in strong} == {64}
    # strong scaling loses more than weak scaling (less work per rank to hide communication)
    assert strong[-1].linear_speedup < weak[-1].linear_speedup
    with pytest.raises(ConfigError, match="not multiples of tp"):
        scaling_curve(m, plan, h100, [12], seq_len=4096)
