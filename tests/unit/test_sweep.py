"""``experiment.sweep`` without Dask (``workers=0``): grid order, run keys, the store, resume,
failures, completion order, the per-cell statistics and adaptive replication."""

from __future__ import annotations

import importlib
import math
import statistics
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cluster_sim import load_config
from cluster_sim.errors import ClusterSimError, ConfigError
from cluster_sim.experiment.comparison import t_quantile_975
from cluster_sim.experiment.sweep import cell_label, expand_grid, run_key, sweep
from cluster_sim.experiment.sweep_stats import bootstrap_ci, cell_stats, is_percentile, mean_ci
from cluster_sim.experiment.sweep_store import ResultStore, read_store

sweep_mod = importlib.import_module("cluster_sim.experiment.sweep")  # to patch its simulate
REPO = Path(__file__).resolve().parents[2]
EXP = str(REPO / "workloads" / "schedulers.yaml")
SET = {"duration": "12h"}
FACTORS = {"policy.training.scheduler": ["fifo", "sjf"], "policy.training.placement": ["packed", "topology_aware"]}
WALL = ("sim.wall_s", "sim.events_per_s", "sim.jobs_per_s", "sim.requests_per_wall_s")


def _fake_simulate(value):
    """A stand-in for ``simulate``: summary ``{"m": value(cfg)}``, so a test knows every number."""
    def fake(cfg):
        return SimpleNamespace(summary={"m": float(value(cfg)), "x.p99": float(value(cfg))}, notes=[])
    return fake


def _no_wall(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in WALL if c in df.columns])


def test_grid_is_nested_loop_order_first_factor_slowest():
    cells = expand_grid({"a": ["x", "y", "z"], "b": [1, 2]})
    assert [(c["a"], c["b"]) for c in cells] == [("x", 1), ("x", 2), ("y", 1), ("y", 2), ("z", 1), ("z", 2)]
    assert cell_label(cells[3]) == "a=y, b=2"


@pytest.mark.parametrize("bad, msg", [({}, "empty grid"), ({"a": []}, "factors.a: no value"),
                                      ({"a": "xy"}, "expected a list"), ({"a": [1, 1]}, "given twice")])
def test_bad_grids_are_refused(bad, msg):
    with pytest.raises(ConfigError, match=msg):
        expand_grid(bad)


def test_run_key_is_the_resolved_config_and_seed():
    a = load_config(EXP, overrides={**SET, "seed": 1, "policy.training.scheduler": "sjf"})
    b = load_config(EXP, overrides={"policy.training.scheduler": "sjf", "seed": "1", "duration": "720min"})
    assert run_key(a, 1) == run_key(b, 1)  # same resolved config, however it was spelled
    other_seed = load_config(EXP, overrides={**SET, "seed": 2, "policy.training.scheduler": "sjf"})
    other_value = load_config(EXP, overrides={**SET, "seed": 1, "policy.training.scheduler": "fifo"})
    keys = {run_key(a, 1), run_key(other_seed, 2), run_key(other_value, 1), run_key(a, 2)}
    assert len(keys) == 4 and all(len(k) == 16 for k in keys)


def test_runs_table_is_grid_order_times_seed_and_equals_run(tmp_path):
    res = sweep(EXP, FACTORS, seeds=2, overrides=SET, workers=0, store=tmp_path / "s")
    want = [(s, p, seed) for s in ("fifo", "sjf") for p in ("packed", "topology_aware") for seed in (0, 1)]
    got = list(zip(res.runs["policy.training.scheduler"], res.runs["policy.training.placement"], res.runs["seed"],
                   strict=True))
    assert got == want and res.executed == 8 and res.skipped == 0 and res.failed == 0
    # one cell's stored summary is exactly `run --set seed=1 --set ...` of that variant
    from cluster_sim import simulate
    one = simulate(load_config(EXP, overrides={**SET, "seed": 1, "policy.training.scheduler": "sjf",
                                               "policy.training.placement": "packed"}))
    row = res.runs.iloc[5]
    stored = ResultStore(tmp_path / "s").read({row["key"]})[row["key"]]["summary"]
    assert set(stored) == set(one.summary) and len(stored) > 30
    for k, v in one.summary.items():
        if k not in WALL:
            same = v == stored[k] or (isinstance(v, float) and math.isnan(v) and math.isnan(stored[k]))
            assert type(v) is type(stored[k]) or {type(v), type(stored[k])} <= {int, float}, k
            assert same, (k, v, stored[k])


