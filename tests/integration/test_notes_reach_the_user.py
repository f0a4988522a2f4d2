"""A run's notes (warnings about its inputs) reach every output: the table, --json, summary.json,
and each variant of a compare."""

from __future__ import annotations

import json

import yaml

from cluster_sim.cli import main

EXP = {
    "name": "notes", "seed": 1, "duration": "2h",
    "cluster": {"topology": {"builder": "node_groups", "groups": [["G2", 8, 2], ["h100-sxm", 8, 2]]}},
    "training": {"generator": {"kind": "uniform", "n_jobs": 20, "jobs_per_hour": 60,
                               "params": {"mean_duration_s": 600.0, "num_cards": 8}}},
}
NOTE = "card type 'G2' is not in the catalog"


def _file(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(EXP))
    return str(path)


def test_run_prints_the_note_and_json_and_summary_json_carry_it(tmp_path, capsys):
    exp = _file(tmp_path)
    assert main(["run", exp, "--out", str(tmp_path / "run")]) == 0
    assert f"note: {NOTE}" in capsys.readouterr().out
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert any(NOTE in n for n in saved["notes"])
    assert main(["run", exp, "--json"]) == 0
    assert any(NOTE in n for n in json.loads(capsys.readouterr().out)["notes"])


def test_compare_prints_shared_notes_once_and_a_variants_own_with_its_value(tmp_path, capsys):
    exp = _file(tmp_path)
    # only the 'G2-free' variant has no G2 cards: the note belongs to the other one alone
    assert main(["compare", exp, "--factor", "cluster.topology.groups.0.0=G2,a100-80gb"]) == 0
    out = capsys.readouterr().out
    assert f"note [G2]: {NOTE}" in out
    assert "note [a100-80gb]" not in out and f"note: {NOTE}" not in out
    assert main(["compare", exp, "--factor", "policy.training.placement=packed,spread"]) == 0
    out = capsys.readouterr().out
    assert out.count(NOTE) == 1 and f"note: {NOTE}" in out
