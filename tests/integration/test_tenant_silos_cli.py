"""Tenant silos from the CLI (``workloads/pool_tenant_silos.yaml``): bad ``tenant_cards`` is one
line naming the field and exit code 2 (validate and run); at seed 0 one pool queues less and is
more allocated than per-tenant silos (what pooling buys), the silos' utilizations average to the
cluster's, and when every tenant's load fits its silo the two give the same JCT (where it stops)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster_sim.cli import main

REPO = Path(__file__).resolve().parents[2]
SILOS = str(REPO / "workloads" / "pool_tenant_silos.yaml")
TEAMS = ("team-a", "team-b", "team-c", "team-d")


@pytest.mark.parametrize("sets, message", [
    (["policy.pool.params.tenant_cards.team-a=100"],
     "error: policy.pool.params.tenant_cards.team-a.h100-sxm: asks for 100 cards; 64 h100-sxm are left "
     "for training"),
    (["policy.pool.params.tenant_cards.team-d=8", "policy.pool.params.tenant_cards.team-x=4"],
     "error: policy.pool.params.tenant_cards.team-x: no training job has tenant 'team-x'; the jobs' "
     "tenants: team-a, team-b, team-c, team-d"),
    (["policy.pool.params.tenant_cards.team-a={mi300x: 4}"],
     "error: policy.pool.params.tenant_cards.team-a.mi300x: no card of type 'mi300x' in the cluster"),
    (["policy.pool.params.tenant_cards={team-a: 32, team-b: 32}"],
     "error: policy.pool.params.tenant_cards: the silos take every training card, but"),
])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_tenant_cards_one_line_exit_2(command, sets, message, capsys, tmp_path):
    args = [command, SILOS, *[x for kv in sets for x in ("--set", kv)]]
    if command == "run":
        args += ["--out", str(tmp_path / "out")]
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(message), err
    assert not (tmp_path / "out").exists()


def _run(capsys, *sets: str) -> dict:
    code = main(["run", SILOS, *[x for kv in sets for x in ("--set", kv)], "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_one_pool_queues_less_and_allocates_more_than_silos(capsys):
    silo = _run(capsys)
    pool = _run(capsys, "policy.pool.name=shared_pool")
    # seed 0 (measured): silos queue 1,775 s on average, the pool 5 s; allocated 48.7% vs 49.7%
    # (the silos' backlog runs later: over the day they lose only the 3 jobs still queued at the end)
    assert silo["training.queueing_s.mean"] > 10 * pool["training.queueing_s.mean"] + 600
    assert pool["utilization.allocated"] > silo["utilization.allocated"] + 0.005
    assert pool["training.jobs.finished"] >= silo["training.jobs.finished"]
    # the busiest tenant (50% of the jobs: 125% of its silo's cards offered) waits most in a silo
    a = "tenant.team-a.queueing_s.mean"
    assert silo[a] > 1800 > 300 > pool[a]
    assert silo[a] == max(silo[f"tenant.{t}.queueing_s.mean"] for t in TEAMS)
    # per-silo utilization over 16 cards each: their mean is the cluster's (64 cards, no inference)
    assert {silo[f"tenant.{t}.silo_cards"] for t in TEAMS} == {16}
    mean = sum(silo[f"tenant.{t}.utilization.allocated"] for t in TEAMS) / 4
    assert mean == pytest.approx(silo["utilization.allocated"], rel=1e-9)
    assert silo["tenant.team-a.utilization.allocated"] > 0.85 > 0.3 > silo["tenant.team-d.utilization.allocated"]
    assert "tenant.team-a.utilization.allocated" not in pool   # one pool: no silos
    assert sum(pool[f"tenant.{t}.jobs.submitted"] for t in TEAMS) == pool["training.jobs.submitted"]
    assert any("silo sizes are not used" in n for n in pool["notes"])


def test_where_it_stops_every_load_fits_its_silo(capsys):
    light = ("training.generator.params.tenant_weights=[1,1,1,1]", "training.generator.jobs_per_hour=0.5",
             "training.generator.n_jobs=12")
    silo = _run(capsys, *light)
    pool = _run(capsys, *light, "policy.pool.name=shared_pool")
    assert silo["training.queueing_s.mean"] == pool["training.queueing_s.mean"] == 0.0
    assert silo["training.jct_s.mean"] == pytest.approx(pool["training.jct_s.mean"], rel=1e-12)
    assert silo["utilization.allocated"] == pytest.approx(pool["utilization.allocated"], rel=1e-12)


def test_validate_describes_the_silos(capsys):
    assert main(["validate", SILOS]) == 0
    out = capsys.readouterr().out
    assert ("ok  policy.pool: static_partition: inference partition no cards, training on the other 64 "
            "cards; tenant silos team-a 16, team-b 16, team-c 16, team-d 16, 0 cards for the other "
            "tenants") in out
