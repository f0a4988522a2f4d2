"""Serving metrics: SLO attainment and goodput on hand-made frames, time-weighted levels, cost and
energy formulas, and run_serving from a config with its DESIGN 4 summary keys."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cluster_sim.catalog import accelerator
from cluster_sim.config.load import load_config
from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
from cluster_sim.experiment.drivers import run_serving
from cluster_sim.metrics.serving import (
    attainment,
    latency_percentiles,
    level_means,
    slo_met,
    summarize,
)
from cluster_sim.perf.linear_serving import LinearServingPerf
from cluster_sim.policies.serving.autoscaling import QueueDriven
from cluster_sim.workload.requests import RequestTable

SERVICES = pd.DataFrame({"service": ["a", "b"], "slo_ttft_s": [1.0, np.nan], "slo_tpot_s": [0.1, np.nan],
                         "slo_e2e_s": [np.nan, 5.0], "cards": [2, 1]})


def _requests():
    nan = np.nan
    return pd.DataFrame({
        "service": ["a", "a", "a", "a", "b", "b", "a", "a"],
        "status": ["finished", "finished", "finished", "rejected", "finished", "finished", "unfinished", "unfinished"],
        "arrival_s": [0.0, 0, 0, 0, 0, 0, 7.0, 9.5],
        "ttft_s": [0.5, 1.5, 0.9, nan, 3.0, 1.0, nan, nan],
        "first_token_s": [0.5, 1.5, 0.9, nan, 3.0, 1.0, nan, nan],
        "tpot_s": [0.05, 0.05, nan, nan, 1.0, 1.0, nan, nan],
        "e2e_s": [2.0, 3.0, 0.9, nan, 6.0, 4.0, nan, nan],
    })


def test_slo_met_uses_only_the_slos_that_are_set():
    # a: ttft & tpot; b: e2e only. Row 2 has one output token (TPOT NaN counts as met).
    assert slo_met(_requests(), SERVICES).tolist() == [True, False, True, False, False, True, False, False]


def test_attainment_counts_decided_requests():
    att, met, decided = attainment(_requests(), SERVICES, end_s=10.0)
    # the unfinished request from 7 s has already missed its 1 s TTFT; the one from 9.5 s is undecided
    assert (met, decided) == (3, 7) and att == pytest.approx(3 / 7)


def test_percentiles_and_time_weighted_levels():
    out = latency_percentiles([1.0, 2.0, 3.0, np.nan], "x")
    assert out == {"x.p50": 2.0, "x.p90": pytest.approx(2.8), "x.p99": pytest.approx(2.98), "x.mean": 2.0}
    tl = pd.DataFrame({"width_s": [1.0, 3.0], "batch_size": [4.0, 0.0], "queue_len": [0.0, 2.0],
                       "kv_used_tokens": [10.0, 30.0], "kv_occupancy": [0.1, 0.3], "busy_fraction": [1.0, 0.0],
                       "pool": ["x", "x"]})
    m = level_means(tl)
    assert m["batch_size"] == 1.0 and m["queue_len"] == 1.5 and m["kv_occupancy"] == pytest.approx(0.25)
    assert level_means(tl, by="pool").loc["x", "busy_fraction"] == 0.25


def test_cost_energy_and_tokens_per_card_by_hand():
    perf = LinearServingPerf(prefill_s=1.0, decode_s=0.5, cards=2, kv_capacity_tokens=10_000,
                             power_w_by_phase=(100.0, 1000.0, 500.0))
    reqs = RequestTable.from_arrays([0.0], [100], [5])
    svc = ServiceSpec("s", reqs, (PoolSpec("colocated", 1, perf, "h100-sxm", tp=2),), slo_ttft_s=2.0)
    run = ServingEngine([svc], options=ServingOptions(horizon_s=10.0, pue=1.5)).run()
    s = summarize(run)
    # prefill 1 s, 4 decodes 2 s, idle 7 s: IT energy = 1000 + 500 * 2 + 100 * 7 = 2700 J
    assert run.replicas.energy_it_j.iloc[0] == pytest.approx(2700.0)
    assert s["inference.energy_kwh"] == pytest.approx(2700 * 1.5 / 3.6e6)
    assert s["inference.energy_j_per_token"] == pytest.approx(2700 * 1.5 / 5)
    price = accelerator("h100-sxm").price_usd_per_hour
    assert s["inference.cost_usd"] == pytest.approx(2 * price * 10 / 3600)
    assert s["inference.cost_per_mtok_usd"] == pytest.approx(2 * price * 10 / 3600 / 5e-6)
    assert s["inference.tokens_per_s_per_card"] == pytest.approx(5 / 10 / 2)
    assert s["inference.goodput_rps"] == pytest.approx(0.1) and s["inference.slo_attainment"] == 1.0
    assert s["inference.busy_fraction_mean"] == pytest.approx(0.3)


def _two_replicas(autoscaling=None):
    # one request on replica 0 (prefill 1 s, 4 decode iterations 2 s); replica 1 never gets work
    perf = LinearServingPerf(prefill_s=1.0, decode_s=0.5, cards=2, kv_capacity_tokens=10_000,
                             power_w_by_phase=(100.0, 1000.0, 500.0))
    reqs = RequestTable.from_arrays([0.0], [100], [5])
    svc = ServiceSpec("s", reqs, (PoolSpec("colocated", 2, perf, "h100-sxm", tp=2),))
    return ServingEngine([svc], autoscaling=autoscaling, options=ServingOptions(horizon_s=10.0, pue=1.5)).run()


def test_idle_provisioned_replica_is_allocated_not_busy():
    run = _two_replicas()
    s = summarize(run)
    price = accelerator("h100-sxm").price_usd_per_hour
    # both replicas provisioned the whole 10 s; replica 0 has a batch 3 s, replica 1 never
    assert s["inference.utilization.allocated"] == pytest.approx(1.0)
    assert s["inference.utilization.busy"] == pytest.approx((3.0 + 0.0) / 20.0)
    assert s["inference.s.utilization.busy"] == pytest.approx(0.15)
    assert s["inference.cost_usd"] == pytest.approx(2 * 2 * price * 10 / 3600)
    assert s["inference.cost.installed_usd"] == pytest.approx(s["inference.cost_usd"])
    # replica 1 draws idle power for its 10 provisioned seconds; PUE applied once
    assert s["inference.energy_kwh"] == pytest.approx((2700 + 100 * 10) * 1.5 / 3.6e6)
    assert s["energy.it_kwh"] == pytest.approx((2700 + 100 * 10) / 3.6e6) and s["energy.pue"] == 1.5


def test_autoscaler_that_holds_fewer_replicas_costs_less():
    fixed = summarize(_two_replicas())
    scaled = summarize(_two_replicas(QueueDriven(initial_replicas=1, min_replicas=1)))
    price = accelerator("h100-sxm").price_usd_per_hour
    # the queue-driven autoscaler never needs the second replica: half the card-hours held
    assert scaled["inference.utilization.allocated"] == pytest.approx(0.5)
    assert scaled["inference.utilization.busy"] == pytest.approx(fixed["inference.utilization.busy"])
    assert scaled["cost_usd"] == pytest.approx(2 * price * 10 / 3600)
    assert fixed["cost_usd"] == pytest.approx(2 * scaled["cost_usd"])
    assert scaled["inference.cost.installed_usd"] == pytest.approx(fixed["inference.cost.installed_usd"])
    assert scaled["energy_kwh"] == pytest.approx(2700 * 1.5 / 3.6e6)
    assert fixed["energy_kwh"] - scaled["energy_kwh"] == pytest.approx(100 * 10 * 1.5 / 3.6e6)


DESIGN_KEYS = ["inference.ttft_s.p50", "inference.ttft_s.p99", "inference.tpot_s.p50", "inference.tpot_s.p99",
               "inference.e2e_s.p50", "inference.e2e_s.p99", "inference.slo_attainment", "inference.goodput_rps",
               "inference.tokens_per_s_per_card", "energy_kwh", "cost_usd", "sim.events", "sim.wall_s"]


def test_run_serving_from_config_on_a_topology(repo):
    cfg = load_config({
        "seed": 1, "duration": "2m", "cluster": {"topology": str(repo / "topologies" / "h100-rail-1024.yaml")},
        "inference": {"services": [
            {"name": "chat", "model": "llama3-8b", "slo": {"ttft": "500ms", "tpot": "50ms"},
             "deployment": {"mode": "disaggregated", "prefill": {"replicas": 2, "card_type": "h100-sxm"},
                            "decode": {"replicas": 2, "card_type": "h100-sxm", "tp": 2}},
             "arrivals": {"kind": "poisson", "rate": 8, "lengths": "azure_conv"}},
            {"name": "voice", "model": "qwen2.5-0.5b", "slo": {"ttft": "100ms"},
             "deployment": {"replicas": 1, "card_type": "h100-sxm"},
             "arrivals": {"kind": "poisson", "rate": 5, "prompt_tokens": 200, "output_tokens": 30}}]},
        "policy": {"serving": {"routing": "least_loaded", "autoscaling": "fixed",
                               "batching": {"max_batch_tokens": 4096, "on_kv_full": "preempt"}}}})
    res = run_serving(cfg)
    s = res.summary
    assert all(k in s for k in DESIGN_KEYS)
    assert all(f"inference.{svc}.slo_attainment" in s for svc in ("chat", "voice"))
    assert s["inference.cards"] == 2 + 4 + 1
    assert set(res.requests.service) == {"chat", "voice"} and not math.isnan(s["inference.ttft_s.p50"])
    assert res.replicas.card_ids.tolist() == ["0", "1", "2,3", "4,5", "6"]   # packed into node 0
    assert s["inference.kv_transfers"] > 0 and res.summary["sim.events"] > len(res.requests)
    assert {"time_s", "replica", "kv_occupancy", "batch_size", "queue_len"} <= set(res.timeline.columns)
