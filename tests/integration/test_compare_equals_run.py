"""Differential guard (issue item 1): a ``compare`` variant is exactly ``run --set FACTOR=VALUE``.

``compare`` used to rebuild each variant from ``cfg.model_dump()``, which marks every field as
set, so a ``policy.training.scheduler`` preset's stages and backfill never applied: seven
schedulers gave seven identical columns, and a preset's backfill was lost. For every factor the
shipped workloads and the docs compare (scheduler presets, backfill, placement, serving mode,
arrival rate, routing, autoscaling, batching, parallel plan), each row of ``cluster-sim compare``
(file path) and of ``compare(cfg)`` (validated config) must equal the summary of
``simulate(load_config(file, overrides={factor: value}))``, wall-clock keys aside. Horizons are
shortened by overrides common to all three.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from cluster_sim.cli import main
from cluster_sim.config import load_config
from cluster_sim.experiment import compare, simulate

REPO = Path(__file__).resolve().parents[2]
WALL = ("sim.wall_s", "sim.events_per_s", "sim.jobs_per_s", "sim.requests_per_wall_s")
PRESETS = ["fifo", "tiresias", "sjf", "priority", "easy", "gavel", "fgd", "kube", "topology"]
SERVE = {"inference.services.0.arrivals.max_requests": "60"}

CASES: list[tuple[str, str, list[str], dict[str, str]]] = [
    ("schedulers.yaml", "policy.training.scheduler", PRESETS, {"duration": "12h"}),
    ("faults_stragglers.yaml", "policy.training.stragglers", ["ignore", "replace"], {"duration": "1d"}),
    ("faults_checkpoint_interval.yaml", "failures.checkpoint.interval", ["30m", "90m"],
     {"training.jobs.0.tokens": "0.2T"}),
    ("schedulers.yaml", "policy.training.backfill", ["false", "true", "easy", "greedy"],
     {"duration": "12h", "policy.training.scheduler": "kube"}),        # explicit backfill beats the preset's
    ("placement_oversubscribed.yaml", "policy.training.placement", ["spread", "packed", "topology_aware"],
     {"duration": "12h"}),
    ("heterogeneity.yaml", "policy.training.placement", ["packed", "spread", "heterogeneity_aware"],
     {"duration": "12h"}),
    ("fragmentation_openb.yaml", "policy.training.placement", ["packed", "spread", "fragmentation_aware"],
     {"training.trace.max_jobs": "200"}),                              # scheduler: kube (greedy backfill)
    ("demo.yaml", "policy.training.placement", ["packed", "topology_aware"],
     {"duration": "5min", "scaling.cards": "[32,64]", "scaling.topologies": "[]"}),
    ("serving_13b_colocated_vs_pd.yaml", "inference.services.0.deployment.mode", ["colocated", "disaggregated"],
     SERVE),
    ("serving_13b_colocated_vs_pd.yaml", "inference.services.0.arrivals.rate", ["4", "8", "16"], SERVE),
    ("serving_13b_colocated_vs_pd.yaml", "policy.serving.routing",
     ["round_robin", "least_loaded", "prefix_aware", "random"], SERVE),
    ("serving_13b_colocated_vs_pd.yaml", "policy.serving.autoscaling", ["fixed", "queue_driven", "latency_driven"],
     SERVE),
    ("serving_deepseek_supernode.yaml", "policy.serving.batching.max_batch_seqs", ["256", "1024"], {"duration": "1s"}),
    ("train_llama3_70b.yaml", "training.jobs.0.parallel.pp", ["2", "4", "8"], {}),
    ("pool_peak_shaving.yaml", "policy.pool", ["static_partition", "shared_pool", "peak_shaving"],
     {"duration": "10min"}),
    ("pool_many_models.yaml", "policy.pool", ["static_partition", "shared_pool"], {"duration": "10min"}),
    ("pool_many_models.yaml", "policy.pool.params.min_replicas", ["1", "0"], {"duration": "10min"}),
    ("pool_multi_vendor.yaml", "policy.pool", ["static_partition", "shared_pool"], {"duration": "20min"}),
    ("pool_utilization_uplift.yaml", "policy.pool", ["static_partition", "shared_pool"], {"duration": "20min"}),
    ("pool_demand_shift.yaml", "inference.services.0.arrivals.rate", ["0.75", "3"], {"duration": "20min"}),
    ("pool_many_models_sliced.yaml", "policy.pool", ["static_partition"], {"duration": "10min"}),
    ("pool_many_models_sliced.yaml", "policy.pool.params.min_replicas", ["1", "0"],
     {"duration": "10min", "policy.pool": "{name: shared_pool, params: {lend_after_s: 120}}"}),
    ("pool_multi_vendor_router.yaml", "policy.pool", ["static_partition", "shared_pool", "peak_shaving"],
     {"duration": "20min"}),
    ("pool_tenant_silos.yaml", "policy.pool.name", ["static_partition", "shared_pool"], {"duration": "2h"}),
]


def _same(row: dict[str, Any], summary: dict[str, Any], factor: str, where: str) -> None:
    for k, v in summary.items():
        if k in WALL or isinstance(v, (str, dict, list)) or v is None:
            continue
        assert k in row, f"{where}: {k} missing from the compare row"
        assert row[k] == v, f"{where}: {k}: compare {row[k]!r} != run --set {v!r}"
    for k, v in row.items():
        if k not in summary and k != factor:
            assert v is None or (isinstance(v, float) and math.isnan(v)), f"{where}: {k} only in compare"


@pytest.mark.parametrize("name,factor,values,short", CASES, ids=[f"{c[0].split('.')[0]}:{c[1]}" for c in CASES])
def test_compare_row_equals_run_with_set(name, factor, values, short, capsys, request):
    path = REPO / "workloads" / name
    if "shared/traces" in path.read_text(encoding="utf-8"):
        request.getfixturevalue("traces")
    sets = [x for k, v in short.items() for x in ("--set", f"{k}={v}")]
    assert main(["compare", str(path), *sets, "--factor", f"{factor}={','.join(values)}", "--json"]) == 0
    cli_rows = json.loads(capsys.readouterr().out)
    api_rows = compare(load_config(path, overrides=short), factor, values).to_dict(orient="records")
    assert [r[factor] for r in cli_rows] == values and [r[factor] for r in api_rows] == values
    runs = [simulate(load_config(path, overrides={**short, factor: v})).summary for v in values]
    for v, cli, api, summary in zip(values, cli_rows, api_rows, runs, strict=True):
        _same(cli, summary, factor, f"cli compare {factor}={v}")
        _same(api, summary, factor, f"compare(cfg) {factor}={v}")


SEEDED = ("schedulers.yaml", "policy.training.scheduler", ["fifo", "sjf"], [0, 2], {"duration": "12h"})


def test_compare_with_seeds_row_equals_run_with_seed_and_factor_set(capsys):
    """With ``--seeds``, the (value, seed) row is ``run --set seed=S --set FACTOR=VALUE`` (issue #13 item 5)."""
    name, factor, values, seeds, short = SEEDED
    path = REPO / "workloads" / name
    sets = [x for k, v in short.items() for x in ("--set", f"{k}={v}")]
    assert main(["compare", str(path), *sets, "--factor", f"{factor}={','.join(values)}",
                 "--seeds", ",".join(map(str, seeds)), "--json"]) == 0
    cli_rows = json.loads(capsys.readouterr().out)["runs"]
    api_rows = compare(load_config(path, overrides=short), factor, values, seeds=seeds).to_dict(orient="records")
    pairs = [(v, s) for v in values for s in seeds]
    assert [(r[factor], r["seed"]) for r in cli_rows] == pairs == [(r[factor], r["seed"]) for r in api_rows]
    for (v, s), cli, api in zip(pairs, cli_rows, api_rows, strict=True):
        summary = simulate(load_config(path, overrides={**short, "seed": s, factor: v})).summary
        assert summary["seed"] == s  # the summary's own seed key: the seed was applied
        _same(cli, summary, factor, f"cli compare {v} seed {s}")
        _same(api, summary, factor, f"compare(cfg) {v} seed {s}")
    # the seed really changes the run, so the rows are not one run repeated
    finished = {(r[factor], r["seed"]): r["training.jobs.finished"] for r in api_rows}
    assert finished[("fifo", 0)] != finished[("fifo", 2)] or finished[("sjf", 0)] != finished[("sjf", 2)], finished


def test_scheduler_presets_really_differ():
    """The identical columns of the issue are gone: each preset changes the run (old code: all FIFO)."""
    path = REPO / "workloads" / "schedulers.yaml"
    table = compare(load_config(path, overrides={"duration": "1d"}), "policy.training.scheduler",
                    ["fifo", "sjf", "priority", "easy"])
    done = table.set_index("policy.training.scheduler")["training.jobs.finished"]
    assert done.nunique() == 4, done.to_dict()
    # shortest-first and EASY backfill both finish more jobs than FIFO's head-of-line blocking
    assert done["sjf"] > done["fifo"] and done["easy"] > done["fifo"], done.to_dict()


def test_every_factor_a_shipped_workload_names_is_in_the_differential_cases():
    """A workload that documents ``--factor KEY=...`` in its header gets a differential case."""
    import re

    covered = {(f, k) for f, k, _, _ in CASES}
    named = set()
    for path in sorted((REPO / "workloads").glob("*.yaml")):
        for key in re.findall(r"--factor\s+([\w.]+)=", path.read_text(encoding="utf-8")):
            named.add((path.name, key))
    assert named, "the workloads document no --factor at all?"
    missing = sorted(named - covered)
    assert not missing, f"add these (file, factor) pairs to CASES: {missing}"
