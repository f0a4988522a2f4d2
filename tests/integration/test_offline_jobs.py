"""Offline inference jobs in the cluster engine (``training.offline_jobs``).

* Off-peak: a deferrable job submitted at 9h starts at 22h (the cheap window) and meets its
  deadline; a non-deferrable one starts at once; both finish after exactly their closed-form
  run time, their cards are busy for it (``utilization.busy``), and ``training.*`` job keys
  do not count them.
* Heterogeneous cards: a job whose reference type is taken runs on its other allowed type for
  that type's closed-form run time; a mixed allocation runs at the replicas' mean rate.
* ``peak_shaving``: an offline job is evicted by a scale-up and resumes; it keeps every whole
  batch (the processed-request count never goes down), redoes only the batch in flight, and
  finishes at the closed-form time.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cluster_sim.config import load_config
from cluster_sim.engine.cluster.state import layout_from_node_groups, layout_from_topology
from cluster_sim.engine.pool.broker import CardBroker
from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
from cluster_sim.engine.simulation import Simulation
from cluster_sim.experiment import simulate
from cluster_sim.experiment.offline import OfflineJobSpeed
from cluster_sim.perf.inference import ReplicaPerf
from cluster_sim.perf.linear_serving import LinearServingPerf
from cluster_sim.perf.offline import offline_schedule
from cluster_sim.policies import registry
from cluster_sim.topology import rail_optimized
from cluster_sim.workload.jobs import KIND_OFFLINE, JobTable
from cluster_sim.workload.requests import RequestTable

from ..property.test_pool_sharing import Scripted

H = 3600.0
TARIFF = [{"from": "0h", "to": "8h", "usd_per_kwh": 0.05}, {"from": "8h", "to": "22h", "usd_per_kwh": 0.15},
          {"from": "22h", "to": "24h", "usd_per_kwh": 0.05}]
JOB = {"model": "llama3-8b", "requests": 20000, "prompt_tokens": 1000, "output_tokens": 200, "cards": 4}


def test_deferrable_offline_job_starts_in_the_cheap_window():
    cfg = load_config({
        "duration": "48h", "cluster": {"topology": {"builder": "fat_tree", "system": "hgx-h100", "nodes": 1}},
        "energy": {"tariff": TARIFF}, "policy": {"training": {"offpeak": {"max_usd_per_kwh": 0.05}}},
        "training": {"offline_jobs": [{**JOB, "name": "later", "submit": "9h", "deferrable": True, "deadline": "24h"},
                                      {**JOB, "name": "now", "submit": "10h", "deadline": "1h"}]}})
    res = simulate(cfg)
    d = offline_schedule(ReplicaPerf("llama3-8b", "h100-sxm"), requests=20000, prompt=1000, output=200,
                         replicas=4).duration_s
    assert d < H  # both fit their deadlines at reference speed
    jobs = res.jobs.set_index("name")
    assert jobs.loc["later", "first_start_s"] == 22 * H and jobs.loc["now", "first_start_s"] == 10 * H
    assert jobs.loc["later", "finish_s"] == pytest.approx(22 * H + d, rel=1e-12)
    assert jobs.loc["now", "jct_s"] == pytest.approx(d, rel=1e-12)
    s = res.summary
    assert (s["offline.jobs.submitted"], s["offline.jobs.finished"], s["offline.jobs.deferred"]) == (2, 2, 1)
    assert (s["offline.jobs.met_deadline"], s["offline.jobs.missed_deadline"]) == (2, 0)
    assert s["offline.requests.processed"] == 40000 and s["offline.tokens.processed"] == 40000 * 1200
    assert s["offline.tokens_per_s_per_card"] == pytest.approx(20000 * 1200 / (4 * d), rel=1e-9)
    assert s["offline.jct_s.p50"] == pytest.approx((13 * H + d + d) / 2, rel=1e-12)
    assert s["training.jobs.submitted"] == 0 and s["training.jct_s.p50"] is None
    assert s["utilization.busy"] == pytest.approx(2 * 4 * d / (8 * 48 * H), rel=1e-9)


def test_offline_job_runs_at_the_closed_form_of_the_type_it_gets():
    groups = {"builder": "node_groups", "groups": [["h100-sxm", 8, 1], ["a100-80gb", 8, 2]]}
    cfg = load_config({"cluster": {"topology": groups}, "training": {"offline_jobs": [
        {**JOB, "name": "hold", "cards": 16, "card_type": "a100-80gb"},
        {**JOB, "name": "moved", "cards": 8, "tp": 2, "allowed_types": ["a100-80gb", "h100-sxm"], "submit": 1.0}]}})
    res = simulate(cfg)
    jobs = res.jobs.set_index("name")

    def dur(t, tp, replicas):
        return offline_schedule(ReplicaPerf("llama3-8b", t, tp=tp), requests=20000, prompt=1000, output=200,
                                replicas=replicas).duration_s
    on = {t: dur(t, 2, 4) for t in ("h100-sxm", "a100-80gb")}
    assert jobs.loc["moved", "card_type"] == "h100-sxm" and jobs.loc["moved", "duration_s"] == on["a100-80gb"]
    assert jobs.loc["moved", "jct_s"] == pytest.approx(on["h100-sxm"], rel=1e-12)
    assert on["a100-80gb"] > 1.5 * on["h100-sxm"]
    # every held card is busy while its replica runs, on the faster type too: a100 is the engine's
    # reference type here, and its FLOP-ratio guess for h100 (3x) would call 40% of them idle
    hold = dur("a100-80gb", 1, 16)
    t_end = res.summary["sim.t_end_s"]
    assert t_end == pytest.approx(max(hold, 1.0 + on["h100-sxm"]), rel=1e-12)
    assert res.summary["utilization.busy"] == pytest.approx((16 * hold + 8 * on["h100-sxm"]) / (24 * t_end), rel=1e-9)


def test_mixed_allocation_runs_at_the_replicas_mean_rate():
    lo = layout_from_node_groups([("h100-sxm", 4, 1), ("a100-80gb", 4, 1)])
    d = np.array([100.0, 250.0])[[lo.card_types.index("h100-sxm"), lo.card_types.index("a100-80gb")]]
    hook = OfflineJobSpeed(100.0, d, np.asarray(lo.card_type), tp=2)
    h = np.flatnonzero(lo.card_type == lo.card_types.index("h100-sxm"))
    a = np.flatnonzero(lo.card_type == lo.card_types.index("a100-80gb"))
    assert hook(h, 1.0)[0] == 1.0 and hook(a, 0.5)[0] == pytest.approx(0.4)
    assert hook(np.r_[h[:2], a[:2]], 1.0)[0] == pytest.approx(100.0 * (1 / 100 + 1 / 250) / 2)
    assert hook(np.r_[h[:1], a[:1], h[1:2], a[1:2]], 1.0)[0] == pytest.approx(0.4)  # each replica at a100 pace


def test_evicted_offline_job_keeps_its_finished_batches():
    topo = rail_optimized("dgx-a100", 1)
    horizon = 4000.0
    sched = offline_schedule(ReplicaPerf("llama3-8b", "a100-80gb"), requests=40000, prompt=1000, output=200,
                             replicas=4)
    dur, q = sched.duration_s, sched.batch_s
    assert 600 < dur < 1500 and 99.0 % q > 1.0  # evicted mid-batch at 100 s (started at 1 s)
    sim = Simulation(layout_from_topology(topo), horizon_s=horizon)
    pol = registry.make("pool", {"name": "peak_shaving", "params": {"lend_after_s": 0.0}})
    broker = sim.add(CardBroker(pol, checkpoint_bytes=lambda i: 0.0))
    jobs = JobTable(job_id=[0], submit_s=[1.0], num_cards=4, duration_s=[dur], preemptible=[True], kind=KIND_OFFLINE)
    eng = sim.add_training(jobs, admission=registry.make("admission", "accept_all"),
                           ordering=registry.make("ordering", "fifo"), placement=registry.make("placement", "packed"),
                           preemption=registry.make("preemption", "none"), work_quantum_s={0: q})
    seen = []
    evict = eng.evict

    def watched(i, t, **kw):  # noqa: ANN001, ANN003, ANN202
        before = dur - (eng.remaining[i] - eng.rate[i] * (t - eng.last[i]))
        out = evict(i, t, **kw)
        seen.append((t, sched.processed(before), sched.processed(dur - eng.remaining[i]), before - (dur - eng.remaining[i])))
        return out

    eng.evict = watched
    arr = np.arange(5.0, horizon - 10.0, 25.0)
    reqs = RequestTable.from_arrays(arr, np.full(arr.size, 64), np.full(arr.size, 4))
    perf = dataclasses.replace(LinearServingPerf(prefill_s=0.01, decode_s=0.005, kv_capacity_tokens=100_000), cards=4)
    svc = ServiceSpec("s", reqs, (PoolSpec("colocated", 2, perf, "a100-80gb", 4),))
    sim.add(ServingEngine([svc], autoscaling=Scripted(), options=ServingOptions(horizon_s=horizon),
                          topology=topo, broker=broker))
    sim.run()
    rec = sim.collect()
    assert [t for t, *_ in seen] == [100.0] and rec.jobs["evictions"].tolist() == [1]
    _, n_before, n_after, lost = seen[0]
    kept = (99.0 // q) * q
    assert n_after == n_before == sched.processed(99.0) > 0  # whole batches kept: the count does not drop
    assert lost == pytest.approx(99.0 - kept, abs=1e-9) and 0 < lost < q
    assert rec.jobs["finish_s"][0] == pytest.approx(500.0 + dur - kept, abs=1e-6)  # resumes when lent back
    assert rec.jobs["lost_card_s"][0] == pytest.approx(4 * (99.0 - kept), abs=1e-6)
