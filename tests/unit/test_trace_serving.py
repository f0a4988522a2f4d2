"""trace.json (issue #16 item 5): serving requests per replica, counters, KV flows, job names and
every domain a job holds; all from the recorded frames."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from cluster_sim.cli import main
from cluster_sim.config import load_config
from cluster_sim.experiment import simulate
from cluster_sim.experiment.drivers import run_training
from cluster_sim.metrics.trace_export import CLUSTER_PID, SERVING_PID0, chrome_trace
from cluster_sim.workload.jobs import JobTable, TrainingJob

REPO = Path(__file__).resolve().parents[2]
PD = REPO / "workloads" / "serving_hetero_prefill_decode.yaml"  # colocated pool + a PD pool


@pytest.fixture(scope="module")
def served():
    return simulate(load_config(PD, overrides={"duration": "4s"}))


def _events(doc, ph=None, cat=None):
    return [e for e in doc["traceEvents"] if (ph is None or e["ph"] == ph) and (cat is None or e.get("cat") == cat)]


def test_every_event_has_the_trace_event_fields_and_is_json(served, tmp_path):
    doc = served.trace
    assert doc is not None and doc["displayTimeUnit"] == "ms"
    for e in doc["traceEvents"]:
        assert {"ph", "ts", "pid", "tid", "name"} <= set(e), e
        assert isinstance(e["ts"], float) and math.isfinite(e["ts"]) and e["ts"] >= 0
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
    assert {e["ph"] for e in doc["traceEvents"]} == {"M", "X", "C", "s", "f"}
    served.save(tmp_path / "run")
    path = tmp_path / "run" / "trace.json"
    assert json.loads(path.read_text()) == json.loads(json.dumps(doc))


def test_request_slices_are_the_requests_tables_times(served):
    req = served.requests.set_index("request_id")
    fin = req[req["status"].astype(str) == "finished"]
    colo, pd_rows = fin[fin["decode_replica"] < 0], fin[fin["decode_replica"] >= 0]
    assert len(colo) >= 10 and len(pd_rows) >= 10  # both modes are exercised
    checks = {"request": (colo, "replica", "admit_s", "last_token_s"),
              "prefill": (pd_rows, "replica", "admit_s", "first_token_s"),
              "decode": (pd_rows, "decode_replica", "kv_ready_s", "last_token_s")}
    for cat, (rows, rep, t0, t1) in checks.items():
        spans = _events(served.trace, "X", cat)
        assert sorted(e["args"]["request_id"] for e in spans) == sorted(rows.index.tolist()), cat
        for e in spans:
            r = rows.loc[e["args"]["request_id"]]
            assert e["pid"] == SERVING_PID0 + int(r[rep])
            assert e["ts"] == pytest.approx(r[t0] * 1e6, abs=1e-3)
            assert e["ts"] + e["dur"] == pytest.approx(r[t1] * 1e6, abs=1e-3)
            assert e["name"] == f"{r['service']} #{e['args']['request_id']}"


def test_kv_transfers_are_flows_from_prefill_to_decode(served):
    req = served.requests.set_index("request_id")
    starts = {e["id"]: e for e in _events(served.trace, "s")}
    ends = {e["id"]: e for e in _events(served.trace, "f")}
    assert starts and set(starts) == set(ends)
    for rid, s in starts.items():
        r = req.loc[rid]
        assert s["pid"] == SERVING_PID0 + int(r["replica"]) and s["ts"] == pytest.approx(r["first_token_s"] * 1e6)
        f = ends[rid]
        assert f["pid"] == SERVING_PID0 + int(r["decode_replica"]) and f["ts"] == pytest.approx(r["kv_ready_s"] * 1e6)
        assert f["ts"] >= s["ts"]


def test_requests_on_a_lane_never_overlap(served):
    lanes = defaultdict(list)
    for e in _events(served.trace, "X"):
        lanes[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    assert max(tid for _, tid in lanes) >= 1  # batches: several requests at once on a replica
    for spans in lanes.values():
        spans.sort()
        assert all(a[1] <= b[0] + 1e-6 for a, b in zip(spans, spans[1:], strict=False))


def test_counters_per_replica_are_monotone_in_time_and_the_timeline_values(served):
    tracks = defaultdict(list)
    for e in _events(served.trace, "C"):
        tracks[(e["pid"], e["name"])].append((e["ts"], e["args"][e["name"]]))
    names = {n for (pid, n) in tracks if pid >= SERVING_PID0}
    assert names == {"batch_size", "kv_occupancy"}
    tl = served.serving_timeline
    for (pid, name), pts in tracks.items():
        ts = [t for t, _ in pts]
        assert all(a < b for a, b in zip(ts, ts[1:], strict=False)), (pid, name)
        if pid < SERVING_PID0:
            continue
        g = tl[tl["replica"] == pid - SERVING_PID0].set_index("time_s")[name]
        bins = g.index.to_numpy() * 1e6
        for t, v in pts:  # each point is a bin's start and value ...
            j = int(np.searchsorted(bins, t - 1e-3))
            assert bins[j] == pytest.approx(t, abs=1e-3) and v == pytest.approx(g.iloc[j])
        # ... and the step function they draw is the timeline's (repeats are left out)
        idx = np.searchsorted(ts, bins + 1e-3, side="right") - 1
        assert (idx >= 0).all() and np.allclose([pts[i][1] for i in idx], g.to_numpy())


def test_replica_tracks_are_named_by_service_pool_and_card_type(served):
    names = {e["pid"]: e["args"]["name"] for e in _events(served.trace, "M")}
    reps = served.tables["replicas"]
    for r in reps.itertuples():
        assert names[SERVING_PID0 + int(r.replica)] == f"{r.service}/{r.pool} replica {r.replica} ({r.card_type})"


def test_max_requests_writes_every_kth_request(served):
    fin = served.requests[served.requests["status"].astype(str) == "finished"].sort_values("request_id")
    n = len(fin)
    doc = chrome_trace(served.tables.get("segments", fin.iloc[:0]), None, requests=served.requests,
                       serving_timeline=served.serving_timeline, replicas=served.tables["replicas"],
                       max_requests=10)
    k = math.ceil(n / 10)
    assert doc["otherData"] == {"requests_finished": n, "requests_written": len(fin.iloc[::k]), "request_stride": k}
    ids = {e["args"]["request_id"] for e in _events(doc, "X")}
    assert ids == set(fin["request_id"].iloc[::k].tolist()) and len(ids) <= 10


def test_a_job_on_two_domains_has_a_slice_on_each_named_by_its_name():
    jobs = JobTable.from_jobs([TrainingJob(name="big", cards=16, duration_s=3600.0),
                               TrainingJob(name="small", cards=8, duration_s=1800.0, submit_s=100.0)])
    res = run_training(cluster=[("h100-sxm", 8, 3)], jobs=jobs, placement="packed")
    seg = res.segments
    big = seg[seg["job_id"] == 0]
    assert sorted(big["domain"].tolist()) == [0, 1] and big["num_cards"].tolist() == [8, 8]
    spans = _events(res.trace, "X", "training")
    on = defaultdict(set)
    for e in spans:
        on[e["name"]].add(e["pid"])
    assert on == {"big": {0, 1}, "small": {2}}
    assert all(e["args"]["domains"] == (2 if e["name"] == "big" else 1) for e in spans)
    cross = [(e["ts"], e["args"]["cross_domain_cards"]) for e in _events(res.trace, "C")
             if e["name"] == "cross_domain_cards" and e["pid"] == CLUSTER_PID]
    assert cross == [(0.0, 16.0), (pytest.approx(3600e6), 0.0)]


def test_a_job_without_a_name_is_named_by_its_kind():
    jobs = JobTable(job_id=[7], submit_s=[0.0], num_cards=[8], duration_s=[60.0])
    res = run_training(cluster=[("h100-sxm", 8, 1)], jobs=jobs)
    kind = res.jobs.set_index("job_id").loc[7, "kind"]
    assert "name" not in res.jobs or not res.jobs["name"].astype(str).str.len().any()
    assert [e["name"] for e in _events(res.trace, "X")] == [f"{kind} 7"] and str(kind) not in ("", "nan")


def test_trace_export_rebuilds_the_runs_trace(served, tmp_path, capsys):
    run = tmp_path / "run"
    served.save(run)
    saved = json.loads((run / "trace.json").read_text())
    (run / "trace.json").unlink()
    assert main(["trace", "export", str(run), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["out"] == str(run / "trace.json") and info["events"] == len(saved["traceEvents"])
    assert json.loads((run / "trace.json").read_text()) == saved
    assert main(["trace", "export", str(run), "--max-requests", "5", "--out", str(tmp_path / "t.json")]) == 0
    assert "requests (every" in capsys.readouterr().out
    assert json.loads((tmp_path / "t.json").read_text())["otherData"]["requests_written"] <= 5


@pytest.mark.parametrize("argv, message", [
    (["trace", "export", "{tmp}/missing"], "not a directory"),
    (["trace", "export", "{tmp}"], "not a run directory (no summary.json)"),
    (["trace", "export", "{tmp}", "--max-requests", "-3"], "--max-requests: must be >= 0, got -3"),
    (["trace", "export", "{tmp}", "--max-tracks", "x"], "is not an integer"),
])
def test_trace_export_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    try:
        code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    except SystemExit as exc:  # argparse rejects a bad flag value
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
