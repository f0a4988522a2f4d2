"""Topology YAML files: every shipped file loads; bad files fail with file + field path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cluster_sim.errors import TopologyError
from cluster_sim.topology import load_topology

REPO = Path(__file__).resolve().parents[2]
FILES = sorted((REPO / "topologies").glob("*.yaml"))

EXPECTED_CARDS = {
    "h100-rail-1024": 1024, "h100-fattree-4to1-1024": 1024, "h100-ethernet-1024": 1024,
    "ascend-384-supernode": 1536, "ascend-910b-1024": 1024, "mixed-a100-h100-910b": 768,
    "two-dc-300km": 2048, "selene-a100-3072": 3072, "gb200-nvl72-1152": 1152, "h100-cluster-100k": 100_000,
}


def test_all_expected_files_exist():
    assert {f.stem for f in FILES} >= set(EXPECTED_CARDS)


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_every_file_loads_and_validates(path):
    text = path.read_text()
    assert text.startswith("#"), "each topology file starts with a comment saying what it models"
    assert "Sources" in text or "source" in text.lower()
    t = load_topology(path)
    t.validate()
    assert t.name == path.stem
    if path.stem in EXPECTED_CARDS:
        assert t.n_cards == EXPECTED_CARDS[path.stem]
    assert t.bisection_Bps > 0
    levels = t.comm_levels(np.arange(t.n_cards))
    assert int(np.prod([lv.fanout for lv in levels])) <= t.n_cards


def test_published_shapes():
    rail = load_topology(REPO / "topologies/h100-rail-1024.yaml")
    four = load_topology(REPO / "topologies/h100-fattree-4to1-1024.yaml")
    eth = load_topology(REPO / "topologies/h100-ethernet-1024.yaml")
    assert rail.bisection_Bps / four.bisection_Bps == pytest.approx(4.0)
    dp = np.arange(0, 1024, 8)
    assert eth.comm_levels(dp)[0].efficiency < rail.comm_levels(dp)[0].efficiency
    assert eth.comm_levels(dp)[0].latency_s > rail.comm_levels(dp)[0].latency_s
    two = load_topology(REPO / "topologies/two-dc-300km.yaml")
    assert two.dci[0].convergence_ratio == pytest.approx(16) and two.dci[0].distance_m == pytest.approx(300e3)
    assert two.path_latency_s(0, 2047) == pytest.approx(1.5e-3, rel=0.03)
    sn = load_topology(REPO / "topologies/ascend-384-supernode.yaml")
    assert sn.comm_levels(range(384))[0].fanout == 384 and len(sn.comm_levels(range(384))) == 1
    assert load_topology(REPO / "topologies/ascend-910b-1024.yaml").nic_Bps(0) == pytest.approx(25e9)
    assert eth.nic_Bps(0) == pytest.approx(12.5e9)  # 100G plain Ethernet


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_human_strings_and_inline_dict():
    t = load_topology({"builder": "fat_tree", "system": "hgx-h100", "nodes": 4, "nic_bandwidth": "100 Gbps",
                       "oversubscription": "2:1"})
    assert t.name == "inline" and t.nic_Bps(0) == pytest.approx(12.5e9)
    assert t.sites[0].oversubscription == {"leaf": 2.0}


def test_multi_dc_sites_by_file_and_inline(tmp_path):
    write(tmp_path, "site.yaml", "builder: rail\nsystem: hgx-h100\nnodes: 4\n")
    p = write(tmp_path, "two.yaml", "name: two\nbuilder: multi_dc\nsites:\n  - site.yaml\n"
              "  - {builder: fat_tree, system: dgx-a100, nodes: 4}\ndistance: 50 km\ndci_bandwidth: 800 Gbps\n")
    t = load_topology(p)
    assert t.n_cards == 64 and t.card_types == ["a100-80gb", "h100-sxm"]
    assert t.dci[0].capacity_Bps == pytest.approx(100e9)
    assert t.dci[0].latency_s == pytest.approx(50 * 5e-6 + 20e-6)


@pytest.mark.parametrize("body, message", [
    ("builder: fat_tree\nsystem: hgx-h100\nnodez: 4\n", "nodez: unknown key; allowed:"),
    ("builder: fat_tree\nsystem: hgx-h100\nnodes: many\n", "nodes: expected a positive integer, got 'many'"),
    ("builder: fat_tree\nsystem: hgx-h100\nnodes: true\n", "nodes: expected a positive integer"),
    ("builder: fat_tree\nsystem: dgx-h300\nnodes: 4\n", "system: unknown system 'dgx-h300'; known:"),
    ("builder: fat_tree\nsystem: hgx-h100\n", "nodes: missing (required by builder 'fat_tree')"),
    ("builder: fat_tre\nsystem: hgx-h100\nnodes: 4\n", "builder: unknown builder 'fat_tre'; known:"),
    ("system: hgx-h100\nnodes: 4\n", "builder: missing"),
    ("builder: fat_tree\nsystem: hgx-h100\nnodes: 4\nfabric: ib_xyz\n", "fabric: unknown fabric 'ib_xyz'"),
    ("builder: fat_tree\nsystem: hgx-h100\nnodes: 4\nfabric: dci\n", "fabric: fabric 'dci' is a dci fabric"),
    ("builder: fat_tree\nsystem: hgx-h100\nnodes: 4\nnic_bandwidth: 400\n", "nic_bandwidth: expected a bandwidth"),
    ("builder: fat_tree\nsystem: hgx-h100\nnodes: 4\noversubscription: 0.5\n", "oversubscription: expected a ratio"),
    ("builder: fat_tree\nsystem: gb200-nvl72\nnodes: 10\n", "nodes (10) must be a multiple of 18"),
    ("builder: heterogeneous\nparts:\n  - {system: hgx-h100, nodes: 2}\n  - {system: dgx-a100, cards: 2}\n",
     "parts[1].cards: unknown key"),
    ("builder: multi_dc\nsites:\n  - {builder: rail, system: hgx-h100, nodes: 4}\n"
     "  - {builder: rail, system: dgx-h300, nodes: 4}\ndistance: 300 km\n",
     "sites[1].system: unknown system 'dgx-h300'; known:"),
    ("builder: multi_dc\nsites:\n  - missing.yaml\n  - missing.yaml\ndistance: 300 km\n",
     "sites[0]: no such topology file 'missing.yaml'"),
    ("builder: multi_dc\nsites:\n  - {builder: rail, system: hgx-h100, nodes: 4}\n"
     "  - {builder: rail, system: hgx-h100, nodes: 4}\ndistance: 300\n", "distance: expected a distance"),
    ("- just\n- a list\n", "top level: expected a mapping"),
    ("builder: [fat_tree\n", "invalid YAML (line"),
])
def test_bad_files_name_file_and_field(tmp_path, body, message):
    p = write(tmp_path, "bad.yaml", body)
    with pytest.raises(TopologyError) as info:
        load_topology(p)
    text = str(info.value)
    assert text.startswith(f"{p}: "), text
    assert message in text, text
    assert "\n" not in text


def test_missing_file():
    with pytest.raises(TopologyError, match="no-such.yaml: no such topology file"):
        load_topology("no-such.yaml")
