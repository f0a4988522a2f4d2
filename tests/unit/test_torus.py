"""The 3D-torus builder (TPU pods, issue #15 item 7): closed forms on links, bandwidth, bisection."""

from __future__ import annotations

import numpy as np
import pytest

from cluster_sim import catalog
from cluster_sim.errors import TopologyError
from cluster_sim.topology import load_topology, torus


def _incident_Bps(t, card: int) -> float:
    u, v = np.asarray(t.edges.u, dtype=object), np.asarray(t.edges.v, dtype=object)
    m = np.asarray([a == card or b == card for a, b in zip(u, v, strict=True)])
    return float(t.edges.bandwidth_Bps[m].sum())


@pytest.mark.parametrize("dims", [(4, 4, 4), (4, 4, 8), (8, 8, 8)])
def test_torus_links_and_bisection_closed_form(dims):
    t = torus("tpu-v4-pod", dims)
    n = int(np.prod(dims))
    uni = catalog.accelerator("tpu-v4").scaleup_bytes_per_s_uni  # 300 GB/s over 6 ICI links
    assert t.n_cards == n and len(t.domains()) == 1
    assert len(t.edges.u) == 3 * n  # one +1 neighbour per card per dimension, wrap-around included
    assert np.allclose(t.edges.bandwidth_Bps, uni / 6)
    assert set(t.edges.level) == {"scaleup"}
    assert _incident_Bps(t, 0) == pytest.approx(uni)  # 6 links per chip carry its whole ICI bandwidth
    k = max(dims)
    assert t.bisection_Bps == pytest.approx(2 * n / k * uni / 6)  # two links per ring cut
    t.validate()
    (lv,) = t.comm_levels(range(n))
    assert (lv.tier, lv.fanout) == ("scaleup", n)


def test_full_v4_pod_bisection_is_consistent_with_the_published_figure():
    # Cloud TPU v4 docs: 24 TB/s bisection per 4,096-chip pod. The ICI link rate (50 GB/s) is
    # derived from that figure (catalog field_sources, D), so this is a consistency check, not
    # an independent validation: 2 x 256 links x 50 GB/s = 25.6 TB/s.
    t = torus("tpu-v4-pod", (16, 16, 16))
    assert t.bisection_Bps == pytest.approx(25.6e12)
    assert t.bisection_Bps == pytest.approx(24e12, rel=0.07)


def test_dimension_of_two_doubles_the_single_link_and_one_has_none():
    t = torus("tpu-v5p-pod", (2, 2, 1))
    uni = catalog.accelerator("tpu-v5p").scaleup_bytes_per_s_uni  # 600 GB/s
    assert len(t.edges.u) == 4  # 2 pairs in each of the two dimensions of size 2, none in size 1
    assert np.allclose(t.edges.bandwidth_Bps, 2 * uni / 6)
    assert _incident_Bps(t, 0) == pytest.approx(4 * uni / 6)  # 4 of the chip's 6 links in use


def test_slices_join_over_the_data_centre_network():
    t = torus("tpu-v5p-pod", (4, 4, 4), count=2)
    assert t.n_cards == 128 and len(t.domains()) == 2
    levels = t.comm_levels(range(128))
    assert [(lv.tier, lv.fanout) for lv in levels] == [("scaleup", 64), ("scaleout", 2)]
    assert t.nic_Bps(0) == pytest.approx(50e9 / 8)  # 50 Gb/s DCN per v5p chip (Cloud TPU docs)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"system": "hgx-h100", "dims": [2, 2, 2]}, "'switched' scale-up fabric, not a torus"),
        ({"system": "tpu-v4-pod", "dims": [32, 4, 4]}, "do not fit tpu-v4-pod's 16x16x16 torus"),
        ({"system": "tpu-v4-pod", "dims": [1, 1, 1]}, "1 chips, not a multiple of 4 chips per host"),
        ({"system": "tpu-v4-pod", "dims": [4, 4, 4, 4]}, "dims: expected a list of 1 to 3 torus dimensions"),
        ({"system": "tpu-v4-pod", "dims": [4, -4, 4]}, "dims: expected a positive integer, got -4"),
        ({"system": "tpu-v4-pod"}, "dims: missing"),
    ],
)
def test_bad_torus_spec_is_one_clear_error(spec, message):
    with pytest.raises(TopologyError, match=message):
        load_topology({"builder": "torus", **spec})


def test_a_torus_system_needs_consistent_dims():
    s = catalog.system("tpu-v4-pod")
    import dataclasses

    with pytest.raises(ValueError, match="hold 64 cards, not domain_cards = 4096"):
        dataclasses.replace(s, torus_dims=(4, 4, 4))
    with pytest.raises(ValueError, match="only a torus system has them"):
        dataclasses.replace(catalog.system("hgx-h100"), torus_dims=(2, 2, 2))
