"""Metrics of a run: timeline bins, summary formulas, Jain fairness, Perfetto trace export."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cluster_sim.metrics import chrome_trace, jain, percentiles, run_training, write_chrome_trace
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
    # energy: busy cards at TDP, idle ones at idle power (catalog), IT only
    from cluster_sim.catalog import accelerator

    a = accelerator("h100-sxm")
    busy = 480.0
    assert s["energy_kwh"] == pytest.approx((busy * a.tdp_w + (960 - busy) * a.idle_w) / 3.6e6)
    assert s["cost_usd"] == pytest.approx(8 * 120 / 3600 * a.price_usd_per_hour)


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
