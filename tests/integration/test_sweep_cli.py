"""``cluster-sim sweep`` and ``compare`` with several factors: output, the Dask path, bad input."""

from __future__ import annotations

import json
import math
import socket
import time
from pathlib import Path

import pandas as pd
import pytest

from cluster_sim.cli import main

REPO = Path(__file__).resolve().parents[2]
EXP = str(REPO / "workloads" / "schedulers.yaml")
FAST = ["--set", "duration=12h"]
WALL = ("sim.wall_s", "sim.events_per_s", "sim.jobs_per_s", "sim.requests_per_wall_s")


def _json(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err, err
    return json.loads(out)


def _same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def test_sweep_on_two_local_workers_equals_run_and_writes_out(tmp_path, capsys):
    store, out = tmp_path / "store", tmp_path / "out"
    argv = ["sweep", EXP, *FAST, "--factor", "policy.training.scheduler=fifo,sjf", "--seeds", "2",
            "--workers", "2", "--store", str(store), "--out", str(out), "--metric", "training.jobs.mfu",
            "--metric", "training.jct_s.p99", "--json"]
    res = _json(capsys, argv)
    assert res["executed"] == 4 and res["skipped"] == 0 and res["failed"] == 0
    assert [(r["policy.training.scheduler"], r["seed"]) for r in res["runs"]] == [
        ("fifo", 0), ("fifo", 1), ("sjf", 0), ("sjf", 1)]
    run = _json(capsys, ["run", EXP, *FAST, "--set", "seed=1", "--set", "policy.training.scheduler=sjf", "--json"])
    row = res["runs"][3]
    numeric = {k: v for k, v in run.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert len(numeric) > 30
    for k, v in numeric.items():  # the sweep's run is `cluster-sim run` of that variant and seed
        if k not in WALL:
            assert _same(row[k], v if v is not None else None), k
    cells = {(c["cell"], c["metric"]): c for c in res["cells"]}
    assert cells[("policy.training.scheduler=sjf", "training.jct_s.p99")]["method"] == "bootstrap"
    assert cells[("policy.training.scheduler=sjf", "training.jobs.mfu")]["method"] == "t"
    assert (out / "plots" / "sweep.png").stat().st_size > 1000
    assert len(pd.read_parquet(out / "runs.parquet")) == 4
    csv = pd.read_csv(out / "cells.csv")
    assert list(csv["metric"]) == ["training.jobs.mfu", "training.jct_s.p99"] * 2
    # the sweep's own report: its cells table, the embedded figure, links to both tables
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "policy.training.scheduler=sjf" in page and "data:image/png;base64," in page
    assert 'href="cells.csv"' in page and 'href="runs.parquet"' in page and "4 runs, 0 failed" in page
    # a re-run reads every run from the store
    again = _json(capsys, argv[:-5] + ["--metric", "training.jobs.mfu", "--json"])
    assert again["executed"] == 0 and again["skipped"] == 4


def test_terminal_table_and_sweep_file(tmp_path, capsys):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"experiment: {EXP}\nset: {{duration: 12h}}\nfactors:\n  policy.training.scheduler: [fifo, sjf]\n"
                    "seeds: 2\nmetrics: [training.jobs.mfu]\n", encoding="utf-8")
    assert main(["sweep", str(spec), "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "mean ± 95% CI over seeds" in out and "runs: 4 (4 run now, 0 from the store, 0 failed)" in out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows] == ["fifo", "sjf"] and all(" ± " in r for r in rows)
    assert "\x1b[" not in out and "ETA" not in out  # no progress bar off a terminal


@pytest.mark.parametrize("args, msg", [
    (["--factor", "policy.trainig.scheduler=fifo"], "policy.trainig: unknown field; known: pool, serving, training"),
    (["--factor", "policy.training.scheduler=fifo,nope"], "unknown scheduler 'nope'"),
    (["--factor", "policy.training.scheduler=fifo", "--seeds", "0"], "--seeds '0'"),
    ([], "no factor"),
    (["--factor", "seed=1,2"], "do not give it as a factor"),
    (["--factor", "policy.training.scheduler=fifo", "--ci-target", "2", "--metric", "energy_kwh"], "--ci-target 2"),
])
def test_bad_input_is_one_line_and_exit_2(args, msg, capsys):
    assert main(["sweep", EXP, "--workers", "0", *args]) == 2
    out, err = capsys.readouterr()
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err and out == ""


@pytest.mark.parametrize("body, msg", [
    ("experiment: nope.yaml\nfactors: {{seed: [1]}}\n", "experiment: no file"),
    ("experiment: {exp}\nfactors: {{}}\n", "no factor"),
    ("experiment: {exp}\nfactors: {{duration: [1h]}}\nseeds: 0\n", "seeds: 0"),
    ("experiment: {exp}\nfactors: {{duration: 1h}}\n", "factors.duration: expected a list"),
    ("experiment: {exp}\nfactor: {{duration: [1h]}}\n", "factor: unknown field; known: experiment"),
])
def test_bad_sweep_files(tmp_path, capsys, body, msg):
    spec = tmp_path / "s.yaml"
    spec.write_text(body.format(exp=EXP), encoding="utf-8")
    assert main(["sweep", str(spec), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_unreachable_scheduler_fails_fast(capsys):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    code = main(["sweep", EXP, "--factor", "policy.training.scheduler=fifo", "--scheduler",
                 f"tcp://127.0.0.1:{port}", "--timeout", "2"])
    took = time.monotonic() - t0
    err = capsys.readouterr().err
    assert code == 2 and f"tcp://127.0.0.1:{port}: no Dask scheduler answered within 2 s" in err, err
    assert took < 8, took


def test_compare_takes_several_factors_as_a_grid(capsys):
    rows = _json(capsys, ["compare", EXP, *FAST, "--factor", "policy.training.scheduler=fifo,sjf",
                          "--factor", "policy.training.placement=packed,topology_aware", "--json"])
    col = "policy.training.scheduler, policy.training.placement"
    assert [r[col] for r in rows] == ["fifo, packed", "fifo, topology_aware", "sjf, packed", "sjf, topology_aware"]
    one = _json(capsys, ["compare", EXP, *FAST, "--factor", "policy.training.placement=packed,topology_aware",
                         "--set", "policy.training.scheduler=sjf", "--json"])
    for k in ("training.jobs.mfu", "sim.events", "energy_kwh"):  # the grid's cells are the one-factor runs
        assert [r[k] for r in rows[2:]] == [r[k] for r in one], k
    seeded = _json(capsys, ["compare", EXP, *FAST, "--factor", "policy.training.scheduler=fifo,sjf",
                            "--factor", "policy.training.placement=packed", "--seeds", "2", "--json"])
    assert [(r[col], r["seed"]) for r in seeded["runs"]] == [("fifo, packed", 0), ("fifo, packed", 1),
                                                             ("sjf, packed", 0), ("sjf, packed", 1)]
    assert main(["compare", EXP, "--factor", "duration=1h", "--factor", "duration=2h"]) == 2
    assert "--factor duration: given twice" in capsys.readouterr().err
    assert main(["compare", EXP, "--factor", "duration=1h", "--factor", "seed=1", "--out", "x"]) == 2
    assert "use `cluster-sim sweep ... --out DIR`" in capsys.readouterr().err


def test_progress_bar_only_on_a_terminal(monkeypatch):
    from cluster_sim.cli import sweep as sweep_cli

    with sweep_cli.sweep_progress(True) as cb:
        assert cb is None  # pytest's stderr is not a terminal
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    with sweep_cli.sweep_progress(False) as cb:
        assert cb is None  # --json
    with sweep_cli.sweep_progress(True) as cb:
        assert callable(cb)
        cb(0, 4, 0)
        cb(3, 4, 1)


def test_an_existing_scheduler_is_used_by_address(tmp_path, capsys):
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    try:
        argv = ["sweep", EXP, *FAST, "--factor", "policy.training.scheduler=fifo,sjf", "--json"]
        remote = _json(capsys, [*argv, "--scheduler", cluster.scheduler_address])
        here = _json(capsys, [*argv, "--workers", "0"])
    finally:
        cluster.close()
    assert remote["executed"] == 2 and remote["failed"] == 0
    assert [r["key"] for r in remote["runs"]] == [r["key"] for r in here["runs"]]
    for a, b in zip(remote["runs"], here["runs"], strict=True):
        assert {k: v for k, v in a.items() if k not in WALL} == {k: v for k, v in b.items() if k not in WALL}
