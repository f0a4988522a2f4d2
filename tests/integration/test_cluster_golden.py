"""A seeded end-to-end cluster scenario (config -> engine -> metrics) against a committed golden summary.

Regenerate deliberately, never silently: ``CLUSTER_SIM_REGEN_GOLDEN=1 pytest tests/integration/
test_cluster_golden.py`` rewrites ``tests/golden/cluster_golden.json``; review the diff.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from cluster_sim.experiment.drivers import run_training

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "cluster_golden.json"
SCENARIO = {
    "name": "golden-cluster",
    "seed": 11,
    "duration": "20d",
    "cluster": {"topology": {"builder": "node_groups", "nodes_per_leaf": 4, "oversubscription": 2,
                             "groups": [["h100-sxm", 8, 16], ["a100-80gb", 8, 16], ["ascend-910b", 8, 8]]}},
    "training": {"generator": {"kind": "industry_mix", "n_jobs": 800, "jobs_per_hour": 4,
                               "params": {"tenants": ["a", "b", "c"], "constrained_fraction": 0.2}}},
    "policy": {"training": {"ordering": "sjf", "placement": "topology_aware", "preemption": "priority",
                            "backfill": True}},
    "failures": {"card_mtbf": "2000h", "restart_delay": "10m", "checkpoint_cost": "30s"},
}
VOLATILE = ("sim.wall_s", "sim.events_per_s", "sim.jobs_per_s")


def jobs_digest(jobs) -> str:
    """SHA-256 of the per-job outcome columns (rounded to 1e-6 s)."""
    cols = jobs[["job_id", "status", "first_start_s", "finish_s", "restarts", "preemptions", "card_type"]]
    rows = [(int(r.job_id), r.status, None if math.isnan(r.first_start_s) else round(r.first_start_s, 6),
             None if math.isnan(r.finish_s) else round(r.finish_s, 6), int(r.restarts), int(r.preemptions),
             r.card_type) for r in cols.itertuples()]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def run_golden() -> dict:
    res = run_training(SCENARIO)
    summary = {k: v for k, v in res.summary.items() if k not in VOLATILE}
    return {"summary": summary, "jobs_sha256": jobs_digest(res.jobs)}


def test_golden_summary():
    got = run_golden()
    if os.environ.get("CLUSTER_SIM_REGEN_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
        pytest.skip("golden regenerated; review the diff")
    want = json.loads(GOLDEN.read_text())
    assert sorted(got["summary"]) == sorted(want["summary"])
    for k, v in want["summary"].items():
        g = got["summary"][k]
        if v is None or isinstance(v, str):
            assert g == v, k
        else:
            assert g == pytest.approx(v, rel=1e-9, abs=1e-9), k
    assert got["jobs_sha256"] == want["jobs_sha256"]
    s = got["summary"]
    # the scenario exercises what it claims to
    assert s["training.restarts"] > 0 and s["training.preemptions"] > 0 and s["training.jobs.rejected"] >= 0
    assert 0 < s["utilization.busy"] <= s["utilization.allocated"] < 1
    assert np.isfinite(s["training.jobs.mfu"]) and 0 < s["training.jobs.mfu"] < 1
