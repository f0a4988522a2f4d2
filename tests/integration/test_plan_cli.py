"""``cluster-sim plan``: a small plan end to end (table, pick, files, store), and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cluster_sim.cli import main

REPO = Path(__file__).resolve().parents[2]
SERVING = REPO / "workloads" / "serving_13b_colocated_vs_pd.yaml"
PLAN = f"""
experiment: {SERVING}
set: {{inference.services.0.arrivals.max_requests: 60}}
seeds: 2
candidates:
  - name: a100-2to6
    pd: "2:6"
  - name: h100-2to6
    topology: {{name: hgx-h100-x1, builder: fat_tree, system: hgx-h100, nodes: 1}}
    card_type: h100-sxm
    pd: "2:6"
objectives:
  inference.chat.slo_attainment: ">= ATT"
"""


def plan_text(att: float) -> str:
    return PLAN.replace("ATT", f"{att:g}")


def _write(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_plan_end_to_end_table_pick_files_and_resume(tmp_path, capsys):
    plan = _write(tmp_path, plan_text(0.5))
    out, store = tmp_path / "out", tmp_path / "store"
    assert main(["plan", str(plan), "--workers", "0", "--store", str(store), "--out", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    table = pd.read_csv(out / "plan.csv")
    runs = pd.read_parquet(out / "runs.parquet")
    assert (out / "plots" / "pareto.png").stat().st_size > 10_000
    assert table["candidate"].tolist() == ["a100-2to6", "h100-2to6"] and len(runs) == 4
    # cost per day is cost_usd / sim.end_s x 86,400 per run, averaged over the seeds
    per_run = runs["cost_usd"] / runs["sim.end_s"] * 86_400
    mean = per_run.groupby(runs["candidate"]).mean()
    assert table.set_index("candidate")["cost_per_day_usd"].to_dict() == pytest.approx(mean.to_dict())
    # held all day: 8 cards x the list price x 24 h (catalog prices), whatever the run's length
    from cluster_sim import catalog

    for name, card in (("a100-2to6", "a100-80gb"), ("h100-2to6", "h100-sxm")):
        assert mean[name] == pytest.approx(8 * 24 * catalog.accelerator(card).price_usd_per_hour)
    # both meet a 50% SLO attainment; the A100 server is cheaper, so it is the pick
    assert table["meets"].tolist() == [True, True]
    assert got["pick"] == "a100-2to6"
    assert got["line"].startswith("cheapest feasible: a100-2to6 ($")
    assert got["overrides"]["h100-2to6"]["inference.services.0.deployment.prefill.card_type"] == "h100-sxm"
    assert got["executed"] == 4 and got["skipped"] == 0
    # the run is the one `cluster-sim run` gives with the candidate's overrides and seed
    sets = [x for kv in ("inference.services.0.arrivals.max_requests=60", "seed=1",
                         "inference.services.0.deployment.mode=disaggregated",
                         "inference.services.0.deployment.prefill.replicas=2",
                         "inference.services.0.deployment.decode.replicas=6") for x in ("--set", kv)]
    assert main(["run", str(SERVING), *sets, "--json"]) == 0
    single = json.loads(capsys.readouterr().out)
    row = runs[(runs["candidate"] == "a100-2to6") & (runs["seed"] == 1)].iloc[0]
    for k in ("cost_usd", "inference.chat.slo_attainment", "inference.requests", "sim.events"):
        assert row[k] == pytest.approx(single[k]), k
    # a re-run reads every run from the store
    assert main(["plan", str(plan), "--workers", "0", "--store", str(store)]) == 0
    text = capsys.readouterr().out
    assert "runs: 4 (0 run now, 4 from the store, 0 failed)" in text
    assert "cheapest feasible: a100-2to6 (" in text


def test_no_feasible_candidate_names_the_closest(tmp_path, capsys):
    plan = _write(tmp_path, plan_text(0.9999))
    assert main(["plan", str(plan), "--workers", "0", "--seeds", "1"]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith("cheapest feasible:"))
    assert line.startswith("cheapest feasible: none of the 2 candidates meets every objective; closest: ")
    assert line.endswith(", needs >= 0.9999)")


BAD = [
    (plan_text(0.5).replace("    pd: \"2:6\"\n", "    pdd: \"2:6\"\n", 1),
     [], r"candidates[a100-2to6].pdd: unknown candidate field; known: name, topology"),
    (plan_text(0.5).split("candidates:")[0] + "candidates: []\nobjectives: {inference.slo_attainment: '>= 0.5'}\n",
     [], "candidates: no candidate"),
    (plan_text(0.5) + "  training.days_to_train: '<= 30'\n",
     [], "objectives.training.days_to_train: the runs do not produce this metric"),
    (plan_text(0.5), ["--seeds", "0"], "--seeds '0': expected a count N >= 1"),
    (plan_text(0.5).replace("seeds: 2", "seeds: 0"), [], "seeds: expected a count N >= 1"),
    (plan_text(0.5).replace('card_type: h100-sxm', 'card_type: h900'), [],
     "candidates[h100-2to6].card_type: unknown accelerator 'h900'; known: a10"),
]


@pytest.mark.parametrize("text,flags,message", BAD, ids=["field", "empty", "metric", "seeds-flag", "seeds-file",
                                                         "bad-value"])
def test_bad_input_is_one_line_exit_2_before_any_run(tmp_path, capsys, monkeypatch, text, flags, message):
    import cluster_sim.experiment.sweep as sweep_mod

    def no_run(cfg):
        raise AssertionError("a run started")

    monkeypatch.setattr(sweep_mod, "run_one", no_run)
    plan = _write(tmp_path, text)
    out = tmp_path / "out"
    code = main(["plan", str(plan), "--workers", "0", "--out", str(out), *flags])
    cap = capsys.readouterr()
    assert code == 2, cap.err
    err = cap.err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert message in err, err
    assert not out.exists()


def test_an_override_that_does_not_validate_names_the_candidate_and_seed(tmp_path, capsys, monkeypatch):
    import cluster_sim.experiment.sweep as sweep_mod

    monkeypatch.setattr(sweep_mod, "run_one", lambda cfg: (_ for _ in ()).throw(AssertionError("a run started")))
    text = plan_text(0.5).replace('    pd: "2:6"\n', '    pd: "2:6"\n    set: {inference.services.0.slo.ttft: -1s}\n', 1)
    code = main(["plan", str(_write(tmp_path, text)), "--workers", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("error: candidate a100-2to6, seed 0: ") and "slo.ttft" in err, err


@pytest.mark.parametrize("name,variants", [("plan_serving_pd.yaml", 8), ("plan_supernode.yaml", 4)])
def test_validate_checks_every_candidate_of_a_shipped_plan(capsys, name, variants):
    """`cluster-sim validate` of a plan file checks each candidate's experiment (models fit,
    topology, policies) as `plan` would before its first run, and runs nothing."""
    assert main(["validate", str(REPO / "workloads" / name), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    labels = {line.split(":")[0] for line in got["checked"]}
    assert got["ok"] and len(labels) == variants and all(x.startswith("candidate ") for x in labels)


def test_validate_of_a_plan_names_the_candidate_that_does_not_fit(tmp_path, capsys):
    """A candidate whose cards cannot hold the model fails validate with one line naming it."""
    spec = tmp_path / "p.yaml"
    spec.write_text(f"experiment: {REPO / 'workloads' / 'plan_supernode_workload.yaml'}\n"
                    "set: {duration: 60s}\n"
                    "candidates:\n"
                    "  - name: nebula-2048\n"
                    "    topology: {name: zte-nebula-2048-x1, builder: supernode, system: zte-nebula-2048,"
                    " supernodes: 1}\n"
                    "    card_type: tiangai-150\n"
                    "    set: {training.jobs.0.parallel.recompute: full}\n"
                    "objectives: {training.days_to_train: '<= 45'}\n", encoding="utf-8")
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deepseek-v3 on 16 x tiangai-150" in err[0], err


def test_validate_checks_every_cell_of_a_sweep_file(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(f"experiment: {REPO / 'workloads' / 'schedulers.yaml'}\n"
                    "factors: {policy.training.scheduler: [fifo, sjf]}\n", encoding="utf-8")
    assert main(["validate", str(spec)]) == 0
    assert "valid (2 variants)" in capsys.readouterr().out
    spec.write_text(f"experiment: {REPO / 'workloads' / 'schedulers.yaml'}\n"
                    "factors: {policy.training.schedulr: [fifo]}\n", encoding="utf-8")
    assert main(["validate", str(spec)]) == 2
    assert "policy.training.schedulr: unknown field" in capsys.readouterr().err
