"""``compare`` over seeds (issue #13 item 5): the t quantile, the per-value aggregate, the bars.

Closed forms: the 95% half-width of ``x_1..x_n`` is ``t_{0.975,n-1} * s / sqrt(n)`` with ``s`` the
sample standard deviation; the bar plot's heights are the means and its error bars the half-widths.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer

from cluster_sim.errors import ClusterSimError, ConfigError
from cluster_sim.experiment import comparison
from cluster_sim.experiment.comparison import (
    compare,
    headline_metrics,
    summarize_seeds,
    t_quantile_975,
)
from cluster_sim.report.plots import compare_bars


# ---- t quantile ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dof,t", [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (10, 2.228), (30, 2.042)])
def test_t_quantile_matches_the_table(dof, t):
    assert t_quantile_975(dof) == t


@pytest.mark.parametrize("dof,t", [(40, 2.021), (60, 2.000), (120, 1.980)])
def test_t_quantile_beyond_the_table_matches_published_values(dof, t):
    assert t_quantile_975(dof) == pytest.approx(t, abs=6e-4)


def test_t_quantile_decreases_to_the_normal_quantile():
    ts = [t_quantile_975(d) for d in range(1, 301)]
    assert all(a > b for a, b in zip(ts[:-1], ts[1:], strict=True)), "not strictly decreasing (a seam at dof 30/31?)"
    assert t_quantile_975(10**9) == pytest.approx(1.959964, abs=1e-6)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_t_quantile_rejects_bad_dof(bad):
    with pytest.raises(ClusterSimError, match="degrees of freedom"):
        t_quantile_975(bad)


# ---- summarize_seeds ------------------------------------------------------------------------------
def _runs() -> pd.DataFrame:
    return pd.DataFrame({
        "p": ["a"] * 5 + ["b"] * 2 + ["c"],
        "seed": [0, 1, 2, 3, 4, 0, 1, 0],
        "x": [1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 7.0, 9.0],
        "y": [10.0, np.nan, 30.0, 20.0, np.nan, 1.0, 3.0, np.nan],
    })


def test_summarize_seeds_closed_form():
    s = summarize_seeds(_runs(), "p").set_index(["p", "metric"])
    assert list(s.columns) == ["n", "mean", "ci95"]
    # a/x: 1..5, mean 3, s^2 = 2.5, half-width t_{0.975,4} * sqrt(2.5 / 5)
    assert s.loc[("a", "x")].tolist() == pytest.approx([5, 3.0, 2.776 * math.sqrt(0.5)])
    # a/y: the two NaN runs do not count: n = 3, mean 20, s = 10, half-width t_{0.975,2} * 10 / sqrt(3)
    assert s.loc[("a", "y")].tolist() == pytest.approx([3, 20.0, 4.303 * 10 / math.sqrt(3)])
    # b/x: no spread, zero width; b/y: 1 and 3, s = sqrt(2), t_{0.975,1} * sqrt(2) / sqrt(2)
    assert s.loc[("b", "x")].tolist() == pytest.approx([2, 7.0, 0.0])
    assert s.loc[("b", "y")].tolist() == pytest.approx([2, 2.0, 12.706])
    # c: one run, no interval; c/y: no run has it
    assert s.loc[("c", "x"), "mean"] == 9.0 and math.isnan(s.loc[("c", "x"), "ci95"])
    assert s.loc[("c", "y"), "n"] == 0 and math.isnan(s.loc[("c", "y"), "mean"])
    assert [v for v, _ in s.index] == ["a", "a", "b", "b", "c", "c"]  # the table's order, seed not a metric


def test_summarize_seeds_needs_the_factor_column():
    with pytest.raises(ClusterSimError, match="no column 'q'"):
        summarize_seeds(_runs(), "q")


def test_headline_metrics_skip_sim_keys_and_missing_means():
    summary = pd.DataFrame({"p": ["a"] * 4, "metric": ["sim.wall_s", "utilization.busy", "training.mfu", "cost_usd"],
                            "n": [2, 2, 0, 2], "mean": [1.0, 0.5, np.nan, 3.0], "ci95": [0.1] * 4})
    assert headline_metrics(summary) == ["utilization.busy", "cost_usd"]
    assert headline_metrics(summary, limit=1) == ["utilization.busy"]


# ---- compare_bars ---------------------------------------------------------------------------------
def _bars(ax) -> BarContainer:
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    return bars


def test_compare_bars_heights_are_means_and_error_bars_are_half_widths():
    summary = summarize_seeds(_runs(), "p")
    fig = compare_bars(summary, "p", ["x", "y"])
    assert len(fig.axes) == 2
    s = summary.set_index(["p", "metric"])
    for ax, m in zip(fig.axes, ["x", "y"], strict=True):
        assert ax.get_title().startswith(m)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
        bars = _bars(ax)
        heights = [r.get_height() for r in bars.patches]
        means = [s.loc[(v, m), "mean"] for v in "abc"]
        np.testing.assert_allclose(heights, means)  # NaN (c/y) stays NaN: no bar
        segments = bars.errorbar.lines[2][0].get_segments()
        assert len(segments) == 3
        for v, seg in zip("abc", segments, strict=True):
            w = s.loc[(v, m), "ci95"]
            if math.isnan(w):  # no error bar where the interval is undefined (n < 2)
                assert np.size(seg) == 0, (m, v, seg)
                continue
            (_, y0), (_, y1) = seg
            assert (y1 - y0) / 2 == pytest.approx(w) and (y1 + y0) / 2 == pytest.approx(s.loc[(v, m), "mean"])


def test_compare_bars_small_multiples_grid():
    runs = _runs().assign(z=1.0, w=2.0, u=3.0)
    fig = compare_bars(summarize_seeds(runs, "p"), "p", ["x", "y", "z", "w"])
    assert len(fig.axes) == 4  # a 2 x 3 grid with the two spare axes removed
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == ["x", "y", "z", "w"]


def test_compare_bars_rejects_bad_input():
    summary = summarize_seeds(_runs(), "p")
    with pytest.raises(ClusterSimError, match="no metric nope"):
        compare_bars(summary, "p", ["x", "nope"])
    with pytest.raises(ClusterSimError, match="no metric given"):
        compare_bars(summary, "p", [])
    with pytest.raises(ClusterSimError, match="missing column"):
        compare_bars(summary.drop(columns="ci95"), "p", ["x"])


# ---- compare(seeds=...) input checks and failures ------------------------------------------------
CFG = {"name": "tiny", "seed": 0, "duration": "1h",
       "cluster": {"topology": {"name": "t", "builder": "fat_tree", "system": "hgx-h100", "nodes": 2}},
       "training": {"generator": {"kind": "uniform", "n_jobs": 6, "jobs_per_hour": 10,
                                  "params": {"mean_duration_s": 600.0, "num_cards": 4}}}}
FACTOR = "policy.training.scheduler"


@pytest.mark.parametrize("seeds,match", [
    ([], "at least one seed"), ([-1], "-1 is not a seed"), ([0, 1.5], "1.5 is not a seed"),
    ([True], "True is not a seed"), ([3, 1, 3], "seed 3 is given twice"),
])
def test_compare_rejects_bad_seeds_before_any_run(seeds, match, monkeypatch):
    monkeypatch.setattr(comparison, "simulate", lambda cfg: pytest.fail("ran before checking the seeds"))
    with pytest.raises(ConfigError, match=match):
        compare(CFG, FACTOR, ["fifo"], seeds=seeds)


def test_compare_seeds_conflict_with_a_seed_factor_or_override():
    with pytest.raises(ConfigError, match="the factor is the seed"):
        compare(CFG, "seed", ["1", "2"], seeds=[0, 1])
    with pytest.raises(ConfigError, match="value fifo is given twice"):
        compare(CFG, FACTOR, ["fifo", "sjf", "fifo"], seeds=[0, 1])
    with pytest.raises(ConfigError, match="--set seed=4 also sets the seed"):
        compare(CFG, FACTOR, ["fifo"], seeds=[0, 1], overrides={"seed": "4"})


def test_a_failing_seed_is_named_and_nothing_is_written(monkeypatch, tmp_path):
    real = comparison.simulate

    def flaky(cfg):
        if cfg.seed == 1 and cfg.policy.training.scheduler == "sjf":
            raise ClusterSimError("engine: something went wrong")
        return real(cfg)

    monkeypatch.setattr(comparison, "simulate", flaky)
    out = tmp_path / "cmp"
    with pytest.raises(ClusterSimError, match=r"^--factor policy\.training\.scheduler=sjf, seed 1: engine: something"):
        compare(CFG, FACTOR, ["fifo", "sjf"], seeds=[0, 1], out_dir=out)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_crashing_seed_keeps_its_exception_and_says_which_run(monkeypatch):
    def boom(cfg):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(comparison, "simulate", boom)
    with pytest.raises(ZeroDivisionError) as exc:
        compare(CFG, FACTOR, ["fifo"], seeds=[5])
    assert exc.value.__notes__ == ["while running --factor policy.training.scheduler=fifo, seed 5"]


def test_compare_with_seeds_rows_progress_and_notes():
    calls: list[tuple[float, float]] = []
    df = compare(CFG, FACTOR, ["fifo", "sjf"], seeds=[0, 3], progress=lambda d, t: calls.append((d, t)))
    assert list(df.columns[:2]) == [FACTOR, "seed"]
    assert list(zip(df[FACTOR], df["seed"], strict=True)) == [("fifo", 0), ("fifo", 3), ("sjf", 0), ("sjf", 3)]
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]  # total = values x seeds
    assert list(df.attrs["notes"]) == ["fifo, seed 0", "fifo, seed 3", "sjf, seed 0", "sjf, seed 3"]
    # without seeds the table is what it always was: headline keys after the factor (the summary's
    # own seed key among the other columns), notes keyed by value
    plain = compare(CFG, FACTOR, ["fifo", "sjf"])
    assert plain.columns[1] == "training.jct_s.p50" and list(plain.attrs["notes"]) == ["fifo", "sjf"]
    assert plain["seed"].tolist() == [0, 0]