def test_resume_runs_only_what_is_missing(tmp_path, monkeypatch):
    store = tmp_path / "s"
    first = sweep(EXP, {"policy.training.scheduler": ["fifo"]}, seeds=2, overrides=SET, workers=0, store=store)
    assert first.executed == 2
    calls = []
    real = sweep_mod.simulate
    monkeypatch.setattr(sweep_mod, "simulate", lambda cfg: calls.append(cfg.seed) or real(cfg))
    again = sweep(EXP, {"policy.training.scheduler": ["fifo", "sjf"]}, seeds=2, overrides=SET, workers=0,
                  store=store)
    assert calls == [0, 1] and again.executed == 2 and again.skipped == 2  # only the sjf runs ran
    assert _no_wall(again.runs.iloc[:2]).equals(_no_wall(first.runs))
    assert len(read_store(store)) == 4


def test_a_failing_run_is_stored_and_the_rest_go_on(tmp_path, monkeypatch):
    real = sweep_mod.simulate

    def flaky(cfg):
        if cfg.seed == 1 and cfg.policy.training.scheduler == "sjf":
            raise ClusterSimError("boom in seed 1")
        return real(cfg)

    monkeypatch.setattr(sweep_mod, "simulate", flaky)
    res = sweep(EXP, {"policy.training.scheduler": ["fifo", "sjf"]}, seeds=2, overrides=SET, workers=0,
                store=tmp_path / "s", metrics=["training.jobs.mfu"])
    assert list(res.runs["status"]) == ["ok", "ok", "ok", "error"] and res.failed == 1
    assert res.runs["error"].iloc[3] == "ClusterSimError: boom in seed 1"
    stored = read_store(tmp_path / "s")
    assert sorted(stored["status"]) == ["error", "ok", "ok", "ok"]
    assert res.cells.set_index("cell").loc["policy.training.scheduler=sjf", "n"] == 1  # the failure does not count


def test_final_order_does_not_depend_on_completion_order(monkeypatch):
    ordered = sweep(EXP, FACTORS, seeds=2, overrides=SET, workers=0)
    real_map = sweep_mod._Executor.map

    def shuffled(self, cfgs):
        done = list(real_map(self, cfgs))
        rng = np.random.default_rng(7)
        return iter([done[i] for i in rng.permutation(len(done))])

    monkeypatch.setattr(sweep_mod._Executor, "map", shuffled)
    again = sweep(EXP, FACTORS, seeds=2, overrides=SET, workers=0)
    pd.testing.assert_frame_equal(_no_wall(again.runs), _no_wall(ordered.runs))
    pd.testing.assert_frame_equal(again.cells[again.cells["metric"] != "sim.wall_s"],
                                  ordered.cells[ordered.cells["metric"] != "sim.wall_s"])


def test_bad_input_fails_before_any_run(monkeypatch):
    monkeypatch.setattr(sweep_mod, "simulate", lambda cfg: pytest.fail("a run started"))
    with pytest.raises(ConfigError, match=r"policy\.trainig: unknown field; known: pool, serving, training"):
        sweep(EXP, {"policy.trainig.scheduler": ["fifo"]}, workers=0)
    with pytest.raises(ConfigError, match=r"cell policy.training.scheduler=nope, seed 0: .*unknown scheduler"):
        sweep(EXP, {"policy.training.scheduler": ["fifo", "nope"]}, workers=0)
    with pytest.raises(ConfigError, match="seeds: 0 runs per cell"):
        sweep(EXP, {"policy.training.scheduler": ["fifo"]}, seeds=0, workers=0)
    with pytest.raises(ConfigError, match="empty grid"):
        sweep(EXP, {}, workers=0)
    with pytest.raises(ConfigError, match="--ci-target: name the metrics"):
        sweep(EXP, {"policy.training.scheduler": ["fifo"]}, ci_target=0.05, workers=0)


