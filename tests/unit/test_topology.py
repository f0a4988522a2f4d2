"""Topology builders, comm_levels, bisection, routes and validation."""

from __future__ import annotations

import itertools
import time

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_sim import catalog
from cluster_sim.errors import TopologyError
from cluster_sim.topology import (
    CommLevel,
    Topology,
    fat_tree,
    heterogeneous,
    multi_dc,
    rail_optimized,
    scaleup_domain,
    supernode_cluster,
)

NDR = catalog.fabric("ib_ndr")
H100_NIC = 50e9  # 400 Gb/s per card
H100_NVLINK = 450e9  # per direction


def n_links(t: Topology, level: str) -> int:
    return sum(1 for lv in t.edges.level if lv == level)


def switches(t: Topology, level: str) -> int:
    return sum(1 for _, a in t.switches if a["level"] == level)


# ---- builders: counts -----------------------------------------------------------------------
def test_scaleup_domain_single_and_several():
    one = scaleup_domain("hgx-h100")
    assert one.n_cards == 8 and len(one.domains()) == 1
    assert n_links(one, "scaleup") == 8 and n_links(one, "nic") == 0
    assert one.sites[0].top_switch is None and (one.leaf == -1).all()
    four = scaleup_domain("hgx-h100", 4)
    assert four.n_cards == 32 and len(four.domains()) == 4 and n_links(four, "nic") == 32
    four.validate()


def test_fat_tree_counts_non_blocking_and_oversubscribed():
    t = fat_tree("hgx-h100", 128)
    assert t.n_cards == 1024 and len(t.domains()) == 128
    # 64-port leaves, non-blocking: 32 card ports = 4 servers per leaf
    assert switches(t, "leaf") == 32 and switches(t, "spine") == 1 and switches(t, "core") == 0
    assert n_links(t, "scaleup") == 1024 and n_links(t, "nic") == 1024 and n_links(t, "leaf-spine") == 32
    assert t.link_capacity_Bps.size == t.graph.number_of_edges() == len(t.links)
    t4 = fat_tree("hgx-h100", 128, oversubscription=4)
    # 4:1 -> floor(64*4/5) = 51 ports -> 6 whole servers per leaf -> 22 leaves
    assert switches(t4, "leaf") == 22
    up = t4.edges.bandwidth_Bps[np.asarray(t4.edges.level) == "leaf-spine"]
    assert up[0] == pytest.approx(48 * H100_NIC / 4)


def test_fat_tree_three_tiers():
    t = fat_tree("dgx-a100", 384, fabric="ib_hdr", leaf_radix=40, tiers=3)
    assert t.n_cards == 3072 and switches(t, "core") == 1
    # 40 ports -> 20 card ports -> 2 servers per leaf -> 192 leaves in pods of 20
    assert switches(t, "leaf") == 192 and switches(t, "spine") == 10
    assert n_links(t, "spine-core") == 10
    assert t.bisection_Bps == pytest.approx(3072 * 25e9 / 2)


