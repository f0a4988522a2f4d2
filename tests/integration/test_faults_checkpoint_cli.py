"""``failures.checkpoint`` from the CLI (issue #17 F2): bad input is one path-qualified line and
exit 2; the flat checkpoint fields keep today's summary (no reliability keys); the section adds
the ``reliability.*`` keys and the per-job columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster_sim.cli import main

EXP = """name: ck
cluster:
  topology: {name: ft64, builder: fat_tree, system: hgx-h100, nodes: 8}
training:
  jobs:
    - {name: j, model: llama3-8b, cards: 32, card_type: h100-sxm, parallel: {tp: 8}, seq_len: 4096,
       global_batch: 256, tokens: 0.02T}
failures:
  card_mtbf: 500h
"""


@pytest.fixture()
def exp(tmp_path: Path) -> str:
    p = tmp_path / "exp.yaml"
    p.write_text(EXP)
    return str(p)


def _error(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err and out == "", err
    return lines[0]


@pytest.mark.parametrize("sets,field", [
    (["failures.checkpoint.interval=0"], "failures.checkpoint.interval"),
    (["failures.checkpoint.storage_bandwidth=-1"], "failures.checkpoint.storage_bandwidth"),
    (["failures.checkpoint.node_write_bandwidth=-5GB/s"], "failures.checkpoint.node_write_bandwidth"),
    (["failures.checkpoint.async=true"], "failures.checkpoint: host_copy_bandwidth"),
    (["failures.checkpoint.interval=1h", "failures.checkpoint_interval=2h"], "failures: checkpoint_interval"),
])
def test_bad_checkpoint_input_is_one_path_qualified_line(capsys, exp, sets, field, tmp_path):
    argv = ["run", exp, *[x for s in sets for x in ("--set", s)], "--out", str(tmp_path / "o")]
    line = _error(capsys, argv)
    assert field in line, line
    assert not (tmp_path / "o").exists()          # nothing half-written


def _summary(capsys, argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_flat_fields_and_the_section_are_one_model_with_reliability_keys(capsys, exp):
    """Any run where something can fail reports ETTR and goodput: the flat fields and the
    ``failures.checkpoint`` section give the same summary (cost 60 s, 1 h); no failures, no keys."""
    flat = _summary(capsys, ["run", exp, "--set", "failures.checkpoint_interval=1h"])
    sec = _summary(capsys, ["run", exp, "--set", "failures.checkpoint.interval=1h"])
    same = {k for k in flat if not k.startswith("sim.")}
    assert set(sec) == set(flat) and {k: sec[k] for k in same} == {k: flat[k] for k in same}
    assert flat["sources"]["reliability.*"] == "cluster engine"
    assert 0 < flat["reliability.ettr"] <= flat["reliability.goodput"] <= 1
    assert flat["reliability.interruptions.failure"] == flat["training.restarts"]
    assert flat["reliability.effective_mfu"] < flat["training.jobs.mfu"] or flat["training.restarts"] == 0
    none = _summary(capsys, ["run", exp, "--set", "failures=null"])
    assert not any(k.startswith("reliability.") for k in none)


def test_storage_bandwidth_turns_checkpoints_into_writes(capsys, exp, tmp_path):
    out = tmp_path / "run"
    s = _summary(capsys, ["run", exp, "--set", "failures.checkpoint.storage_bandwidth=1GB/s",
                          "--set", "failures.card_mtbf=null", "--out", str(out)])
    n = s["reliability.checkpoints"]
    nbytes = 8.03e9 * 14                     # llama3-8b total parameters (models.toml) x 14 B
    assert n >= 1
    assert s["reliability.checkpoint_stall_card_h"] == pytest.approx(n * nbytes / 1e9 * 32 / 3600, rel=1e-6)
    assert s["reliability.ettr"] == pytest.approx(s["reliability.goodput"], rel=1e-9)   # no failures


def test_explicit_checkpoints_refuse_tenant_silos(capsys):
    """Each silo is its own engine: a storage pool per silo would not be shared, so it is refused."""
    f = str(Path(__file__).resolve().parents[2] / "workloads" / "pool_tenant_silos.yaml")
    line = _error(capsys, ["run", f, "--set", "duration=1h", "--set", "failures.checkpoint.storage_bandwidth=10GB/s"])
    assert "failures.checkpoint.storage_bandwidth: not supported with tenant silos" in line
