"""Fail-slow episodes (engine/cluster/stragglers.py): closed forms of a slowed job, the min factor
over a job's cards, the replace policy's timing, the summary without stragglers, stream
independence, the episode process and bad input."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_sim.engine.cluster.failures import FailureModel
from cluster_sim.engine.cluster.state import layout_from_node_groups
from cluster_sim.engine.cluster.stragglers import STREAM, StragglerModel
from cluster_sim.engine.simulation import Simulation
from cluster_sim.errors import ConfigError
from cluster_sim.experiment.drivers import run_training
from cluster_sim.policies import registry
from cluster_sim.rng import Streams
from cluster_sim.workload.jobs import JobTable

INF = math.inf


def table(submit, cards, dur):
    n = len(submit)
    return JobTable(job_id=np.arange(n), submit_s=submit, num_cards=cards, duration_s=dur)


@dataclass(frozen=True)
class Scripted(StragglerModel):
    """Episodes at given times: ``script`` of ``(start, unit, factor, length)``, start-ordered."""

    script: tuple[tuple[float, int, float, float], ...] = ()
    mtbf_s: float | None = 1e12

    def next_episode(self, t, rng, n_cards, n_nodes):
        for e in self.script:
            if e[0] > t:
                return e
        return (INF, 0, 0.5, 1.0)


def test_one_card_at_half_speed_progresses_half_the_time():
    # 1,000 s of work; the card runs at 0.5 from t=100 for 400 s: 200 s of progress are not made
    model = Scripted(unit="card", script=((100.0, 0, 0.5, 400.0),), detection_s=50.0)
    res = run_training(cluster=[("h100-sxm", 1, 1)], jobs=table([0.0], [1], [1000.0]), horizon_s=2000.0,
                       stragglers=model)
    j, s = res.jobs.iloc[0], res.summary
    assert j.finish_s == pytest.approx(1000.0 + 400.0 * (1 - 0.5), rel=1e-12)
    assert j.slowed_s == pytest.approx(400.0, rel=1e-12)
    assert s["stragglers.lost_card_hours"] == pytest.approx(200.0 / 3600, rel=1e-12)
    assert s["stragglers.card_hours_slowed"] == pytest.approx(400.0 / 3600, rel=1e-12)
    assert s["stragglers.slow_card_hours"] == pytest.approx(400.0 / 3600, rel=1e-12)
    assert (s["stragglers.episodes"], s["stragglers.detected"], s["stragglers.replacements"]) == (1, 1, 0)
    assert s["stragglers.jobs_slowed"] == 1 and s["stragglers.drained_card_hours"] == 0.0
    # the card is held 1,200 s but busy only for the 1,000 s of work
    assert s["utilization.allocated"] == pytest.approx(1200.0 / 2000.0, rel=1e-9)
    assert s["utilization.busy"] == pytest.approx(1000.0 / 2000.0, rel=1e-9)


def test_a_job_goes_at_the_min_factor_over_its_cards():
    # 16 cards on two nodes; card 3 at 0.6 over [100, 600), card 12 at 0.3 over [200, 400)
    model = Scripted(unit="card", script=((100.0, 3, 0.6, 500.0), (200.0, 12, 0.3, 200.0)))
    res = run_training(cluster=[("h100-sxm", 8, 2)], jobs=table([0.0], [16], [1000.0]), horizon_s=3000.0,
                       stragglers=model)
    j, s = res.jobs.iloc[0], res.summary
    done_by_600 = 100 + 0.6 * 100 + 0.3 * 200 + 0.6 * 200
    assert j.finish_s == pytest.approx(600.0 + 1000.0 - done_by_600, rel=1e-12)
    assert j.slowed_s == pytest.approx(500.0, rel=1e-12)
    lost = 16 * (0.4 * 100 + 0.7 * 200 + 0.4 * 200)
    assert s["stragglers.lost_card_hours"] == pytest.approx(lost / 3600, rel=1e-12)
    assert s["stragglers.card_hours_slowed"] == pytest.approx(16 * 500.0 / 3600, rel=1e-12)
    assert s["stragglers.slow_card_hours"] == pytest.approx((500.0 + 200.0) / 3600, rel=1e-12)


def _replace_run(policy):
    # an 8-card job on node 0 of two; node 0 slows to 0.5 at t=100 for 10,000 s, detected at 400
    model = Scripted(unit="node", script=((100.0, 0, 0.5, 10_000.0),), detection_s=300.0,
                     restart_delay_s=200.0, policy=policy)
    return run_training(cluster=[("h100-sxm", 8, 2)], jobs=table([0.0], [8], [1000.0]), horizon_s=3000.0,
                        stragglers=model, preempt_overhead_s=60.0)


def test_replace_moves_the_job_after_the_detection_window_and_the_restart_delay():
    res = _replace_run("replace")
    j, s, seg = res.jobs.iloc[0], res.summary, res.segments
    assert list(seg["start_s"]) == [0.0, 100.0 + 300.0 + 200.0] and list(seg["end_s"])[0] == 400.0
    assert list(seg["domain"]) == [0, 1]  # off the drained node 0 (packed would take node 0 first)
    done = 100.0 + 0.5 * 300.0  # checkpointed at the detection: nothing lost
    assert j.finish_s == pytest.approx(600.0 + 60.0 + 1000.0 - done, rel=1e-12)
    assert (s["stragglers.replacements"], s["stragglers.detected"], j.preemptions) == (1, 1, 1)
    assert j.slowed_s == pytest.approx(300.0) and s["stragglers.jobs_slowed"] == 1
    assert s["stragglers.drained_card_hours"] == pytest.approx(8 * (3000.0 - 400.0) / 3600, rel=1e-12)
    ignore = _replace_run("ignore")
    assert ignore.jobs.iloc[0].finish_s == pytest.approx(100.0 + 900.0 / 0.5, rel=1e-12)
    assert ignore.summary["stragglers.replacements"] == 0 and len(ignore.segments) == 1


def _policies():
    return {s: registry.make(s, n) for s, n in (("admission", "accept_all"), ("ordering", "fifo"),
                                                ("placement", "packed"), ("preemption", "none"))}


class _ScriptedFailure(FailureModel):
    def next_failure(self, t, rng, n_cards, n_nodes):
        return (50.0, "card", 0) if t < 50.0 else (INF, "card", 0)


def test_a_card_repaired_while_its_node_is_drained_stays_out_until_the_episode_ends():
    lo = layout_from_node_groups([("h100-sxm", 8, 2)])
    sim = Simulation(lo, seed=0, horizon_s=2000.0)
    sim.add_training(table([0.0], [4], [10.0]), **_policies(),
                     failures=_ScriptedFailure(card_mtbf_s=1e9, repair_s=500.0),
                     stragglers=Scripted(script=((100.0, 0, 0.5, 900.0),), detection_s=10.0, policy="replace"))
    sim.run(600.0)  # the failed card's repair (t=550) falls inside the drain [110, 1000)
    assert sim.state.down[:8].all() and not sim.state.down[8:].any()
    sim.run(1001.0)
    assert not sim.state.down.any()


def test_without_stragglers_the_summary_is_unchanged():
    cfg = {"cluster": {"topology": {"builder": "node_groups", "groups": [["h100-sxm", 8, 4]]}}, "seed": 2,
           "duration": "2d", "failures": {"card_mtbf": "200h", "restart_delay": "5min"},
           "training": {"generator": {"kind": "uniform", "n_jobs": 150, "jobs_per_hour": 4,
                                      "params": {"mean_duration_s": 7200}}}}
    base = run_training(cfg)
    # episodes so rare that the first falls after the run: every other key is as without them
    quiet = run_training(cfg, overrides={"failures.stragglers": {"mtbf": "3000d", "slowdown": 0.5,
                                                                  "duration": "1h"}})
    wall = {"sim.wall_s", "sim.events_per_s", "sim.jobs_per_s"}
    extra = {k for k in quiet.summary if k.startswith("stragglers.")}
    assert quiet.summary["stragglers.episodes"] == 0 and quiet.summary["training.restarts"] > 0
    assert {k: v for k, v in quiet.summary.items() if k not in wall | extra} == \
        {k: v for k, v in base.summary.items() if k not in wall}
    assert "slowed_s" not in base.jobs and (quiet.jobs.drop(columns="slowed_s").equals(base.jobs))


class _Recorded(FailureModel):
    def next_failure(self, t, rng, n_cards, n_nodes):
        out = super().next_failure(t, rng, n_cards, n_nodes)
        self.seen.append(out)  # type: ignore[attr-defined]
        return out


def _streams_run(with_failures, with_stragglers):
    lo = layout_from_node_groups([("h100-sxm", 8, 4)])
    rng = np.random.default_rng(5)
    jobs = table(np.sort(rng.uniform(0, 2e5, 60)), rng.choice([1, 4, 8, 16], 60), rng.uniform(600, 2e4, 60))
    fm = _Recorded(card_mtbf_s=3e6, restart_delay_s=300.0) if with_failures else None
    if fm is not None:
        object.__setattr__(fm, "seen", [])
    sm = StragglerModel(unit="node", mtbf_s=1e5, slowdown=(0.2, 0.8), duration_s=(1e3, 2e4),
                        detection_s=600.0) if with_stragglers else None
    sim = Simulation(lo, seed=9, horizon_s=3e5)
    sim.add_training(jobs, **_policies(), failures=fm, stragglers=sm)
    sim.run()
    eng = sim.training
    eps = [tuple(e[:3]) for e in eng._ep if e[0] <= 3e5] if with_stragglers else None
    fails = [f for f in fm.seen if f[0] <= 3e5] if fm is not None else None
    return fails, eps, eng


def test_enabling_stragglers_never_shifts_the_failure_stream_and_back():
    f_only, _, _ = _streams_run(True, False)
    f_both, e_both, eng = _streams_run(True, True)
    _, e_only, _ = _streams_run(False, True)
    assert len(f_only) > 3 and f_only == f_both
    assert len(e_only) > 3 and e_only == e_both
    assert sum(eng.slowed_s) > 0 and int(eng.restarts.sum()) > 0  # both processes acted on jobs
    assert STREAM == "failures.stragglers" and STREAM in eng.sim.streams


def test_episode_process_is_poisson_with_the_configured_rate():
    # 64 nodes at 50 episodes per 1,000 node-days over 200 days: mean 640 episodes
    m = StragglerModel(rate_per_1000_node_days=50.0, slowdown=(0.2, 0.6), duration_s=(10.0, 20.0))
    assert m.rate(512, 64) == pytest.approx(64 * 0.05 / 86400)
    assert StragglerModel(unit="card", mtbf_s=1e6).rate(512, 64) == pytest.approx(512 / 1e6)
    rng = Streams(1)[STREAM]
    counts, factors = [], []
    for _ in range(20):
        t, k = 0.0, 0
        while True:
            t, uid, f, d = m.next_episode(t, rng, 512, 64)
            if t > 200 * 86400:
                break
            assert 0 <= uid < 64 and 10.0 <= d <= 20.0
            factors.append(f)
            k += 1
        counts.append(k)
    mean = np.mean(counts)
    assert abs(mean - 640) < 4 * math.sqrt(640 / 20)
    assert min(factors) >= 0.2 and max(factors) <= 0.6 and abs(np.mean(factors) - 0.4) < 0.01


@settings(max_examples=25, deadline=2000)
@given(st.lists(st.tuples(st.floats(1.0, 3000.0), st.integers(0, 7), st.floats(0.05, 0.95),
                          st.floats(1.0, 2000.0)), min_size=1, max_size=6),
       st.lists(st.tuples(st.floats(0.0, 2000.0), st.sampled_from([1, 2, 4, 8]), st.floats(10.0, 3000.0)),
                min_size=1, max_size=6))
def test_lost_time_is_wall_time_minus_work(episodes, jobs):
    # one node of one type, no failures or preemption: a job's run time beyond its work is exactly
    # the progress it did not make at its cards' min factor, sum (1 - f) dt
    script = tuple(sorted(episodes))
    jobs = sorted(jobs)
    model = Scripted(unit="card", script=script, detection_s=1e9)
    res = run_training(cluster=[("h100-sxm", 8, 1)], jobs=table(*map(list, zip(*jobs, strict=True))),
                       stragglers=model, horizon_s=1e5)
    j = res.jobs
    assert (j.status == "finished").all()
    ran = j.finish_s - j.first_start_s
    lost = res.record.meta["stragglers"]["lost_card_s"]
    np.testing.assert_allclose(ran - j.duration_s, np.asarray(lost) / j.num_cards, rtol=1e-9, atol=1e-6)
    assert (j.slowed_s <= ran + 1e-9).all()


BASE = {"cluster": {"topology": {"builder": "node_groups", "groups": [["h100-sxm", 8, 2]]}}, "duration": "1h",
        "training": {"generator": {"kind": "uniform", "n_jobs": 2, "jobs_per_hour": 2, "params": {"mean_duration_s": 600}}}}


@pytest.mark.parametrize(("stragglers", "field"), [
    ({"rate_per_1000_node_days": 10, "slowdown": 1.2, "duration": "1h"}, "failures.stragglers.slowdown"),
    ({"rate_per_1000_node_days": 10, "slowdown": 0, "duration": "1h"}, "failures.stragglers.slowdown"),
    ({"rate_per_1000_node_days": 10, "slowdown": [0.7, 0.3], "duration": "1h"}, "failures.stragglers"),
    ({"rate_per_1000_node_days": 10, "slowdown": 0.5, "duration": "1h", "detection_window": -1},
     "failures.stragglers.detection_window"),
    ({"rate_per_1000_node_days": 0, "slowdown": 0.5, "duration": "1h"}, "failures.stragglers.rate_per_1000_node_days"),
    ({"rate_per_1000_node_days": -3, "slowdown": 0.5, "duration": "1h"}, "failures.stragglers.rate_per_1000_node_days"),
    ({"slowdown": 0.5, "duration": "1h"}, "failures.stragglers"),
    ({"mtbf": "0s", "slowdown": 0.5, "duration": "1h"}, "failures.stragglers.mtbf"),
    ({"rate_per_1000_node_days": 10, "slowdown": 0.5, "duration": 0}, "failures.stragglers.duration"),
])
def test_bad_straggler_input_names_its_field(stragglers, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        run_training({**BASE, "failures": {"stragglers": stragglers}})


@pytest.mark.parametrize(("override", "field"), [
    ("failures.stragglers.slowdown=1.5", "failures.stragglers.slowdown"),
    ("failures.stragglers.detection_window=-1", "failures.stragglers.detection_window"),
    ("failures.stragglers.rate_per_1000_node_days=0", "failures.stragglers.rate_per_1000_node_days"),
    ("policy.training.stragglers=evict", "policy.training.stragglers"),
])
def test_the_cli_refuses_bad_straggler_input_with_exit_2(override, field, tmp_path, capsys):
    from pathlib import Path

    from cluster_sim.cli import main
    wl = Path(__file__).resolve().parents[2] / "workloads" / "faults_stragglers.yaml"
    out = tmp_path / "run"
    code = main(["run", str(wl), "--set", override, "--out", str(out)])
    stdout, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err and stdout == ""
    assert lines[0].startswith("error: ") and field in lines[0], lines[0]
    assert not out.exists()


def test_stragglers_with_tenant_silos_are_refused():
    cfg = {"cluster": {"topology": {"builder": "node_groups", "groups": [["h100-sxm", 8, 2]]}}, "duration": "1h",
           "training": {"generator": {"kind": "uniform", "n_jobs": 2, "jobs_per_hour": 2,
                                      "params": {"mean_duration_s": 600, "tenants": ["a", "b"]}}},
           "policy": {"pool": {"name": "static_partition", "params": {"tenant_cards": {"a": 8}}}},
           "failures": {"stragglers": {"mtbf": "100d", "slowdown": 0.5, "duration": "1h"}}}
    with pytest.raises(ConfigError, match=r"failures\.stragglers: not supported with tenant silos"):
        run_training(cfg)


def test_a_restart_stall_on_a_slow_card_is_not_slowed_time():
    # one card slow (0.5) from t=1; the job is evicted at t=201 and restarts on it at once with a
    # 100 s stall (reading its checkpoint): only the progressing time counts as slowed
    from cluster_sim.metrics import result_from_record
    sim = Simulation(layout_from_node_groups([("h100-sxm", 1, 1)]), seed=0)
    eng = sim.add_training(table([0.0], [1], [1000.0]), **_policies(),
                           stragglers=Scripted(unit="card", script=((1.0, 0, 0.5, 1e5),), detection_s=1e9))
    sim.run(201.0)
    eng.evict(0, 201.0, requeue_s=0.0, lost_s=0.0, restore_s=100.0)
    sim.run(5000.0)
    j = result_from_record(sim.collect()).jobs.iloc[0]
    done = 1.0 + 0.5 * 200.0
    assert j.finish_s == pytest.approx(301.0 + (1000.0 - done) / 0.5, rel=1e-12)
    assert j.slowed_s == pytest.approx(200.0 + (1000.0 - done) / 0.5, rel=1e-12)


def test_a_node_stays_drained_while_any_detected_episode_covers_it():
    # two overlapping episodes on node 0, [100, 1100) and [500, 3000), both detected after 10 s
    sim = Simulation(layout_from_node_groups([("h100-sxm", 8, 2)]), seed=0, horizon_s=4000.0)
    model = Scripted(script=((100.0, 0, 0.5, 1000.0), (500.0, 0, 0.7, 2500.0)), detection_s=10.0, policy="replace")
    eng = sim.add_training(table([0.0], [4], [10.0]), **_policies(), stragglers=model)
    sim.run(2000.0)
    assert sim.state.down[:8].all() and not sim.state.down[8:].any()
    sim.run(3001.0)
    assert not sim.state.down.any()
    rec = eng.straggler_record(4000.0)
    assert rec["drained_card_s"] == pytest.approx(8 * (3000.0 - 110.0), rel=1e-12)
    assert (rec["episodes"], rec["detected"]) == (2, 2)


def test_drained_card_hours_are_the_ledgers_down_hours_on_a_shared_pool():
    # no failures: every down card-second on the one card ledger is a straggler drain, and the
    # card broker never claims a drained slot (it skips down cards)
    from pathlib import Path

    from cluster_sim.config import load_config
    from cluster_sim.experiment import simulate
    wl = Path(__file__).resolve().parents[2] / "workloads" / "pool_peak_shaving.yaml"
    cfg = load_config(wl, overrides={"duration": "1h", "policy.training.stragglers": "replace",
                                     "failures.stragglers": {"mtbf": "2h", "slowdown": 0.5, "duration": "30min",
                                                             "detection_window": "5min"}})
    s = simulate(cfg).summary
    assert s["stragglers.replacements"] > 0 and s["stragglers.drained_card_hours"] > 0
    assert s["pool.card_hours.down"] == pytest.approx(s["stragglers.drained_card_hours"], rel=1e-9)
