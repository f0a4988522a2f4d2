"""Pool scenario (a), workloads/pool_utilization_uplift.yaml, at a short horizon: a golden summary
of headline keys per pool policy, and what pooling buys over silos (docs/experiments_pool.md).

Regenerate deliberately, never silently: print the values with
``cluster-sim run workloads/pool_utilization_uplift.yaml --set duration=2h --set policy.pool=P --json``
for P in static_partition, shared_pool, copy the keys below and say in the commit why they changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster_sim.cli import main

REPO = Path(__file__).resolve().parents[2]
UPLIFT = str(REPO / "workloads" / "pool_utilization_uplift.yaml")
SHORT = ["--set", "duration=2h"]

GOLDEN = {
    "static_partition": {
        "pool.utilization.allocated": 0.8915184501283416,
        "pool.utilization.busy": 0.5228353552901343,
        "pool.utilization.serving": 0.625,
        "pool.utilization.training": 0.26651845012834174,
        "training.jobs.finished": 5,
        "inference.requests": 43113.0,
        "inference.slo_attainment": 0.9992805254485112,
        "cost_usd": 460.4514491222859,
    },
    "shared_pool": {
        "pool.utilization.allocated": 0.7787669034212179,
        "pool.utilization.busy": 0.6640331384897281,
        "pool.utilization.serving": 0.3885416666666667,
        "pool.utilization.training": 0.3839752367545513,
        "training.jobs.finished": 8,
        "inference.requests": 43113.0,
        "inference.slo_attainment": 0.9992805254485112,
        "pool.lends": 26,
        "pool.refused_scale_ups": 22,
        "cost_usd": 402.21753027899064,
    },
}


@pytest.fixture(scope="module")
def summaries(tmp_path_factory) -> dict[str, dict]:
    out = {}
    for pool in GOLDEN:
        d = tmp_path_factory.mktemp(pool) / "run"
        code = main(["run", UPLIFT, *SHORT, "--set", f"policy.pool={pool}", "--out", str(d), "--json"])
        assert code == 0
        out[pool] = json.loads((d / "summary.json").read_text())
    return out


@pytest.mark.parametrize("pool", list(GOLDEN))
def test_golden_headline_keys(summaries, pool):
    got = summaries[pool]
    for k, v in GOLDEN[pool].items():
        if isinstance(v, int):
            assert got[k] == v, k
        else:
            assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k


def test_pooling_lends_idle_silo_cards_to_training(summaries):
    silo, pool = summaries["static_partition"], summaries["shared_pool"]
    # the same requests are served at the same SLO attainment either way ...
    assert pool["inference.requests"] == silo["inference.requests"]
    assert pool["inference.slo_attainment"] >= silo["inference.slo_attainment"] - 1e-3
    # ... the silos hold exactly the deployments' 60 of 96 cards all the time, the pool only while on
    assert silo["pool.utilization.serving"] == pytest.approx(60 / 96, rel=1e-12)
    assert pool["pool.utilization.serving"] < silo["pool.utilization.serving"] - 0.1
    # the cards parked replicas no longer hold went to training: more cards do work, more jobs end,
    # and fewer cards are held without doing anything (allocated - busy)
    assert pool["pool.lends"] > 0
    assert pool["pool.utilization.training"] > silo["pool.utilization.training"] + 0.1
    assert pool["pool.utilization.busy"] > silo["pool.utilization.busy"] + 0.1
    assert pool["training.jobs.finished"] > silo["training.jobs.finished"]
    held_idle = {k: s["pool.utilization.allocated"] - s["pool.utilization.busy"] for k, s in summaries.items()}
    assert held_idle["shared_pool"] < held_idle["static_partition"] - 0.2
    # card-seconds add up over the whole cluster in both runs
    for s in (silo, pool):
        total = sum(s[f"pool.utilization.{st}"] for st in ("idle", "training", "serving", "moving", "down"))
        assert total == pytest.approx(1.0, rel=1e-9)
