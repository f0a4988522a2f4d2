"""Sliced cards (MIG-like partitions): the perf model of a slice and its placement.

Closed forms: a slice of ``s`` has ``1/s`` of the card's compute and HBM bandwidth, so a
memory-bound decode iteration (and a compute-bound prefill) takes ``s`` times the whole card's,
``s (1 + f)`` with interference ``f`` (overhead 0); its KV capacity is
``floor((HBM / s - weights - workspace) / KV bytes per token)``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from cluster_sim.catalog import accelerator
from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec
from cluster_sim.errors import ConfigError
from cluster_sim.perf.inference import ReplicaPerf
from cluster_sim.perf.slices import MAX_SLICES, SlicedReplicaPerf, max_slices, sliced_accelerator
from cluster_sim.topology import rail_optimized
from cluster_sim.workload.requests import RequestTable


@pytest.mark.parametrize("model,card,slices", [("qwen2.5-0.5b", "h100-sxm", 7), ("llama3-8b", "h100-sxm", 4),
                                               ("megatron-3.6b", "a100-80gb", 3), ("qwen2.5-7b", "h200", 2)])
@pytest.mark.parametrize("interference", [0.0, 0.15])
def test_slice_time_is_slices_times_the_whole_card(model, card, slices, interference):
    whole = ReplicaPerf(model, card, overhead_s=0.0)
    part = SlicedReplicaPerf(model, card, overhead_s=0.0, slices=slices, interference=interference)
    k = slices * (1.0 + interference)
    assert whole.ridge_batch() > 4   # batch 4 with 1,000 context tokens is memory-bound
    assert part.decode_time_s(4, 1000) == pytest.approx(k * whole.decode_time_s(4, 1000), rel=1e-12)
    assert part.decode_stretch_s(4, 1000, 50) == pytest.approx(k * whole.decode_stretch_s(4, 1000, 50), rel=1e-12)
    assert part.prefill_time_s(8192) == pytest.approx(k * whole.prefill_time_s(8192), rel=1e-12)
    # the fixed overhead is the card's (host-side), not sliced
    with_oh = SlicedReplicaPerf(model, card, slices=slices, interference=interference)
    oh = accelerator(card).iteration_overhead_s
    assert with_oh.decode_time_s(4, 1000) == pytest.approx(k * whole.decode_time_s(4, 1000) + oh, rel=1e-12)


@pytest.mark.parametrize("slices", [1, 2, 4, 7])
def test_slice_kv_capacity_closed_form(slices):
    part = SlicedReplicaPerf("qwen2.5-0.5b", "h100-sxm", slices=slices, workspace_bytes=0)
    whole = ReplicaPerf("qwen2.5-0.5b", "h100-sxm", workspace_bytes=0)
    hbm = accelerator("h100-sxm").hbm_bytes
    want = math.floor((hbm / slices - whole.weight_bytes_per_card) / whole.kv_bytes_per_token)
    assert part.kv_capacity_tokens == want
    assert part.weight_bytes_per_card == whole.weight_bytes_per_card
    # default workspace (runtime + one 8k-token chunk's activations) comes out of the slice too
    ws = SlicedReplicaPerf("qwen2.5-0.5b", "h100-sxm", slices=slices)
    assert ws.kv_capacity_tokens == math.floor(
        (hbm / slices - whole.weight_bytes_per_card - ws.workspace_bytes_per_card) / whole.kv_bytes_per_token)


def test_slice_power_price_and_replace():
    whole = ReplicaPerf("qwen2.5-0.5b", "h100-sxm")
    part = SlicedReplicaPerf("qwen2.5-0.5b", "h100-sxm", slices=7)
    for phase in ("idle", "prefill", "decode"):
        assert part.power_w(phase) == pytest.approx(whole.power_w(phase) / 7)
    assert part.accelerator.name == "h100-sxm" and part.accelerator.hbm_gb == 80   # the whole card
    assert part.slice_accelerator.hbm_gb == pytest.approx(80 / 7)
    assert part.card_share == pytest.approx(1 / 7) and part.cards == 1
    again = dataclasses.replace(part, comm_levels=None)   # what placement does: sliced once, not twice
    assert again.kv_capacity_tokens == part.kv_capacity_tokens
    assert again.decode_time_s(1, 0) == part.decode_time_s(1, 0)
    s = sliced_accelerator("h100-sxm", 4)
    acc = accelerator("h100-sxm")
    assert s.price_usd_per_hour == pytest.approx(acc.price_usd_per_hour / 4)
    assert s.hbm_bytes_per_s == pytest.approx(acc.hbm_bytes_per_s / 4)
    assert sliced_accelerator(acc, 1) is acc
    assert max_slices("h100-sxm") == 7 and max_slices("ascend-910b") == 1
    assert all(max_slices(c) == MAX_SLICES[c] for c in MAX_SLICES)


@pytest.mark.parametrize("kw,match", [
    ({"slices": 8}, r"replica\.slices: 8 slices, at most 7 per h100-sxm"),
    ({"slices": 2, "tp": 2}, r"replica\.slices: .*tp and ep must be 1, got tp=2"),
    ({"slices": 0}, r"replica\.slices: must be a positive integer"),
    ({"slices": 1, "interference": 0.1}, r"replica\.interference: .*needs slices > 1"),
    ({"slices": 2, "interference": -0.1}, r"replica\.interference: must be in \[0, 10\]"),
])
def test_slice_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        SlicedReplicaPerf("qwen2.5-0.5b", "h100-sxm", **kw)


def test_model_that_does_not_fit_a_slice_names_the_missing_memory():
    with pytest.raises(ConfigError, match=r"replica\.slices: one of 7 slices of a h100-sxm has 11\.1 GiB HBM; "
                                          r".*weights need 15\.0 GiB per card.*GiB missing"):
        SlicedReplicaPerf("llama3-8b", "h100-sxm", slices=7)
    with pytest.raises(ConfigError, match=r"ascend-910b has no MIG-like partitioning"):
        SlicedReplicaPerf("qwen2.5-0.5b", "ascend-910b", slices=2)


def test_placement_puts_slices_replicas_on_each_card():
    topo = rail_optimized("dgx-a100", 1)
    perf = SlicedReplicaPerf("qwen2.5-0.5b", "a100-80gb", slices=3)
    reqs = RequestTable.from_arrays(np.zeros(12), np.full(12, 100), np.full(12, 10))
    pools = (PoolSpec("colocated", 6, perf, "a100-80gb", slices=3),)
    whole = ReplicaPerf("qwen2.5-0.5b", "a100-80gb")
    other = ServiceSpec("w", reqs, (PoolSpec("colocated", 2, whole, "a100-80gb"),))
    eng = ServingEngine([ServiceSpec("s", reqs, pools), other], topology=topo)
    ids = [r.cards.tolist() for r in eng.replicas]
    assert ids == [[0], [0], [0], [1], [1], [1], [2], [3]]
    run = eng.run()
    assert run.services["cards"].tolist() == [2, 2]
    assert run.replicas["cards"].tolist() == pytest.approx([1 / 3] * 6 + [1, 1])
    assert run.services["pools"].tolist()[0] == "colocated:6xa100-80gb/tp1/3slices"
    with pytest.raises(ConfigError, match="divide the replicas"):
        PoolSpec("colocated", 4, perf, "a100-80gb", slices=3)
