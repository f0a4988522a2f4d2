"""Unit tests of cluster_sim.network.collectives: closed forms, level models, validation."""

from __future__ import annotations

import doctest
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_sim.network import (
    ALGORITHMS,
    KINDS,
    CollectiveCost,
    all_gather,
    all_reduce,
    all_to_all,
    binomial_broadcast,
    broadcast,
    bus_bandwidth,
    collective,
    concurrent_all_to_all,
    pairwise_all_to_all,
    point_to_point,
    rabenseifner_all_reduce,
    recursive_doubling_all_reduce,
    reduce_scatter,
    ring_all_gather,
    ring_all_reduce,
    ring_broadcast,
    ring_reduce_scatter,
    send_recv,
    tree_all_reduce,
)
from cluster_sim.network import collectives as C
from cluster_sim.topology.levels import CommLevel

approx = pytest.approx


def lv(tier: str, fanout: int, bw: float, lat: float, eff: float = 1.0) -> CommLevel:
    return CommLevel(tier, fanout, bw, lat, eff)


# --------------------------------------------------------------------------- closed forms


def test_ring_all_reduce_hand_numbers():
    c = ring_all_reduce(4e9, 4, 1e9, 1e-3)
    assert c.latency_s == approx(6e-3)           # 2(p-1) alpha
    assert c.transfer_s == approx(6.0)           # 2 * 3/4 * 4 GB / 1 GB/s
    assert c.time_s == approx(6.006)
    assert c.bytes_per_rank == approx(6e9)
    assert (c.kind, c.algorithm, c.ranks) == ("all_reduce", "ring", 4)


def test_reduce_scatter_all_gather_all_to_all_hand_numbers():
    for fn, kind in ((ring_reduce_scatter, "reduce_scatter"), (ring_all_gather, "all_gather"),
                     (pairwise_all_to_all, "all_to_all")):
        c = fn(4e9, 4, 1e9, 1e-3)
        assert c.kind == kind
        assert c.latency_s == approx(3e-3) and c.transfer_s == approx(3.0)
        assert c.bytes_per_rank == approx(3e9)


def test_log_depth_algorithms_hand_numbers():
    s, b, a = 1e6, 1e9, 1e-5
    assert recursive_doubling_all_reduce(s, 8, b, a).time_s == approx(3 * (1e-5 + 1e-3))
    assert rabenseifner_all_reduce(s, 8, b, a).time_s == approx(6e-5 + 1.75e-3)
    assert tree_all_reduce(s, 8, b, a).time_s == approx(6e-5 + 2e-3)
    unpiped = tree_all_reduce(s, 8, b, a, pipelined=False)
    assert unpiped.time_s == approx(6 * (1e-5 + 1e-3))
    assert unpiped.algorithm == "tree_unpipelined"
    # non-powers of two round the depth up: ceil(log2 5) = 3
    assert tree_all_reduce(s, 5, b, a).latency_s == approx(6e-5)
    assert recursive_doubling_all_reduce(s, 5, b, a).time_s == approx(3 * (1e-5 + 1e-3))


def test_broadcast_and_send_recv_hand_numbers():
    assert ring_broadcast(4e9, 4, 1e9, 1e-3).time_s == approx(3e-3 + 4.0)
    assert binomial_broadcast(4e9, 4, 1e9, 1e-3).time_s == approx(2 * (1e-3 + 4.0))
    c = send_recv(4e9, 1e9, 1e-3)
    assert c.time_s == approx(4.001) and c.latency_s == approx(1e-3) and c.ranks == 2


@pytest.mark.parametrize("fn", [ring_all_reduce, ring_reduce_scatter, ring_all_gather,
                                recursive_doubling_all_reduce, rabenseifner_all_reduce,
                                tree_all_reduce, pairwise_all_to_all, ring_broadcast,
                                binomial_broadcast])
