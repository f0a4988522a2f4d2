"""``cluster-sim train / scaling / validate / run / compare`` end to end (in-process, real files)."""

from __future__ import annotations

import json

import pytest

from cluster_sim.cli import build_parser, main

TRAIN_KEYS = {"step_time_s", "breakdown", "tokens_per_s", "tflops_per_card", "mfu", "days_to_train"}


@pytest.fixture()
def llama(repo):
    return str(repo / "workloads" / "train_llama3_70b.yaml")


@pytest.fixture()
def small(tmp_path):
    """A 64-card inline topology and one 8B job: fast."""
    p = tmp_path / "small.yaml"
    p.write_text(
        "name: small\n"
        "cluster:\n  topology: {builder: fat_tree, system: hgx-h100, nodes: 8, name: ft64}\n"
        "training:\n  jobs:\n"
        "    - {name: a, model: llama3-8b, cards: 16, card_type: h100-sxm, parallel: {tp: 8},\n"
        "       seq_len: 4096, global_batch: 32, tokens: 1T}\n")
    return str(p)


def test_train_json_has_exactly_the_documented_keys(llama, capsys):
    assert main(["train", llama, "--json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)  # stdout is JSON and nothing else
    assert list(data) == ["llama3-70b"] and err == ""
    job = data["llama3-70b"]
    assert set(job) == TRAIN_KEYS | {"band"}  # DESIGN.md 4 keys plus the uncertainty band
    assert sum(job["breakdown"].values()) == pytest.approx(job["step_time_s"])
    assert 0.2 < job["mfu"] < 0.7
    # tokens/s = 2048 sequences x 8192 tokens per step
    assert job["tokens_per_s"] == pytest.approx(2048 * 8192 / job["step_time_s"])
    assert job["days_to_train"] == pytest.approx(15e12 / job["tokens_per_s"] / 86400)


def test_train_set_override_changes_the_plan(llama, capsys):
    assert main(["train", llama, "--json", "--verbose", "--set", "training.jobs.0.parallel.pp=8",
                 "--set", "training.jobs.0.parallel.virtual_stages=1"]) == 0
    job = json.loads(capsys.readouterr().out)["llama3-70b"]
    assert job["plan"]["pp"] == 8 and job["plan"]["dp"] == 16 and job["cards"] == 1024


def test_train_table(llama, capsys):
    assert main(["train", llama]) == 0
    out = capsys.readouterr().out
    for text in ("compute", "tp_comm", "pp_bubble", "step time", "MFU", "TFLOP/s per card", "tokens/s",
                 "GiB per card", "days to train 15T tokens", "tp=8 pp=4 dp=32"):
        assert text in out, text
    assert "100%" in out


def test_scaling_json_and_png(small, tmp_path, capsys):
    png = tmp_path / "s.png"
    assert main(["scaling", small, "--cards", "8,16,32,64", "--json", "--png", str(png)]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = data["ft64"]
    assert [r["cards"] for r in rows] == [8, 16, 32, 64]
    assert rows[0]["linear_speedup"] == pytest.approx(1.0)
    assert all(0 < r["linear_speedup"] <= 1.0 + 1e-9 and 0 < r["mfu"] < 1 for r in rows)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_scaling_compares_topologies(small, repo, capsys):
    topos = [str(repo / "topologies" / f) for f in ("h100-rail-1024.yaml", "h100-fattree-4to1-1024.yaml")]
    assert main(["scaling", small, "--cards", "8,64,512", "--topology", topos[0], "--topology", topos[1]]) == 0
    out = capsys.readouterr().out
    assert "on h100-rail-1024: weak scaling" in out and "on h100-fattree-4to1-1024: weak scaling" in out


def test_validate_ok(small, capsys):
    assert main(["validate", small]) == 0
    out = capsys.readouterr().out
    assert "ok  cluster.topology: ft64: 64 cards (64 h100-sxm)" in out
    assert "training.jobs[0] a: llama3-8b on 16 h100-sxm" in out and "valid" in out


def test_run_json_and_out(small, tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert main(["run", small, "--json", "--out", str(out_dir)]) == 0
    summary = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert summary["training.mfu"] > 0 and summary["experiment"] == "small"
    assert json.loads((out_dir / "summary.json").read_text())["training.mfu"] == pytest.approx(summary["training.mfu"])
    assert (out_dir / "report.html").is_file() and (out_dir / "plots" / "breakdown.png").is_file()


def test_compare_json(small, capsys):
    assert main(["compare", small, "--factor", "training.jobs.0.cards=8,16", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["training.jobs.0.cards"] for r in rows] == ["8", "16"]
    assert rows[1]["training.tokens_per_s"] > rows[0]["training.tokens_per_s"]


@pytest.mark.parametrize("cmd", ["run", "compare", "train", "scaling", "validate", "demo"])
def test_help_has_an_example(cmd):
    sub = build_parser()._subparsers._group_actions[0].choices[cmd]  # type: ignore[union-attr]
    text = sub.format_help()
    assert "example" in text and f"cluster-sim {cmd}" in text
