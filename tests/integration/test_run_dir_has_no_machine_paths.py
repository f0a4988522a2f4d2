"""A run directory never records where the repo or the user's files live (no machine paths)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster_sim.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short `cluster-sim run --out` from the repo root."""
    out = tmp_path_factory.mktemp("run") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        assert main(["run", "workloads/train_llama3_70b.yaml", "--set", "training.jobs.0.tokens=1T",
                     "--out", str(out)]) == 0
    return out


def test_run_directory_holds_no_absolute_paths(run_dir, capsys):
    capsys.readouterr()
    texts = {p.name: p.read_text(encoding="utf-8", errors="ignore") for p in run_dir.rglob("*")
             if p.is_file() and p.suffix in {".json", ".yaml", ".html", ".csv", ".txt"}}
    assert {"summary.json", "config.resolved.yaml", "report.html"} <= set(texts)
    for name, text in texts.items():
        for path in {str(REPO), str(run_dir.parent), str(Path.home())}:
            assert path not in text, f"{name} holds the machine path {path}"


def test_resolved_config_runs_again_from_the_repo(run_dir, monkeypatch, capsys):
    """Without base_dir the resolved config still finds its topology (searched up from its folder)."""
    monkeypatch.chdir(REPO)
    capsys.readouterr()
    assert main(["validate", str(run_dir / "config.resolved.yaml")]) == 0
    assert "valid" in capsys.readouterr().out
