"""FP8 GEMM efficiency, per-iteration overhead and small-transfer HBM bandwidth (issue #15, items 3, 6).

Closed forms and limiting cases: FP8 efficiency equal to the BF16 one reproduces the old serving
roofline; an FP8 achievable rate equal to the BF16 one reproduces the old (BF16-speed) training
step; a card without an FP8 peak computes FP8 at BF16 speed; ``hbm_half_bandwidth_mbyte = 0``
and the default overhead keep every serving time unchanged; with both mechanisms on, the
closed-form decode stretch still equals an iteration loop.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_sim.catalog import AcceleratorSpec, accelerator
from cluster_sim.errors import CatalogError, ConfigError
from cluster_sim.perf.inference import MEMORY_KERNELS_PER_LAYER, ReplicaPerf
from cluster_sim.perf.training import estimate_step
from cluster_sim.topology import builders as B
from cluster_sim.workload.models import model
from cluster_sim.workload.parallelism import ParallelPlan

H100 = accelerator("h100-sxm")
A100 = accelerator("a100-80gb")


class _AllCards:
    """A topology whose every card is ``spec`` (delegates the rest to ``topo``)."""

    def __init__(self, topo, spec: AcceleratorSpec) -> None:
        self._topo, self._spec = topo, spec

    def accelerator(self, card: int) -> AcceleratorSpec:
        return self._spec

    def __getattr__(self, name):
        return getattr(self._topo, name)


@pytest.fixture(scope="module")
def rail64():
    return B.rail_optimized("hgx-h100", 64, fabric="ib_ndr")


PLAN = ParallelPlan(tp=8, pp=2, dp=4, microbatches=8, recompute="selective")


# ---- catalog -------------------------------------------------------------------------------
def test_fp8_efficiency_defaults_to_bf16_and_falls_back_without_fp8_peak():
    assert dataclasses.replace(H100, fp8_flops_efficiency=0.0).flops_efficiency_for("fp8") == 0.70
    half = dataclasses.replace(H100, fp8_flops_efficiency=0.35)
    assert half.achievable_flops_for("fp8") == pytest.approx(1978.9e12 * 0.35)
    assert half.achievable_flops_for("bf16") == pytest.approx(989.4e12 * 0.70)
    # A100 has no FP8 peak: FP8 runs on the BF16 peak at the BF16 efficiency, whatever the field says
    assert dataclasses.replace(A100, fp8_flops_efficiency=0.1).achievable_flops_for("fp8") == A100.achievable_flops


def test_new_fields_are_optional_with_documented_defaults():
    bare = AcceleratorSpec(name="x", vendor="v", display_name="x", bf16_tflops_dense=100.0, hbm_gb=10.0,
                           hbm_tbyte_s=1.0, tdp_w=100.0, scaleup_gbyte_s_bidir=100.0, nic_gbit_s=100.0)
    assert (bare.fp8_flops_efficiency, bare.iteration_overhead_ms, bare.hbm_half_bandwidth_mbyte) == (0.0, 3.0, 0.0)
    assert bare.iteration_overhead_s == pytest.approx(3e-3) and bare.hbm_half_bandwidth_bytes == 0.0
    assert accelerator("b200").iteration_overhead_ms == 3.0  # entry without the field still loads


@pytest.mark.parametrize("bad", [1.5, -0.1])
def test_fp8_efficiency_outside_unit_interval_is_one_clear_error(bad):
    with pytest.raises(CatalogError, match=r"^accelerator h100-sxm\.fp8_flops_efficiency: must be in \[0, 1\]"):
        dataclasses.replace(H100, fp8_flops_efficiency=bad)


# ---- serving: FP8 ----------------------------------------------------------------------------
def test_fp8_efficiency_equal_to_bf16_is_the_old_serving_roofline():
    """Relative FP8 efficiency 1.0: FP8 peak x the BF16 efficiency, exactly the old formula."""
    same = dataclasses.replace(H100, fp8_flops_efficiency=H100.flops_efficiency)
    for acc in (same, dataclasses.replace(H100, fp8_flops_efficiency=0.0)):
        r = ReplicaPerf("llama3-8b", acc, dtype="fp8", overhead_s=0.0)
        assert r.compute_flops_per_s == pytest.approx(1978.9e12 * 0.70)
        flops = model("llama3-8b").prefill_flops(2048)
        assert r.prefill_breakdown(2048)["compute"] == pytest.approx(flops / (1978.9e12 * 0.70), rel=1e-9)


def test_fp8_gemm_efficiency_sets_serving_compute_time():
    """FP8 GEMMs at half the BF16 efficiency: compute-bound prefill exactly at 1978.9 x 0.35 TFLOP/s."""
    acc = dataclasses.replace(H100, fp8_flops_efficiency=0.35)
    fp8 = ReplicaPerf("llama3-8b", acc, dtype="fp8", overhead_s=0.0)
    flops = model("llama3-8b").prefill_flops(4096)
    assert fp8.prefill_time_s(4096) == pytest.approx(flops / (1978.9e12 * 0.35), rel=1e-9)
    # 1-byte weights and KV (the deployment's dtype): decode at batch 1 reads half the bytes of bf16
    bf16 = ReplicaPerf("llama3-8b", acc, dtype="bf16", overhead_s=0.0)
    assert fp8.weight_bytes_per_card == pytest.approx(bf16.weight_bytes_per_card / 2)
    assert fp8.kv_bytes_per_token == pytest.approx(bf16.kv_bytes_per_token / 2)
    assert fp8.decode_time_s(1, 1000) == pytest.approx(bf16.decode_time_s(1, 1000) / 2, rel=1e-9)


# ---- training: FP8 ---------------------------------------------------------------------------
def test_fp8_training_computes_at_the_fp8_rate(rail64):
    m = model("llama3-8b")
    bf16 = estimate_step(m, PLAN, rail64, seq_len=4096, dtype="bf16")
    fp8 = estimate_step(m, PLAN, rail64, seq_len=4096, dtype="fp8")
    ratio = 1978.9 / 989.4  # FP8 and BF16 dense peaks of the H100, both at efficiency 0.70
    assert bf16.breakdown["compute"] / fp8.breakdown["compute"] == pytest.approx(ratio, rel=1e-12)
    for k in ("memory_bound", "tp_comm", "dp_comm", "optimizer"):  # only GEMM time changes
        assert fp8.breakdown[k] == pytest.approx(bf16.breakdown[k], rel=1e-12)
    assert fp8.step_time_s < bf16.step_time_s


def test_fp8_at_the_bf16_rate_is_the_old_training_step(rail64):
    """An FP8 achievable rate equal to the BF16 one gives the old step; only the MFU peak differs."""
    m = model("llama3-8b")
    same_rate = dataclasses.replace(H100, fp8_flops_efficiency=0.70 * 989.4 / 1978.9)
    topo = _AllCards(rail64, same_rate)
    bf16 = estimate_step(m, PLAN, topo, seq_len=4096, dtype="bf16")
    fp8 = estimate_step(m, PLAN, topo, seq_len=4096, dtype="fp8")
    assert fp8.step_time_s == pytest.approx(bf16.step_time_s, rel=1e-12)
    assert fp8.mfu == pytest.approx(bf16.mfu * 989.4 / 1978.9, rel=1e-12)


def test_fp8_training_on_a_card_without_fp8_is_bf16():
    topo = B.fat_tree("dgx-a100", 16, fabric="ib_hdr")
    plan = ParallelPlan(tp=8, dp=2, microbatches=4)
    bf16 = estimate_step(model("llama3-8b"), plan, topo, seq_len=2048, dtype="bf16")
    fp8 = estimate_step(model("llama3-8b"), plan, topo, seq_len=2048, dtype="fp8")
    assert fp8.step_time_s == bf16.step_time_s and fp8.mfu == bf16.mfu


# ---- serving: per-iteration overhead and small transfers -----------------------------------
def test_overhead_comes_from_the_catalog_unless_given():
    acc = dataclasses.replace(H100, iteration_overhead_ms=7.0)
    r = ReplicaPerf("llama3-8b", acc)
    zero = ReplicaPerf("llama3-8b", acc, overhead_s=0.0)
    assert r.overhead_s == pytest.approx(7e-3)
    assert r.decode_time_s(4, 4000) - zero.decode_time_s(4, 4000) == pytest.approx(7e-3, rel=1e-9)
    assert r.decode_stretch_s(4, 4000, 100) - zero.decode_stretch_s(4, 4000, 100) == pytest.approx(0.7, rel=1e-9)
    assert ReplicaPerf("llama3-8b", acc, overhead_s=1e-3).overhead_s == 1e-3
    assert ReplicaPerf("llama3-8b", "h100-sxm").overhead_s == pytest.approx(3e-3)  # shipped default
    with pytest.raises(ConfigError, match="replica.overhead_s: must be >= 0"):
        ReplicaPerf("llama3-8b", dataclasses.replace(H100, iteration_overhead_ms=-1.0))


def test_small_transfer_bandwidth_closed_form():
    """Each of the 5 memory-bound kernels per layer pays n_1/2 bytes' worth of streaming time."""
    n_half = 4.0
    acc = dataclasses.replace(H100, hbm_half_bandwidth_mbyte=n_half)
    base = ReplicaPerf("llama3-8b", "h100-sxm", overhead_s=0.0)
    small = ReplicaPerf("llama3-8b", acc, overhead_s=0.0)
    bw = 3.35e12 * 0.82
    extra = 32 * MEMORY_KERNELS_PER_LAYER * n_half * 1e6 / bw
    for batch, ctx in ((1, 0), (1, 8000), (8, 8 * 2000)):  # memory-bound: the whole term shows
        assert small.decode_time_s(batch, ctx) - base.decode_time_s(batch, ctx) == pytest.approx(extra, rel=1e-9)
    weights_s = base.weight_bytes_per_card / bw
    assert small.decode_time_s(1, 0) == pytest.approx(weights_s + extra, rel=1e-9)
    # a kernel moving n_1/2 bytes reaches half the streaming bandwidth
    kernel_bytes = n_half * 1e6
    assert kernel_bytes / ((kernel_bytes + acc.hbm_half_bandwidth_bytes) / bw) == pytest.approx(bw / 2)
    # compute-bound prefill is unchanged; n_1/2 = 0 changes nothing anywhere
    assert small.prefill_time_s(4096) == base.prefill_time_s(4096)
    none = ReplicaPerf("llama3-8b", dataclasses.replace(H100, hbm_half_bandwidth_mbyte=0.0), overhead_s=0.0)
    assert none.decode_time_s(3, 900) == base.decode_time_s(3, 900)
    assert none.decode_stretch_s(3, 900, 50) == base.decode_stretch_s(3, 900, 50)


