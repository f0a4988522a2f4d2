"""Published training numbers reproduced by the training model (docs/validation.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster_sim.catalog import accelerator
from cluster_sim.perf import calibration as cal
from cluster_sim.perf.memory import training_memory
from cluster_sim.units import GIB
from cluster_sim.workload.models import model
from cluster_sim.workload.parallelism import ParallelPlan

DOC = Path(__file__).resolve().parents[2] / "docs" / "validation.md"


@pytest.fixture(scope="module")
def megatron():
    return cal.megatron_table()


def test_megatron_every_row_within_10_percent(megatron):
    # issue asks for 15%; DOMAIN.md suggests 10%
    worst = max(megatron, key=lambda r: abs(r["error"]))
    assert abs(worst["error"]) <= 0.10, worst


def test_the_doc_tables_are_the_models(megatron):
    """docs/validation.md shows what the code computes (regenerate with python -m ...calibration)."""
    text = DOC.read_text(encoding="utf-8")
    assert cal.markdown(megatron) in text
    assert cal.markdown(cal.llama3_table()) in text
    assert all(r["role"] == "fitted" for r in megatron)


def test_megatron_trend_flat_to_rising(megatron):
    sims = [r["simulated_tflops"] for r in megatron]
    assert sims[-1] >= sims[0]
    # never drops by more than 5% from one row to the next, like the published column
    assert all(b >= 0.95 * a for a, b in zip(sims, sims[1:], strict=False))
    assert all(0.40 <= r["pct_of_peak"] <= 0.55 for r in megatron)


def test_llama3_405b_within_15_percent():
    for row in cal.llama3_table():
        assert abs(row["error"]) <= 0.15, row
        assert abs(row["simulated_mfu"] - row["published_mfu"]) <= 0.06, row


def test_llama3_405b_memory_numbers_in_the_doc_are_the_models():
    """The doc explains why the memory check is skipped with numbers; they must be the model's."""
    m, cap = model("llama3-405b"), accelerator("h100-sxm").hbm_bytes / GIB
    mems = {}
    for n, dp, per_rank, _, _ in cal.LLAMA3_405B:  # the plans of cal.llama3_table()
        for v in (1, 2):
            plan = ParallelPlan(tp=8, pp=16, dp=dp, microbatches=per_rank, virtual_stages=v, zero=1)
            mems[n, v] = training_memory(m, plan, seq_len=8192)
    big, small = mems[8192, 2].total_bytes / GIB, mems[16384, 2].total_bytes / GIB
    acts = mems[8192, 2].activations_bytes / GIB
    assert big > cap  # why the check is skipped
    # 126 layers / 16 stages x (16 + 15/2) micro-batches x 34 s b h / tp bytes (no recompute)
    assert acts * GIB == pytest.approx(126 / 16 * 23.5 * 34 * 8192 * 16384 / 8)
    text = " ".join(DOC.read_text(encoding="utf-8").split())
    for claim in (f"{big:.1f} GiB on a first-stage card at 8K GPUs ({small:.1f} GiB at 16K)",
                  f"{cap:.1f} GiB usable on an H100, {big - cap:.1f} GiB over",
                  f"{acts:.1f} GiB of it are activations",
                  f"need {mems[8192, 1].total_bytes / GIB:.1f} GiB"):
        assert claim in text, claim


def test_good_fabric_keeps_90_percent_and_bad_fabrics_visibly_lose():
    """002: >90% linear speedup to thousands of cards on a good RoCE/IB fabric (70-130B);
    004: RoCE trains >20% faster than ordinary Ethernet when communication is exposed."""
    rows = {(r["fabric"], r["cards"]): r for r in cal.fabric_scaling_table()}
    for good in ("IB NDR rail-optimized", "RoCE non-blocking"):
        assert rows[(good, 4096)]["linear_speedup"] >= 0.90
    good = rows[("RoCE non-blocking", 4096)]["linear_speedup"]
    for bad in ("RoCE 4:1 oversubscribed", "plain Ethernet 100G (TCP)"):
        assert rows[(bad, 4096)]["linear_speedup"] < good - 0.03
        assert rows[(bad, 4096)]["mfu"] < rows[("RoCE non-blocking", 4096)]["mfu"]
    exposed = {(r["fabric"], r["cards"]): r for r in cal.fabric_scaling_table(dp_overlap=0.0)}
    roce, eth = exposed[("RoCE non-blocking", 4096)], exposed[("plain Ethernet 100G (TCP)", 4096)]
    assert roce["linear_speedup"] / eth["linear_speedup"] > 1.20
    assert exposed[("RoCE 4:1 oversubscribed", 4096)]["linear_speedup"] < 0.85


def test_cross_dc_300km_16_to_1_keeps_95_percent():
    """002: training split over sites 300 km apart at >16:1 convergence keeps >=95%."""
    rows = cal.cross_dc_table()
    at16 = [r for r in rows if r["convergence"] == 16]
    assert at16 and all(r["equivalent_compute"] >= 0.95 for r in at16)
    # a thinner DCI costs more, whichever dimension crosses
    for plan in {r["plan"] for r in rows}:
        eq = [r["equivalent_compute"] for r in rows if r["plan"] == plan]
        assert eq == sorted(eq, reverse=True)
    worst = [r for r in rows if r["convergence"] == 256]
    assert min(r["equivalent_compute"] for r in worst) < 0.95
