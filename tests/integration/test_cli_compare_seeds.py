"""``cluster-sim compare --seeds`` (issue #13 item 5): the ``mean ± ci`` table, ``--json``, ``--out``.

The printed means and half-widths are recomputed here from the per-run rows ``--json`` prints
(closed form: mean, ``t_{0.975,n-1} * s / sqrt(n)``), the ``--out`` summary from ``compare.csv``.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

import pandas as pd
import pytest

from cluster_sim.cli import main
from cluster_sim.experiment.comparison import summarize_seeds, t_quantile_975
from cluster_sim.report.html import format_value

REPO = Path(__file__).resolve().parents[2]
EXP = str(REPO / "workloads" / "schedulers.yaml")  # 128 cards, 12 simulated hours: ~0.1 s a run
FACTOR = "policy.training.scheduler"
ARGS = ["compare", EXP, "--set", "duration=12h", "--factor", f"{FACTOR}=fifo,sjf"]
WALL = ("sim.wall_s", "sim.events_per_s", "sim.jobs_per_s", "sim.requests_per_wall_s")


def _run(capsys, argv: list[str]) -> str:
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return out


def _table(out: str) -> dict[str, list[str]]:
    """``{metric: [cell per value]}`` of the printed rich table."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if len(cells) == 3:
            rows[cells[0]] = cells[1:]
    return rows


def test_table_shows_mean_and_ci_of_the_per_run_rows(capsys):
    table = _table(_run(capsys, [*ARGS, "--seeds", "3"]))
    runs = json.loads(_run(capsys, [*ARGS, "--seeds", "3", "--json"]))["runs"]
    assert [(r[FACTOR], r["seed"]) for r in runs] == [(v, s) for v in ("fifo", "sjf") for s in range(3)]
    assert table["metric"] == ["fifo", "sjf"] and table["runs (n)"] == ["3", "3"]
    checked = 0
    for key in ("training.jobs.mfu", "utilization.busy", "energy_kwh", "training.jct_s.p50", "sim.events"):
        for k, v in enumerate(("fifo", "sjf")):
            x = [r[key] for r in runs if r[FACTOR] == v]
            ci = t_quantile_975(len(x) - 1) * statistics.stdev(x) / math.sqrt(len(x))
            assert table[key][k] == f"{format_value(key, statistics.fmean(x))} ± {format_value(key, ci)}", (key, v)
            checked += 1
    assert checked == 10
    # the seeds really differ (else every interval would be 0)
    assert len({r["sim.events"] for r in runs if r[FACTOR] == "fifo"}) > 1


def test_json_summary_is_summarize_seeds_of_the_runs(capsys):
    doc = json.loads(_run(capsys, [*ARGS, "--seeds", "0,3,7", "--json"]))
    runs = pd.DataFrame(doc["runs"])
    assert runs["seed"].tolist() == [0, 3, 7, 0, 3, 7]
    expected = summarize_seeds(runs, FACTOR)  # JSON keys are sorted: match rows by (value, metric)
    got = pd.DataFrame(doc["summary"])
    assert len(got) == len(expected) == 2 * (len(runs.columns) - 2)
    both = got.merge(expected, on=[FACTOR, "metric"], suffixes=("", "_expected"), validate="1:1")
    assert len(both) == len(expected) and (both["n"] == both["n_expected"]).all()
    both = both[~both["metric"].isin(WALL)]
    for col in ("mean", "ci95"):
        a, b = both[col].astype(float), both[f"{col}_expected"]
        assert ((a == b) | (a.isna() & b.isna())).all(), both.loc[a != b, ["metric", col, f"{col}_expected"]]


def test_same_seeds_twice_give_the_same_table(capsys):
    def stable(out: str) -> list[str]:  # column widths follow the wall-clock row: fold borders and padding
        folded = [re.sub(r"[\s│┃┏┓┗┛┡┩└┘━─╇┳┻╋┼┬┴]+", " ", line).strip() for line in out.splitlines()
                  if "sim.wall_s" not in line]
        return [line for line in folded if line]

    first = _run(capsys, [*ARGS, "--seeds", "2"])
    assert stable(first) == stable(_run(capsys, [*ARGS, "--seeds", "2"]))
    assert "± " in first


def test_out_writes_runs_summary_and_plot(capsys, tmp_path):
    out = tmp_path / "cmp"
    text = _run(capsys, [*ARGS, "--seeds", "2", "--out", str(out)])
    assert f"wrote {out / 'compare.csv'}, compare_summary.csv, plots/compare.png" in text
    runs = pd.read_csv(out / "compare.csv")
    assert list(runs.columns[:2]) == [FACTOR, "seed"] and len(runs) == 4
    summary = pd.read_csv(out / "compare_summary.csv")
    pd.testing.assert_frame_equal(summary, summarize_seeds(runs, FACTOR), check_exact=False, rtol=1e-12)
    assert (out / "plots" / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for v in ("fifo", "sjf"):
        for s in (0, 1):
            doc = json.loads((out / v / f"seed-{s}" / "summary.json").read_text())
            assert doc["seed"] == s
            row = runs[(runs[FACTOR] == v) & (runs["seed"] == s)].iloc[0]
            assert doc["training.jobs.finished"] == row["training.jobs.finished"]
    marker = json.loads((out / ".cluster_sim_run").read_text())
    assert {"compare.csv", "compare_summary.csv", "plots/compare.png", "sjf/seed-1/summary.json"} <= set(
        marker["files"])
    # writing again over its own output is allowed (the marker lists the nested run directories)
    _run(capsys, [*ARGS, "--seeds", "2", "--out", str(out)])


@pytest.mark.parametrize("seeds", ["0", "-1", "a", "1,1", "2,x", ""])
def test_bad_seeds_are_one_error_line(capsys, tmp_path, seeds):
    out = tmp_path / "cmp"
    assert main([*ARGS, "--seeds", seeds, "--out", str(out)]) == 2
    stdout, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert stdout == "" and len(lines) == 1 and lines[0].startswith(f"error: --seeds {seeds!r}: "), err
    assert not out.exists()
