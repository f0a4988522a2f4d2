"""``--out DIR`` from the CLI (issue items 13, 14 and the fuzz findings): the user's files are never
removed, a directory the simulator did not write is refused before anything runs, bad locations
are one ``error:`` line with exit 2, and a name that becomes a path stays under ``DIR``."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from cluster_sim.cli import main
from cluster_sim.experiment.outdir import MARKER

REPO = Path(__file__).resolve().parents[2]
EXP = str(REPO / "workloads" / "train_llama3_70b.yaml")  # estimate + one-job engine run: ~1 s


def error_line(capsys, argv: list[str]) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0].removeprefix("error: ")


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_directory_with_the_users_files_is_refused_untouched(tmp_path, capsys):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("my notes")
    msg = error_line(capsys, ["run", EXP, "--out", str(d)])
    assert msg == (f"{d}: directory is not empty (notes.txt) and is not a cluster-sim output directory; "
                   "choose a new or empty directory (nothing was written)")
    assert listing(tmp_path) == ["mine", "mine/notes.txt"] and (d / "notes.txt").read_text() == "my notes"


def test_rerun_over_a_run_directory_keeps_the_users_notes(tmp_path, capsys):
    d = tmp_path / "run"
    assert main(["run", EXP, "--out", str(d)]) == 0
    capsys.readouterr()
    first = json.loads((d / MARKER).read_text())["files"]
    (d / "notes.txt").write_text("my notes")
    assert main(["run", EXP, "--set", "training.jobs.0.parallel.pp=8", "--out", str(d), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((d / "summary.json").read_text())  # the new run
    assert "pp: 8" in (d / "config.resolved.yaml").read_text()
    assert (d / "notes.txt").read_text() == "my notes"
    assert json.loads((d / MARKER).read_text())["files"] == first   # same run files, notes not claimed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]     # no temporary left beside it


@pytest.mark.parametrize("where", ["under_a_file", "a_file", "proc", "dot"])
def test_bad_out_locations_are_one_line_exit_2(tmp_path, capsys, monkeypatch, where):
    (tmp_path / "f").write_text("x")
    monkeypatch.chdir(tmp_path)
    out = {"under_a_file": "f/run", "a_file": "f", "proc": "/proc/cluster-sim-run", "dot": "."}[where]
    msg = error_line(capsys, ["run", EXP, "--out", out])
    assert msg.startswith(f"{out}: ")
    assert listing(tmp_path) == ["f"] and (tmp_path / "f").read_text() == "x"


def test_compare_out_names_stay_inside_and_rerun_is_allowed(tmp_path, capsys):
    d = tmp_path / "cmp"
    argv = ["compare", EXP, "--factor", "name=../evil,ok", "--out", str(d)]
    assert main(argv) == 0
    capsys.readouterr()
    top = sorted(p.name for p in d.iterdir())
    assert top == [MARKER, "compare.csv", "evil", "ok", "report.html"]   # report.html: the index page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp"]     # nothing escaped to tmp_path/evil
    assert (d / "evil" / "summary.json").is_file() and (d / "ok" / MARKER).is_file()
    (d / "README.txt").write_text("what this comparison was for")
    assert main(argv) == 0                                            # over its own output: fine
    assert (d / "README.txt").read_text() == "what this comparison was for"


def test_compare_refuses_a_foreign_directory_before_running(tmp_path, capsys, monkeypatch):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "data.csv").write_text("1,2")
    cmp_mod = importlib.import_module("cluster_sim.experiment.comparison")
    monkeypatch.setattr(cmp_mod, "simulate", lambda *a, **k: pytest.fail("ran before refusing --out"))
    msg = error_line(capsys, ["compare", EXP, "--factor", "seed=1,2", "--out", str(d)])
    assert "is not a cluster-sim output directory" in msg and listing(d) == ["data.csv"]
