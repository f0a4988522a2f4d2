"""Collective costs against DOMAIN.md section 5 closed forms and section 4.3 NCCL numbers."""

from __future__ import annotations

import pytest

from cluster_sim.network import (
    all_reduce,
    bus_bandwidth,
    reduce_scatter,
    ring_all_reduce,
    ring_reduce_scatter,
)
from cluster_sim.topology.levels import CommLevel

GiB = 1 << 30
H100_NODE = CommLevel("scaleup", fanout=8, bandwidth_Bps=450e9, latency_s=2e-6, efficiency=0.82)


def test_8x_h100_ring_all_reduce_of_1_gib():
    # 2*7 hops * 2 us + 2*(7/8) * 1073741824 B / (450e9 * 0.82 B/s), worked by hand:
    # 1879048192 / 369e9 = 5.0922715 ms; + 0.028 ms latency.
    c = all_reduce(GiB, (H100_NODE,), "ring")
    assert c.latency_s == pytest.approx(28e-6)
    assert c.transfer_s == pytest.approx(5.0922715e-3, rel=1e-7)
    assert c.time_s == pytest.approx(5.1202715e-3, rel=1e-7)


def test_ring_busbw_equals_per_rank_bandwidth_for_large_messages():
    # nccl-tests: busbw of a large ring all-reduce is the per-rank link rate. DOMAIN 4.3:
    # 8 x H100 ring ~370 GB/s busbw (450 GB/s uni line rate, ~20% protocol overhead).
    c = all_reduce(64 * GiB, (H100_NODE,), "ring")
    busbw = bus_bandwidth("all_reduce", c.size_bytes, c.ranks, c.time_s)
    assert busbw == pytest.approx(369e9, rel=1e-3)
    assert 360e9 <= busbw <= 380e9
    # small messages are latency bound: far below the link rate
    tiny = all_reduce(1024, (H100_NODE,), "ring")
    assert tiny.busbw_Bps < 1e9


def test_ndr_inter_node_busbw_band():
    # DOMAIN 4.3: inter-node NDR 400 Gb/s reaches ~46-48 GB/s per NIC.
    ndr = CommLevel("scaleout", fanout=2, bandwidth_Bps=50e9, latency_s=5e-6, efficiency=0.94)
    c = all_reduce(16 * GiB, (ndr,), "ring")
    assert 46e9 <= c.busbw_Bps <= 48e9


@pytest.mark.parametrize("g,m", [(8, 2), (8, 16), (4, 3), (72, 8), (2, 128)])
@pytest.mark.parametrize("size", [1e3, 1e6, 256e6, 8e9])
def test_two_level_hierarchical_equals_domain_formula(g, m, size):
    b_in, a_in, b_out, a_out = 450e9 * 0.82, 2e-6, 50e9 * 0.94, 5e-6
    levels = (CommLevel("scaleup", g, 450e9, a_in, 0.82),
              CommLevel("scaleout", m, 50e9, a_out, 0.94))
    domain = (2 * (g - 1) / g * size / b_in + 2 * (m - 1) / m * (size / g) / b_out
              + 2 * (g - 1) * a_in + 2 * (m - 1) * a_out)
    c = all_reduce(size, levels, "hierarchical")
    assert c.time_s == pytest.approx(domain, rel=1e-12)
    assert c.ranks == g * m


def test_rail_optimised_network_carries_one_gth_of_the_buffer():
    # DOMAIN 3.3: in a hierarchical all-reduce each GPU moves only 1/g over the network.
    g, m, size = 8, 16, 4e9
    inner = CommLevel("scaleup", g, 450e9, 2e-6, 0.82)
    outer = CommLevel("scaleout", m, 50e9, 5e-6, 0.94)
    hier = all_reduce(size, (inner, outer), "hierarchical")
    intra = 2 * reduce_scatter(size, (inner,), "ring").time_s
    inter = ring_all_reduce(size / g, m, outer.effective_Bps, outer.latency_s)
    assert hier.time_s == pytest.approx(intra + inter.time_s, rel=1e-12)


@pytest.mark.parametrize("n", [2, 8, 64, 1024])
def test_design_ring_closed_form(n):
    # DESIGN.md section 5: 2(n-1)/n * S/B + 2(n-1) alpha
    s, b, a = 3e9, 25e9, 7e-6
    assert ring_all_reduce(s, n, b, a).time_s == pytest.approx(
        2 * (n - 1) / n * s / b + 2 * (n - 1) * a, rel=1e-12)
    # reduce-scatter + all-gather = all-reduce (the ZeRO / FSDP identity)
    assert 2 * ring_reduce_scatter(s, n, b, a).time_s == pytest.approx(
        ring_all_reduce(s, n, b, a).time_s, rel=1e-12)


def test_flat_ring_across_a_slow_tier_is_bottlenecked():
    levels = (H100_NODE, CommLevel("scaleout", 16, 50e9, 5e-6, 0.94))
    flat = all_reduce(GiB, levels, "ring")
    p = 128
    assert flat.time_s == pytest.approx(2 * (p - 1) * 5e-6 + 2 * (p - 1) / p * GiB / 47e9)
    assert all_reduce(GiB, levels).time_s < flat.time_s / 4  # hierarchy pays off
