"""The cluster engine's split-placement penalty: a hierarchical collective over the actual pieces.

Closed forms (docs/engine.md, "Speed model"): with ``rho = scale-up / NIC bandwidth / share``, a
group of ``g`` cards in one piece keeps ``r_in = 1``; in two pieces of ``g/2`` it pays
``(g - 2 + rho) / (g - 1)``; in ``g`` pieces of one card the old flat NIC-speed ring, ``rho``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_sim.engine.cluster.speed import (
    SpeedModel,
    busy_fraction,
    split_ratio,
    straddling_groups,
)
from cluster_sim.engine.cluster.state import layout_from_node_groups
from cluster_sim.engine.cluster.terms import assumed_comm_fraction as default_comm_fraction
from cluster_sim.network.collectives import all_reduce, ring_all_reduce
from cluster_sim.topology.levels import CommLevel

RHO_H100 = 450e9 / 50e9   # NVLink 4 per direction / 400 Gb/s NIC (the layout's type_scaleup_Bps / type_nic_Bps)


def layout(nodes: int = 32):
    return layout_from_node_groups([("h100-sxm", 8, nodes)], nodes_per_leaf=nodes)


def cards_on(lo, counts):
    """The first ``counts[n]`` cards of node ``n``."""
    return np.concatenate([np.flatnonzero(lo.card_node == n)[:c] for n, c in enumerate(counts) if c])


def speed_of(sm, counts, kind=1):
    """Speed on a node inventory (no topology): the assumed terms, comm = min(0.35, 0.05 log2 n)."""
    cards = cards_on(sm.layout, counts)
    key = (kind, cards.size, sm.reference)
    info = sm.info(key, cards)
    terms = sm.terms(*key, info.slowest_type)
    assert terms.assumed and terms.comm == default_comm_fraction(cards.size)
    return info, sm.speed(terms, info)


def test_layout_ratio_is_the_h100_nvlink_over_nic_ratio():
    assert SpeedModel(layout()).nic_ratio == [pytest.approx(RHO_H100)]


@pytest.mark.parametrize("g", [2, 4, 8, 16])
def test_closed_forms_of_the_ratio(g):
    rho = RHO_H100
    assert split_ratio(g, straddling_groups([g], g), rho) == 1.0                        # one piece
    assert split_ratio(g, straddling_groups([g // 2] * 2, g), rho) == pytest.approx((g - 2 + rho) / (g - 1))
    assert split_ratio(g, straddling_groups([1] * g, g), rho) == pytest.approx(rho)      # old penalty


@pytest.mark.parametrize("pieces", [(4, 4), (2, 2, 2, 2), (1,) * 8, (4, 4, 4, 4)])
def test_equal_pieces_equal_the_collectives_hierarchical_all_reduce(pieces):
    # the bandwidth terms of network/collectives.py's two-level hierarchical all-reduce, over a
    # one-domain ring of the same group: the ratio the engine uses (alpha = 0)
    g, d, m = sum(pieces), len(pieces), pieces[0]
    up, nic, size = 450e9, 50e9, float(1 << 30)
    hier = all_reduce(size, (CommLevel("scaleup", m, up, 0.0), CommLevel("scaleout", d, nic, 0.0)),
                      algorithm="hierarchical").time_s
    flat = ring_all_reduce(size, g, up, 0.0).time_s
    assert split_ratio(g, straddling_groups(list(pieces), g), up / nic) == pytest.approx(hier / flat)


def test_engine_speed_of_an_8_card_job_over_its_pieces():
    sm = SpeedModel(layout())
    c = default_comm_fraction(8)                 # 0.15, all in-domain (the job needs one domain)
    expected = {(8,): 1.0, (4, 4): (8 - 2 + RHO_H100) / 7, (1,) * 8: RHO_H100}
    for counts, r in expected.items():
        info, sp = speed_of(sm, counts)
        assert info.need_domains == 1 and info.n_domains == len(counts)
        assert sp == pytest.approx(1.0 / ((1 - c) + c * r))
    # (1,)*8 is the old model's only answer for any split: 1 / (0.85 + 0.15 * 9)
    assert speed_of(sm, (1,) * 8)[1] == pytest.approx(1 / 2.2)


def test_128_card_job_on_16_and_17_nodes():
    # docs/engine.md's example: c = 0.35, half scale-out; 15 full nodes + 4 + 4 splits one group
    # of 8 in two: r_in = 15/7, speed = 1 / (0.65 + 0.175 * 15/7 + 0.175) = 1/1.2 (was 1/2.4)
    sm = SpeedModel(layout())
    info, sp = speed_of(sm, [8] * 16)
    assert not info.split and sp == 1.0
    info, sp = speed_of(sm, [8] * 15 + [4, 4])
    assert info.split and info.cross == ((0.5, 4, 4),)
    assert sp == pytest.approx(1 / 1.2)
    # ranks domain by domain, largest piece first: 14 x 8, then 7 + 1 and 6 + 2 share groups;
    # the lone card of the first sets the pace: r_in = 8/7 (1 + (9/2 - 1)/1) = 36/7
    info, sp = speed_of(sm, [8] * 14 + [7, 7, 2])
    assert straddling_groups([2, 7, 8] + [8] * 13 + [7], 8) == ((0.5, 1, 7), (0.5, 2, 6))
    assert info.cross == ((0.5, 1, 7), (0.5, 2, 6))
    assert sp == pytest.approx(1 / (0.65 + 0.175 * 36 / 7 + 0.175))


def test_the_network_share_slows_only_the_cross_piece_part():
    sm = SpeedModel(layout())
    info, _ = speed_of(sm, (4, 4))
    c = default_comm_fraction(8)
    r = (8 - 2 + RHO_H100 / 0.5) / 7
    assert sm.speed(sm.terms(1, 8, sm.reference, 0), info, share=0.5) == pytest.approx(1 / ((1 - c) + c * r))


def test_speed_falls_with_the_number_of_equal_pieces():
    sm = SpeedModel(layout())
    speeds = [speed_of(sm, (8 // d,) * d)[1] for d in (1, 2, 4, 8)]
    assert all(a > b for a, b in zip(speeds, speeds[1:], strict=False)), speeds
    speeds16 = [speed_of(sm, (16 // d,) * d)[1] for d in (2, 4, 8, 16)]   # 16 cards, need 2 domains
    assert all(a > b for a, b in zip(speeds16, speeds16[1:], strict=False)), speeds16


@settings(max_examples=150, deadline=2000)
@given(st.lists(st.integers(1, 8), min_size=1, max_size=8), st.integers(0, 7),
       st.floats(2.0, 40.0), st.floats(0.05, 1.0))
def test_ratio_bounds_and_refining_a_piece_never_helps(pieces, which, nic_ratio, share):
    g = sum(pieces)
    rho = nic_ratio / share
    r = split_ratio(g, straddling_groups(pieces, g), rho)
    assert 1.0 <= r <= rho * (1 + 1e-12)
    i = which % len(pieces)
    if pieces[i] > 1:   # split one piece in two: more, smaller pieces (rho > 2: never faster)
        finer = pieces[:i] + [pieces[i] - 1, 1] + pieces[i + 1:]
        assert split_ratio(g, straddling_groups(finer, g), rho) >= r * (1 - 1e-12)


@settings(max_examples=100, deadline=2000)
@given(st.lists(st.integers(0, 8), min_size=2, max_size=12), st.floats(0.05, 1.0), st.integers(0, 3))
def test_busy_fraction_stays_in_unit_interval(counts, share, kind):
    if sum(counts) == 0:
        counts = [1] + counts[1:]
    sm = SpeedModel(layout(12))
    cards = cards_on(sm.layout, counts)
    key = (kind, cards.size, sm.reference)
    info = sm.info(key, cards)
    iso = sm.isolated_speed(key, info)
    sp = sm.speed(sm.terms(*key, info.slowest_type), info, share)
    assert 0.0 < sp <= iso
    assert 0.0 < busy_fraction(sp, iso) <= 1.0
    assert info.split == bool(info.cross)     # a split placement always spreads some group


def test_straddling_groups_rejects_an_empty_group():
    with pytest.raises(ValueError, match="group must be >= 1"):
        straddling_groups([4, 4], 0)
