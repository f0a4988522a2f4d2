"""The planner's pure parts: the Pareto frontier, the pick, the verdict line, candidate expansion."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cluster_sim.config import load_config
from cluster_sim.errors import ConfigError
from cluster_sim.experiment.cluster import load_cluster
from cluster_sim.experiment.plan import cheapest_feasible, pareto_front, rank, verdict
from cluster_sim.experiment.plan_spec import (
    Objective,
    candidate_overrides,
    load_plan_file,
    parse_objectives,
)

REPO = Path(__file__).resolve().parents[2]
SERVING = REPO / "workloads" / "serving_13b_colocated_vs_pd.yaml"
SUPER = REPO / "workloads" / "plan_supernode_workload.yaml"
ATT = Objective("inference.chat.slo_attainment", ">=", 0.9)
DAYS = Objective("training.days_to_train", "<=", 45.0)


# ---- Pareto frontier ---------------------------------------------------------------------------
def test_pareto_front_hand_table():
    # cost (min), attainment (max)
    v = np.array([[1.0, 0.90],   # A: cheapest
                  [2.0, 0.95],   # B: better attainment, dearer: on the frontier
                  [2.0, 0.90],   # C: dominated by A (dearer, same attainment)
                  [1.0, 0.90],   # D: equal to A: a tie, both stay
                  [3.0, 0.95],   # E: dominated by B (same attainment, dearer)
                  [0.5, 0.50],   # F: cheapest of all, worst attainment: on the frontier
                  [1.5, np.nan]])  # G: NaN attainment is the worst: dominated by A
    assert pareto_front(v, [True, False]).tolist() == [True, True, False, True, False, True, False]


def test_pareto_front_three_axes_and_float_noise_is_a_tie():
    # cost (min), attainment (max), days (min): each point best in something, so none is dominated
    v = np.array([[1.0, 0.9, 50.0], [2.0, 0.9, 30.0], [2.0, 0.95, 60.0], [2.0 + 1e-12, 0.9, 30.0]])
    assert pareto_front(v, [True, False, True]).tolist() == [True, True, True, True]
    # without the tie tolerance the last row (1e-12 dearer) would be dominated by the second
    v2 = np.array([[2.0, 0.9, 30.0], [2.1, 0.9, 30.0]])
    assert pareto_front(v2, [True, False, True]).tolist() == [True, False]


def _table(rows):
    return pd.DataFrame(rows, columns=["candidate", "cost_per_day_usd", ATT.metric, DAYS.metric])


def test_rank_meets_shortfall_pareto_and_the_pick():
    t = rank(_table([["a", 100.0, 0.95, 50.0],    # misses days by 5/45
                     ["b", 200.0, 0.905, 44.5],   # feasible
                     ["c", 150.0, 0.91, 44.0],    # feasible and cheaper than b
                     ["d", 150.0, 0.91, 44.0],    # same as c: the first in order is the pick
                     ["e", 300.0, 0.80, 20.0]]), [ATT, DAYS])
    assert t["meets"].tolist() == [False, True, True, True, False]
    assert t["shortfall"].tolist() == pytest.approx([5 / 45, 0, 0, 0, 0.1 / 0.9])
    # b is dominated by c (dearer, lower attainment, longer); c and d tie
    assert t["pareto"].tolist() == [True, False, True, True, True]
    assert cheapest_feasible(t) == "c"
    line = verdict(t, [ATT, DAYS])
    assert line == ("cheapest feasible: c ($150.00/day; inference.chat.slo_attainment 91.0% >= 0.9, "
                    "training.days_to_train 44.0 d <= 45)")


def test_verdict_when_nothing_is_feasible_names_the_closest():
    t = rank(_table([["a", 100.0, 0.70, 30.0],     # shortfall 0.2/0.9 = 0.222
                     ["b", 300.0, 0.85, 40.0],     # 0.05/0.9 = 0.056: closest
                     ["c", 200.0, 0.95, 60.0]]),   # 15/45 = 0.333
             [ATT, DAYS])
    assert cheapest_feasible(t) is None
    assert verdict(t, [ATT, DAYS]) == (
        "cheapest feasible: none of the 3 candidates meets every objective; closest: b "
        "(inference.chat.slo_attainment 85.0%, needs >= 0.9)")


def test_a_candidate_that_did_not_run_is_neither_feasible_nor_on_the_frontier():
    t = rank(_table([["a", math.nan, math.nan, math.nan], ["b", 100.0, 0.95, 10.0]]), [ATT, DAYS])
    assert t["meets"].tolist() == [False, True] and t["pareto"].tolist() == [False, True]


def test_objective_met_and_shortfall_closed_form():
    assert ATT.met(0.9) and not ATT.met(0.8999) and not ATT.met(math.nan)
    assert DAYS.met(45.0) and not DAYS.met(45.1)
    assert ATT.shortfall(0.81) == pytest.approx(0.1) and DAYS.shortfall(90.0) == pytest.approx(1.0)
    assert ATT.shortfall(math.nan) == math.inf
    assert parse_objectives({"a.b": ">= 0.9", "c": "<=45"}, "o") == [Objective("a.b", ">=", 0.9),
                                                                     Objective("c", "<=", 45.0)]
    for bad in ({"a": "> 0.9"}, {"a": 0.9}, {}, {"a": ">= nan"}):
        with pytest.raises(ConfigError, match=r"^o"):
            parse_objectives(bad, "o")


# ---- candidate -> overrides ------------------------------------------------------------------------
def test_pd_and_card_type_expand_to_the_deployment_fields():
    base = load_config(SERVING)
    assert candidate_overrides({"pd": "1:7"}, base) == {
        "inference.services.0.deployment.mode": "disaggregated",
        "inference.services.0.deployment.prefill.replicas": 1,
        "inference.services.0.deployment.decode.replicas": 7}
    # colocated base, no pd: the colocated card type
    assert candidate_overrides({"card_type": "h100-sxm"}, base) == {
        "inference.services.0.deployment.card_type": "h100-sxm"}
    assert candidate_overrides({"pd": {"chat": "2:6"}, "set": {"inference.services.0.deployment.decode.replicas": 5}},
                               base)["inference.services.0.deployment.decode.replicas"] == 5  # set: wins


def test_card_type_reaches_every_job_and_pool_and_topology_is_cluster_topology():
    base = load_config(SUPER)
    topo = {"builder": "supernode", "system": "cloudmatrix384", "supernodes": 1}
    assert candidate_overrides({"topology": topo, "card_type": "ascend-910c"}, base) == {
        "cluster.topology": topo,
        "inference.services.0.deployment.prefill.card_type": "ascend-910c",
        "inference.services.0.deployment.decode.card_type": "ascend-910c",
        "training.jobs.0.card_type": "ascend-910c"}


def test_oversubscription_and_dc_split_rewrite_the_inline_topology():
    base = load_config(SUPER)
    got = candidate_overrides({"oversubscription": "4:1"}, base)["cluster.topology"]
    assert got == {**base.cluster.topology, "oversubscription": "4:1"}
    split = candidate_overrides({"dc_split": {"distance": "300 km", "convergence_ratio": 16}}, base)
    half = {"builder": "fat_tree", "system": "atlas-800t-a2", "nodes": 24, "fabric": "roce"}
    assert split["cluster.topology"] == {"name": "atlas-800t-a2-x48-2dc", "builder": "multi_dc",
                                         "sites": [half, half], "distance": "300 km", "convergence_ratio": 16}
    # and it is a topology the loader builds: two sites of 192 cards
    cfg = load_config(SUPER, overrides={"cluster.topology": split["cluster.topology"]})
    topo = load_cluster(cfg.cluster.topology, cfg.base_dir)
    assert topo.n_cards == 384 and len(topo.sites) == 2 and topo.dci


@pytest.mark.parametrize("fields,match", [
    ({"topolgy": {}}, r"^c\.topolgy: unknown candidate field; known: name, topology"),
    ({"pd": "0:8"}, r"^c\.pd: expected \"P:D\" with P, D >= 1"),
    ({"pd": {"nope": "1:1"}}, r"^c\.pd\.nope: no such service; services: chat"),
    ({"dc_split": {"distance": "1 km"}, "topology": {"builder": "fat_tree", "system": "dgx-a100", "nodes": 3}},
     r"^c\.dc_split: splits a fat_tree, rail or supernode topology with an even nodes count"),
    ({"dc_split": {"distance": "1 km", "far": 1}}, r"^c\.dc_split\.far: unknown field"),
    ({"oversubscription": "4:1", "topology": "topologies/h100-rail-1024.yaml"},
     r"^c\.oversubscription: needs an inline topology spec"),
])
def test_bad_candidate_fields_name_the_field(fields, match):
    with pytest.raises(ConfigError, match=match):
        candidate_overrides(fields, load_config(SERVING), "c")


# ---- the plan file --------------------------------------------------------------------------------
def _plan(tmp_path, text):
    p = tmp_path / "plan.yaml"
    p.write_text(f"experiment: {SERVING}\nobjectives: {{inference.chat.slo_attainment: '>= 0.9'}}\n" + text)
    return p


def test_grid_is_every_combination_in_nested_order(tmp_path):
    spec = load_plan_file(_plan(tmp_path, "grid:\n  fleet: [{name: a, card_type: x}, {name: b, card_type: y}]\n"
                                          "  pd: ['1:7', '2:6']\n  policy.serving.routing: [least_loaded]\n"))
    assert [c.name for c in spec.candidates] == [
        "a, pd=1:7, policy.serving.routing=least_loaded", "a, pd=2:6, policy.serving.routing=least_loaded",
        "b, pd=1:7, policy.serving.routing=least_loaded", "b, pd=2:6, policy.serving.routing=least_loaded"]
    assert spec.candidates[3].fields == {"card_type": "y", "pd": "2:6",
                                         "set": {"policy.serving.routing": "least_loaded"}}


@pytest.mark.parametrize("text,match", [
    ("candidates: []\n", r"candidates: no candidate"),
    ("", r"candidates: no candidate"),
    ("candidates: [{card_type: x}]\n", r"candidates\[0\]: expected a mapping with a name"),
    ("candidates: [{name: a}, {name: a}]\n", r"the name 'a' is given twice"),
    ("grid: {colour: [red]}\n", r"grid\.colour: unknown candidate field"),
    ("grid: {pd: []}\n", r"grid\.pd: expected a non-empty list"),
    ("seeds: 0\ncandidates: [{name: a}]\n", r"seeds: expected a count N >= 1"),
    ("budget: 3\n", r"budget: unknown field; known: experiment, set"),
])
def test_bad_plan_files_name_the_file_and_field(tmp_path, text, match):
    p = _plan(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"^{p}: .*{match}"):
        load_plan_file(p)
