"""Pipeline-stage imbalance, causal attention and per-micro-batch costs in the training step.

Closed forms and limiting cases of ``perf/stages.py`` as ``perf/training.py`` uses it (issue #15
item 5): the output layer on the last stage, paid ``m + p - 1`` times; a flash kernel skipping
the masked half of causal attention; a fixed cost per micro-batch.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_sim.catalog import accelerator
from cluster_sim.config.plans import job_plan
from cluster_sim.config.schema import TrainingJobConfig
from cluster_sim.errors import ConfigError
from cluster_sim.perf.stages import FLASH_BLOCK, causal_fraction
from cluster_sim.perf.training import estimate_step
from cluster_sim.topology import builders as B
from cluster_sim.workload.models import model
from cluster_sim.workload.parallelism import ParallelPlan

H100 = accelerator("h100-sxm")


@pytest.fixture(scope="module")
def h100():
    return B.rail_optimized("hgx-h100", 8, fabric="ib_ndr")


def _logits_s(m, plan, s):
    """2 * 3 * b * s * h * V over the stage's tp * cp cards at achievable BF16 FLOP/s."""
    return 2 * 3 * plan.microbatch_size * s * m.hidden * m.vocab / (plan.tp * plan.cp) / H100.achievable_flops


# ---- output layer and stage imbalance -------------------------------------------------------------
@pytest.mark.parametrize("pp", [1, 2, 4])
def test_output_layer_is_the_logits_gemm_once_per_micro_batch(h100, pp):
    m, s = model("llama3-8b"), 4096
    plan = ParallelPlan(tp=8, pp=pp, dp=8 // pp, microbatches=8, dp_overlap=0.0)
    e = estimate_step(m, plan, h100, seq_len=s, check_memory=False)
    assert e.breakdown["output_layer"] == pytest.approx(plan.microbatches * _logits_s(m, plan, s), rel=1e-12)


def test_one_stage_has_no_imbalance_and_the_slow_stage_pays_m_plus_p_minus_1_times(h100):
    m, s = model("llama3-8b"), 4096
    one = estimate_step(m, ParallelPlan(tp=8, dp=8, microbatches=8), h100, seq_len=s)
    assert "pp_bubble" in one.breakdown and one.breakdown["pp_bubble"] == 0.0
    assert not any("unbalanced" in n for n in one.notes)
    plan = ParallelPlan(tp=8, pp=4, dp=2, microbatches=8)
    e = estimate_step(m, plan, h100, seq_len=s)
    assert any(n.startswith("pipeline stages are unbalanced: stage 3 (of 4)") for n in e.notes)
    # the last stage's micro-batch includes the logits GEMM; 1F1B pays it in the bubble too
    t_out = _logits_s(m, plan, s)
    per_mb = sum(e.breakdown.get(k, 0.0) for k in ("compute", "output_layer", "memory_bound", "tp_comm"))
    per_mb /= plan.microbatches
    assert e.breakdown["pp_bubble"] == pytest.approx((plan.pp - 1) * per_mb, rel=1e-12)
    # the part of the step the output layer costs: (m + p - 1) logits GEMMs
    assert (e.breakdown["output_layer"] + e.breakdown["pp_bubble"] - (plan.pp - 1) * (per_mb - t_out)
            == pytest.approx((plan.microbatches + plan.pp - 1) * t_out, rel=1e-9))


def test_tiny_vocabulary_gives_the_step_without_embedding_and_output_layer(h100):
    """V -> 0: compute is the old uniform split of (6 N + 12 l h s)(1 + recompute) over the stages."""
    m = dataclasses.replace(model("llama3-8b"), vocab=1)
    s, plan = 4096, ParallelPlan(tp=8, pp=4, dp=2, microbatches=8, recompute="full", attention_kernel="dense")
    e = estimate_step(m, plan, h100, seq_len=s, check_memory=False)
    old = m.train_flops_per_token(s) * 4 / 3 * plan.microbatches * s / plan.pp / plan.tp / H100.achievable_flops
    assert e.breakdown["compute"] == pytest.approx(old, rel=1e-6)
    assert e.breakdown.get("output_layer", 0.0) < 1e-5 * e.breakdown["compute"]


def test_mfu_numerator_counts_full_attention_whatever_the_kernel(h100):
    m, s = model("llama3-8b"), 8192
    plan = ParallelPlan(tp=8, dp=8, microbatches=4)
    flash = estimate_step(m, plan, h100, seq_len=s)
    dense = estimate_step(m, dataclasses.replace(plan, attention_kernel="dense"), h100, seq_len=s,
                          check_memory=False)
    assert flash.step_time_s < dense.step_time_s
    # same model FLOPs per step: MFU x step time is the same
    assert flash.mfu * flash.step_time_s == pytest.approx(dense.mfu * dense.step_time_s, rel=1e-12)


# ---- causal attention ---------------------------------------------------------------------------
@settings(deadline=2000, max_examples=60)
@given(st.integers(1, 1 << 20))
def test_causal_fraction_limits(s):
    f = causal_fraction(s, "flash")
    assert 0.5 < f <= 1.0
    assert causal_fraction(s, "dense") == 1.0
    assert (f == 1.0) == (s <= FLASH_BLOCK)
    assert causal_fraction(2 * s, "flash") <= f  # more blocks: closer to a half


def test_flash_skips_the_masked_half_of_the_attention_gemms(h100):
    m = model("llama3-8b")
    plan = ParallelPlan(tp=8, dp=8, microbatches=4)
    per_tok = plan.microbatches / plan.tp / H100.achievable_flops

    def compute(s, kernel):
        p = dataclasses.replace(plan, attention_kernel=kernel)
        return estimate_step(m, p, h100, seq_len=s, check_memory=False).breakdown["compute"]

    # s <= one block: nothing to skip, flash computes what dense does
    assert compute(FLASH_BLOCK, "flash") == pytest.approx(compute(FLASH_BLOCK, "dense"), rel=1e-12)
    s = 16384  # 128 blocks: (128 + 1) / 256 of the score blocks run
    saved = m.attention_flops_per_token(s) * (1 - 129 / 256) * s * per_tok
    assert compute(s, "dense") - compute(s, "flash") == pytest.approx(saved, rel=1e-9)


# ---- per-micro-batch fixed cost ----------------------------------------------------------------
def test_microbatch_overhead_is_paid_m_plus_p_minus_1_times(h100):
    m, plan = model("llama3-8b"), ParallelPlan(tp=8, pp=4, dp=2, microbatches=8)
    base = estimate_step(m, plan, h100, seq_len=4096)
    assert "microbatch_overhead" not in base.breakdown  # default 0
    o = 2e-3
    e = estimate_step(m, dataclasses.replace(plan, microbatch_overhead_s=o), h100, seq_len=4096)
    assert e.breakdown["microbatch_overhead"] == pytest.approx(plan.microbatches * o)
    assert e.step_time_s - base.step_time_s == pytest.approx((plan.microbatches + plan.pp - 1) * o, rel=1e-9)


# ---- config -------------------------------------------------------------------------------------
def test_experiment_file_knobs_reach_the_plan():
    job = TrainingJobConfig(name="j", model="llama3-8b", cards=8,
                            parallel={"tp": 8, "attention_kernel": "dense", "microbatch_overhead": "500us"})
    plan, _ = job_plan(job)
    assert plan.attention_kernel == "dense" and plan.microbatch_overhead_s == pytest.approx(5e-4)
    default, _ = job_plan(TrainingJobConfig(name="j", model="llama3-8b", cards=8))
    assert default.attention_kernel == "flash" and default.microbatch_overhead_s == 0.0


@pytest.mark.parametrize(("kw", "match"), [
    ({"attention_kernel": "sdpa"}, r"^parallel\.attention_kernel: must be one of flash, dense"),
    ({"microbatch_overhead_s": -1e-3}, r"^parallel\.microbatch_overhead: must be a finite duration >= 0"),
    ({"microbatch_overhead_s": float("inf")}, r"^parallel\.microbatch_overhead: must be a finite"),
])
def test_bad_plan_knobs_are_config_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        ParallelPlan(**kw)
