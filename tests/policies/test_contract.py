"""Contract of every training policy in the registry (admission, ordering, placement, preemption).

For each entry: it never over-allocates (the engine validates each decision and the state's
indices are re-checked); it is deterministic under a seed; it never mutates its view; it handles
an empty queue / nothing running / a full cluster. Name, parameters, ``repr``, the registry round
trip and statelessness are the family-independent contract of ``test_policy_contract.py``.

Every (placement x preemption) pair runs a small mixed scenario with invariants checked after
every event batch: no card in two jobs (indices recomputed), no job on a card type it may not
use, time and each job's progress monotone, and at the horizon every submitted job is finished,
running, queued or rejected. A pair that stops making progress raises ``NoProgressError``.
"""

from __future__ import annotations

import numpy as np
import pytest

from cluster_sim.engine.cluster.state import ClusterState, layout_from_node_groups
from cluster_sim.engine.simulation import Simulation
from cluster_sim.metrics import result_from_record
from cluster_sim.policies import registry
from cluster_sim.policies.base import JobsView, JobView, RunningView, TenantUsage, readonly
from cluster_sim.workload.jobs import ANY_TYPE, KIND_TRACE, JobTable

FAMILIES = ("admission", "ordering", "placement", "preemption")
PAIRS = [(p, q) for p in registry.names("placement") for q in registry.names("preemption")]
ENTRIES = [(f, n) for f in FAMILIES for n in registry.names(f)]
DEFAULTS = {"placement": "packed", "ordering": "fifo", "admission": "accept_all", "preemption": "none"}


def _layout():
    return layout_from_node_groups([("h100-sxm", 8, 3), ("a100-80gb", 4, 4), ("t4", 2, 3)],
                                   nodes_per_leaf=2, oversubscription=2.0)


def _jobs(seed: int, n: int = 120) -> JobTable:
    rng = np.random.default_rng(seed)
    num = rng.choice([1, 1, 2, 4, 8, 12, 16], size=n)
    milli = np.where((num == 1) & (rng.random(n) < 0.4), rng.choice([250, 500, 700], size=n), 1000)
    masks = np.where(rng.random(n) < 0.3, rng.choice([1, 2, 4], size=n), int(ANY_TYPE)).astype(np.uint64)
    return JobTable(job_id=np.arange(n), submit_s=np.sort(rng.uniform(0, 2000, n)), num_cards=num,
                    card_milli=milli, duration_s=rng.exponential(300.0, n) + 1.0, type_mask=masks,
                    card_types=("h100-sxm", "a100-80gb", "t4"), priority=rng.integers(0, 3, n),
                    preemptible=rng.random(n) < 0.7, kind=np.where(rng.random(n) < 0.2, KIND_TRACE, 0),
                    tenant=rng.integers(0, 2, n), tenants=("a", "b"))


def _run(family: str, name: str, seed: int):
    stages = dict(DEFAULTS)
    stages[family] = name
    if family == "preemption":
        stages["ordering"] = "priority"
    sim = Simulation(_layout(), seed=seed, horizon_s=3000.0)
    sim.add_training(_jobs(seed), backfill=True, **{k: registry.make(k, v) for k, v in stages.items()})
    checks = []
    orig = sim.training.step

    def step(t):
        orig(t)
        sim.state.check()
        checks.append(t)
    sim.training.step = step
    sim.run()
    return result_from_record(sim.collect()), checks


@pytest.mark.parametrize("family,name", ENTRIES)
def test_never_over_allocates_and_is_deterministic(family, name):
    a, checks = _run(family, name, seed=5)
    assert len(checks) > 50  # the state was re-verified after every event batch
    tl = a.timeline
    assert (tl["allocated_cards"] <= tl["available_cards"] + 1e-9).all()
    assert (tl["busy_cards"] <= tl["allocated_cards"] + 1e-9).all()
    assert a.summary["training.jobs.finished"] > 0
    b, _ = _run(family, name, seed=5)
    pd_cols = ["job_id", "status", "first_start_s", "finish_s", "preemptions"]
    assert a.jobs[pd_cols].equals(b.jobs[pd_cols])


