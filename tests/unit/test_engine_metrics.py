"""Metrics of a run: timeline bins, summary formulas, Jain fairness, Perfetto trace export."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cluster_sim.catalog import accelerator
from cluster_sim.engine.cluster.state import layout_from_node_groups
from cluster_sim.errors import ConfigError
from cluster_sim.experiment.drivers import run_training
from cluster_sim.metrics import chrome_trace, jain, percentiles, write_chrome_trace
from cluster_sim.metrics.costs import facility_kwh
from cluster_sim.workload.jobs import JobTable


def test_timeline_bins_are_exact_time_averages():
    jobs = JobTable(job_id=[0, 1], submit_s=[10.0, 30.0], num_cards=[4, 2], duration_s=[100.0, 40.0])
    res = run_training(cluster=[("h100-sxm", 8, 1)], jobs=jobs, horizon_s=120.0, timeline_step_s=50.0)
    tl = res.timeline
    assert tl["time_s"].tolist() == [0.0, 50.0, 100.0] and tl["time_end_s"].tolist() == [50.0, 100.0, 120.0]
    # allocated: 4 cards on [10,110), 2 cards on [30,70)
    assert tl["allocated_cards"].tolist() == pytest.approx([(4 * 40 + 2 * 20) / 50, (4 * 50 + 2 * 20) / 50,
                                                            4 * 10 / 20])
    assert tl["running_jobs"].tolist() == pytest.approx([(40 + 20) / 50, (50 + 20) / 50, 10 / 20])
    assert (tl["capacity_cards"] == 8).all() and (tl["allocated_cards.h100-sxm"] == tl["allocated_cards"]).all()
    assert tl["submitted_cards"].tolist() == pytest.approx([(4 * 40 + 2 * 20) / 50, 6.0, 6.0])
    s = res.summary
    assert s["utilization.allocated"] == pytest.approx((400 + 80) / (8 * 120))
    assert s["training.jct_s.p50"] == pytest.approx(70.0) and s["training.makespan_s"] == pytest.approx(100.0)
    assert s["training.queueing_s.p99"] == 0.0 and s["fragmentation.unallocated_cards"] == 0.0
    # energy: held cards busy at TDP (no held-idle here) x PUE 1.2; cost: card-seconds held
    a = accelerator("h100-sxm")
    held = 480.0
    assert s["energy_kwh"] == pytest.approx(held * a.tdp_w * 1.2 / 3.6e6)
    assert s["energy.installed_kwh"] == pytest.approx((held * a.tdp_w + (960 - held) * a.idle_w) * 1.2 / 3.6e6)
    assert s["cost_usd"] == pytest.approx(held / 3600 * a.price_usd_per_hour)
    assert s["cost.installed_usd"] == pytest.approx(8 * 120 / 3600 * a.price_usd_per_hour)


def test_percentiles_and_jain():
    p = percentiles([1.0, 2.0, 3.0, np.nan], "x")
    assert p == {"x.mean": 2.0, "x.p50": 2.0, "x.p90": pytest.approx(2.8), "x.p99": pytest.approx(2.98)}
    assert percentiles([], "y")["y.p50"] is None
    assert jain([1, 1, 1]) == pytest.approx(1.0)
    assert jain([1, 0, 0]) == pytest.approx(1 / 3)
    assert jain([]) is None


def test_jain_over_tenants_and_reasons_in_frame():
    jobs = JobTable(job_id=[0, 1, 2], submit_s=[0.0, 0.0, 0.0], num_cards=[8, 8, 9], duration_s=[10.0, 10.0, 5.0],
                    tenant=[0, 1, 1], tenants=("a", "b"))
    res = run_training(cluster=[("h100-sxm", 8, 1)], jobs=jobs)
    j = res.jobs.set_index("job_id")
    # a: slowdown 1, b: slowdown 2 -> x = (1, 0.5)
    assert res.summary["fairness.jain_tenants"] == pytest.approx(1.5 ** 2 / (2 * 1.25))
    assert j.loc[2, "status"] == "rejected" and "needs 9 cards" in j.loc[2, "reject_reason"]


def test_chrome_trace_lanes_never_overlap(tmp_path):
    seg = pd.DataFrame({"job_id": [1, 2, 3, 4], "start_s": [0.0, 1.0, 5.0, 2.0], "end_s": [4.0, 6.0, 7.0, 3.0],
                        "domain": [0, 0, 0, 1], "num_cards": [1, 2, 1, 8]})
    doc = chrome_trace(seg, max_tracks=1)
    spans = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert {e["pid"] for e in spans} == {0}  # capped to the busiest domain
    by_lane: dict[int, list] = {}
    for e in spans:
        by_lane.setdefault(e["tid"], []).append((e["ts"], e["ts"] + e["dur"]))
    for lane in by_lane.values():
        lane.sort()
        assert all(a[1] <= b[0] for a, b in zip(lane, lane[1:], strict=False))
    assert sorted(e["args"]["job_id"] for e in spans) == [1, 2, 3]
    path = tmp_path / "trace.json"
    write_chrome_trace(doc, path)
    assert json.loads(path.read_text())["traceEvents"] == doc["traceEvents"]


def test_result_trace_from_a_run():
    jobs = JobTable(job_id=[0, 1], submit_s=[0.0, 1.0], num_cards=[8, 8], duration_s=[2.0, 2.0])
    res = run_training(cluster=[("h100-sxm", 8, 2)], jobs=jobs)
    assert len(res.segments) == 2 and set(res.segments.columns) >= {"job_id", "start_s", "end_s", "domain"}
    spans = [e for e in res.trace["traceEvents"] if e["ph"] == "X"]
    assert len(spans) == 2 and {e["pid"] for e in spans} == {0, 1}


def test_one_job_on_8_cards_for_an_hour_costs_8_card_hours():
    a = accelerator("h100-sxm")
    jobs = JobTable(job_id=[0], submit_s=[0.0], num_cards=[8], duration_s=[3600.0])
    s = run_training(cluster=[("h100-sxm", 8, 2)], jobs=jobs, horizon_s=3600.0).summary
    assert s["cost_usd"] == pytest.approx(8 * a.price_usd_per_hour)             # held, not installed
    assert s["cost.installed_usd"] == pytest.approx(16 * a.price_usd_per_hour)
    assert s["energy.it_kwh"] == pytest.approx(8 * a.tdp_w / 1000)               # 8 cards x TDP x 1 h
    assert s["energy_kwh"] == pytest.approx(8 * a.tdp_w / 1000 * 1.2) and s["energy.pue"] == 1.2
    assert s["energy.installed_kwh"] == pytest.approx((8 * a.tdp_w + 8 * a.idle_w) / 1000 * 1.2)
    s1 = run_training(cluster=[("h100-sxm", 8, 2)], jobs=jobs, horizon_s=3600.0, pue=1.0).summary
    assert s1["energy_kwh"] == pytest.approx(s["energy.it_kwh"])                 # PUE applied once, linearly


def test_busy_and_cost_depend_on_placement_under_contention():
    # 4 nodes x 8 H100, 2 nodes per leaf, uplinks 4:1 oversubscribed. A 16-card job packed in one
    # leaf runs at reference speed; spread over both leaves each leaf's flow (8 NICs) gets half
    # its demand (uplink = 16 NICs / 4), so with c = 0.05 log2 16 = 0.2 (half scale-out):
    # speed = 1 / (0.8 + 0.1 + 0.1 / 0.5) = 1 / 1.1, and busy = allocated / 1.1.
    lo = layout_from_node_groups([("h100-sxm", 8, 4)], nodes_per_leaf=2, oversubscription=4)
    jobs = JobTable(job_id=[0], submit_s=[0.0], num_cards=[16], duration_s=[3600.0])
    out = {pl: run_training(cluster=lo, jobs=jobs, placement=pl) for pl in ("packed", "spread")}
    packed, spread = out["packed"].summary, out["spread"].summary
    assert out["spread"].jobs["n_leaves"].iloc[0] == 2 and out["packed"].jobs["n_leaves"].iloc[0] == 1
    assert out["spread"].jobs["finish_s"].iloc[0] == pytest.approx(3600 * 1.1)
    assert packed["utilization.busy"] == pytest.approx(packed["utilization.allocated"])
    assert spread["utilization.busy"] == pytest.approx(spread["utilization.allocated"] / 1.1)
    assert spread["utilization.busy.h100-sxm"] == pytest.approx(spread["utilization.busy"])
    a = accelerator("h100-sxm")
    assert packed["cost_usd"] == pytest.approx(16 * a.price_usd_per_hour)
    assert spread["cost_usd"] == pytest.approx(16 * 1.1 * a.price_usd_per_hour)  # held 10% longer
    # the same work: busy card-seconds equal, the spread job's extra held time is at idle power
    busy_j, extra_j = 16 * 3600 * a.tdp_w, 16 * 360 * a.idle_w
    assert spread["energy_kwh"] == pytest.approx(facility_kwh(busy_j + extra_j, 1.2))
    assert packed["energy_kwh"] == pytest.approx(facility_kwh(busy_j, 1.2))


def test_engine_mfu_is_named_for_the_scheduled_jobs():
    jobs = JobTable(job_id=[0], submit_s=[0.0], num_cards=[8], duration_s=[100.0], model_idx=[0],
                    models=("llama3-8b",))
    s = run_training(cluster=[("h100-sxm", 8, 1)], jobs=jobs).summary
    assert "training.mfu" not in s and "training.linear_speedup" not in s  # the perf model's keys
    assert s["training.jobs.mfu"] == pytest.approx(0.30)  # assumed MFU of a fine-tune at reference speed
    assert s["training.cluster_mfu"] == pytest.approx(0.30)  # the job held every card for the whole run


def test_pue_below_one_is_a_config_error():
    with pytest.raises(ConfigError, match="pue: must be a finite number >= 1"):
        facility_kwh(1.0, 0.9)


def test_summary_names_the_estimate_and_the_engine_apart():
    import cluster_sim as cs

    cfg = cs.load_config({
        "name": "mix", "seed": 3, "duration": "30m",
        "cluster": {"topology": {"name": "ft64", "builder": "fat_tree", "system": "hgx-h100", "nodes": 8}},
        "training": {"jobs": [{"name": "big", "model": "llama3-8b", "cards": 32, "card_type": "h100-sxm",
                               "parallel": {"tp": 8}, "seq_len": 4096, "global_batch": 64, "tokens": "0.01T"}],
                     "generator": {"kind": "industry_mix", "jobs_per_hour": 30}}})
    res = cs.simulate(cfg)
    s = res.summary
    # training.mfu is the perf model's estimate of the explicit job, like the step time beside it;
    # the engine's MFU over every job it scheduled has its own key
    assert s["training.mfu"] == pytest.approx(res.estimates[0].estimate.mfu) == s["training.job.big.mfu"]
    assert s["training.jobs.mfu"] == pytest.approx(res.jobs["useful_flops"].sum() / res.jobs["peak_flop_s"].sum())
    assert s["training.jobs.mfu"] != pytest.approx(s["training.mfu"])
    src = s["sources"]
    assert src["training.mfu"] == src["training.step_time_s"] == src["training.job.*"] == "estimate"
    assert src["training.jobs.*"] == src["utilization.*"] == src["training.cluster_mfu"] == "cluster engine"
    assert src["cost_usd"] == "cluster engine" and "inference.*" not in src


def test_merged_cost_and_energy_add_up_and_keep_their_sources():
    from cluster_sim.experiment.run import _merge_summary

    s: dict = {}
    _merge_summary(s, {"training.mfu": 0.4, "training.job.a.mfu": 0.4}, "estimate")
    _merge_summary(s, {"training.jobs.mfu": 0.3, "cost_usd": 10.0, "energy_kwh": 2.0, "cost.installed_usd": 30.0},
                   "cluster engine")
    _merge_summary(s, {"inference.cost_usd": 1.0, "cost_usd": 1.0, "energy_kwh": 0.5}, "serving engine")
    assert (s["cost_usd"], s["energy_kwh"], s["cost.installed_usd"]) == (11.0, 2.5, 30.0)
    assert s["sources"] == {"training.mfu": "estimate", "training.job.*": "estimate",
                            "training.jobs.*": "cluster engine", "cost_usd": "cluster engine + serving engine",
                            "energy_kwh": "cluster engine + serving engine", "cost.*": "cluster engine",
                            "inference.*": "serving engine"}
    assert list(s)[-1] == "sources"


def test_report_shows_where_each_number_comes_from():
    from cluster_sim.report.html import format_value, render_html

    summary = {"training.mfu": 0.43, "training.jobs.mfu": 0.41,
               "sources": {"training.mfu": "estimate", "training.jobs.*": "cluster engine"}}
    page = render_html("run", summary=summary, tables={}, figures={})
    assert "<h2>Where each number comes from</h2>" in page
    assert "<tr><td>training.jobs.*</td><td>cluster engine</td></tr>" in page
    assert "<tr><td>sources</td>" not in page  # not a row of the metrics table
    assert format_value("sources", summary["sources"]) == "training.mfu: estimate; training.jobs.*: cluster engine"


def test_a_card_type_the_catalog_lacks_is_noted_not_silently_free():
    """openb's G2 has no catalog entry: its power and price count as 0, and the run says so."""
    from cluster_sim.experiment.drivers import run_training as _run
    from cluster_sim.workload.jobs import JobTable, TrainingJob

    jobs = JobTable.from_jobs([TrainingJob(name="a", cards=8, duration_s=3600.0)])
    res = _run(cluster=[("G2", 8, 1), ("h100-sxm", 8, 1)], jobs=jobs, placement="packed")
    assert any("'G2' is not in the catalog" in n and "cost_usd exclude" in n for n in res.notes), res.notes
    assert not any("h100" in n for n in res.notes)
