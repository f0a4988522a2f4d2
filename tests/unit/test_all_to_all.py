"""All-to-all as NCCL-class libraries and DeepEP-style kernels run it (issue #15, item 2).

Closed forms and limiting cases: two ranks are one point-to-point message; one level is
``ceil(log2 p) alpha + (p-1)/p S/b``; the latency grows with ``log2 p``, not ``p - 1``; the
hierarchical schedule never costs more than the flat one when scale-up is the faster level;
node-limited routing (DeepSeek-V3: at most 4 nodes per token) caps the scale-out fan-out and the
bytes that cross it.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_sim.network import (
    ALGORITHMS,
    all_to_all,
    concurrent_all_to_all,
    domain_dedup,
    pairwise_all_to_all,
    send_recv,
)
from cluster_sim.topology.levels import CommLevel

approx = pytest.approx
SU = CommLevel("scaleup", 8, 160e9, 2e-6)       # an 8-GPU NVLink node (per-rank, effective)
SO = CommLevel("scaleout", 16, 47e9, 3.2e-6)    # 16 such nodes on a rail-optimised fabric


@pytest.mark.parametrize("tier", ["scaleup", "scaleout", "dci"])
@pytest.mark.parametrize("algorithm", ["auto", *ALGORITHMS["all_to_all"]])
def test_two_ranks_are_one_point_to_point(tier, algorithm):
    """Each rank keeps S/2 and sends S/2: exactly alpha + (S/2)/b."""
    level = (CommLevel(tier, 2, 25e9, 5e-6, 0.9),)
    s = 3e6
    want = send_recv(s / 2, 25e9 * 0.9, 5e-6)
    got = all_to_all(s, level, algorithm)
    assert got.latency_s == approx(want.latency_s) and got.transfer_s == approx(want.transfer_s)
    assert got.bytes_per_rank == approx(want.bytes_per_rank)


def test_two_domains_with_copies_send_each_token_once_per_domain():
    """k = 2 copies over 2 domains of 1 rank: a token crosses 2 (1 - 1/4) = 1.5 times, not 2."""
    level = (CommLevel("scaleout", 2, 25e9, 5e-6),)
    s = 4e6  # 2e6 B of unique tokens, each with 2 destinations
    got = all_to_all(s, level, "hierarchical", copies=2)
    assert domain_dedup(2, 2) == approx(0.75)
    assert got.time_s == approx(send_recv(0.75 * s / 2, 25e9, 5e-6).time_s)
    assert all_to_all(s, level, "concurrent", copies=2).time_s == approx(send_recv(s / 2, 25e9, 5e-6).time_s)


@pytest.mark.parametrize("p", [3, 8, 128, 1000])
def test_one_level_formula(p):
    b, a, s = 1e9, 2e-6, 1e6
    level = (CommLevel("scaleup", p, b, a),)
    k = math.ceil(math.log2(p))
    want = k * a + (p - 1) / p * s / b
    for algorithm in ("concurrent", "hierarchical", "auto"):
        assert all_to_all(s, level, algorithm).time_s == approx(want)
    assert concurrent_all_to_all(s, p, b, a).time_s == approx(want)
    assert all_to_all(s, level, "pairwise").time_s == approx((p - 1) * a + (p - 1) / p * s / b)
    assert all_to_all(s, level, "pairwise") == pairwise_all_to_all(s, p, b, a)


def test_latency_grows_with_log_p_not_p():
    a = 3e-6
    lat = {p: all_to_all(0.0, (CommLevel("scaleout", p, 50e9, a),)).latency_s for p in (2, 16, 128, 1024)}
    assert lat == {2: approx(a), 16: approx(4 * a), 128: approx(7 * a), 1024: approx(10 * a)}
    assert all_to_all(0.0, (CommLevel("scaleout", 1024, 50e9, a),), "pairwise").latency_s == approx(1023 * a)
    # two levels: 128 ranks = 8 per node x 16 nodes, 3 rounds inside + 4 across
    assert all_to_all(0.0, (SU, SO)).latency_s == approx(3 * 2e-6 + 4 * 3.2e-6)


def test_hierarchical_aggregates_across_domains_hand_numbers():
    s = 1e6
    h = all_to_all(s, (SU, SO), "hierarchical")
    flat = all_to_all(s, (SU, SO), "concurrent")
    # hierarchical: 7/8 S over NVLink, then 15/16 S over the NIC, pipelined
    assert h.transfer_s == approx(max(7 / 8 * s / 160e9, 15 / 16 * s / 47e9))
    assert h.bytes_per_rank == approx(7 / 8 * s + 15 / 16 * s)
    # flat: 7/128 S over NVLink and 120/128 S over the NIC at once, ceil(log2 128) rounds of 3.2 us
    assert flat.transfer_s == approx(120 / 128 * s / 47e9)
    assert flat.latency_s == approx(7 * 3.2e-6)
    assert h.time_s < flat.time_s and all_to_all(s, (SU, SO)).algorithm == "hierarchical"
    # a scale-up slower than the network: hierarchical pays 7/8 S on it, so auto stays flat
    slow = (CommLevel("scaleup", 8, 10e9, 2e-6), SO)
    assert all_to_all(s, slow, "hierarchical").transfer_s == approx(7 / 8 * s / 10e9)
    assert all_to_all(s, slow).algorithm == "concurrent"


@settings(max_examples=200, deadline=5_000)
@given(st.integers(1, 6), st.integers(1, 8), st.floats(1e8, 1e12), st.floats(1.0, 100.0),
       st.floats(0.0, 1e-4), st.floats(0.0, 1.0), st.floats(0.0, 1e10), st.integers(1, 16))
def test_hierarchical_never_costs_more_than_flat_when_scaleup_is_faster(lg, lm, b_out, ratio, a_out,
                                                                        a_ratio, s, copies):
    g, m = 2 ** lg, 2 ** lm
    b_in = b_out * ratio * (g - 1) / g * m / (m - 1) if m > 1 else b_out * ratio
    levels = (CommLevel("scaleup", g, b_in, a_out * a_ratio), CommLevel("scaleout", m, b_out, a_out))
    h = all_to_all(s, levels, "hierarchical", copies=copies)
    flat = all_to_all(s, levels, "concurrent", copies=copies)
    assert h.time_s <= flat.time_s * (1 + 1e-12)
    assert all_to_all(s, levels, copies=copies).time_s <= all_to_all(s, levels, "pairwise").time_s


def test_node_limited_routing_caps_fanout_and_bytes():
    """DeepSeek-V3: top-8 experts on at most M = 4 of 16 nodes."""
    s = 1e6
    free = all_to_all(s, (SU, SO), "hierarchical", copies=8)
    lim = all_to_all(s, (SU, SO), "hierarchical", copies=8, max_domains=4)
    share_free = 16 * (1 - (15 / 16) ** 8) / 8   # distinct nodes among 8 picks of 16, over 8
    share_lim = 4 * (1 - (3 / 4) ** 8) / 8       # ... among 8 picks of the 4 candidate nodes
    assert domain_dedup(8, 16) == approx(share_free) and domain_dedup(8, 16, 4) == approx(share_lim)
    assert free.transfer_s == approx(15 / 16 * share_free * s / 47e9)
    assert lim.transfer_s == approx(15 / 16 * share_lim * s / 47e9)
    # fan-out across nodes: 16 -> at most 4 remote + itself = 5, ceil(log2 5) = 3 rounds (not 4)
    assert free.latency_s == approx(3 * 2e-6 + 4 * 3.2e-6)
    assert lim.latency_s == approx(3 * 2e-6 + 3 * 3.2e-6)
    # a limit at or above the node count changes nothing; one node per token is one message
    assert all_to_all(s, (SU, SO), "hierarchical", copies=8, max_domains=16) == free
    one = all_to_all(s, (SU, SO), "hierarchical", copies=8, max_domains=1)
    assert one.latency_s == approx(3 * 2e-6 + 1 * 3.2e-6)
    assert one.transfer_s == approx(max(7 / 8 * s / 160e9, 15 / 16 * s / 8 / 47e9))
    # the limit only concerns what crosses domains: a group inside one node is unaffected
    assert all_to_all(s, (SU,), copies=8, max_domains=1) == all_to_all(s, (SU,))


@settings(max_examples=200, deadline=5_000)
@given(st.integers(1, 64), st.integers(1, 512), st.one_of(st.none(), st.integers(1, 512)))
def test_domain_dedup_bounds(copies, domains, max_domains):
    d = domain_dedup(copies, domains, max_domains)
    c = domains if max_domains is None else min(domains, max_domains)
    assert 1 / copies - 1e-12 <= d <= 1 + 1e-12
    assert d * copies <= min(c, copies) + 1e-9       # never more crossings than candidates or copies
    if copies == 1 or c == 1:
        assert d == approx(1.0 if copies == 1 else 1 / copies)
    assert domain_dedup(copies + 1, domains, max_domains) <= d + 1e-12


@pytest.mark.parametrize("kwargs", [{"copies": 0}, {"copies": 1.5}, {"copies": True},
                                    {"max_domains": 0}, {"max_domains": -1}, {"max_domains": 2.0}])
def test_bad_routing_is_a_value_error(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        all_to_all(1.0, (SU, SO), **kwargs)


# ---- the perf models' call sites: expert all-to-all with top-k copies and node-limited routing --


def test_model_routing_fields():
    from cluster_sim.errors import CatalogError
    from cluster_sim.workload.models import ModelSpec, model

    assert model("deepseek-v3").max_route_nodes == 4   # DeepSeek-V3 report: at most M = 4 nodes
    assert model("qwen3-235b-a22b").max_route_nodes == 0 and model("llama3-70b").max_route_nodes == 0
    for bad in (-1, 2.5, True, "4"):
        with pytest.raises(CatalogError, match=r"model toy: max_route_nodes must be a whole number >= 0"):
            ModelSpec(name="toy", layers=2, hidden=64, heads=4, vocab=100, max_route_nodes=bad)


def test_deepseek_decode_batch1_ep128_closed_form():
    """ep = 128 over 16 nodes: 116 all-to-alls of ~3 rounds each side, not 127 sequential ones."""
    from cluster_sim.perf.inference import ReplicaPerf
    from cluster_sim.workload.models import model

    m = model("deepseek-v3")
    r = ReplicaPerf(m, "h800", tp=1, ep=128, dtype="fp8", ep_comm_levels=(SU, SO))
    s = 1 / 128 * 8 * 7168 * 2  # one token: top-8 copies of h x 2 B, 1/128 of it per card
    share = domain_dedup(8, 16, 4)
    one = 3 * 2e-6 + 3 * 3.2e-6 + max(7 / 8 * s / 160e9, 15 / 16 * share * s / 47e9)
    assert all_to_all(s, (SU, SO), copies=8, max_domains=4).time_s == approx(one)
    assert r.decode_breakdown(1, 4096)["ep_comm"] == approx(2 * m.moe_layers * one, rel=1e-9)
    # the old (p - 1)-round model: 7 x 2 us + 120 x 3.2 us per all-to-all, 46 ms per step
    old = all_to_all(s, (SU, SO), "pairwise").time_s
    assert 2 * m.moe_layers * old > 0.045 > 0.002 > r.decode_breakdown(1, 4096)["ep_comm"]
    # 8 copies per token reach at most 4 of the 16 nodes: the scale-out bytes of a big batch
    big = r.decode_breakdown(4096, 0)["ep_comm"] / (2 * m.moe_layers)
    assert big == approx(all_to_all(4096 * s, (SU, SO), copies=8, max_domains=4).time_s, rel=1e-9)
    assert big < all_to_all(4096 * s, (SU, SO), copies=8).time_s


def test_deepseek_training_ep_all_to_all():
    """2,048 H800 (DeepSeek-V3 report 3.2: PP 16, EP 64 over 8 nodes): the EP term's closed form."""
    import numpy as np

    from cluster_sim.perf.training import estimate_step
    from cluster_sim.topology import builders as B
    from cluster_sim.workload.models import model
    from cluster_sim.workload.parallelism import ParallelPlan

    topo = B.rail_optimized("hgx-h800", 256, fabric="ib_ndr")
    m = model("deepseek-v3")
    plan = ParallelPlan(tp=1, pp=16, dp=128, ep=64, microbatches=16, recompute="selective", zero=1)
    e = estimate_step(m, plan, topo, seq_len=4096)
    lv = topo.comm_levels(np.arange(64))
    assert [(x.tier, x.fanout) for x in lv] == [("scaleup", 8), ("scaleout", 8)]
    a2a_bytes = 4096 * 8 * 7168 * 2  # one 4K sequence per micro-batch, top-8 copies, bf16
    want = 16 * 4 * m.moe_layers / 16 * all_to_all(a2a_bytes, lv, copies=8, max_domains=4).time_s
    assert e.breakdown["ep_comm"] == approx(want, rel=1e-9)
    # node-limited routing with dedup: 8 copies reach 4 (1 - (3/4)^8) = 3.6 candidate nodes, 45% of the bytes
    old = 16 * 4 * m.moe_layers / 16 * all_to_all(a2a_bytes, lv, "pairwise").time_s
    assert e.breakdown["ep_comm"] < 0.5 * old