def test_store_writes_atomically_and_reads_back(tmp_path):
    store = ResultStore(tmp_path / "s").open()
    rec = {"key": "abc", "seed": 3, "factors": {"a": 1}, "status": "ok", "error": "",
           "summary": {"m": 1.5, "n": float("nan"), "none": None, "src": {"a": "b"}}, "notes": ["hi"], "wall_s": 0.1}
    store.write(rec)
    (store.runs / ".def.tmp-99").write_bytes(b"half a file")  # a writer killed mid-write
    back = store.read()
    assert set(back) == {"abc"} and back["abc"]["summary"]["m"] == 1.5 and math.isnan(back["abc"]["summary"]["n"])
    assert back["abc"]["summary"]["none"] is None and back["abc"]["summary"]["src"] == {"a": "b"}
    assert back["abc"]["factors"] == {"a": 1} and back["abc"]["notes"] == ["hi"]
    ResultStore(tmp_path / "s").open()  # the next sweep removes the leftover
    assert [p.name for p in store.runs.iterdir()] == ["abc.parquet"]
    (store.runs / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(ClusterSimError, match="bad.parquet: unreadable store entry"):
        store.read()


def test_t_interval_is_the_closed_form():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    got = mean_ci("training.mfu", x)
    half = 2.776 * statistics.stdev(x) / math.sqrt(5)  # t_{0.975,4} = 2.776 (NIST table)
    assert got["method"] == "t" and got["n"] == 5 and got["mean"] == 3.0
    assert got["ci95"] == pytest.approx(half, rel=1e-12) and got["ci95"] == pytest.approx(1.96293, abs=1e-5)
    assert (got["lo"], got["hi"]) == pytest.approx((3.0 - half, 3.0 + half))
    assert math.isnan(mean_ci("m", [1.0])["ci95"]) and mean_ci("m", [])["n"] == 0


def test_bootstrap_covers_the_sample_statistic_and_is_used_for_percentiles():
    x = np.random.default_rng(1).lognormal(0.0, 1.0, size=200)
    lo, hi = bootstrap_ci(x, stat=lambda a: float(np.percentile(a, 90)))
    assert lo < float(np.percentile(x, 90)) < hi
    assert bootstrap_ci(x) == bootstrap_ci(x)  # a fixed generator: the same interval every time
    assert is_percentile("inference.ttft_s.p99") and not is_percentile("inference.slo_attainment")
    skewed = [1.0, 1.1, 1.0, 1.2, 9.0]
    got = mean_ci("x.p99", skewed)
    assert got["method"] == "bootstrap" and got["lo"] < got["mean"] < got["hi"]
    assert got["hi"] - got["mean"] > got["mean"] - got["lo"]  # the right tail: an asymmetric interval
    assert got["ci95"] == max(got["mean"] - got["lo"], got["hi"] - got["mean"])
    assert got["lo"] >= min(skewed) and got["hi"] <= max(skewed)


def test_cell_stats_counts_only_ok_runs():
    runs = pd.DataFrame({"a": ["x"] * 3, "cell": ["a=x"] * 3, "status": ["ok", "ok", "error"],
                         "m": [1.0, 3.0, float("nan")]})
    row = cell_stats(runs, ["a"], ["m"]).iloc[0]
    assert row["n"] == 2 and row["mean"] == 2.0 and row["ci95"] == pytest.approx(12.706 * math.sqrt(2) / math.sqrt(2))


def _seeds_until(target: float, values, cap: int, batch: int) -> int:
    """Closed form of adaptive replication for one cell: batches until the t half-width <= target*mean."""
    n = batch
    while True:
        x = [values(s) for s in range(n)]
        half = t_quantile_975(n - 1) * statistics.stdev(x) / math.sqrt(n)
        if half <= target * abs(statistics.fmean(x)) or n >= cap:
            return n
        n = min(cap, n + batch)


def test_adaptive_replication_adds_seeds_until_the_target_or_the_cap(monkeypatch):
    spread = {3600.0: 0.1, 7200.0: 10.0, 10800.0: 50.0}  # per cell: how much the odd seeds differ

    def value(cfg):
        return 100.0 + (cfg.seed % 2) * spread[cfg.duration]

    monkeypatch.setattr(sweep_mod, "simulate", _fake_simulate(value))
    res = sweep(EXP, {"duration": ["1h", "2h", "3h"]}, seeds=3, metrics=["m"], ci_target=0.05, max_seeds=12,
                workers=0)
    n = res.runs.groupby("cell", sort=False).size().to_dict()
    for d, label in ((3600.0, "duration=1h"), (7200.0, "duration=2h"), (10800.0, "duration=3h")):
        assert n[label] == _seeds_until(0.05, lambda s, d=d: 100.0 + (s % 2) * spread[d], 12, 3), label
    assert n == {"duration=1h": 3, "duration=2h": 9, "duration=3h": 12}  # met at once, met later, capped
    assert res.capped == ["duration=3h"]
    assert list(res.runs[res.runs["cell"] == "duration=2h"]["seed"]) == list(range(9))