def test_rail_optimized_puts_nic_i_on_rail_i():
    t = rail_optimized("hgx-h100", 128)
    assert switches(t, "leaf") == 4 * 8  # 4 scalable units of 32 servers x 8 rails
    assert np.array_equal(t.pod, np.arange(1024) // 256)  # pod = scalable unit
    local_rank = np.arange(1024) % 8
    assert np.array_equal(t.leaf, t.pod * 8 + local_rank)
    # same local rank in two servers of one unit: one rail switch between them
    assert [u for u, _ in t.route(0, 8)] == [0, "leaf:0"]


def test_supernode_cluster_domain_is_whole_supernode():
    t = supernode_cluster("cloudmatrix384", supernodes=4)
    assert t.n_cards == 1536 and sorted(len(v) for v in t.domains().values()) == [384] * 4
    assert t.card_types == ["ascend-910c"]
    assert t.sites[0].fabric.name == "roce"


def test_mesh_scaleup_is_full_mesh():
    t = fat_tree("atlas-800t-a2", 2, fabric="roce")
    assert n_links(t, "scaleup") == 2 * 28  # 8 NPUs, full mesh
    uni = catalog.accelerator("ascend-910b").scaleup_bytes_per_s_uni
    assert t.path_bandwidth_Bps(0, 1) == pytest.approx(uni / 7)


def test_heterogeneous_pods_and_types():
    t = heterogeneous([("dgx-a100", 4), ("hgx-h100", 4), ("atlas-800t-a2", 4)], fabric="roce")
    assert t.n_cards == 96 and t.card_types == ["a100-80gb", "ascend-910b", "h100-sxm"]
    by = t.cards_by_type()
    assert {k: v.size for k, v in by.items()} == {"a100-80gb": 32, "ascend-910b": 32, "h100-sxm": 32}
    assert np.array_equal(np.unique(t.pod), [0, 1, 2])
    assert t.accelerator(40).name == "h100-sxm" and t.system(70).name == "atlas-800t-a2"
    assert t.nic_Bps(0) == pytest.approx(25e9) and t.nic_Bps(40) == pytest.approx(50e9)
    for leaf in np.unique(t.leaf):  # leaves never mix systems
        assert np.unique(t.system_idx[t.leaf == leaf]).size == 1


def test_builder_errors():
    with pytest.raises(TopologyError, match="multiple of 18"):
        fat_tree("gb200-nvl72", 10)
    with pytest.raises(TopologyError, match="unknown system"):
        fat_tree("dgx-h300", 4)
    with pytest.raises(TopologyError, match="unknown fabric"):
        fat_tree("hgx-h100", 4, fabric="infiniband-xyz")
    with pytest.raises(TopologyError, match="not a scale-out fabric"):
        fat_tree("hgx-h100", 4, fabric="dci")
    with pytest.raises(TopologyError, match="oversubscription"):
        fat_tree("hgx-h100", 4, oversubscription=0.5)


def test_deterministic():
    a = heterogeneous([("dgx-a100", 8), ("hgx-h100", 8)], oversubscription=2)
    b = heterogeneous([("dgx-a100", 8), ("hgx-h100", 8)], oversubscription=2)
    assert a.links == b.links
    assert np.array_equal(a.link_capacity_Bps, b.link_capacity_Bps)
    assert a.route(3, 100) == b.route(3, 100)


# ---- comm_levels ------------------------------------------------------------------------------
def test_tp_inside_a_node():
    t = fat_tree("hgx-h100", 16)
    (lv,) = t.comm_levels(range(8))
    assert lv == CommLevel("scaleup", 8, H100_NVLINK, 2e-6, 0.82)
    (lv4,) = t.comm_levels([8, 9, 10, 11])
    assert lv4.fanout == 4
    (one,) = t.comm_levels([5])
    assert one.tier == "scaleup" and one.fanout == 1


def test_dp_across_nodes_under_one_leaf():
    t = fat_tree("hgx-h100", 16)
    (lv,) = t.comm_levels([0, 8, 16, 24])  # 4 servers on leaf 0, one rank each
    assert lv.tier == "scaleout" and lv.fanout == 4
    assert lv.bandwidth_Bps == pytest.approx(H100_NIC)
    assert lv.latency_s == pytest.approx(2 * NDR.latency_s + NDR.nic_latency_s)
    assert lv.efficiency == NDR.efficiency


def test_dp_across_an_oversubscribed_spine():
    t = fat_tree("hgx-h100", 128, oversubscription=4)
    same_leaf = t.comm_levels(range(0, 48, 8))  # 6 servers of leaf 0
    assert same_leaf[0].bandwidth_Bps == pytest.approx(H100_NIC)
    across = t.comm_levels(range(0, 1024, 8))
    assert [lv.tier for lv in across] == ["scaleout"] and across[0].fanout == 128
    assert across[0].bandwidth_Bps == pytest.approx(H100_NIC / 4)
    assert across[0].latency_s == pytest.approx(4 * NDR.latency_s + NDR.nic_latency_s)
    full = t.comm_levels(range(1024))
    assert [(lv.tier, lv.fanout) for lv in full] == [("scaleup", 8), ("scaleout", 128)]


def test_three_tier_cumulative_oversubscription():
    t = fat_tree("hgx-h100", 64, leaf_radix=16, tiers=3, pod_leaves=4, oversubscription=[2, 2])
    # 16 ports, 2:1 -> 10 card ports -> 1 server per leaf; pods of 4 leaves
    assert t.comm_levels([0, 8])[0].bandwidth_Bps == pytest.approx(H100_NIC / 2)  # across leaves
    far = t.comm_levels([0, 63 * 8])[0]  # across pods: leaf and spine uplinks
    assert far.bandwidth_Bps == pytest.approx(H100_NIC / 4)
    assert far.latency_s == pytest.approx(6 * NDR.latency_s + NDR.nic_latency_s)


def test_heterogeneous_group_uses_slowest_card():
    t = heterogeneous([("dgx-a100", 2), ("hgx-h100", 2)], fabric="roce")
    lv = t.comm_levels([0, 1, 16, 17])  # 2 A100 + 2 H100
    assert lv[0].bandwidth_Bps == pytest.approx(catalog.accelerator("a100-80gb").scaleup_bytes_per_s_uni)
    assert lv[0].efficiency == pytest.approx(0.77)
    assert lv[1].bandwidth_Bps == pytest.approx(25e9) and lv[1].fanout == 2


def test_across_data_centres():
    site = rail_optimized("hgx-h100", 128)
    t = multi_dc([site, site], 300, convergence_ratio=16)
    assert t.n_cards == 2048 and len(t.sites) == 2 and np.array_equal(np.unique(t.dc), [0, 1])
    dci_cap = 1024 * H100_NIC / 16
    assert t.dci[0].capacity_Bps == pytest.approx(dci_cap)
    levels = t.comm_levels(range(2048))
    assert [(lv.tier, lv.fanout) for lv in levels] == [("scaleup", 8), ("scaleout", 128), ("dci", 2)]
    assert levels[2].bandwidth_Bps == pytest.approx(dci_cap / 1024)
    assert levels[2].latency_s == pytest.approx(1.5e-3, rel=0.03)
    (pair,) = t.comm_levels([0, 1024])  # one rank per site: the NIC is the limit
    assert pair.tier == "dci" and pair.bandwidth_Bps == pytest.approx(H100_NIC)


def test_comm_levels_rejects_bad_cards():
    t = fat_tree("hgx-h100", 2)
    with pytest.raises(TopologyError, match="no card 16"):
        t.comm_levels([0, 16])
    with pytest.raises(TopologyError, match="at least one card"):
        t.comm_levels([])


@settings(max_examples=40, deadline=10_000)
@given(system=st.sampled_from(["hgx-h100", "dgx-a100", "atlas-800t-a2", "l40s-8"]),
       nodes=st.integers(1, 24), radix=st.sampled_from([8, 16, 64]), osub=st.sampled_from([1, 2, 4]),
       tiers=st.sampled_from([None, 3]), data=st.data())
def test_fanouts_multiply_to_group_size(system, nodes, radix, osub, tiers, data):
    t = fat_tree(system, nodes, leaf_radix=radix, oversubscription=osub, tiers=tiers, pod_leaves=2,
                 fabric="roce")
    doms = sorted(t.domains())
    k = data.draw(st.integers(1, len(doms)))
    chosen = data.draw(st.permutations(doms))[:k]
    per = data.draw(st.integers(1, 8))
    group = np.concatenate([t.domains()[d][:per] for d in chosen])
    levels = t.comm_levels(group)
    assert int(np.prod([lv.fanout for lv in levels])) == group.size
    assert all(lv.bandwidth_Bps > 0 and lv.latency_s >= 0 for lv in levels)
    for lv in levels:
        if lv.tier == "scaleout":
            assert t.cards.nic_Bps.min() / osub <= lv.bandwidth_Bps + 1e-6 <= t.cards.nic_Bps.min() + 1e-6


# ---- bisection ---------------------------------------------------------------------------------
def test_bisection_non_blocking_vs_4_to_1():
    full = fat_tree("hgx-h100", 128)
    four = fat_tree("hgx-h100", 128, oversubscription=4)
    assert full.bisection_Bps == pytest.approx(512 * H100_NIC)
    assert full.bisection_Bps / four.bisection_Bps == pytest.approx(4.0)
    assert scaleup_domain("hgx-h100").bisection_Bps == pytest.approx(4 * H100_NVLINK)


def _brute_bisection(t: Topology) -> float:
    """Min s-t cut over balanced bipartitions of whole scale-up domains."""
    doms = sorted(t.domains())
    g = nx.DiGraph()
    for u, v, d in t.graph.edges(data=True):
        g.add_edge(u, v, capacity=d["bandwidth_Bps"])
        g.add_edge(v, u, capacity=d["bandwidth_Bps"])
    best = float("inf")
    for side in itertools.combinations(doms, len(doms) // 2):
        if doms[0] not in side:
            continue
        h = g.copy()
        for d in doms:
            end = "S" if d in side else "T"
            for c in t.domains()[d].tolist():
                h.add_edge(end, c, capacity=float("inf")) if end == "S" else h.add_edge(c, end, capacity=float("inf"))
        best = min(best, nx.minimum_cut_value(h, "S", "T"))
    return best


@pytest.mark.parametrize("build", [
    lambda: fat_tree("hgx-h100", 8, leaf_radix=10, oversubscription=4),
    lambda: fat_tree("hgx-h100", 8, leaf_radix=32),
    lambda: rail_optimized("hgx-h100", 4, leaf_radix=4),
    lambda: heterogeneous([("dgx-a100", 2), ("hgx-h100", 2)], leaf_radix=16),
    lambda: multi_dc([fat_tree("hgx-h100", 2, leaf_radix=16)] * 2, 100, convergence_ratio=4),
], ids=["fat4to1", "fat1to1", "rail", "hetero", "two-dc"])
def test_bisection_closed_form_matches_min_cut(build):
    t = build()
    assert t.bisection_Bps == pytest.approx(_brute_bisection(t), rel=1e-9)


# ---- routes, links, validation -------------------------------------------------------------------
def test_route_300_km_latency_and_bottleneck():
    site = fat_tree("hgx-h100", 4)
    t = multi_dc([site, site], 300)
    r = t.route(0, 40)
    assert r[0][0] == 0 and r[-1][1] == 40
    assert [t.graph.edges[e]["tier"] for e in r].count("dci") == 1
    assert t.path_latency_s(0, 40) == pytest.approx(1.5e-3, rel=0.03)
    assert t.path_bandwidth_Bps(0, 40) == pytest.approx(H100_NIC)
    assert t.path_latency_s(0, 1) == pytest.approx(2e-6)  # NVSwitch, no NIC
    assert {t.graph.edges[e]["tier"] for e in t.route(0, 1)} == {"scaleup"}
    ids = [t.link_index(u, v) for u, v in r]
    assert ids == [t.link_index(v, u) for u, v in r]
    assert t.link_capacity_Bps[ids].min() == pytest.approx(H100_NIC)
    with pytest.raises(TopologyError, match="no link"):
        t.link_index(0, 40)


def test_validate_names_disconnected_card():
    t = fat_tree("hgx-h100", 4)
    t.validate()
    t.graph.remove_edges_from(list(t.graph.edges(17)))
    with pytest.raises(TopologyError, match=r"card 17 \(node 2, domain 2\) is not connected to card 0"):
        t.validate()


def test_summary_contents():
    s = multi_dc([fat_tree("hgx-h100", 8, oversubscription=2)] * 2, 300).summary()
    assert s["n_cards"] == 128 and s["cards_by_type"] == {"h100-sxm": 128}
    assert s["scaleup_domains"] == [{"system": "hgx-h100", "accelerator": "h100-sxm", "count": 16, "size": 8,
                                     "fabric": "switched", "scaleup_Bps_per_card": H100_NVLINK}]
    tiers = {x["level"]: x for x in s["tiers"]}
    assert tiers["leaf-spine"]["oversubscription"] == pytest.approx(2.0)
    assert tiers["dci"]["links"] == 1 and tiers["dci"]["oversubscription"] == pytest.approx(16.0)
    assert s["dci"][0]["distance_km"] == pytest.approx(300)
    assert s["bisection_Bps"] == pytest.approx(64 * H100_NIC / 16)


def test_100k_cards_build_in_seconds():
    t0 = time.perf_counter()
    t = heterogeneous([("hgx-h100", 4000), ("dgx-a100", 3000), ("hgx-h20", 2500), ("atlas-800t-a2", 3000)],
                      oversubscription=2, tiers=3)
    t.comm_levels(np.arange(0, 100_000, 7))
    assert t.n_cards == 100_000
    assert time.perf_counter() - t0 < 10.0  # measured ~0.15 s (graph itself: ~0.8 s more, built lazily)
