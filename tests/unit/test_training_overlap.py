"""Communication overlap and ZeRO traffic in the training step: closed forms and limits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cluster_sim.errors import ConfigError
from cluster_sim.network import collectives as coll
from cluster_sim.perf import overlap as ov
from cluster_sim.perf.memory import params_per_card
from cluster_sim.perf.training import estimate_step, pick_cards
from cluster_sim.topology import builders as B
from cluster_sim.workload.models import model
from cluster_sim.workload.parallelism import ParallelPlan

SIGMA = ov.COMM_SM_SHARE


@pytest.fixture(scope="module")
def h100():
    return B.rail_optimized("hgx-h100", 64, fabric="ib_ndr")


@pytest.fixture()
def no_sm(monkeypatch):
    """Communication takes no SMs: the overlap is then the pure max(compute, comm)."""
    monkeypatch.setattr(ov, "COMM_SM_SHARE", 0.0)


# ---- the rule itself ------------------------------------------------------------------------------
@pytest.mark.parametrize(("compute", "comm"), [(5.0, 2.0), (2.0, 5.0), (3.0, 3.0)])
def test_full_overlap_is_max_and_zero_overlap_is_the_sum(compute, comm):
    full = ov.hide(comm, 1.0, compute, sm_share=0.0)
    assert compute + full.exposed_s + full.slowdown_s == max(compute, comm)
    assert full.hidden_s + full.exposed_s == comm
    taxed = ov.hide(comm, 1.0, compute, sm_share=0.25)
    assert compute + taxed.exposed_s + taxed.slowdown_s == pytest.approx(
        max(compute, comm) + 0.25 * min(compute, comm))
    none = ov.hide(comm, 0.0, compute)
    assert (none.hidden_s, none.exposed_s, none.slowdown_s) == (0.0, comm, 0.0)
    half = ov.hide(comm, 0.5, compute, sm_share=0.0)
    assert half.hidden_s == min(0.5 * comm, compute)


@pytest.mark.parametrize("bad", [dict(fraction=1.5), dict(fraction=-0.1), dict(comm_s=-1.0),
                                 dict(window_s=float("nan")), dict(sm_share=1.0)])
def test_hide_rejects_bad_input(bad):
    kw = dict(comm_s=1.0, fraction=0.5, window_s=1.0) | bad
    with pytest.raises(ValueError):
        ov.hide(**kw)


@pytest.mark.parametrize("name", ["tp_overlap", "pp_overlap", "ep_overlap", "dp_overlap"])
@pytest.mark.parametrize("value", [-0.01, 1.01, True, "0.5"])
def test_plan_overlap_outside_unit_interval_is_a_config_error(name, value):
    with pytest.raises(ConfigError, match=rf"^parallel\.{name}: must be within \[0, 1\]"):
        ParallelPlan(**{name: value})


# ---- in the step --------------------------------------------------------------------------------
def test_zero_overlap_keeps_the_old_step_and_parts(h100):
    """Defaults (0) are plain Megatron-LM: TP comm fully exposed, nothing else added."""
    plan = ParallelPlan(tp=8, pp=4, dp=2, microbatches=8, virtual_stages=2)
    e = estimate_step(model("llama3-70b"), plan, h100, seq_len=4096)
    explicit = estimate_step(model("llama3-70b"), dataclasses.replace(
        plan, tp_overlap=0.0, pp_overlap=0.0, ep_overlap=0.0), h100, seq_len=4096)
    assert explicit.step_time_s == e.step_time_s
    assert "overlap_slowdown" not in e.breakdown
    cards = pick_cards(h100, plan.cards)
    t_ar = coll.all_reduce(4096 * 8192 * 2, h100.comm_levels(cards[:8])).time_s
    assert e.breakdown["tp_comm"] == pytest.approx(8 * 4 * 80 / 4 * t_ar)  # 4 all-reduces per layer
    assert set(e.hidden) == {"dp_comm"}  # only the DP sync overlaps by default
    assert e.step_time_s == pytest.approx(sum(e.breakdown.values()))


def test_full_tp_overlap_with_ample_compute_exposes_nothing(h100, no_sm):
    m, plan = model("llama3-70b"), ParallelPlan(tp=8, microbatches=4, recompute="full")
    base = estimate_step(m, plan, h100, seq_len=4096, check_memory=False)
    full = estimate_step(m, dataclasses.replace(plan, tp_overlap=1.0), h100, seq_len=4096,
                         check_memory=False)
    assert base.breakdown["tp_comm"] < base.breakdown["compute"]  # ample compute
    assert "tp_comm" not in full.breakdown and "overlap_slowdown" not in full.breakdown
    assert full.hidden["tp_comm"] == pytest.approx(base.breakdown["tp_comm"])
    # step = max(compute, comm) + the rest
    rest = base.step_time_s - base.breakdown["compute"] - base.breakdown["tp_comm"]
    assert full.step_time_s == pytest.approx(
        max(base.breakdown["compute"], base.breakdown["tp_comm"]) + rest)


def test_tp_overlap_costs_the_sms_it_takes(h100):
    m, plan = model("llama3-70b"), ParallelPlan(tp=8, microbatches=4, recompute="full")
    base = estimate_step(m, plan, h100, seq_len=4096, check_memory=False)
    half = estimate_step(m, dataclasses.replace(plan, tp_overlap=0.5), h100, seq_len=4096,
                         check_memory=False)
    comm = base.breakdown["tp_comm"]
    assert half.hidden["tp_comm"] == pytest.approx(0.5 * comm)
    assert half.breakdown["tp_comm"] == pytest.approx(0.5 * comm)
    assert half.breakdown["overlap_slowdown"] == pytest.approx(SIGMA * 0.5 * comm)
    assert half.step_time_s == pytest.approx(base.step_time_s - (1 - SIGMA) * 0.5 * comm)


def test_tp_overlap_is_limited_by_the_compute_it_hides_behind(h100, no_sm):
    """A TP group across nodes: comm exceeds the GEMMs, so only ``compute`` seconds hide."""
    m = model("megatron-1.7b")
    cards = np.array([0, 1, 8, 9, 16, 17, 24, 25])
    plan = ParallelPlan(tp=8, microbatches=2)
    base = estimate_step(m, plan, h100, cards, seq_len=2048)
    full = estimate_step(m, dataclasses.replace(plan, tp_overlap=1.0), h100, cards, seq_len=2048)
    comp, comm = base.breakdown["compute"], base.breakdown["tp_comm"]
    assert comm > comp
    assert full.hidden["tp_comm"] == pytest.approx(comp)
    assert full.breakdown["tp_comm"] == pytest.approx(comm - comp)
    rest = base.step_time_s - comp - comm
    assert full.step_time_s == pytest.approx(max(comp, comm) + rest)


def test_ep_overlap_hides_the_all_to_all_behind_the_compute_tp_left(h100, no_sm):
    m = model("qwen3-235b-a22b")
    plan = ParallelPlan(tp=4, dp=16, ep=64, microbatches=2, recompute="full", zero=3,
                        dp_overlap=0.0)
    base = estimate_step(m, plan, h100, seq_len=4096, check_memory=False)
    both = estimate_step(m, dataclasses.replace(plan, tp_overlap=1.0, ep_overlap=1.0), h100,
                         seq_len=4096, check_memory=False)
    comp, tp, ep = (base.breakdown[k] for k in ("compute", "tp_comm", "ep_comm"))
    hidden_tp = min(tp, comp)
    assert both.hidden["tp_comm"] == pytest.approx(hidden_tp)
    assert both.hidden["ep_comm"] == pytest.approx(min(ep, comp - hidden_tp))
    assert both.breakdown.get("ep_comm", 0.0) == pytest.approx(ep - min(ep, comp - hidden_tp))


def test_pp_overlap_hides_the_sends_of_later_chunks(h100, no_sm):
    m = model("llama3-70b")
    plan = ParallelPlan(tp=8, pp=4, dp=2, microbatches=8, virtual_stages=2, pp_overlap=1.0)
    base = estimate_step(m, dataclasses.replace(plan, pp_overlap=0.0), h100, seq_len=4096)
    over = estimate_step(m, plan, h100, seq_len=4096)
    # fill/drain: 2 (p-1) v sends; with overlap only the first chunk's 2 (p-1) stay exposed
    assert over.breakdown["pp_p2p"] == pytest.approx(base.breakdown["pp_p2p"] / 2)
    assert over.hidden["pp_p2p"] == pytest.approx(base.breakdown["pp_p2p"] / 2)
    plain = dataclasses.replace(plan, virtual_stages=1)
    assert (estimate_step(m, plain, h100, seq_len=4096).step_time_s
            == estimate_step(m, dataclasses.replace(plain, pp_overlap=0.0), h100,
                             seq_len=4096).step_time_s)  # nothing queued to hide behind at v=1


# ---- ZeRO / FSDP ----------------------------------------------------------------------------
def _dp_levels(topo, plan):
    return topo.comm_levels(pick_cards(topo, plan.cards)[:: plan.tp * plan.cp][: plan.dp])


def test_zero3_is_slower_than_zero1_by_the_closed_form_traffic(h100):
    m = model("llama3-8b")
    plan = ParallelPlan(tp=2, dp=32, microbatches=4, dp_overlap=0.0)
    z1 = estimate_step(m, plan, h100, seq_len=4096)
    z3 = estimate_step(m, dataclasses.replace(plan, zero=3), h100, seq_len=4096)
    lv = _dp_levels(h100, plan)
    p_bytes, L = params_per_card(m, plan) * 2.0, m.layers
    layer = 2 * coll.all_gather(p_bytes / L, lv).time_s + coll.reduce_scatter(p_bytes / L, lv).time_s
    assert z1.breakdown["dp_comm"] == pytest.approx(coll.all_reduce(p_bytes, lv).time_s)
    assert z3.breakdown["dp_comm"] == pytest.approx(plan.microbatches * L * layer)
    assert z3.step_time_s - z1.step_time_s == pytest.approx(
        plan.microbatches * L * layer - coll.all_reduce(p_bytes, lv).time_s)
    assert z3.memory.weights_bytes < z1.memory.weights_bytes
    z2 = estimate_step(m, dataclasses.replace(plan, zero=2), h100, seq_len=4096)
    assert z2.breakdown["dp_comm"] == pytest.approx(
        plan.microbatches * coll.reduce_scatter(p_bytes, lv).time_s
        + coll.all_gather(p_bytes, lv).time_s)


def test_zero3_overlap_hides_behind_layer_compute_and_is_slower_than_tp_pp(h100):
    m = model("llama3-70b")
    plan = ParallelPlan(dp=64, microbatches=8, recompute="full", zero=3, dp_overlap=0.0)
    exposed = estimate_step(m, plan, h100, seq_len=4096, check_memory=False)
    over = estimate_step(m, dataclasses.replace(plan, dp_overlap=1.0), h100, seq_len=4096,
                         check_memory=False)
    assert over.step_time_s < exposed.step_time_s
    assert over.hidden["dp_comm"] + over.breakdown["dp_comm"] == pytest.approx(
        exposed.breakdown["dp_comm"])
    assert over.breakdown["overlap_slowdown"] == pytest.approx(SIGMA * over.hidden["dp_comm"])


@pytest.mark.parametrize(("fabric", "kw"), [("roce", dict(oversubscription=4)),
                                            ("ethernet", dict(nic_gbps=100))])
def test_zero3_loses_to_tp_pp_on_a_thin_scale_out_fabric(fabric, kw):
    """Same 64 cards and 512 sequences: ZeRO-3 re-gathers 70B of weights every micro-batch over
    the scale-out fabric; TP 8 x PP 2 keeps its traffic on NVLink (old model: ZeRO-3 had no
    communication and won at 30.4 s on any fabric)."""
    topo = B.fat_tree("hgx-h100", 8, fabric=fabric, **kw)
    m = model("llama3-70b")
    z3 = ParallelPlan(dp=64, microbatches=8, recompute="full", zero=3, dp_overlap=1.0)
    tp_pp = ParallelPlan(tp=8, pp=2, dp=4, microbatches=128, recompute="full")
    assert z3.global_batch == tp_pp.global_batch
    t_z3 = estimate_step(m, z3, topo, seq_len=4096, check_memory=False).step_time_s
    assert estimate_step(m, tp_pp, topo, seq_len=4096).step_time_s < t_z3
