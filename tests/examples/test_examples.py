"""Every example script runs to completion (each gets a fresh output directory as its argument)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "examples").glob("*.py"))


def test_there_are_examples():
    assert [p.name for p in SCRIPTS if p.name == "quickstart.py"] == ["quickstart.py"]


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_example_runs(script, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, str(script), str(out)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    assert res.stdout.strip(), "an example should print what it shows"


def test_quickstart_output(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    res = subprocess.run([sys.executable, str(REPO / "examples" / "quickstart.py"), str(tmp_path / "qs")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    assert "MFU" in res.stdout and "days for 15T tokens" in res.stdout and "linear speedup" in res.stdout
    assert (tmp_path / "qs" / "report.html").is_file() and (tmp_path / "qs" / "plots" / "breakdown.png").is_file()