def _snapshot(obj) -> dict:
    out = {}
    for k, v in vars(obj).items():
        if isinstance(v, np.ndarray):
            out[k] = v.copy()
        elif isinstance(v, tuple) and v and isinstance(v[0], np.ndarray):
            out[k] = [x.copy() for x in v]
    return out


def _same(a: dict, b: dict) -> bool:
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, list):
            if not all(np.array_equal(p, q) for p, q in zip(x, y, strict=True)):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def _busy_state():
    st = ClusterState(_layout())
    st.allocate(0, [0, 1, 2], 1000, "setup")
    st.allocate(1, [24], 300, "setup")
    st.allocate(2, [8, 9, 10, 11, 12, 13, 14, 15], 1000, "setup")
    for k in range(20):
        st.push_request(1 + k % 4, 1000 if k % 3 else 400, int(ANY_TYPE))
    return st


def _job(i=9, num=2, milli=1000, mask=int(ANY_TYPE), prio=2, single=False):
    return JobView(i, i, num, milli, mask, 0, 0, prio, True, 0.0, 100.0, 0.0, single)


@pytest.mark.parametrize("name", registry.names("placement"))
def test_placement_never_mutates_view_and_handles_full_cluster(name):
    st = _busy_state()
    before = _snapshot(st.view)
    p = registry.make("placement", name)
    for job in (_job(), _job(num=1, milli=250), _job(num=6, mask=0b010), _job(num=20), _job(num=3, single=True)):
        dec = p.place(job, st.view)
        if dec is not None:
            assert len(dec.cards) == job.num_cards and not dec.cards.flags.writeable
    assert _same(before, _snapshot(st.view))
    full = ClusterState(_layout())
    full.allocate(0, np.arange(full.n_cards), 1000, "fill")
    assert p.place(_job(num=1, milli=100), full.view) is None
    assert p.place(_job(num=1), full.view) is None


@pytest.mark.parametrize("name", registry.names("ordering"))
def test_ordering_handles_empty_and_never_mutates(name):
    p = registry.make("ordering", name)
    empty = JobsView(*(readonly(np.zeros(0, dt)) for dt in (np.int64, float, float, np.int32, np.int16,
                                                             np.int8, np.int16, float, np.int8)))
    assert p.keys(empty).keys.shape == (0,)
    cols = [np.arange(3), np.array([3.0, 1.0, 2.0]), np.array([10.0, 30.0, 20.0]), np.array([1, 8, 2], np.int32),
            np.array([1000, 1000, 500], np.int16), np.array([0, 2, 1], np.int8), np.zeros(3, np.int16),
            np.array([0.0, 5.0, 0.0]), np.zeros(3, np.int8)]
    view = JobsView(*(readonly(c) for c in cols))
    snap = [c.copy() for c in cols]
    k = p.keys(view).keys
    assert k.shape == (3,) and np.isfinite(k).all() and not k.flags.writeable
    assert all(np.array_equal(a, b) for a, b in zip(cols, snap, strict=True))


@pytest.mark.parametrize("name", registry.names("preemption"))
def test_preemption_handles_nothing_running_and_never_mutates(name):
    st = _busy_state()
    p = registry.make("preemption", name)
    empty = RunningView(*(readonly(np.zeros(0, dt)) for dt in (np.int64, np.int64, bool, float, np.int64)), ())
    assert p.select(_job(num=30), empty, st.view).victims == ()
    running = RunningView(readonly(np.array([0, 2])), readonly(np.array([0, 0])), readonly(np.array([True, True])),
                          readonly(np.array([0.0, 1.0])), readonly(np.array([1000, 1000])),
                          (readonly(np.array([0, 1, 2])), readonly(np.arange(8, 16))))
    before = _snapshot(st.view)
    dec = p.select(_job(num=30, prio=5), running, st.view)
    assert set(dec.victims) <= {0, 2}
    assert _same(before, _snapshot(st.view))