def test_one_rank_costs_nothing(fn):
    c = fn(1e9, 1, 1e9, 1e-3)
    assert c.time_s == 0 and c.bytes_per_rank == 0 and c.algorithm == "none"


@pytest.mark.parametrize("args", [(-1, 4, 1e9, 0), (math.nan, 4, 1e9, 0), (math.inf, 4, 1e9, 0),
                                  (1, 0, 1e9, 0), (1, 2.5, 1e9, 0), (1, True, 1e9, 0),
                                  (1, 4, 0, 0), (1, 4, -1, 0), (1, 4, math.nan, 0),
                                  (1, 4, 1e9, -1e-6), (1, 4, 1e9, math.nan)])
def test_bad_inputs_raise_value_error(args):
    with pytest.raises(ValueError):
        ring_all_reduce(*args)


def test_zero_bytes_costs_latency_only():
    c = ring_all_reduce(0, 8, 1e9, 1e-6)
    assert c.transfer_s == 0 and c.latency_s == approx(14e-6)


# --------------------------------------------------------------------------- level-aware


def test_single_level_equals_closed_forms():
    one = (lv("scaleup", 8, 450e9, 2e-6, 0.82),)
    b, a = 450e9 * 0.82, 2e-6
    s = 3e8
    assert all_reduce(s, one, "ring") == ring_all_reduce(s, 8, b, a)
    assert all_reduce(s, one, "hierarchical").time_s == approx(ring_all_reduce(s, 8, b, a).time_s)
    assert reduce_scatter(s, one, "ring").time_s == ring_reduce_scatter(s, 8, b, a).time_s
    assert all_gather(s, one).time_s == ring_all_gather(s, 8, b, a).time_s
    assert all_to_all(s, one, "pairwise").time_s == approx(pairwise_all_to_all(s, 8, b, a).time_s)
    assert all_to_all(s, one).time_s == approx(concurrent_all_to_all(s, 8, b, a).time_s)
    assert broadcast(s, one, "tree").time_s == binomial_broadcast(s, 8, b, a).time_s
    assert point_to_point(s, one).time_s == send_recv(s, b, a).time_s


def test_fanout_one_levels_are_not_crossed():
    inner = lv("scaleup", 8, 400.0, 1.0)
    idle = lv("scaleout", 1, 1.0, 100.0)  # slow and far, but not crossed
    for kind in KINDS:
        assert collective(kind, 800.0, (inner, idle)) == collective(kind, 800.0, (inner,))


def test_empty_group_is_free():
    for kind in KINDS:
        c = collective(kind, 1e9, ())
        assert c.time_s == 0 and c.ranks == 1 and c.algorithm == "none"
    assert point_to_point(1e9, (lv("scaleout", 1, 1e9, 1e-6),)).time_s == 0


def test_flat_ring_uses_bottleneck_bandwidth_and_worst_latency():
    levels = (lv("scaleup", 4, 400.0, 1.0), lv("scaleout", 2, 100.0, 10.0))
    c = all_reduce(800.0, levels, "ring")
    # p = 8: 2*7*10 + 2*7/8*800/100
    assert c.latency_s == approx(140.0) and c.transfer_s == approx(14.0) and c.ranks == 8
    rs = reduce_scatter(800.0, levels, "ring")
    assert rs.time_s == approx(70.0 + 7.0)


def test_hierarchical_three_levels_hand_numbers():
    levels = (lv("scaleup", 4, 400.0, 1.0), lv("scaleout", 2, 100.0, 10.0),
              lv("dci", 2, 10.0, 1000.0))
    s = 1600.0
    # RS inner: 3*1 + 3/4*1600/400 = 3 + 3; RS mid on 400 B: 1*10 + 1/2*400/100 = 10 + 2;
    # AR outer on 200 B: 2*1*1000 + 2*1/2*200/10 = 2000 + 20; AG mirrors the RS part.
    c = all_reduce(s, levels, "hierarchical")
    assert c.latency_s == approx(2 * (3 + 10) + 2000)
    assert c.transfer_s == approx(2 * (3 + 2) + 20)
    assert c.bytes_per_rank == approx(2 * (1200 + 200 + 100))
    rs = reduce_scatter(s, levels, "hierarchical")
    assert rs.time_s == approx(3 + 3 + 10 + 2 + 1000 + 10)
    assert all_gather(s, levels, "hierarchical").time_s == rs.time_s