SLOW_SMALL = [
    ReplicaPerf("llama3-8b", dataclasses.replace(H100, hbm_half_bandwidth_mbyte=8.0, iteration_overhead_ms=5.0)),
    ReplicaPerf("llama2-13b", dataclasses.replace(A100, hbm_half_bandwidth_mbyte=2.0, iteration_overhead_ms=1.0)),
    ReplicaPerf("qwen3-235b-a22b", dataclasses.replace(H100, hbm_half_bandwidth_mbyte=4.0), tp=4, ep=2),
]


@settings(max_examples=60, deadline=10_000)
@given(r=st.sampled_from(SLOW_SMALL), batch=st.integers(1, 600), ctx_per=st.floats(0, 8000),
       n=st.integers(0, 300))
def test_stretch_with_overhead_and_small_transfers_equals_loop(r, batch, ctx_per, n):
    ctx = batch * ctx_per
    loop = sum(r.decode_time_s(batch, ctx + k * batch) for k in range(n))
    assert r.decode_stretch_s(batch, ctx, n) == pytest.approx(loop, rel=1e-9, abs=1e-12)
    assert r.decode_stretch_breakdown(batch, ctx, n).total == pytest.approx(loop, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=10_000)
@given(r=st.sampled_from(SLOW_SMALL), batch=st.integers(1, 600), ctx_per=st.floats(0, 8000),
       budget=st.floats(0, 3.0))
def test_iterations_within_with_small_transfers_is_the_largest_fit(r, batch, ctx_per, budget):
    ctx = batch * ctx_per
    k = r.decode_iterations_within(batch, ctx, budget)
    assert r.decode_stretch_s(batch, ctx, k) <= budget < r.decode_stretch_s(batch, ctx, k + 1)
