"""Off-peak shifting from the CLI: workloads/pool_offpeak.yaml holds deferrable jobs for the cheap
hours and pays less for the same energy; bad off-peak input is one error line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster_sim.cli import main

REPO = Path(__file__).resolve().parents[2]
WORKLOAD = str(REPO / "workloads" / "pool_offpeak.yaml")

BASE = """name: bad
duration: 50h
cluster:
  topology: {builder: node_groups, groups: [[h100-sxm, 8, 2]]}
energy:
  tariff:
    - {from: 0h, to: 8h, usd_per_kwh: 0.05}
    - {from: 8h, to: 24h, usd_per_kwh: 0.12}
training:
  jobs:
    - {name: a, model: llama3-8b, cards: 8, duration: 2h, submit: 10h, deferrable: true, deadline: 24h}
policy:
  training:
    offpeak: {max_usd_per_kwh: 0.05}
"""


def run_json(capsys, *sets: str) -> dict:
    argv = ["run", WORKLOAD, "--json"]
    for kv in sets:
        argv += ["--set", kv]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_pool_offpeak_defers_and_pays_less_for_the_same_energy(capsys):
    on = run_json(capsys)
    off = run_json(capsys, "policy.training.offpeak=null")
    assert on["training.jobs.finished"] == off["training.jobs.finished"] == on["training.jobs.submitted"] == 50
    assert on["training.jobs.deferred"] > 0 and off["training.jobs.deferred"] == 0
    # a deferred job waits at most until 22h of its submit day (submitted 8h-22h)
    assert 0 < on["training.deferred_hours.mean"] <= 14.0
    assert on["training.jobs.missed_deadline"] == 0
    assert on["energy_kwh"] == pytest.approx(off["energy_kwh"], rel=1e-9)  # same work, other hours
    assert on["cost.energy_usd"] < off["cost.energy_usd"]
    assert on["training.queueing_s.mean"] > off["training.queueing_s.mean"]


@pytest.mark.parametrize(("sets", "message"), [
    (["training.jobs.0.deadline=0"], "training.jobs[0].deadline: Input should be greater than 0"),
    (["training.jobs.0.deadline=-1h"], "training.jobs[0].deadline: duration '-1h' is negative"),
    (["energy=null"], "policy.training.offpeak: needs a time-of-use energy.tariff"),
    (["energy.tariff=null", "energy.usd_per_kwh=0.1"], "policy.training.offpeak: needs a time-of-use"),
    (["policy.training.offpeak.max_usd_per_kwh=0.01"],
     "policy.training.offpeak.max_usd_per_kwh: 0.01 is below every energy.tariff window"),
    (["training.generator.kind=uniform", "training.generator.n_jobs=5", "training.generator.jobs_per_hour=1",
      "training.generator.deferrable_fraction=1.5"], "training.generator.deferrable_fraction: Input should be"),
])
def test_bad_offpeak_input_is_one_line_exit_2(tmp_path, capsys, sets, message):
    f = tmp_path / "exp.yaml"
    f.write_text(BASE)
    assert main(["validate", str(f)]) == 0
    capsys.readouterr()
    argv = ["validate", str(f)]
    for kv in sets:
        argv += ["--set", kv]
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"error: {f}: ") and message in lines[0]
