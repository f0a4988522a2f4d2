"""The cluster engine's speed terms of generated jobs come from the perf model's size classes.

Closed forms and limits (perf/size_classes.py, engine/cluster/terms.py, docs/engine.md "Speed
model"): one card has no communication; a job inside one scale-up domain has no scale-out share;
a size class's type ratio on one card is the step's compute part at the FLOP/s ratio plus its
memory-bound part at the HBM ratio; a pretraining job on a split placement runs at the perf
model's step time on the split pieces; the terms are deterministic and cached.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cluster_sim.engine.cluster.layout import layout_from_topology
from cluster_sim.engine.cluster.speed import SpeedModel
from cluster_sim.engine.cluster.terms import TermsTable
from cluster_sim.experiment.drivers import run_training
from cluster_sim.perf.memory import training_memory
from cluster_sim.perf.size_classes import SEQ_LEN, SIZE_CLASSES, class_estimate, class_plan
from cluster_sim.perf.training import estimate_step, pick_cards
from cluster_sim.topology.builders import fat_tree, heterogeneous
from cluster_sim.workload.jobs import KIND_FINETUNE, KIND_MID, KIND_PRETRAIN, KIND_TRACE, JobTable
from cluster_sim.workload.models import model

KINDS = (KIND_FINETUNE, KIND_MID, KIND_PRETRAIN, KIND_TRACE)


@pytest.fixture(scope="module")
def hgx():
    topo = fat_tree("hgx-h100", 32)
    return topo, layout_from_topology(topo)


@pytest.fixture(scope="module")
def mixed():
    topo = heterogeneous([("hgx-h100", 4), ("dgx-a100", 4)])
    return topo, layout_from_topology(topo)


def _cards_on(lo, counts):
    """The first ``counts[n]`` cards of node ``n``."""
    return np.concatenate([np.flatnonzero(lo.card_node == n)[:c] for n, c in enumerate(counts) if c])


@pytest.mark.parametrize("kind", KINDS)
def test_one_card_has_no_communication(hgx, kind):
    _, lo = hgx
    t = SpeedModel(lo).terms(kind, 1, 0, 0)
    assert not t.assumed
    assert t.comm == 0.0 and t.scaleout == 0.0 and t.ratio == 1.0
    assert 0.0 < t.mfu < 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_a_job_inside_one_domain_has_no_scaleout_share(hgx, kind):
    _, lo = hgx
    sm = SpeedModel(lo)
    inside = sm.terms(kind, 8, 0, 0)      # one HGX node = one scale-up domain
    assert inside.comm > 0.0 and inside.scaleout == 0.0
    across = sm.terms(kind, 64, 0, 0)     # 8 domains: the data-parallel sync crosses the NICs
    assert 0.0 < across.scaleout <= across.comm


def test_the_scaleout_share_is_the_steps_growth_at_half_the_nic_bandwidth(hgx):
    # c_x is defined so that the engine's c_x / share term reproduces the perf model at share 1/2
    topo, lo = hgx
    e = class_estimate(topo, KIND_FINETUNE, pick_cards(topo, 64, "h100-sxm"), 8)
    half = estimate_step(model(e.model), e.plan, topo, pick_cards(topo, 64, "h100-sxm"), seq_len=SEQ_LEN,
                         scaleout_share=0.5, check_memory=False)
    assert e.scaleout == pytest.approx(half.step_time_s / e.step_time_s - 1.0)
    sm = SpeedModel(lo)
    key = (KIND_FINETUNE, 64, 0)
    cards = _cards_on(lo, [8] * 8)
    info = sm.info(key, cards)
    assert sm.speed(sm.terms(*key, 0), info, share=0.5) == pytest.approx(e.step_time_s / half.step_time_s)


def test_type_ratio_on_one_card_is_the_compute_and_memory_parts_at_their_rates(mixed):
    # one card (no communication): step = compute + output layer (FLOP-bound) + memory-bound
    # kernels + optimizer (HBM-bound); on H100 each part runs at its rate ratio to A100
    topo, lo = mixed
    sm = SpeedModel(lo)
    a100, h100 = lo.card_types.index("a100-80gb"), lo.card_types.index("h100-sxm")
    ratio = sm.terms(KIND_TRACE, 1, a100, h100).ratio
    e = class_estimate(topo, KIND_TRACE, pick_cards(topo, 1, "a100-80gb"), 8)
    est = estimate_step(model(e.model), e.plan, topo, pick_cards(topo, 1, "a100-80gb"), seq_len=SEQ_LEN)
    b = est.breakdown
    acc_a, acc_h = topo.accelerator(int(pick_cards(topo, 1, "a100-80gb")[0])), \
        topo.accelerator(int(pick_cards(topo, 1, "h100-sxm")[0]))
    r_flops = acc_h.achievable_flops / acc_a.achievable_flops
    r_hbm = acc_h.achievable_hbm_bytes_per_s / acc_a.achievable_hbm_bytes_per_s
    flop_s = b.get("compute", 0.0) + b.get("output_layer", 0.0)
    mem_s = b.get("memory_bound", 0.0) + b.get("optimizer", 0.0)
    assert flop_s + mem_s == pytest.approx(b.total)
    assert ratio == pytest.approx(b.total / (flop_s / r_flops + mem_s / r_hbm), rel=1e-9)
    # compute-bound class: the ratio tracks the FLOP/s ratio, pulled toward the HBM ratio only
    # by the memory-bound share of the step
    assert r_hbm < ratio < r_flops
    assert ratio == pytest.approx(r_flops, rel=mem_s / b.total * (r_flops / r_hbm))


@pytest.mark.parametrize("counts", [[8] * 7 + [4, 4], [8] * 6 + [4, 4, 4, 4]])
def test_pretrain_speed_on_a_split_placement_is_the_perf_models_step_on_the_pieces(hgx, counts):
    topo, lo = hgx
    sm = SpeedModel(lo)
    key = (KIND_PRETRAIN, 64, 0)
    cards = _cards_on(lo, [0] * 8 + counts)   # nodes 8..: off the reference placement's nodes
    info = sm.info(key, cards)
    assert info.split and info.need_domains == 8 and info.n_domains == len(counts)
    engine = sm.speed(sm.terms(*key, 0), info)
    ref = class_estimate(topo, KIND_PRETRAIN, pick_cards(topo, 64, "h100-sxm"), 8)
    assert ref.model == SIZE_CLASSES[KIND_PRETRAIN][0] and ref.plan.tp == 8
    # the perf model on the same cards, a straddling tensor-parallel group first (every group
    # is costed like the first one; in the engine the slowest group sets the pace)
    node = lo.card_node[cards]
    pieces = [cards[node == u] for u in np.unique(node)]
    order = np.concatenate([p for p in pieces if p.size < 8] + [p for p in pieces if p.size == 8])
    split = estimate_step(model(ref.model), ref.plan, topo, order, seq_len=SEQ_LEN, check_memory=False)
    assert engine == pytest.approx(ref.step_time_s / split.step_time_s, rel=0.03)
    assert engine < 0.9                        # the split costs something ...
    flat = 1.0 / ((1 - ref.comm) + (ref.comm - ref.scaleout) * sm.nic_ratio[0] + ref.scaleout)
    assert engine > flat * 2                   # ... far less than the NIC ratio on all in-domain traffic


def test_class_plan_keeps_tp_in_the_domain_and_fits_memory(hgx):
    topo, _ = hgx
    hbm = topo.accelerator(0).hbm_bytes
    spec = model("llama3-70b")
    plan = class_plan(spec, 16, 8, hbm, KIND_PRETRAIN)
    assert plan is not None and plan.cards == 16 and plan.tp == 8 and plan.pp == 2
    assert training_memory(spec, plan, SEQ_LEN).total_bytes <= hbm
    small = class_plan(model("llama3-8b"), 8, 8, hbm, KIND_FINETUNE)
    assert small is not None and (small.tp, small.pp, small.dp) == (1, 1, 8)   # fits without TP
    assert class_plan(spec, 1, 8, hbm, KIND_PRETRAIN) is None                   # 70B on one card


def test_a_class_that_does_not_fit_falls_back_with_a_note(hgx):
    topo, lo = hgx
    e = class_estimate(topo, KIND_PRETRAIN, pick_cards(topo, 8, "h100-sxm"), 8)
    assert e.fallback and e.model == SIZE_CLASSES[KIND_PRETRAIN][1]
    jobs = JobTable(job_id=[0], submit_s=[0.0], num_cards=[8], duration_s=[100.0], kind=[KIND_PRETRAIN],
                    card_types=("h100-sxm",))
    res = run_training(cluster=lo, jobs=jobs)
    assert any(n.startswith("pretrain jobs of 8 cards on h100-sxm: the size class llama3-70b does not fit")
               and "qwen3-32b" in n for n in res.notes), res.notes
    assert res.jobs.jct_s.iloc[0] == pytest.approx(100.0)   # the reference placement runs at speed 1


def test_the_engine_runs_a_job_on_the_other_type_at_the_derived_ratio(mixed):
    _, lo = mixed
    a100, h100 = lo.card_types.index("a100-80gb"), lo.card_types.index("h100-sxm")
    # two 16-card mid jobs allowed either type; the reference is the first type on a tie (h100)
    jobs = JobTable(job_id=[0, 1], submit_s=[0.0, 0.0], num_cards=[32, 32], duration_s=[1000.0, 1000.0],
                    kind=[KIND_MID, KIND_MID], model_idx=[0, 0], models=("qwen3-32b",))
    res = run_training(cluster=lo, jobs=jobs, placement="packed")
    sm = SpeedModel(lo)
    ref = sm.reference
    other = a100 if ref == h100 else h100
    j = res.jobs.set_index("job_id")
    by_type = {t: j[j.card_type == lo.card_types[t]] for t in (ref, other)}
    assert len(by_type[ref]) == 1 and len(by_type[other]) == 1
    t_ref, t_other = sm.terms(KIND_MID, 32, ref, ref), sm.terms(KIND_MID, 32, ref, other)
    assert by_type[ref].jct_s.iloc[0] == pytest.approx(1000.0)
    assert by_type[other].jct_s.iloc[0] == pytest.approx(1000.0 / t_other.ratio)
    assert by_type[ref].mfu.iloc[0] == pytest.approx(t_ref.mfu)
    assert not math.isnan(by_type[other].mfu.iloc[0])


def test_terms_are_deterministic_and_cached(mixed):
    _, lo = mixed
    a, b = TermsTable(lo), TermsTable(lo)
    keys = [(k, n, r, t) for k in KINDS for n in (1, 8, 16, 32) for r in range(2) for t in range(2)]
    first = [a.terms(*k) for k in keys]
    assert first == [b.terms(*k) for k in reversed(keys)][::-1]
    assert all(a.terms(*k) is v for k, v in zip(keys, first, strict=True))   # computed once
    assert a.notes() == b.notes()
