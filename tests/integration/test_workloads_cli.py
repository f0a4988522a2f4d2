"""Every shipped experiment in workloads/ runs from the CLI (issue item 5: fragmentation_openb.yaml
used to fail in ``run``, ``compare`` and ``validate`` with ``unknown builder 'openb_nodes'``).

Each file goes through ``cluster-sim run FILE --set ... --out DIR`` in-process, with a short
horizon so the whole set stays in tens of seconds; the overrides only shorten a run, they never
change what it is made of. A new file in workloads/ is picked up automatically (no overrides). A plan file (a top-level
``experiment:`` key, the rule ``cluster-sim sweep`` uses for a sweep file) is not an experiment:
it goes through ``cluster-sim plan FILE --workers 0`` instead, with its own short overrides.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster_sim.cli import main
from cluster_sim.config import read_mapping
from cluster_sim.experiment.sweep_spec import is_sweep_file

REPO = Path(__file__).resolve().parents[2]
ALL_FILES = sorted((REPO / "workloads").glob("*.yaml"))
PLANS = [p for p in ALL_FILES if is_sweep_file(read_mapping(p))]
WORKLOADS = [p for p in ALL_FILES if p not in PLANS]

SHORT: dict[str, list[str]] = {  # file name -> --set overrides that shorten the run
    "demo.yaml": ["duration=10min", "scaling.cards=[32,64]", "scaling.topologies=[]"],
    "faults_stragglers.yaml": ["duration=2d"],
    "faults_16k_pretraining.yaml": ["duration=2d"],
    "fragmentation_openb.yaml": ["training.trace.max_jobs=300"],
    "faults_checkpoint_interval.yaml": ["training.jobs.0.tokens=0.2T"],
    "heterogeneity.yaml": ["duration=1d"],
    "placement_oversubscribed.yaml": ["duration=1d"],
    "pool_demand_shift.yaml": ["duration=2h"],
    "pool_multi_vendor.yaml": ["duration=2h"],
    "pool_multi_vendor_router.yaml": ["duration=2h"],
    "pool_many_models.yaml": ["duration=20min"],
    "pool_offline_batch.yaml": ["duration=30h"],
    "pool_many_models_sliced.yaml": ["duration=20min"],
    "pool_peak_shaving.yaml": ["duration=1h"],
    "pool_utilization_uplift.yaml": ["duration=2h"],
    "pool_tenant_silos.yaml": ["duration=6h"],
    "scaling_70b_fabrics.yaml": ["scaling.cards=[32,64]"],
    "schedulers.yaml": ["duration=1d"],
    "serving_13b_colocated_vs_pd.yaml": ["inference.services.0.arrivals.max_requests=100"],
    "serving_deepseek_supernode.yaml": ["duration=2s"],
    "serving_hetero_prefill_decode.yaml": ["duration=5s"],
    "serving_latency_tiers.yaml": ["duration=5s"],
    "serving_replica_failures.yaml": ["duration=2min", "failures.serving.replica_mtbf=10min"],
}

SHORT_PLANS: dict[str, list[str]] = {  # plan file -> --set overrides (every candidate's runs)
    "plan_serving_pd.yaml": ["inference.services.0.arrivals.max_requests=100"],
    "plan_supernode.yaml": ["duration=20s"],
}


def test_every_workload_is_listed():
    assert set(SHORT) <= {p.name for p in WORKLOADS}, "SHORT names a file that is gone"
    assert set(SHORT_PLANS) == {p.name for p in PLANS}, "give each plan file its short overrides"
    assert len(WORKLOADS) >= 11


@pytest.mark.parametrize("path", PLANS, ids=[p.stem for p in PLANS])
def test_plan_file_runs_from_the_cli(path, capsys):
    sets = [x for kv in SHORT_PLANS[path.name] for x in ("--set", kv)]
    code = main(["plan", str(path), *sets, "--workers", "0", "--seeds", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    got = json.loads(out)
    assert got["failed"] == 0 and got["executed"] == len(got["candidates"]) >= 2
    assert got["line"].startswith("cheapest feasible: ")
    assert any(c["pareto"] for c in got["candidates"])


@pytest.mark.parametrize("path", WORKLOADS, ids=[p.stem for p in WORKLOADS])
def test_workload_runs_from_the_cli(path, tmp_path, capsys, request):
    if "shared/traces" in path.read_text(encoding="utf-8"):
        request.getfixturevalue("traces")  # skip when the public traces are not beside the repo
    sets = [x for kv in SHORT.get(path.name, []) for x in ("--set", kv)]
    out = tmp_path / "run"
    code = main(["run", str(path), *sets, "--out", str(out), "--json"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary == json.loads(stdout)
    assert summary["cluster.cards"] > 0 and summary["experiment"]
    assert (out / "report.html").is_file()
    # the file's engines really ran: a job stream has jobs, a serving experiment has requests
    text = path.read_text(encoding="utf-8")
    if "generator:" in text or "trace:" in text.split("inference:")[0]:
        assert summary["training.jobs.finished"] > 0
    if "services:" in text:
        assert summary["inference.requests"] > 0
    if "offline_jobs:" in text:
        assert summary["offline.jobs.finished"] > 0 and summary["offline.tokens.processed"] > 0


def test_openb_inventory_validates_and_compares(tmp_path, capsys, traces):
    f = str(REPO / "workloads" / "fragmentation_openb.yaml")
    assert main(["validate", f]) == 0
    out = capsys.readouterr().out
    assert "node inventory (openb_nodes), 4,662 cards" in out and "backfill=greedy" in out
    code = main(["compare", f, "--set", "training.trace.max_jobs=200", "--json",
                 "--factor", "policy.training.placement=packed,fragmentation_aware"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["policy.training.placement"] for r in rows] == ["packed", "fragmentation_aware"]
    assert all(r["cluster.cards"] == 4662 for r in rows)
