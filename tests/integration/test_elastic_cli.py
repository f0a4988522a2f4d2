"""Elastic training jobs from the experiment file (docs/faults.md, "Elastic jobs"): bad input exits
2 with the field path and writes nothing; the generator's elastic_fraction draws from its own
stream; a model job shrinks through its perf model and grows back; non-elastic runs keep their
summary keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster_sim.cli import main
from cluster_sim.config import load_config
from cluster_sim.experiment.build import build_simulation
from cluster_sim.metrics import result_from_record

BASE = """name: elastic
seed: 4
duration: 3d
cluster:
  topology: {builder: node_groups, nodes_per_leaf: 2, groups: [[h100-sxm, 8, 8]]}
training:
  generator: {kind: industry_mix, jobs_per_hour: 2}
failures:
  classes:
    - {name: host, unit: node, rate_per_1000_node_days: 50, repair: 12h}
    - {name: gpu, unit: card, mtbf: 2000h, distribution: weibull, shape: 0.8, repair: 6h}
  technicians: 1
"""
CKPT = "workloads/faults_checkpoint_interval.yaml"
SHORT = ["--set", "training.jobs.0.tokens=0.2T"]


def experiment(tmp_path: Path, extra: str = "") -> str:
    p = tmp_path / "exp.yaml"
    p.write_text(BASE.replace("jobs_per_hour: 2}", "jobs_per_hour: 2" + extra + "}"))
    return str(p)


@pytest.mark.parametrize("sets, where", [
    (["training.jobs.0.elastic=true", "training.jobs.0.min_cards=2000"], "training.jobs[0]: min_cards"),
    (["training.jobs.0.elastic=true", "training.jobs.0.min_cards=0"], "training.jobs[0].min_cards"),
    (["training.jobs.0.min_cards=512"], "training.jobs[0]: min_cards: applies to elastic jobs"),
    (["training.jobs.0.elastic=true", "training.jobs.0.min_cards=1000"], "training.jobs[0].elastic"),
    (["training.jobs.0.elastic=true", "training.jobs.0.cards=32"], "training.jobs[0].elastic"),
])
def test_bad_elastic_input_exits_2_with_the_field(tmp_path, capsys, sets, where):
    """min_cards above the cards or below 1, min_cards without elastic, and a job that cannot
    shrink (no multiple of tp*pp = 32 in [min_cards, cards)) are one line naming the field."""
    out = tmp_path / "run"
    code = main(["run", CKPT, *SHORT, *[x for kv in sets for x in ("--set", kv)], "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and where in err, err
    assert not out.exists()


def test_bad_elastic_fraction_exits_2(tmp_path, capsys):
    code = main(["validate", experiment(tmp_path, ", elastic_fraction: 1.5")])
    err = capsys.readouterr().err
    assert code == 2 and "training.generator.elastic_fraction" in err, err


def run_cfg(path):
    sim = build_simulation(load_config(path))
    sim.run()
    return sim, result_from_record(sim.collect())


def test_elastic_fraction_marks_eligible_jobs_from_its_own_stream(tmp_path):
    """The same jobs arrive with and without the knob (its draws come from the stream
    "elastic"); with 1.0 every job of >= 2 whole cards is elastic and with 0 none is (and the
    run has no elastic keys); elastic jobs shrink in this failure-heavy run."""
    runs = {}
    for f in (0.0, 1.0):
        p = tmp_path / f"f{f}"
        p.mkdir()
        runs[f] = run_cfg(experiment(p, f", elastic_fraction: {f}"))
    (s0, r0), (s1, r1) = runs[0.0], runs[1.0]
    assert (r0.jobs["submit_s"] == r1.jobs["submit_s"]).all()
    assert (r0.jobs["duration_s"] == r1.jobs["duration_s"]).all()
    assert "elastic" not in list(s0.streams) and "elastic" in list(s1.streams)
    assert not any(k.startswith("training.elastic") for k in r0.summary)
    eligible = (r1.jobs["num_cards"] >= 2) & (r1.jobs["card_milli"] >= 1000)
    assert (r1.jobs["elastic"] == eligible).all() and eligible.any()
    assert r1.summary["training.elastic.jobs"] == int(eligible.sum())
    assert r1.summary["training.elastic.shrinks"] > 0


def test_model_job_shrinks_and_grows_back(capsys):
    """Llama-3 70B on all 1,024 cards (tp 8 x pp 4): each node failure leaves 1,016 cards, 992
    in steps of 32; it restarts on them, slower through its perf model, and grows back at the
    checkpoint after the repair. The reference run (not elastic) has the same failures."""
    assert main(["run", CKPT, *SHORT, "--json"]) == 0
    base = json.loads(capsys.readouterr().out)
    assert main(["run", CKPT, *SHORT, "--set", "training.jobs.0.elastic=true", "--json"]) == 0
    el = json.loads(capsys.readouterr().out)
    assert "training.elastic.shrinks" not in base
    assert el["training.elastic.shrinks"] == base["training.restarts"] == 2
    assert el["training.elastic.regrows"] == 2
    assert el["training.elastic.shrunk_card_hours"] > 0
