"""Golden summaries of pool scenarios (b), (c) with its one-router variant, (d) and (e) at short
horizons (scenario (a): test_pool_scenarios.py).

Regenerate deliberately, never silently: run each ``cluster-sim run workloads/FILE --set ... --json``
below, copy the keys, and say in the commit why they changed. At 3 h the peak-shaving scenario has
not yet filled the cluster with training (no reclaim is needed); the pin is of the whole pooled
run (ledger, broker, both engines on one clock), the contention is in docs/pool.md's 24 h table.
Scenario (e) starts 2 h before its trough (``trough_at=22h``) so its first 3 h see the service
shrink and grow again: replicas lend their cards to training and reclaim them (41 evictions).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster_sim.cli import main

REPO = Path(__file__).resolve().parents[2]

GOLDEN = {
    ("pool_peak_shaving.yaml", ("duration=3h", "policy.pool=peak_shaving")): {
        "pool.utilization.allocated": 0.6410943574347654, "pool.utilization.busy": 0.6222179422285522,
        "pool.utilization.serving": 0.04244791666666667, "pool.utilization.training": 0.598017100490321,
        "pool.utilization.moving": 0.0006293402777777778, "training.jobs.finished": 99,
        "inference.requests": 44516.0, "inference.slo_attainment": 0.9999100739641644, "pool.evictions": 0,
        "pool.lends": 116, "pool.model_loads": 29, "pool.refused_scale_ups": 0, "training.goodput": 1.0,
        "cost_usd": 10595.597239293043},
    ("pool_many_models.yaml", ("duration=1h", "policy.pool.params.min_replicas=0")): {
        "pool.utilization.allocated": 0.651391091444173, "pool.utilization.busy": 0.4839816402636268,
        "pool.utilization.serving": 0.1949435763888889, "pool.utilization.training": 0.454711403944173,
        "pool.utilization.moving": 0.001736111111111111, "training.jobs.finished": 13,
        "inference.requests": 34871.0, "inference.slo_attainment": 0.9523222123411458, "pool.evictions": 0,
        "pool.lends": 40, "pool.model_loads": 40, "pool.refused_scale_ups": 41, "training.goodput": 1.0,
        "cost_usd": 224.28698060605765},
    ("pool_many_models.yaml", ("duration=1h", "policy.pool.params.min_replicas=1")): {
        "pool.utilization.allocated": 0.652562966444173, "pool.utilization.busy": 0.48228797947781316,
        "pool.utilization.serving": 0.20028211805555557, "pool.utilization.training": 0.45184682061083964,
        "pool.utilization.moving": 0.00043402777777777775, "training.jobs.finished": 13,
        "inference.requests": 34871.0, "inference.slo_attainment": 0.9956682635761209, "pool.evictions": 0,
        "pool.lends": 9, "pool.model_loads": 10, "pool.refused_scale_ups": 14, "training.goodput": 1.0,
        "cost_usd": 224.69048060605766},
    ("pool_demand_shift.yaml", ("duration=3h", "inference.services.0.arrivals.trough_at=22h",
                                "inference.services.0.arrivals.rate=3")): {
        "pool.utilization.allocated": 0.9235916319480207, "pool.utilization.busy": 0.8569357945537261,
        "pool.utilization.serving": 0.5424699074074074, "pool.utilization.training": 0.36690366898505783,
        "pool.utilization.moving": 0.014218055555555482, "pool.utilization.demand_served": 0.8569357945537261,
        "training.jobs.finished": 15, "training.demand_served": 0.5292954192361657, "inference.requests": 18474.0,
        "inference.slo_attainment": 1.0, "pool.evictions": 41, "pool.lends": 85, "pool.model_loads": 81,
        "pool.refused_scale_ups": 0, "training.goodput": 0.9971776324727771, "pool.lost_work_card_hours": 0.0,
        "cost_usd": 954.0332121370275},
    ("pool_multi_vendor.yaml", ("duration=2h", "policy.pool=shared_pool")): {
        "pool.utilization.allocated": 0.7815507163792619, "pool.utilization.busy": 0.7203940490643356,
        "pool.utilization.serving": 0.128125, "pool.utilization.training": 0.6527312719348175,
        "pool.utilization.moving": 0.0006944444444444445, "training.jobs.finished": 29, "inference.requests": 6891.0,
        "inference.slo_attainment": 0.9995645231528524, "pool.lends": 15, "pool.model_loads": 2,
        "pool.refused_scale_ups": 0, "cost_usd": 405.433669741779,
        "pool.utilization.busy.ascend-910b": 0.6942486831780448, "pool.utilization.busy.h100-sxm": 0.7895304081287776,
        "pool.utilization.busy.kunlun-p800": 0.6774030558861843},
    ("pool_multi_vendor_router.yaml", ("duration=2h", "policy.pool=shared_pool")): {
        "pool.utilization.allocated": 0.8111866248810453, "pool.utilization.busy": 0.7615238794200451,
        "pool.utilization.serving": 0.13125, "pool.utilization.training": 0.6778532915477119,
        "pool.utilization.moving": 0.0020833333333333333, "training.jobs.finished": 30, "inference.requests": 13591.0,
        "inference.slo_attainment": 0.9986741308190925, "pool.lends": 16, "pool.model_loads": 6,
        "pool.refused_scale_ups": 29, "cost_usd": 437.6480668879072,
        "inference.chat.by_type.ascend-910b.finished": 0.0, "inference.chat.by_type.h100-sxm.finished": 13318.0,
        "inference.chat.by_type.kunlun-p800.finished": 240.0},
}


def _run(case, capsys) -> dict:
    name, sets = case
    code = main(["run", str(REPO / "workloads" / name), *[x for kv in sets for x in ("--set", kv)], "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("case", list(GOLDEN), ids=[f"{f.split('.')[0]}:{s[-1]}" for f, s in GOLDEN])
def test_golden_pool_summary(case, capsys):
    s = _run(case, capsys)
    assert {k: s.get(k) for k in GOLDEN[case]} == GOLDEN[case]


def test_scale_to_zero_trades_slo_for_cards(capsys):
    """Scale to zero (live runs, not the pins) holds fewer serving cards and loads models more
    often, and loses SLO attainment to cold starts (docs/pool.md)."""
    zero = _run(("pool_many_models.yaml", ("duration=1h", "policy.pool.params.min_replicas=0")), capsys)
    one = _run(("pool_many_models.yaml", ("duration=1h", "policy.pool.params.min_replicas=1")), capsys)
    assert zero["pool.utilization.serving"] < one["pool.utilization.serving"]
    assert zero["pool.model_loads"] > one["pool.model_loads"]
    assert zero["inference.slo_attainment"] < one["inference.slo_attainment"] - 0.04
    assert zero["inference.ttft_s.p99"] > 10 * one["inference.ttft_s.p99"]