def test_tree_and_broadcast_over_levels_hand_numbers():
    levels = (lv("scaleup", 4, 400.0, 1.0), lv("scaleout", 2, 100.0, 10.0))
    t = all_reduce(800.0, levels, "tree")
    assert t.latency_s == approx(2 * (2 * 1.0 + 1 * 10.0)) and t.transfer_s == approx(16.0)
    tb = broadcast(800.0, levels, "tree")
    assert tb.time_s == approx(2 * (1 + 2) + 1 * (10 + 8))
    rb = broadcast(800.0, levels, "ring")
    assert rb.time_s == approx(7 * 10 + 8)


def test_all_to_all_level_split():
    levels = (lv("scaleup", 4, 400.0, 1.0), lv("scaleout", 2, 100.0, 10.0))
    c = all_to_all(800.0, levels, "pairwise")
    # 3 intra peers: 300 B at 400 B/s = 0.75 s; 4 inter peers: 400 B at 100 B/s = 4 s (slower wins)
    assert c.transfer_s == approx(4.0)
    assert c.latency_s == approx(3 * 1.0 + 4 * 10.0)
    assert c.bytes_per_rank == approx(700.0)
    # with a fast enough network the scale-up share dominates
    fast = (levels[0], lv("scaleout", 2, 10_000.0, 10.0))
    assert all_to_all(800.0, fast, "pairwise").transfer_s == approx(0.75)
    # concurrent: the same transfer, ceil(log2 8) = 3 rounds of the worst alpha
    cc = all_to_all(800.0, levels, "concurrent")
    assert (cc.latency_s, cc.transfer_s, cc.bytes_per_rank) == (approx(30.0), approx(4.0), approx(700.0))
    # hierarchical: 2 rounds of 1 s inside, 1 of 10 s across; 3/4 x 800 B at 400 B/s = 1.5 s
    # inside, 1/2 x 800 B at 100 B/s = 4 s across, pipelined (the slower phase sets the pace)
    h = all_to_all(800.0, levels, "hierarchical")
    assert (h.latency_s, h.transfer_s, h.bytes_per_rank) == (approx(12.0), approx(4.0), approx(1000.0))
    assert all_to_all(800.0, levels) == h  # auto: 16 s against 34 s (concurrent) and 47 s (pairwise)


def test_point_to_point_crosses_outermost_level():
    levels = (lv("scaleup", 2, 400.0, 1.0), lv("scaleout", 2, 100.0, 10.0, 0.5))
    assert point_to_point(500.0, levels).time_s == approx(10 + 500 / 50)


def test_auto_records_choice():
    small = all_reduce(1e3, (lv("scaleup", 8, 450e9, 2e-6), lv("scaleout", 64, 50e9, 5e-6)))
    assert small.algorithm == "tree"  # latency-bound: log depth wins
    big = all_reduce(1e9, (lv("scaleup", 8, 450e9, 2e-6), lv("scaleout", 64, 50e9, 5e-6)))
    assert big.algorithm == "hierarchical"
    single = all_reduce(1e9, (lv("scaleup", 8, 450e9, 2e-6),))
    assert single.algorithm == "ring"  # ties with hierarchical go to ring


def test_unknown_kind_and_algorithm():
    one = (lv("scaleup", 8, 1e9, 0.0),)
    with pytest.raises(ValueError, match="known: auto, ring, tree, hierarchical"):
        all_reduce(1.0, one, "nvls")
    with pytest.raises(ValueError, match="unknown collective"):
        collective("reduce", 1.0, one)
    with pytest.raises(ValueError):
        all_reduce(-1.0, one)
    with pytest.raises(ValueError, match=r"levels\[0\]"):
        all_reduce(1.0, [(8, 1e9)])  # type: ignore[list-item]


