"""The run progress advances by simulated time in every engine phase, and changes nothing else.

Each engine reports ``tick(fraction, events)`` as simulated time advances; a run with ticks is
the same run event for event (same summary, same job and request frames) as one without.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cluster_sim import load_config, simulate
from cluster_sim.engine import simulation
from cluster_sim.engine.simulation import PROGRESS_STEPS
from cluster_sim.experiment.drivers import run_pooled, run_serving, run_training

REPO = Path(__file__).resolve().parents[2]
TOPO = {"name": "ft64", "builder": "fat_tree", "system": "hgx-h100", "nodes": 8}  # 64 H100


def _wall_clock(key: str) -> bool:
    return "wall" in key or (key.startswith("sim.") and key.endswith("_per_s"))


def _same(a: dict, b: dict) -> None:
    """Equal summaries (same keys, same values) but for the wall-clock keys."""
    assert list(a) == list(b)
    keep = [k for k in a if not _wall_clock(k)]
    assert len(keep) > 10 and {k: a[k] for k in keep} == {k: b[k] for k in keep}


def _training_cfg(duration: str | None) -> dict:
    cfg = {"name": "t", "seed": 2, "cluster": {"topology": TOPO},
           "training": {"generator": {"kind": "uniform", "n_jobs": 40, "jobs_per_hour": 20,
                                      "params": {"mean_duration_s": 1800.0, "num_cards": 8}}}}
    if duration is not None:
        cfg["duration"] = duration
    return cfg


def _ticks() -> tuple[list[tuple[float, int]], object]:
    seen: list[tuple[float, int]] = []
    return seen, lambda frac, events: seen.append((frac, events))


@pytest.mark.parametrize("duration", ["3h", None])
def test_cluster_engine_ticks_by_simulated_time_and_runs_the_same(duration, monkeypatch):
    monkeypatch.setattr(simulation, "PROGRESS_EVENTS", 16)   # open-ended: a tick every 16 SimPy steps
    cfg = load_config(_training_cfg(duration))
    plain = run_training(cfg)
    seen, tick = _ticks()
    ticked = run_training(cfg, tick=tick)
    _same(plain.summary, ticked.summary)
    pd.testing.assert_frame_equal(plain.jobs, ticked.jobs)
    fracs, events = [f for f, _ in seen], [e for _, e in seen]
    assert fracs == sorted(fracs) and events == sorted(events)
    assert fracs[-1] == 1.0 and events[-1] == plain.summary["sim.events"]
    if duration is not None:   # PROGRESS_STEPS equal stretches of the horizon
        assert fracs == [k / PROGRESS_STEPS for k in range(1, PROGRESS_STEPS + 1)]
    else:                      # by the last submission; below 1 until the queue is empty
        assert len(fracs) > 3 and 0 < fracs[len(fracs) // 2] < 1 and max(fracs[:-1]) <= 0.99


@pytest.mark.parametrize("arrivals", [{"kind": "poisson", "rate": 4}, {"kind": "poisson", "rate": 4,
                                                                        "max_requests": 300}])
def test_serving_engine_ticks_and_runs_the_same(arrivals):
    svc = {"name": "chat", "model": "llama3-8b", "slo": {"ttft": "500ms", "tpot": "50ms"},
           "deployment": {"replicas": 2, "card_type": "h100-sxm"}, "arrivals": arrivals}
    cfg = load_config({"name": "s", "seed": 1, "cluster": {"topology": TOPO},
                       "inference": {"services": [svc]}, **({} if "max_requests" in arrivals else {"duration": "5min"})})
    plain = run_serving(cfg)
    seen, tick = _ticks()
    ticked = run_serving(cfg, tick=tick)
    _same(plain.summary, ticked.summary)
    pd.testing.assert_frame_equal(plain.requests, ticked.requests)
    fracs, events = [f for f, _ in seen], [e for _, e in seen]
    assert fracs == sorted(fracs) and events == sorted(events) and fracs[-1] == 1.0
    assert len(fracs) == PROGRESS_STEPS and events[-1] == plain.run.events
    assert events[len(events) // 2] < events[-1]   # events grow as simulated time does


def test_pooled_run_ticks_and_runs_the_same():
    cfg = load_config(REPO / "workloads" / "pool_peak_shaving.yaml", overrides={"duration": "1h"})
    plain = run_pooled(cfg)
    seen, tick = _ticks()
    ticked = run_pooled(cfg, tick=tick)
    _same(plain.summary, ticked.summary)
    assert plain.training is not None and ticked.training is not None
    pd.testing.assert_frame_equal(plain.training.jobs, ticked.training.jobs)
    fracs = [f for f, _ in seen]
    assert fracs == [k / PROGRESS_STEPS for k in range(1, PROGRESS_STEPS + 1)]


class _Bar:
    """A progress sink with ``tick``: records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float, int | None]] = []

    def __call__(self, done: float, total: float) -> None:
        self.calls.append((done, total, None))

    def tick(self, done: float, total: float, events: int) -> None:
        self.calls.append((done, total, events))


def test_simulate_moves_through_every_engine_phase():
    """Estimates, cluster engine, serving engine: the bar moves inside the cluster phase (it used to
    sit at 1/3 until the phase ended) and the serving phase, never backwards."""
    cfg = load_config({
        "name": "eng", "seed": 3, "duration": "1h", "cluster": {"topology": TOPO},
        "training": {"generator": {"kind": "uniform", "n_jobs": 20, "jobs_per_hour": 30,
                                   "params": {"mean_duration_s": 900.0, "num_cards": 8}}},
        "inference": {"services": [{"name": "chat", "model": "llama3-8b", "slo": {"ttft": "500ms", "tpot": "50ms"},
                                    "deployment": {"replicas": 2, "card_type": "h100-sxm"},
                                    "arrivals": {"kind": "poisson", "rate": 2}}]}})
    bar = _Bar()
    res = simulate(cfg, progress=bar)
    done = [d for d, _, _ in bar.calls]
    assert done == sorted(done) and {t for _, t, _ in bar.calls} == {3.0}
    assert [c for c in bar.calls if c[2] is None] == [(0.0, 3.0, None), (1.0, 3.0, None), (2.0, 3.0, None),
                                                      (3.0, 3.0, None)]
    cluster = [d for d, _, e in bar.calls if e is not None and 1 < d < 2]
    serving = [d for d, _, e in bar.calls if e is not None and 2 < d < 3]
    assert len(cluster) == PROGRESS_STEPS - 1 and len(serving) == PROGRESS_STEPS - 1
    events = [e for _, _, e in bar.calls if e is not None]
    assert events == sorted(events)
    assert events[-1] == res.summary["sim.events"]   # training + serving events, both phases
    _same(simulate(cfg).summary, res.summary)
