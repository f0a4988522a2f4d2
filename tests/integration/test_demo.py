"""``cluster-sim demo``: the default experiment end to end, and the shipped workload files."""

from __future__ import annotations

import json

import pytest

from cluster_sim.cli import main
from cluster_sim.config import load_config
from cluster_sim.experiment import check


@pytest.fixture()
def in_repo(repo, monkeypatch):
    monkeypatch.chdir(repo)
    return repo


def test_demo_writes_a_complete_run_directory(in_repo, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "report.html" in printed and "training.mfu" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert 0.3 < summary["training.mfu"] < 0.7
    assert 0 < summary["training.days_to_train"] < 1000
    # three fabrics compared; the non-blocking rail fabric scales at least as well as 4:1 fat-tree
    rail = summary["scaling.h100-rail-1024.linear_speedup"]
    assert rail >= summary["scaling.h100-fattree-4to1-1024.linear_speedup"]
    assert "scaling.h100-ethernet-1024.linear_speedup" in summary
    assert summary["training.linear_speedup"] == rail
    # the three capabilities: training estimates (above), cluster scheduling, serving
    assert summary["training.jobs.finished"] > 10 and summary["training.jct_s.p50"] > 0
    assert 0 < summary["utilization.busy"] <= summary["utilization.allocated"] + 1e-12 <= 1 + 1e-12
    assert summary["inference.ttft_s.p50"] <= summary["inference.e2e_s.p50"]
    assert 0 < summary["inference.slo_attainment"] <= 1 and summary["inference.tokens_per_s_per_card"] > 0
    for name in ("summary.json", "config.resolved.yaml", "report.html", "jobs.parquet", "requests.parquet",
                 "timeline.parquet", "serving_timeline.parquet", "trace.json", "plots/breakdown.png",
                 "plots/scaling.png", "plots/utilization.png", "plots/jct_cdf.png", "plots/latency_cdf.png"):
        assert (out / name).is_file(), name
    assert (out / "report.html").read_text().count("data:image/png;base64,") >= 6
    assert not list(tmp_path.glob("demo.tmp-*"))


@pytest.mark.parametrize("name", ["demo.yaml", "train_llama3_70b.yaml", "train_gpt3_175b.yaml",
                                  "scaling_70b_fabrics.yaml"])
def test_shipped_workloads_validate(in_repo, name):
    lines = check(load_config(in_repo / "workloads" / name))
    assert lines[0].startswith("cluster.topology: ")
    assert any(line.startswith("training.jobs[0]") for line in lines)
