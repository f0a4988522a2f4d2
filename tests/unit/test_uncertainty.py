"""Uncertainty bands from the catalog's confidence tags (perf/uncertainty.py, issue #15)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_sim.cli import main
from cluster_sim.perf.training import estimate_step
from cluster_sim.perf.uncertainty import RELATIVE_RANGE, estimate_band, field_tag
from cluster_sim.topology.builders import fat_tree
from cluster_sim.workload.models import model
from cluster_sim.workload.parallelism import ParallelPlan

REPO = Path(__file__).resolve().parents[2]
ZERO = {kind: dict.fromkeys(tags, 0.0) for kind, tags in RELATIVE_RANGE.items()}


@pytest.fixture(scope="module")
def h100():
    return fat_tree("hgx-h100", 4)


@pytest.fixture(scope="module")
def kunlun():
    return fat_tree("kunlun-p800-8", 4)


def _steps(b):
    return b.high.step_time_s, b.point.step_time_s, b.low.step_time_s


def test_field_tag_reads_field_sources_then_the_entry(h100):
    acc = h100.accelerator(0)
    assert field_tag(acc, "flops_efficiency") == "R"  # "R: large BF16 GEMMs on H100 ..."
    assert field_tag(acc, "bf16_tflops_dense") == "V"  # the entry's confidence
    assert field_tag(acc, "scaleup_efficiency") == "D"


def test_every_field_exact_collapses_the_band_to_the_point(h100):
    b = estimate_band(model("llama3-8b"), ParallelPlan(tp=8, pp=2, dp=2, microbatches=8), h100,
                      seq_len=4096, ranges=ZERO)
    assert b.low.step_time_s == b.point.step_time_s == b.high.step_time_s
    assert b.low.mfu == b.point.mfu == b.high.mfu
    assert b.fields == {} and "every field exact" in b.line()


def test_one_card_closed_form(h100):
    """One H100, no communication: every part is paced by flops_efficiency (R) or
    hbm_efficiency (V), both +-5.0%, and the V peaks are exact, so the whole step scales."""
    m, plan = model("megatron-1.7b"), ParallelPlan()
    b = estimate_band(m, plan, h100, seq_len=2048)
    r = RELATIVE_RANGE["achieved"]["V"]
    assert r == RELATIVE_RANGE["achieved"]["R"] == 0.050 and RELATIVE_RANGE["rated"]["V"] == 0.0
    p = b.point
    assert b.low.step_time_s == pytest.approx(p.step_time_s / (1 - r), rel=1e-12)
    assert b.high.step_time_s == pytest.approx(p.step_time_s / (1 + r), rel=1e-12)
    assert b.low.mfu == pytest.approx(p.mfu * (1 - r), rel=1e-12)  # against the stated peak
    assert b.high.tokens_per_s == pytest.approx(p.tokens_per_s * (1 + r), rel=1e-12)
    # only flops_efficiency uncertain (R), closed form on the compute part alone
    only_r = {"rated": ZERO["rated"], "achieved": {**ZERO["achieved"], "R": 0.1}}
    b = estimate_band(m, plan, h100, seq_len=2048, ranges=only_r)
    comp = p.breakdown["compute"] + p.breakdown["output_layer"]  # the GEMMs
    assert b.low.step_time_s == pytest.approx(p.step_time_s + comp * (1 / 0.9 - 1), rel=1e-12)
    assert b.high.step_time_s == pytest.approx(p.step_time_s + comp * (1 / 1.1 - 1), rel=1e-12)
    assert set(b.fields) == {"h100-sxm.flops_efficiency"}


def test_placeholder_card_gets_a_wider_band_than_a_verified_one(h100, kunlun):
    plan = ParallelPlan(tp=8, pp=2, dp=2, microbatches=8)
    width = {}
    for name, topo in (("h100", h100), ("kunlun", kunlun)):
        b = estimate_band(model("llama3-8b"), plan, topo, seq_len=4096)
        lo, mid, hi = _steps(b)
        assert lo < mid < hi
        width[name] = (hi - lo) / mid
        if name == "kunlun":
            assert b.fields["kunlun-p800.bf16_tflops_dense"] == ("U", 0.30)
    assert width["kunlun"] > 3 * width["h100"], width
    assert 0.05 < width["h100"] < 0.2


def test_specs_and_topology_untouched(h100):
    before = h100.accelerator(0)
    levels = h100.comm_levels(range(16))
    estimate_band(model("llama3-8b"), ParallelPlan(tp=8, dp=2), h100, seq_len=2048)
    assert h100.accelerator(0) is before and h100.comm_levels(range(16)) == levels


@settings(max_examples=25, deadline=2000)
@given(tp=st.sampled_from([1, 2, 8]), pp=st.sampled_from([1, 2, 4]), v=st.sampled_from([1, 2]),
       tp_overlap=st.floats(0, 1), dp_overlap=st.floats(0, 1), zero=st.sampled_from([0, 1, 2, 3]),
       r1=st.floats(0, 0.3), dr=st.floats(0.001, 0.3))
def test_monotone_wider_ranges_nest_the_band(h100, tp, pp, v, tp_overlap, dp_overlap, zero, r1, dr):
    """Raising every efficiency and rate can only lower the step time, and lowering them can
    only raise it: a wider range gives a band that holds the narrower one."""
    plan = ParallelPlan(tp=tp, pp=pp, dp=32 // (tp * pp), microbatches=4 * pp, virtual_stages=v,
                        tp_overlap=tp_overlap, dp_overlap=dp_overlap, zero=zero)
    m = model("llama3-8b")
    if v > 1 and m.layers % (pp * v):
        return
    bands = [estimate_band(m, plan, h100, seq_len=2048, check_memory=False,
                           ranges={k: dict.fromkeys(t, r) for k, t in RELATIVE_RANGE.items()})
             for r in (r1, r1 + dr)]
    for b in bands:
        lo, mid, hi = _steps(b)
        assert lo <= mid <= hi and not b.notes
    assert bands[1].high.step_time_s <= bands[0].high.step_time_s
    assert bands[1].low.step_time_s >= bands[0].low.step_time_s


def test_point_is_estimate_step(h100):
    m, plan = model("llama3-8b"), ParallelPlan(tp=8, pp=2, dp=2, microbatches=8)
    b = estimate_band(m, plan, h100, seq_len=4096)
    assert b.point == estimate_step(m, plan, h100, seq_len=4096)


def test_cli_json_band_and_table_line(capsys):
    exp = str(REPO / "workloads" / "train_llama3_70b.yaml")
    assert main(["train", exp, "--json"]) == 0
    job = json.loads(capsys.readouterr().out)["llama3-70b"]
    assert set(job) == {"step_time_s", "breakdown", "tokens_per_s", "tflops_per_card", "mfu",
                        "days_to_train", "band"}
    assert set(job["band"]) == {"step_time_s", "mfu", "tokens_per_s"}
    for key in job["band"]:
        lo, hi = job["band"][key]
        assert lo < job[key] < hi, key
    assert job["band"]["tokens_per_s"][0] == pytest.approx(2048 * 8192 / job["band"]["step_time_s"][1])
    assert main(["train", exp]) == 0
    out = capsys.readouterr().out
    s0, s1 = job["band"]["step_time_s"]
    m0, m1 = job["band"]["mfu"]
    assert (f"uncertainty: step {s0:.3g}-{s1:.3g} s, MFU {m0 * 100:.1f}-{m1:.1%} "
            "(catalog confidence: h100-sxm: flops_efficiency R ±5.0%") in out
