"""Time-of-use electricity tariff (issue #13): closed forms, config errors, priced run summaries."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_sim import load_config, simulate
from cluster_sim.cli import main
from cluster_sim.errors import ConfigError
from cluster_sim.metrics.costs import J_PER_KWH, priced_energy_usd
from cluster_sim.metrics.summary import training_it_power_w
from cluster_sim.metrics.tariff import DAY_S, Tariff

H = 3600.0
THREE = [{"from": "0h", "to": "8h", "usd_per_kwh": 0.05}, {"from": "8h", "to": "22h", "usd_per_kwh": 0.12},
         {"from": "22h", "to": "24h", "usd_per_kwh": 0.05}]
DAY = Tariff.from_windows([(0, 8 * H, 0.05), (8 * H, 22 * H, 0.12), (22 * H, 24 * H, 0.05)])
TOPO = {"name": "ft64", "builder": "fat_tree", "system": "hgx-h100", "nodes": 8}  # 64 H100


# ---- the tariff object -------------------------------------------------------------------------
def test_one_kw_for_a_day_costs_the_window_sum():
    assert DAY.cost_usd([(0.0, DAY_S, 1000.0)]) == pytest.approx(8 * 0.05 + 14 * 0.12 + 2 * 0.05, rel=1e-12)


def test_a_bin_straddling_a_boundary_is_split_exactly():
    # 7.5h-8.25h at 2 kW: 0.5 h at 0.05 and 0.25 h at 0.12
    got = DAY.cost_usd([(7.5 * H, 8.25 * H, 2000.0)])
    assert got == pytest.approx(2.0 * (0.5 * 0.05 + 0.25 * 0.12), rel=1e-12)
    # a bin priced at its start (or its midpoint) would be 2 * 0.75 * 0.05 or 0.12 instead
    assert not math.isclose(got, 2 * 0.75 * 0.05) and not math.isclose(got, 2 * 0.75 * 0.12)


def test_days_repeat_and_partial_days_add_up():
    two_days = DAY.cost_usd([(0.0, 2 * DAY_S, 1000.0)])
    assert two_days == pytest.approx(2 * 2.18, rel=1e-12)
    # 21h of day 1 to 1h of day 2: 1 h at 0.12, 2 h at 0.05, 1 h at 0.05
    assert DAY.cost_usd([(DAY_S + 21 * H, 2 * DAY_S + H, 1000.0)]) == pytest.approx(0.12 + 0.15, rel=1e-12)


@settings(deadline=2000, max_examples=60)
@given(st.floats(0, 5 * DAY_S), st.floats(0, 3 * DAY_S), st.floats(0, 1e6))
def test_cost_is_additive_over_a_split_bin(t0, dt, w):
    """Splitting a bin anywhere never changes its cost (the integral is exact)."""
    mid = t0 + dt / 3
    whole = DAY.cost_usd([(t0, t0 + dt, w)])
    parts = DAY.cost_usd([(t0, mid, w), (mid, t0 + dt, w)])
    assert whole == pytest.approx(parts, rel=1e-9, abs=1e-9)
    assert 0.05 * w * dt / J_PER_KWH - 1e-9 <= whole <= 0.12 * w * dt / J_PER_KWH + 1e-9


def test_price_at_and_the_next_cheap_window():
    assert [DAY.price_at(h * H) for h in (0, 7.99, 8, 21.99, 22, 24, 32)] == [0.05, 0.05, 0.12, 0.12, 0.05,
                                                                            0.05, 0.12]
    assert DAY.next_window_at_or_below(9 * H, 0.05) == 22 * H
    assert DAY.next_window_at_or_below(DAY_S + 9 * H, 0.05) == DAY_S + 22 * H
    assert DAY.next_window_at_or_below(23 * H, 0.05) == 23 * H
    assert DAY.next_window_at_or_below(9 * H, 0.12) == 9 * H
    assert DAY.next_window_at_or_below(9 * H, 0.01) == math.inf
    tou = Tariff.from_windows([(0, 8 * H, 0.12), (8 * H, 10 * H, 0.05), (10 * H, 24 * H, 0.12)])
    assert tou.next_window_at_or_below(11 * H, 0.05) == DAY_S + 8 * H   # tomorrow morning
    assert DAY.cheap_hours(0.05) == ((0.0, 8 * H), (22 * H, DAY_S))


@pytest.mark.parametrize("windows, match", [
    ([(0, 8 * H, 0.05), (9 * H, DAY_S, 0.1)], "gap"),
    ([(0, 9 * H, 0.05), (8 * H, DAY_S, 0.1)], "overlap"),
    ([(0, 8 * H, 0.05)], "not at 24h"),
    ([(0, 8 * H, -0.05), (8 * H, DAY_S, 0.1)], ">= 0"),
    ([(0, 8 * H, math.inf), (8 * H, DAY_S, 0.1)], "finite"),
])
def test_the_object_refuses_a_bad_day(windows, match):
    with pytest.raises(ConfigError, match=match):
        Tariff.from_windows(windows)


def test_pue_is_applied_once():
    assert priced_energy_usd([0.0], [H], [1000.0], 1.5, Tariff.flat(0.1)) == pytest.approx(0.15, rel=1e-12)
    with pytest.raises(ConfigError, match="pue"):
        priced_energy_usd([0.0], [H], [1000.0], 0.9, Tariff.flat(0.1))


# ---- config errors through the CLI -------------------------------------------------------------
def _validate(tmp_path: Path, capsys, energy: str) -> str:
    p = tmp_path / "exp.yaml"
    p.write_text("cluster:\n  topology: {builder: fat_tree, system: hgx-h100, nodes: 2}\n" + energy)
    code = main(["validate", str(p)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _tariff(*rows: str) -> str:
    return "energy:\n  tariff:\n" + "".join(f"    - {r}\n" for r in rows)


@pytest.mark.parametrize("energy, expect", [
    (_tariff("{from: 0h, to: 8h, usd_per_kwh: 0.05}", "{from: 9h, to: 24h, usd_per_kwh: 0.1}"),
     "exp.yaml: energy.tariff: 8h-9h is not covered"),
    (_tariff("{from: 0h, to: 9h, usd_per_kwh: 0.05}", "{from: 8h, to: 24h, usd_per_kwh: 0.1}"),
     "exp.yaml: energy.tariff: 8h-9h is covered twice"),
    (_tariff("{from: 0h, to: 8h, usd_per_kwh: 0.05}"), "exp.yaml: energy.tariff: 8h-24h is not covered"),
    (_tariff("{from: 0h, to: 8h, usd_per_kwh: -0.05}", "{from: 8h, to: 24h, usd_per_kwh: 0.1}"),
     "exp.yaml: energy.tariff[0].usd_per_kwh: Input should be greater than or equal to 0 (got -0.05)"),
    (_tariff("{from: 0h, to: 8h, usd_per_kwh: .inf}", "{from: 8h, to: 24h, usd_per_kwh: 0.1}"),
     "exp.yaml: energy.tariff[0].usd_per_kwh: Input should be a finite number (got inf)"),
    (_tariff("{from: 0h, to: 8h, usd_per_kwh: 0.05}", "{from: 8h, to: 25h, usd_per_kwh: 0.1}"),
     "exp.yaml: energy.tariff[1]: to: 25h is past 24h (the tariff repeats every day)"),
    (_tariff("{from: 8h, to: 8h, usd_per_kwh: 0.05}", "{from: 0h, to: 24h, usd_per_kwh: 0.1}"),
     "exp.yaml: energy.tariff[0]: from 8h is not before to 8h"),
    ("energy: {usd_per_kwh: -1}\n", "exp.yaml: energy.usd_per_kwh: Input should be greater than or equal to 0 (got -1)"),
    ("energy: {usd_per_kwh: 0.1, tariff: [{from: 0h, to: 24h, usd_per_kwh: 0.1}]}\n",
     "exp.yaml: energy: give usd_per_kwh (a flat price) or tariff (time-of-use windows), exactly one"),
])
def test_bad_tariff_is_one_line_naming_the_field(tmp_path, capsys, energy, expect):
    line = _validate(tmp_path, capsys, energy)
    assert line.startswith("error: ") and line.endswith(expect), line


def test_config_windows_and_round_trip():
    cfg = load_config({"cluster": {"topology": TOPO}, "energy": {"tariff": list(reversed(THREE))}})
    assert cfg.energy is not None
    assert cfg.energy.windows_s() == ((0.0, 8 * H, 0.05), (8 * H, 22 * H, 0.12), (22 * H, DAY_S, 0.05))
    again = load_config(cfg.model_dump(exclude_unset=True))   # run_training reloads a dumped config
    assert again.energy == cfg.energy
    flat = load_config({"cluster": {"topology": TOPO}, "energy": {"usd_per_kwh": 0.08}})
    assert flat.energy is not None and flat.energy.windows_s() == ((0.0, DAY_S, 0.08),)


# ---- priced runs -------------------------------------------------------------------------------
def _experiment(energy: dict | None) -> dict:
    cfg = {"name": "priced", "seed": 3, "duration": "10h", "cluster": {"topology": TOPO},
           "training": {"generator": {"kind": "industry_mix", "jobs_per_hour": 20}},
           "inference": {"pue": 1.3, "services": [
               {"name": "chat", "model": "llama3-8b", "deployment": {"replicas": 1, "card_type": "h100-sxm"},
                "arrivals": {"kind": "poisson", "rate": 0.05}}]}}
    if energy is not None:
        cfg["energy"] = energy
    return cfg


@pytest.fixture(scope="module")
def priced():
    return simulate(load_config(_experiment({"tariff": THREE})))


def test_training_cost_is_the_integral_of_its_timeline(priced):
    from cluster_sim import catalog

    tl = priced.timeline
    types = sorted({c.split(".", 1)[1] for c in tl.columns if c.startswith("busy_cards.")})
    tdp = [catalog.accelerator(t).tdp_w for t in types]
    idle = [catalog.accelerator(t).idle_w for t in types]
    it_w = training_it_power_w(tl, types, tdp, idle)
    width = (tl["time_end_s"] - tl["time_s"]).to_numpy()
    # the per-bin power carries exactly the summary's IT energy of the training engine
    train_it_kwh = float((it_w * width).sum()) / J_PER_KWH
    serve_it_kwh = float(priced.tables["replicas"]["energy_it_j"].sum()) / J_PER_KWH
    assert train_it_kwh + serve_it_kwh == pytest.approx(priced.summary["energy.it_kwh"], rel=1e-9)
    # recomputed by hand: bin by bin, split at 8h, PUE 1.3
    train_usd = 0.0
    for t0, t1, w in zip(tl["time_s"], tl["time_end_s"], it_w * 1.3, strict=True):
        cuts = [t0, *[c for c in (8 * H, 22 * H) if t0 < c < t1], t1]
        train_usd += sum(w * (b - a) / J_PER_KWH * DAY.price_at(a) for a, b in zip(cuts, cuts[1:], strict=False))
    end = priced.summary["sim.end_s"]
    serve_usd = 1.3 * serve_it_kwh * J_PER_KWH / end * (min(end, 8 * H) * 0.05 + max(end - 8 * H, 0) * 0.12) \
        / J_PER_KWH
    assert train_it_kwh > 0 and serve_it_kwh > 0 and end == pytest.approx(10 * H)
    assert priced.summary["cost.energy_usd"] == pytest.approx(train_usd + serve_usd, rel=1e-9)
    assert priced.summary["sources"]["cost.*"] == "cluster engine + serving engine"
    assert any("serving energy is priced at the run's mean power" in n for n in priced.notes)


def test_flat_price_is_price_times_facility_energy():
    res = simulate(load_config(_experiment({"usd_per_kwh": 0.08})))
    assert res.summary["cost.energy_usd"] == pytest.approx(0.08 * res.summary["energy_kwh"], rel=1e-9)


def test_no_tariff_no_priced_energy():
    cfg = _experiment(None)
    cfg["inference"]["services"] = []
    res = simulate(load_config(cfg))
    assert "cost.energy_usd" not in res.summary and "energy_kwh" in res.summary
    assert not np.isnan(res.summary["cost_usd"])


def test_one_ledger_run_is_priced_too():
    """Under static_partition both engines share one simulation; both still price their energy."""
    cfg = _experiment({"usd_per_kwh": 0.1})
    cfg["duration"] = "2h"
    cfg["policy"] = {"pool": {"name": "static_partition", "params": {"inference_cards": {"h100-sxm": 8}}}}
    res = simulate(load_config(cfg))
    assert res.summary["sources"]["cost.*"] == "cluster engine + serving engine"
    assert res.summary["cost.energy_usd"] == pytest.approx(0.1 * res.summary["energy_kwh"], rel=1e-9)