def test_dispatcher_matches_functions():
    levels = (lv("scaleup", 8, 450e9, 2e-6, 0.82), lv("scaleout", 4, 50e9, 5e-6, 0.94))
    fns = {"all_reduce": all_reduce, "reduce_scatter": reduce_scatter, "all_gather": all_gather,
           "all_to_all": all_to_all, "broadcast": broadcast, "point_to_point": point_to_point}
    assert set(fns) == set(KINDS) == set(ALGORITHMS)
    for kind, fn in fns.items():
        for alg in ("auto", *ALGORITHMS[kind]):
            assert collective(kind, 5e7, levels, alg) == fn(5e7, levels, alg)


def test_bus_bandwidth_factors():
    assert bus_bandwidth("all_reduce", 8e9, 8, 1.0) == approx(14e9)
    for kind in ("reduce_scatter", "all_gather", "all_to_all"):
        assert bus_bandwidth(kind, 8e9, 8, 2.0) == approx(3.5e9)
    assert bus_bandwidth("broadcast", 8e9, 8, 2.0) == approx(4e9)
    with pytest.raises(ValueError):
        bus_bandwidth("all_reduce", 1e9, 8, 0.0)
    with pytest.raises(ValueError):
        bus_bandwidth("gather", 1e9, 8, 1.0)
    c = ring_all_reduce(8e9, 8, 1e9, 0.0)
    assert c.busbw_Bps == approx(1e9)
    assert CollectiveCost("all_reduce", "none", 1, 1.0, 0.0, 0.0, 0.0).busbw_Bps == 0.0


def test_cost_is_frozen():
    c = ring_all_reduce(1.0, 2, 1.0, 0.0)
    with pytest.raises(AttributeError):
        c.latency_s = 1.0  # type: ignore[misc]


def test_module_doctests():
    assert doctest.testmod(C).failed == 0


# --------------------------------------------------------------------------- properties

level_st = st.builds(
    CommLevel,
    tier=st.sampled_from(["scaleup", "scaleout", "dci"]),
    fanout=st.integers(1, 16),
    bandwidth_Bps=st.floats(1e6, 1e12),
    latency_s=st.floats(0, 1e-3),
    efficiency=st.floats(0.1, 1.0),
)
levels_st = st.lists(level_st, min_size=0, max_size=3).map(tuple)
size_st = st.floats(0, 1e11)


@settings(max_examples=150, deadline=10_000)
@given(size_st, levels_st, st.sampled_from(KINDS))
def test_auto_never_costs_more_than_a_named_algorithm(size, levels, kind):
    auto = collective(kind, size, levels)
    for alg in ALGORITHMS[kind]:
        assert auto.time_s <= collective(kind, size, levels, alg).time_s
    assert auto.time_s == approx(auto.latency_s + auto.transfer_s)


@settings(max_examples=150, deadline=10_000)
@given(size_st, size_st, levels_st, st.sampled_from(KINDS),
       st.floats(1.0, 100.0), st.sampled_from(["auto", "named"]))
def test_monotone_in_size_and_bandwidth(s1, s2, levels, kind, speedup, which):
    lo, hi = sorted((s1, s2))
    algs = ["auto"] if which == "auto" else list(ALGORITHMS[kind])
    faster = tuple(CommLevel(x.tier, x.fanout, x.bandwidth_Bps * speedup, x.latency_s,
                             x.efficiency) for x in levels)
    for alg in algs:
        a, b = collective(kind, lo, levels, alg), collective(kind, hi, levels, alg)
        assert a.time_s <= b.time_s * (1 + 1e-12)
        assert collective(kind, hi, faster, alg).time_s <= b.time_s * (1 + 1e-12)
