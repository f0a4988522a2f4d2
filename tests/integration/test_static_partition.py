"""``policy.pool: static_partition``: training and serving in ONE simulation on one card ledger.

* Closed form: with an inference partition of exactly the serving deployment's cards, the
  serving engine sees the same cards as under ``separate``, so every ``inference.*`` key is
  identical; the training engine never places a job on a partition card (from its allocations
  and its segments' first domains), and its card-hours are the ledger's ``training`` card-hours.
* The ledger's card-hours add up to cards x run time; ``sources`` names the pool ledger.
* Bad partitions are one path-qualified line and exit code 2 from the CLI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cluster_sim import load_config, simulate
from cluster_sim.engine.cluster.state import ClusterState
from cluster_sim.errors import ConfigError

CLI = Path(sys.executable).with_name("cluster-sim")
TOPO = {"name": "a100-x4", "builder": "fat_tree", "system": "dgx-a100", "nodes": 4}   # 32 cards, 8 per domain
EXP = {
    "name": "pool-closed-form", "seed": 3, "duration": "30min",
    "cluster": {"topology": TOPO},
    "training": {"generator": {"kind": "uniform", "n_jobs": 60, "jobs_per_hour": 240,
                               "params": {"mean_duration_s": 600.0, "num_cards": 4}}},
    "inference": {"services": [{"name": "chat", "model": "llama3-8b", "slo": {"ttft": "1s", "tpot": "100ms"},
                                "deployment": {"mode": "colocated", "replicas": 4, "card_type": "a100-80gb",
                                               "tp": 2},
                                "arrivals": {"kind": "poisson", "rate": 4.0,
                                             "prompt_tokens": 512, "output_tokens": 64}}]},
}


def _cfg(pool):
    return load_config({**EXP, "policy": {"pool": pool}})


@pytest.fixture(scope="module")
def runs():
    allocations: list[np.ndarray] = []
    orig = ClusterState.allocate

    def spy(self, job, cards, *a, **kw):
        out = orig(self, job, cards, *a, **kw)
        allocations.append(np.asarray(out).copy())
        return out

    sep = simulate(_cfg("separate"))
    ClusterState.allocate = spy
    try:
        part = simulate(_cfg({"name": "static_partition", "params": {"inference_cards": {"a100-80gb": 8}}}))
    finally:
        ClusterState.allocate = orig
    return sep, part, allocations


def test_serving_summary_is_the_same_as_separate(runs):
    sep, part, _ = runs
    inf = sorted(k for k in sep.summary if k.startswith("inference.") and "per_wall" not in k)
    assert len(inf) > 20
    assert {k: part.summary[k] for k in inf} == {k: sep.summary[k] for k in inf}
    assert sep.requests.equals(part.requests)


def test_training_never_lands_on_the_partition(runs):
    _, part, allocations = runs
    assert allocations, "the training engine placed no job"
    inside = set(range(8))  # 8 a100 cards of domain 0 (whole domains first)
    assert all(not (set(a.tolist()) & inside) for a in allocations)
    seg = part.tables["segments"]
    assert len(seg) > 0 and (seg["domain"] != 0).all()
    # the training engine's capacity is the other 24 cards
    assert part.summary["utilization.allocated"] == pytest.approx(
        part.summary["pool.card_hours.training"] / (24 * 0.5), rel=1e-9)


def test_ledger_card_hours_add_up_and_are_sourced(runs):
    sep, part, _ = runs
    hours = {s: part.summary[f"pool.card_hours.{s}"] for s in ("idle", "training", "serving", "moving", "down")}
    assert sum(hours.values()) == pytest.approx(32 * 0.5, rel=1e-9)
    assert hours["serving"] == pytest.approx(8 * 0.5, rel=1e-12)
    assert sum(part.summary[f"pool.utilization.{s}"] for s in hours) == pytest.approx(1.0, rel=1e-9)
    assert part.summary["sources"]["pool.*"] == "pool ledger"
    assert not any(k.startswith("pool.") for k in sep.summary)
    assert "no card sharing" in " ".join(sep.notes)
    assert any("one simulation on one card ledger; inference partition 8 a100-80gb, training on the other "
               "24 cards" in n for n in part.notes)


def test_default_partition_is_the_deployments_cards():
    from cluster_sim.experiment.build import pool_plan
    from cluster_sim.experiment.cluster import Cluster

    cfg = _cfg("static_partition")
    plan = pool_plan(cfg, Cluster.load(cfg).layout)
    assert plan.shared and plan.inference_by_type == {"a100-80gb": 8}
    assert plan.inference_cards.tolist() == list(range(8))


@pytest.mark.parametrize("pool,message", [
    ({"name": "static_partition", "params": {"inference_cards": {"a100-80gb": 64}}},
     "policy.pool.params.inference_cards.a100-80gb: asks for 64 cards; the cluster has 32 a100-80gb"),
    ({"name": "static_partition", "params": {"inference_cards": {"h100-sxm": 8}}},
     "policy.pool.params.inference_cards.h100-sxm: no card of type 'h100-sxm' in the cluster; it has: a100-80gb"),
    ({"name": "static_partition", "params": {"inference_cards": {"a100-80gb": 6}}},
     "policy.pool.params.inference_cards.a100-80gb: the inference partition has 6 a100-80gb cards; the "
     "deployments need 8 (inference.services[0].deployment: 8)"),
    ({"name": "static_partition", "params": {"inference_fraction": 0.125}},
     "policy.pool.params.inference_fraction: the inference partition has 4 a100-80gb cards; the deployments "
     "need 8 (inference.services[0].deployment: 8)"),
])
def test_bad_partitions_are_one_clear_error_before_anything_runs(pool, message):
    with pytest.raises(ConfigError) as err:
        simulate(_cfg(pool))
    assert str(err.value) == message


@pytest.mark.parametrize("sets,message", [
    (["policy.pool.name=static_partition", "policy.pool.params.inference_cards.h100-sxm=4096"],
     "error: policy.pool.params.inference_cards.h100-sxm: asks for 4096 cards; the cluster has 1024 h100-sxm"),
    (["policy.pool.name=static_partition", "policy.pool.params.inference_cards.h100-sxm=4"],
     "error: policy.pool.params.inference_cards.h100-sxm: the inference partition has 4 h100-sxm cards; "
     "the deployments need 8 (inference.services[0].deployment: 8)"),
    (["policy.pool.name=static_partition", "policy.pool.params.inference_fraction=-1"],
     "error: workloads/demo.yaml: policy.pool.params.inference_fraction: must be >= 0, got -1"),
    (["policy.pool=no_such_pool"],
     "error: workloads/demo.yaml: policy.pool: unknown pool policy 'no_such_pool'; known: peak_shaving, separate, shared_pool, static_partition"),
])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_cli_bad_partition_exit_2_one_line(command, sets, message, tmp_path):
    args = [str(CLI), command, "workloads/demo.yaml"]
    for s in sets:
        args += ["--set", s]
    if command == "run":
        args += ["--out", str(tmp_path / "out")]
    p = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    lines = [x for x in (p.stdout + p.stderr).splitlines() if x.strip()]
    assert lines == [message]
    assert not (tmp_path / "out").exists()


def test_validate_prints_the_partition():
    p = subprocess.run([str(CLI), "validate", "workloads/demo.yaml", "--set", "policy.pool=static_partition"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "ok  policy.pool: static_partition: inference partition 8 h100-sxm, training on the other 1,016 cards" \
        in p.stdout.splitlines()