@pytest.mark.parametrize("name", registry.names("admission"))
def test_admission_decides_without_mutating(name):
    p = registry.make("admission", name)
    run_c, q_c = np.array([0.0, 3.0]), np.array([0.0, 1.0])
    usage = TenantUsage(("a", "b"), readonly(run_c), readonly(q_c))
    dec = p.admit(_job(), usage)
    assert dec.accept in (True, False) and isinstance(dec.reason, str)
    assert run_c.tolist() == [0.0, 3.0] and q_c.tolist() == [0.0, 1.0]


def test_engine_handles_no_jobs():
    sim = Simulation(_layout(), horizon_s=10.0)
    sim.add_training(JobTable.empty(), **{k: registry.make(k, v) for k, v in DEFAULTS.items()})
    sim.run()
    res = result_from_record(sim.collect())
    assert res.summary["training.jobs.submitted"] == 0
    assert res.summary["utilization.allocated"] == pytest.approx(0.0, abs=1e-12)


def test_presets_name_registered_stages():
    for name, stages in registry.SCHEDULERS.items():
        assert set(stages) - {"backfill"} == set(FAMILIES), name
        assert stages.get("backfill", "easy") in ("easy", "greedy"), name
        for fam, pol in stages.items():
            assert fam == "backfill" or pol in registry.names(fam), (name, fam, pol)


@pytest.mark.parametrize("placement,preemption", PAIRS)
def test_every_placement_preemption_pair_keeps_the_invariants(placement, preemption):
    # order preemption ranks by the ordering's keys: give it Tiresias with a low threshold so jobs
    # are demoted (and evicted) during the run; the others rank by priority
    ordering = (type("R", (), {"name": "tiresias", "params": {"thresholds": [400.0]}})()
                if preemption == "order" else "priority")
    jobs = _jobs(11, n=60)
    horizon = 2500.0
    sim = Simulation(_layout(), seed=11, horizon_s=horizon)
    pol = {"admission": "accept_all", "ordering": ordering, "placement": placement, "preemption": preemption}
    sim.add_training(jobs, backfill=True, preempt_overhead_s=5.0,
                     **{k: registry.make(k, v) for k, v in pol.items()})
    eng, st = sim.training, sim.state
    card_type = np.asarray(st.layout.card_type, np.int64)
    times: list[float] = []
    last_remaining = np.array(eng.remaining)
    orig = eng.step

    def step(t):
        assert not times or t >= times[-1]  # time never goes back
        times.append(t)
        orig(t)
        st.check()  # no card in two jobs, allocated <= capacity, every index exact
        for i, (cards, _) in st.alloc.items():
            assert ((eng.mask[i] >> card_type[cards]) & 1).all(), (i, "holds a card of a wrong type")
        rem = np.array(eng.remaining)
        assert (rem <= last_remaining + 1e-9).all()  # progress is monotone (no failures here)
        last_remaining[:] = rem
    eng.step = step
    sim.run()
    res = result_from_record(sim.collect())
    j = res.jobs
    assert len(times) > 40 and res.summary["training.jobs.finished"] > 0
    submitted = j.submit_s <= horizon
    assert set(j.status[submitted]) <= {"finished", "running", "queued", "rejected"}
    assert (j.status[~submitted] == "pending").all()
    fin = j[j.status == "finished"]
    assert (fin.remaining_s == 0).all() and (fin.finish_s >= fin.first_start_s).all()
    assert ((j.remaining_s >= -1e-9) & (j.remaining_s <= j.duration_s + 1e-9)).all()
    if preemption == "none":
        assert (j.preemptions == 0).all()
    else:  # the scenario is built so that every preempting pair does evict (14 / 1 .. 4 jobs)
        assert j.preemptions.sum() > 0
