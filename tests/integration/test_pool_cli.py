"""Pool policies from the CLI: bad input is one line and exit code 2; validate describes the
dynamic policies; a shared-ledger run of the peak-shaving scenario adds up and is deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster_sim.cli import main

REPO = Path(__file__).resolve().parents[2]
PEAK = str(REPO / "workloads" / "pool_peak_shaving.yaml")
STATIC = str(REPO / "workloads" / "pool_static_partition.yaml")


@pytest.mark.parametrize("sets, message", [
    (["policy.pool.params.min_replicas=100"],
     "error: policy.pool.params.min_replicas: 100 replicas must always serve, but "
     "inference.services[0].deployment has only 96"),
    (["policy.pool.params.min_replicas=-1"],
     "error: policy.pool.params.min_replicas: must be an integer >= 0, got -1"),
    (["policy.pool.params.share_slots=maybe"],
     "error: policy.pool.params.share_slots: must be true or false, got 'maybe'"),
    (["policy.pool.params.notice_s=-1"],
     "error: policy.pool.params.notice_s: must be a finite number >= 0, got -1"),
    (["policy.pool=shared_pool", "policy.pool.params.inference_cards.h100-sxm=8"],
     "error: policy.pool.params.inference_cards: unknown parameter of pool policy 'shared_pool'"),
])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_pool_params_are_one_line_exit_2(command, sets, message, capsys, tmp_path):
    args = [command, PEAK, *[x for kv in sets for x in ("--set", kv)]]
    if command == "run":
        args += ["--out", str(tmp_path / "out")]
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(message.split(":")[0]), err
    assert message.split("error: ")[1].split(", got")[0] in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("pool, verb", [("peak_shaving", "reclaim cards from preemptible training"),
                                        ("shared_pool", "wait for free cards")])
def test_validate_says_what_a_dynamic_pool_does(pool, verb, capsys):
    assert main(["validate", PEAK, "--set", f"policy.pool={pool}"]) == 0
    out = capsys.readouterr().out
    assert (f"ok  policy.pool: {pool}: no card set aside; serving replica slots may use 2,048 cards, "
            f"lend them to training while off, and at a scale-up {verb}") in out


def _run(capsys, *sets):
    code = main(["run", STATIC, "--json", *[x for kv in sets for x in ("--set", kv)]])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_a_shared_ledger_run_adds_up_and_is_deterministic(capsys):
    sets = ("policy.pool=peak_shaving", "duration=2h", "training.generator.params.preemptible=true",
            "policy.serving.autoscaling.name=queue_driven",
            "policy.serving.autoscaling.params.target_outstanding=2")
    a = _run(capsys, *sets)
    b = _run(capsys, *sets)
    wall = ("sim.wall_s", "sim.events_per_s", "sim.requests_per_wall_s", "sim.jobs_per_s")
    assert {k: v for k, v in a.items() if k not in wall} == {k: v for k, v in b.items() if k not in wall}
    hours = sum(a[f"pool.card_hours.{s}"] for s in ("idle", "training", "serving", "moving", "down"))
    assert hours == pytest.approx(64 * 2.0, rel=1e-9)
    alloc = a["pool.utilization.training"] + a["pool.utilization.serving"] + a["pool.utilization.moving"]
    assert a["pool.utilization.allocated"] == pytest.approx(alloc)
    assert 0 < a["pool.utilization.busy"] <= a["pool.utilization.allocated"] + 1e-9
    assert a["cost_usd"] == a["pool.cost_usd"] and a["energy_kwh"] == a["pool.energy_kwh"]
    assert a["sources"]["cost_usd"] == "pool ledger"
    assert 0 < a["training.goodput"] <= 1
    assert a["pool.claims"] >= 1 and a["pool.lends"] >= 0
    assert a["pool.hourly.allocated.min"] <= a["pool.utilization.allocated"] <= a["pool.hourly.allocated.max"]
    assert {a["pool.hourly.allocated.min_hour"], a["pool.hourly.allocated.max_hour"]} == {0, 1}


def test_demand_served_is_busy_less_the_work_evictions_lost(capsys):
    """With no preemption notice an evicted job loses the work since its last checkpoint: busy
    counted it while it ran, demand served does not (exactly the broker's lost card-seconds)."""
    s = _run(capsys, "policy.pool=peak_shaving", "policy.pool.params.notice_s=0", "duration=2h",
             "training.generator.params.preemptible=true", "policy.serving.autoscaling.name=queue_driven",
             "policy.serving.autoscaling.params.target_outstanding=2")
    lost = s["pool.lost_work_card_hours"] * 3600.0 / (64 * 7200.0)
    assert lost > 0.005
    assert s["pool.utilization.demand_served"] == pytest.approx(s["pool.utilization.busy"] - lost, abs=1e-12)
    assert 0.9 < s["training.demand_served"] < 1 and 0.99 < s["inference.demand_served"] <= 1


def test_a_silo_costs_its_idle_cards(capsys):
    """Under static_partition the inference silo's cards are held all run (cost and card-hours),
    whether its replicas are busy or not; the pooled policies only pay for what is held."""
    s = _run(capsys, "duration=1h")
    assert s["pool.card_hours.serving"] == pytest.approx(16 * 1.0)
    price = s["pool.cost_usd"] / (s["pool.card_hours.training"] + s["pool.card_hours.serving"])
    assert price == pytest.approx(s["cost.installed_usd"] / (64 * 1.0), rel=1e-9)   # one card type, one price


def test_per_type_pool_utilization_adds_up_to_the_whole(capsys):
    """On a three-vendor cluster (32 cards of each type) the per-type allocated and busy shares
    average, weighted by cards, to the whole-cluster ones; a single-type cluster has no per-type keys."""
    code = main(["run", str(REPO / "workloads" / "pool_multi_vendor.yaml"), "--set", "duration=1h", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    s = json.loads(out)
    types = ("h100-sxm", "ascend-910b", "kunlun-p800")
    for form in ("allocated", "busy"):
        parts = [s[f"pool.utilization.{form}.{t}"] for t in types]
        assert sum(parts) / 3 == pytest.approx(s[f"pool.utilization.{form}"], rel=1e-12)
        assert all(0 <= p <= 1 for p in parts)
    single = _run(capsys, "duration=1h")
    assert not any(k.startswith("pool.utilization.allocated.") for k in single)


@pytest.mark.parametrize("pool", ["static_partition", "peak_shaving"])
def test_pooled_energy_is_priced_per_bin(pool, capsys):
    """At a flat price the per-bin pricing of the ledger's energy is exactly energy x price (so
    every held and busy card-second is priced once); under a day/night tariff the same run pays
    the price of the hours it drew in, and no note says 'mean power' any more."""
    base = (f"policy.pool={pool}", "duration=2h", "policy.serving.autoscaling.name=queue_driven")
    flat = _run(capsys, *base, "energy.usd_per_kwh=0.1")
    assert flat["cost.energy_usd"] == pytest.approx(flat["energy_kwh"] * 0.1, rel=1e-12)
    assert flat["sources"]["cost.energy_usd"] == "pool ledger"
    assert not any("mean power" in n for n in flat["notes"])
    # 0.1 USD/kWh for the first hour, 0.3 after: the price weights the energy by when it was drawn
    tou = _run(capsys, *base, "energy.tariff=[{start: 0h, end: 1h, usd_per_kwh: 0.1}, "
                              "{start: 1h, end: 24h, usd_per_kwh: 0.3}]")
    assert tou["energy_kwh"] == flat["energy_kwh"]
    assert 0.1 * tou["energy_kwh"] < tou["cost.energy_usd"] < 0.3 * tou["energy_kwh"]
