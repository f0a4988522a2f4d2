"""``plots.pool_day``: one card pool over the day, read back from the figure.

Synthetic frames with hand-computed answers: the stacked areas' heights are the timeline's
values (from the StepPatches' data), the load line is the arrivals histogram over the bins, the
bars are the events' card sums per bin, the tariff line has the windows' prices at their
boundaries; the panels present follow the inputs; a missing column is a clear error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import StepPatch

from cluster_sim import load_config
from cluster_sim.errors import ClusterSimError
from cluster_sim.experiment.run import Result
from cluster_sim.metrics.tariff import Tariff
from cluster_sim.report import plots

H = 3600.0
STATES = ("serving", "moving", "training", "idle", "down")
DAY = [(0.0, 8 * H, 0.05), (8 * H, 22 * H, 0.12), (22 * H, 24 * H, 0.05)]


def _timeline(t0: float = 0.0, width: float = 900.0, n: int = 4) -> pd.DataFrame:
    starts = t0 + width * np.arange(n)
    rng = np.random.default_rng(7)
    vals = rng.integers(0, 20, size=(n, len(STATES))).astype(float) + 0.25
    return pd.DataFrame({"time_s": starts, "time_end_s": starts + width,
                         **dict(zip(STATES, vals.T, strict=True))})


def _steps(ax) -> list[StepPatch]:
    return [p for p in ax.patches if isinstance(p, StepPatch)]


def test_stacked_areas_have_the_timeline_heights():
    tl = _timeline()
    fig = plots.pool_day(tl)
    (ax,) = fig.axes
    layers = _steps(ax)
    assert [p.get_label() for p in layers] == list(STATES)
    below = np.zeros(len(tl))
    for p, state in zip(layers, STATES, strict=True):
        d = p.get_data()
        np.testing.assert_allclose(d.values - d.baseline, tl[state].to_numpy())
        np.testing.assert_allclose(d.baseline, below)
        np.testing.assert_allclose(d.edges, np.array([0, 15, 30, 45, 60.0]))  # minutes (1 h span)
        below = below + tl[state].to_numpy()
    np.testing.assert_allclose(layers[-1].get_data().values, tl[list(STATES)].sum(axis=1))
    assert ax.get_xlabel() == "simulated time (minutes)"
    plots.png_bytes(fig)


def test_load_line_is_the_arrival_histogram_per_second():
    tl = _timeline()
    # bins [0,900) [900,1800) [1800,2700) [2700,3600]: the last is closed, 4000 s is outside
    arrivals = [0.0, 10.0, 899.9, 900.0, 1800.5, 2000.0, 2100.0, 3600.0, 4000.0, np.nan]
    fig = plots.pool_day(tl, requests=pd.DataFrame({"arrival_s": arrivals}))
    ax, twin = fig.axes
    (line,) = _steps(twin)
    np.testing.assert_allclose(line.get_data().values, np.array([3, 1, 3, 1]) / 900.0)
    assert line.get_label() == "inference load" and twin.get_ylabel() == "requests/s"


def test_shorter_last_bin_divides_by_its_own_width():
    tl = _timeline(n=2)
    tl.loc[1, "time_end_s"] = 1200.0   # a run ending mid-bin: the last bin is 300 s
    fig = plots.pool_day(tl, requests=pd.DataFrame({"arrival_s": [100.0, 950.0, 1000.0, 1200.0]}))
    np.testing.assert_allclose(_steps(fig.axes[1])[0].get_data().values, [1 / 900.0, 3 / 300.0])


def test_bars_are_the_event_sums_per_bin():
    tl = _timeline()
    ev = pd.DataFrame({"time_s": [100.0, 200.0, 100.0, 950.0, 960.0, 3600.0, 5000.0],
                       "kind": ["reclaim", "reclaim", "load", "lend", "lend", "reclaim", "reclaim"],
                       "cards": [8, 4, 8, 8, 2, 2, 64]})
    fig = plots.pool_day(tl, events=ev)
    _, axe = fig.axes
    up, down = axe.containers
    assert up.get_label() == "reclaimed from training" and down.get_label() == "lent to training"
    assert [b.get_height() for b in up] == [12.0, 0.0, 0.0, 2.0]
    assert [b.get_height() for b in down] == [0.0, -10.0, 0.0, 0.0]
    assert [b.get_x() for b in up] == pytest.approx([0, 15, 30, 45])
    assert [b.get_width() for b in up] == pytest.approx([15, 15, 15, 15])


@pytest.mark.parametrize("tariff", [DAY, Tariff.from_windows(DAY)], ids=["windows", "Tariff"])
def test_tariff_line_repeats_the_day_over_a_longer_run(tariff):
    tl = _timeline(t0=6 * H, width=3 * H, n=8)   # 06:00 of day 0 to 06:00 of day 1
    fig = plots.pool_day(tl, tariff=tariff)
    ax, axt = fig.axes
    (line,) = _steps(axt)
    d = line.get_data()
    np.testing.assert_allclose(d.edges, [6, 8, 22, 24, 30])   # hours; 24 h: next day's 0h
    np.testing.assert_allclose(d.values, [0.05, 0.12, 0.05, 0.05])
    assert axt.get_ylabel() == "USD/kWh" and axt.get_xlabel() == "simulated time (hours)"
    assert ax.get_xlim() == axt.get_xlim() == (6.0, 30.0)


def test_tariff_inside_one_window_is_one_step():
    fig = plots.pool_day(_timeline(), tariff=DAY)
    d = _steps(fig.axes[-1])[0].get_data()
    np.testing.assert_allclose(d.edges, [0, 60.0])
    np.testing.assert_allclose(d.values, [0.05])


def test_panels_follow_the_inputs():
    tl = _timeline()
    req = pd.DataFrame({"arrival_s": [1.0]})
    ev = pd.DataFrame({"time_s": [1.0], "kind": ["reclaim"], "cards": [8]})
    no_ev = ev.iloc[:0]
    assert len(plots.pool_day(tl).axes) == 1
    assert len(plots.pool_day(tl, requests=req).axes) == 2                 # + twin load axis
    assert len(plots.pool_day(tl, events=ev).axes) == 2                    # + bars panel
    assert len(plots.pool_day(tl, tariff=DAY).axes) == 2                   # + tariff panel
    assert len(plots.pool_day(tl, events=ev, requests=req, tariff=DAY).axes) == 4
    fig = plots.pool_day(tl, events=no_ev)    # a dynamic run that moved nothing: a flat panel
    assert [b.get_height() for c in fig.axes[1].containers for b in c] == [0.0] * 8


@pytest.mark.parametrize("kwargs, match", [
    ({"pool_timeline": _timeline().drop(columns="moving")},
     r"pool day: missing column\(s\) moving; have"),
    ({"pool_timeline": _timeline().iloc[:0]}, "pool day: no data"),
    ({"pool_timeline": None}, "pool day: no data"),
    ({"events": pd.DataFrame({"time_s": [1.0], "kind": ["lend"]})},
     r"pool events: missing column\(s\) cards"),
    ({"requests": pd.DataFrame({"ttft_s": [1.0]})},
     r"inference load: missing column\(s\) arrival_s"),
    ({"pool_timeline": _timeline().drop(index=1)}, "bins must be contiguous"),
    ({"pool_timeline": _timeline(t0=-900.0)}, "bins must be contiguous from time_s >= 0"),
    ({"tariff": [(0.0, 8 * H, 0.05)]}, "tariff: windows end at 28800s, not at 24h"),
])
def test_bad_input_is_a_clear_error(kwargs, match):
    args = {"pool_timeline": _timeline(), **kwargs}
    with pytest.raises(ClusterSimError, match=match):
        plots.pool_day(args.pop("pool_timeline"), **args)


def test_result_plot_passes_the_run_tables_and_the_tariff():
    tl = _timeline()
    topo = {"name": "x", "builder": "fat_tree", "system": "hgx-h100", "nodes": 1}
    cfg = load_config({"cluster": {"topology": topo},
                       "energy": {"tariff": [{"from": "0h", "to": "8h", "usd_per_kwh": 0.05},
                                             {"from": "8h", "to": "24h", "usd_per_kwh": 0.2}]}})
    ev = pd.DataFrame({"time_s": [100.0], "kind": ["lend"], "cards": [8]})
    res = Result(config=cfg, summary={}, requests=pd.DataFrame({"arrival_s": [1.0, 2.0]}),
                 tables={"pool_timeline": tl, "pool_events": ev})
    assert "pool_day" in res.plot.available() and "pool_day" in res.plot.all()
    fig = res.plot.pool_day()
    assert len(fig.axes) == 4   # cards, bars, tariff, twin load axis
    np.testing.assert_allclose(_steps(fig.axes[-1])[0].get_data().values, [2 / 900.0, 0, 0, 0])
    assert "pool_day" not in Result(config=cfg, summary={}).plot.available()
