"""A pooled run's directory has the pool-day figure: ``plots/pool_day.png`` and its caption in
``report.html`` (issue #13 item 4); a run without a shared ledger has neither."""

from __future__ import annotations

from pathlib import Path

from cluster_sim.cli import main

REPO = Path(__file__).resolve().parents[2]
STATIC = str(REPO / "workloads" / "pool_static_partition.yaml")
CAPTION = "Cards by state over the day, inference load, reclaims and lends, tariff"


def test_static_partition_run_writes_the_pool_day_plot(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", STATIC, "--set", "duration=1h", "--out", str(out)]) == 0
    png = out / "plots" / "pool_day.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert CAPTION in (out / "report.html").read_text(encoding="utf-8")
    assert "plots/" in capsys.readouterr().out


def test_separate_silos_have_no_pool_day_plot(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", STATIC, "--set", "duration=20min", "--set", "policy.pool=separate",
                 "--out", str(out)]) == 0
    assert (out / "plots").is_dir() and not (out / "plots" / "pool_day.png").exists()
    assert CAPTION not in (out / "report.html").read_text(encoding="utf-8")
