"""ClusterLayout builders and the live ClusterState: allocation, release, indices, errors."""

from __future__ import annotations

import numpy as np
import pytest

from cluster_sim.engine.cluster.state import (
    ClusterState,
    layout_from_node_groups,
    layout_from_topology,
    type_specs,
)
from cluster_sim.errors import PlacementError, TopologyError


@pytest.fixture
def layout():
    # 2 nodes of 8 H100 (one leaf), 3 nodes of 4 A100 (another leaf)
    return layout_from_node_groups([("h100-sxm", 8, 2), ("a100-80gb", 4, 3)], nodes_per_leaf=4,
                                   oversubscription=2.0)


def test_layout_from_node_groups(layout):
    assert layout.n_cards == 28
    assert layout.capacity_by_type() == {"h100-sxm": 16, "a100-80gb": 12}
    assert layout.card_node.tolist() == [0] * 8 + [1] * 8 + [2] * 4 + [3] * 4 + [4] * 4
    assert layout.card_leaf.tolist() == [0] * 16 + [1] * 12
    assert (layout.card_domain == layout.card_node).all()
    nic = type_specs("h100-sxm")[3]
    assert layout.leaf_uplink_Bps[0] == pytest.approx(16 * nic / 2.0)
    with pytest.raises(ValueError):
        layout.card_type[0] = 1  # read-only


def test_layout_non_blocking_is_infinite():
    lo = layout_from_node_groups([("t4", 2, 3)], oversubscription=1.0)
    assert np.isinf(lo.leaf_uplink_Bps).all()


def test_unknown_type_uses_documented_assumption():
    lo = layout_from_node_groups([("G2", 8, 1), ("t4", 2, 1)])
    assert lo.assumed_types == ("G2",)
    assert lo.type_peak_flops[0] == pytest.approx(125e12)


def test_bad_layout_raises():
    with pytest.raises(TopologyError):
        layout_from_node_groups([])
    with pytest.raises(TopologyError):
        layout_from_node_groups([("t4", 0, 2)])


def test_allocate_release_keeps_indices(layout):
    st = ClusterState(layout)
    st.allocate(0, [0, 1, 2], 1000, "test")
    st.allocate(1, [16], 300, "test")
    st.allocate(2, [16], 700, "test")
    st.allocate(3, [8, 9, 10, 11, 12, 13, 14, 15], 1000, "test")
    st.check()
    assert st.node_free_whole.tolist() == [5, 0, 3, 4, 4]
    assert st.type_free_whole.tolist() == [5, 11]
    assert int(st.free[16]) == 0
    assert st.jobs_on(16) == [1, 2] and st.jobs_on(0) == [0] and st.jobs_on(5) == []
    assert st.view.node_with(0b01, 4, best=True) == 0  # only node 0 has >= 4 free H100
    assert st.view.max_node_free(0b11) == 5
    st.release(3)
    st.release(1)
    st.check()
    assert st.view.node_with(0b01, 8) == 1
    assert st.view.node_with(0b11, 1, best=True) == 2  # the A100 node with 3 free is the tightest
    assert st.view.node_with(0b11, 1, best=False) == 1
    st.release(2)
    st.release(0)
    st.check()
    assert (st.free == 1000).all() and st.allocated_milli_by_type().tolist() == [0, 0]


def test_multi_node_allocation_updates_every_node(layout):
    st = ClusterState(layout)
    st.allocate(7, [6, 7, 8, 16, 20], 1000, "x")
    st.check()
    assert st.node_free_whole.tolist() == [6, 7, 3, 3, 4]
    st.release(7)
    st.check()


@pytest.mark.parametrize("cards, milli, msg", [
    ([0, 0], 1000, "twice"),
    ([99], 1000, "out of range"),
    ([], 1000, "empty"),
    ([1], 1000, "over-allocation"),
])
def test_bad_placements_name_the_policy(layout, cards, milli, msg):
    st = ClusterState(layout)
    st.allocate(0, [1], 500, "setup")
    with pytest.raises(PlacementError, match=msg) as ei:
        st.allocate(5, cards, milli, "my_policy")
    assert "my_policy" in str(ei.value)
    st.check()  # a rejected decision changes nothing


def test_type_mask_and_double_allocation(layout):
    st = ClusterState(layout)
    with pytest.raises(PlacementError, match="not allowed"):
        st.allocate(0, [20], 1000, "p", mask=0b01)
    st.allocate(0, [0], 1000, "p")
    with pytest.raises(PlacementError, match="already holds"):
        st.allocate(0, [1], 1000, "p")
    with pytest.raises(PlacementError, match="holds no cards"):
        st.release(4)


def test_down_cards_leave_service(layout):
    st = ClusterState(layout)
    st.set_down(3)
    st.check()
    assert st.type_down.tolist() == [1, 0] and st.type_free_whole.tolist() == [15, 12]
    with pytest.raises(PlacementError, match="failed"):
        st.allocate(0, [3], 100, "p")
    st.set_up(3)
    st.check()
    st.allocate(0, [3], 1000, "p")
    with pytest.raises(PlacementError):
        st.set_down(3)


def test_recent_request_ring_buffer(layout):
    st = ClusterState(layout, recent_window=3)
    for k in range(5):
        st.push_request(k + 1, 1000, 1)
    assert int(st.recent_len[0]) == 3
    assert sorted(st.recent_num_cards.tolist()) == [3, 4, 5]


def test_layout_from_topology_uses_leaf_uplinks():
    from cluster_sim.topology import fat_tree

    topo = fat_tree("hgx-h100", 12, oversubscription=4.0, leaf_radix=64, tiers=2)
    lo = layout_from_topology(topo)
    assert lo.n_cards == 96 and lo.card_types == ("h100-sxm",)
    # 6 servers per 64-port leaf at 4:1 -> 2 leaves, each uplink = 48 NICs x 50 GB/s / 4
    assert lo.card_leaf.max() == 1
    assert lo.leaf_uplink_Bps.tolist() == pytest.approx([48 * 50e9 / 4] * 2)
    lo1 = layout_from_topology(fat_tree("hgx-h100", 12, oversubscription=1.0, leaf_radix=64, tiers=2))
    assert np.isinf(lo1.leaf_uplink_Bps).all()
