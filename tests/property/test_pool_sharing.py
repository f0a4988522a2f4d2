"""Dynamic pool policies (``shared_pool``, ``peak_shaving``): the card broker moves cards between
serving replica slots and training jobs during one run on one card ledger.

* Closed form: one 8-card node, a 4-card preemptible job and a 2-slot service whose scripted
  autoscaler asks for the second slot during [100 s, 500 s). ``peak_shaving`` evicts the job at
  100 s (checkpoint within the notice: no work lost), the slot serves after the checkpoint and
  the warm-up, its cards are lent back at 500 s and the job resumes after reading its
  checkpoint back: it finishes at 500 + restore + (1000 - 100). ``shared_pool`` never preempts:
  the scale-up is refused and the job finishes at 1000 s. With a notice shorter than the
  checkpoint, the job loses the work since its last periodic checkpoint.
* Invariants (hypothesis): no card serving and training at once (the ledger against the cluster
  state after every claim, lend and scheduling change); card-seconds add up to cards x time;
  the pool never has fewer replicas on than ``min_replicas``; an evicted job never loses more
  than one checkpoint interval of work per eviction and stalls exactly its restore time; every
  job and request ends once.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster_sim.engine.cluster.state import layout_from_topology
from cluster_sim.engine.pool.broker import CardBroker
from cluster_sim.engine.pool.ledger import MOVING, SERVING
from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
from cluster_sim.engine.simulation import Simulation
from cluster_sim.perf.linear_serving import LinearServingPerf
from cluster_sim.policies import registry
from cluster_sim.policies.base import Policy
from cluster_sim.policies.serving.base import ScaleDecision
from cluster_sim.topology import rail_optimized
from cluster_sim.workload.generators import uniform_jobs
from cluster_sim.workload.jobs import JobTable
from cluster_sim.workload.requests import RequestTable

PERF = LinearServingPerf(prefill_s=0.01, decode_s=0.005, kv_capacity_tokens=100_000)
SLOW = LinearServingPerf(prefill_s=1.0, decode_s=0.5, kv_capacity_tokens=100_000)


class Scripted(Policy):
    """Autoscaler test double: ``high`` replicas during [t_up, t_down), else ``low``."""

    name, family = "scripted", "autoscaling"

    def __init__(self, *, low: int = 1, high: int = 2, t_up: float = 100.0, t_down: float = 500.0,
                 interval_s: float = 100.0, warmup_s: float = 30.0) -> None:
        self.low, self.high, self.t_up, self.t_down = low, high, t_up, t_down
        self.interval_s, self.warmup_s = interval_s, warmup_s

    def scale(self, view):  # noqa: ANN001, ANN201
        hi = self.t_up <= view.now_s < self.t_down
        return ScaleDecision(self.high if hi else self.low, self.warmup_s)


def _run(pool: str, *, params: dict | None = None, horizon: float = 3000.0, job_s: float = 1000.0):
    topo = rail_optimized("dgx-a100", 1)
    layout = layout_from_topology(topo)
    sim = Simulation(layout, horizon_s=horizon)
    pol = registry.make("pool", {"name": pool, "params": {"lend_after_s": 0.0, **(params or {})}})
    broker = sim.add(CardBroker(pol))
    jobs = JobTable(job_id=[0], submit_s=[1.0], num_cards=4, duration_s=[job_s], preemptible=[True])
    sim.add_training(jobs, admission=registry.make("admission", "accept_all"),
                     ordering=registry.make("ordering", "fifo"), placement=registry.make("placement", "packed"),
                     preemption=registry.make("preemption", "none"))
    arr = np.arange(5.0, horizon - 10.0, 25.0)  # nothing in flight at the 100 s ticks
    reqs = RequestTable.from_arrays(arr, np.full(arr.size, 64), np.full(arr.size, 4))
    svc = ServiceSpec("s", reqs, (PoolSpec("colocated", 2, dataclasses.replace(PERF, cards=4), "a100-80gb", 4),))
    eng = sim.add(ServingEngine([svc], autoscaling=Scripted(), options=ServingOptions(horizon_s=horizon),
                                topology=topo, broker=broker))
    sim.run()
    return sim, broker, eng, sim.collect()


def test_peak_shaving_reclaims_checkpoints_and_gives_back_exactly():
    sim, broker, eng, rec = _run("peak_shaving")
    save = 14e9 * 4 / 50e9                     # 14 GB per card x 4 cards over one node's 50 GB/s
    assert rec.jobs["evictions"].tolist() == [1] and rec.jobs["preemptions"].tolist() == [1]
    assert rec.jobs["finish_s"][0] == pytest.approx(500.0 + save + (1000.0 - 99.0), abs=1e-9)
    assert rec.jobs["lost_card_s"][0] == 0.0   # checkpointed within the notice
    assert rec.jobs["stall_card_s"][0] == pytest.approx(save * 4)
    c = broker.counts
    assert (c["evictions"], c["reclaimed_slots"], c["model_loads"], c["lends"]) == (1, 1, 1, 1)
    # the second slot: moving from 100 s for the checkpoint and the warm-up, serving to 500 s
    cs = rec.pool["card_seconds"]
    assert cs["moving"] == pytest.approx(4 * (save + 30.0))
    assert cs["serving"] == pytest.approx(4 * 3000.0 + 4 * (400.0 - save - 30.0))
    assert cs["training"] == pytest.approx(4 * (99.0 + (901.0 + save)))
    assert sum(cs.values()) == pytest.approx(8 * 3000.0)
    sim.ledger.check()


def test_shared_pool_never_preempts():
    sim, broker, eng, rec = _run("shared_pool")
    assert rec.jobs["evictions"].tolist() == [0]
    assert rec.jobs["finish_s"][0] == pytest.approx(1001.0)
    assert broker.counts["evictions"] == 0 and broker.counts["refused_scale_ups"] >= 4   # ticks 100..400
    assert rec.pool["card_seconds"]["moving"] == 0.0


def test_short_notice_loses_work_since_the_last_checkpoint():
    # the checkpoint (1.12 s) does not fit in a 0.5 s notice: killed at 100.5 s, losing the 99 s
    # since it started modulo the 40 s checkpoint interval = 19 s of work
    sim, broker, eng, rec = _run("peak_shaving", params={"notice_s": 0.5, "checkpoint_interval_s": 40.0})
    save = 14e9 * 4 / 50e9
    assert rec.jobs["lost_card_s"][0] == pytest.approx(19.0 * 4)
    assert rec.jobs["finish_s"][0] == pytest.approx(500.0 + save + (1000.0 - 99.0 + 19.0))
    assert broker.lost_work_card_s == pytest.approx(19.0 * 4)
    assert broker.checkpoint_card_s == pytest.approx(0.5 * 4)


def _audit(sim: Simulation, broker: CardBroker, seen: list[int]) -> None:
    led, st_ = sim.ledger, sim.state
    led.check(training=(cards for cards, _ in st_.alloc.values()))
    # every serving or moving card is held away from training
    assert st_.reserved[(led.state == SERVING) | (led.state == MOVING)].all()
    seen[0] += 1


@settings(max_examples=20, deadline=30_000, suppress_health_check=[HealthCheck.too_slow])
@given(pool=st.sampled_from(["shared_pool", "peak_shaving"]), nodes=st.integers(1, 3),  # tp=4 x 2 replicas fits one node
       n_jobs=st.integers(1, 30), n_cards=st.sampled_from([1, 2, 4, 8]), replicas=st.integers(2, 6),
       tp=st.sampled_from([1, 2, 4]), n_req=st.integers(60, 300), min_rep=st.integers(1, 2),
       headroom=st.integers(0, 2), notice=st.sampled_from([0.0, 0.5, 120.0]),
       lend_after=st.sampled_from([0.0, 60.0]), seed=st.integers(0, 2**16))
def test_sharing_invariants(pool, nodes, n_jobs, n_cards, replicas, tp, n_req, min_rep, headroom, notice,
                            lend_after, seed):
    topo = rail_optimized("dgx-a100", nodes)
    layout = layout_from_topology(topo)
    n = layout.n_cards
    replicas = max(2, min(replicas, n // tp))
    min_rep = min(min_rep, replicas)
    horizon = 2000.0
    sim = Simulation(layout, seed=seed, horizon_s=horizon)
    pol = registry.make("pool", {"name": pool, "params": {
        "min_replicas": min_rep, "headroom": headroom, "notice_s": notice, "lend_after_s": lend_after,
        "checkpoint_interval_s": 50.0}})
    broker = sim.add(CardBroker(pol))
    rng = np.random.default_rng(seed)
    jobs = uniform_jobs(n_jobs, rate_per_s=0.05, mean_duration_s=300.0, rng=seed, num_cards=min(n_cards, n),
                        preemptible=bool(seed % 2))
    sim.add_training(jobs, admission=registry.make("admission", "accept_all"),
                     ordering=registry.make("ordering", "fifo"), placement=registry.make("placement", "packed"),
                     preemption=registry.make("preemption", "none"))
    seen = [0]
    for obj, meths in ((sim.state, ("allocate", "release")), (broker, ("claim", "tick"))):
        for m in meths:
            f = getattr(obj, m)

            def wrapped(*a, _f=f, **kw):
                out = _f(*a, **kw)
                _audit(sim, broker, seen)
                return out
            setattr(obj, m, wrapped)
    on_counts: list[int] = []
    tick = broker.tick

    def counting_tick(p, t):
        tick(p, t)
        on_counts.append(sum(r.active or r.warming for r in p.replicas))
    broker.tick = counting_tick
    # three bursts: the autoscaler scales up at each (reclaiming or waiting) and down between
    arrival = np.sort(np.clip(rng.choice([300.0, 900.0, 1500.0], n_req) + rng.normal(0, 40.0, n_req), 0, 1900))
    reqs = RequestTable.from_arrays(arrival, rng.integers(1, 500, n_req), rng.integers(1, 30, n_req))
    svc = ServiceSpec("s", reqs, (PoolSpec("colocated", replicas, dataclasses.replace(SLOW, cards=tp),
                                           "a100-80gb", tp),))
    scaler = registry.make("autoscaling", {"name": "queue_driven", "params": {
        "target_outstanding": 2.0, "interval_s": 20.0, "warmup_s": 5.0, "initial_replicas": 1}})
    eng = sim.add(ServingEngine([svc], autoscaling=scaler, options=ServingOptions(horizon_s=horizon),
                                topology=topo, broker=broker))
    sim.run()
    _audit(sim, broker, seen)
    rec = sim.collect()
    cs = rec.pool["card_seconds"]
    assert abs(sum(cs.values()) - n * horizon) <= 1e-9 * n * horizon
    assert on_counts and min(on_counts) >= min_rep
    j = rec.jobs
    ev = j["evictions"]
    if pool == "shared_pool" or not seed % 2:
        assert ev.sum() == 0 and broker.counts["evictions"] == 0
    assert (j["lost_card_s"] <= ev * 50.0 * j["num_cards"] + 1e-6).all()
    assert ev.sum() == broker.counts["evictions"]
    fin = j["status"] == "finished"
    assert (np.isfinite(j["finish_s"]) == fin).all()
    assert (j["remaining_s"][fin] == 0).all()
    rs = np.frombuffer(bytes(eng.rs.status), dtype=np.uint8)
    assert eng.nfinished == int((rs == 1).sum())
    assert seen[0] >= 2


def test_scale_to_zero_parks_requests_and_models_share_cards():
    """Two models on one 8-card node with shared slots and min_replicas 0: a request to a model
    with no replica waits for the next tick, which starts one on the free cards (its weights
    loaded: a cold start); the other model's replica, idle, lends the same cards back first."""
    topo = rail_optimized("dgx-a100", 1)
    sim = Simulation(layout_from_topology(topo), horizon_s=200.0)
    pol = registry.make("pool", {"name": "shared_pool", "params": {
        "min_replicas": 0, "lend_after_s": 0.0, "share_slots": True}})
    broker = sim.add(CardBroker(pol))
    perf = dataclasses.replace(PERF, cards=8)
    a = RequestTable.from_arrays([5.0, 95.0], [64, 64], [4, 4])
    b = RequestTable.from_arrays([45.0], [64], [4])
    svcs = [ServiceSpec(n, t, (PoolSpec("colocated", 1, perf, "a100-80gb", 8),)) for n, t in (("a", a), ("b", b))]
    scaler = registry.make("autoscaling", {"name": "queue_driven", "params": {
        "target_outstanding": 1.0, "min_replicas": 0, "initial_replicas": 0, "interval_s": 10.0, "warmup_s": 2.0}})
    eng = sim.add(ServingEngine(svcs, autoscaling=scaler, options=ServingOptions(horizon_s=200.0),
                                topology=topo, broker=broker))
    assert [r.cards.tolist() for r in eng.replicas] == [list(range(8))] * 2   # one set of cards, two models
    sim.run()
    req = eng.result.requests.sort_values("arrival_s")
    svc_time = 0.01 + 3 * 0.005   # prefill, then 3 decode iterations (LinearServingPerf)
    # a@5 parked, started at the 10 s tick, serves after the 2 s warm-up; b@45 likewise at 50 + 2;
    # a@95: a's replica was lent back at the 60 s tick (idle), so again a cold start at 100 + 2
    assert req["first_token_s"].tolist() == pytest.approx([12.01, 52.01, 102.01])
    assert req["last_token_s"].tolist() == pytest.approx([12.0 + svc_time, 52.0 + svc_time, 102.0 + svc_time])
    assert broker.counts["model_loads"] == 3 and broker.counts["lends"] >= 2
    cs = sim.collect().pool["card_seconds"]
    assert cs["moving"] == pytest.approx(3 * 8 * 2.0)
    assert sum(cs.values()) == pytest.approx(8 * 200.0)


def test_shared_slots_spread_services_over_the_domains():
    """share_slots: service k of S starts its slots at scale-up domain k * D / S (wrapping), so
    four one-card services on two 8-card nodes overlap in pairs, not all on the first cards."""
    topo = rail_optimized("dgx-a100", 2)
    sim = Simulation(layout_from_topology(topo), horizon_s=10.0)
    broker = sim.add(CardBroker(registry.make("pool", {"name": "shared_pool", "params": {"share_slots": True}})))
    perf = dataclasses.replace(PERF, cards=1)
    reqs = RequestTable.from_arrays([1.0], [8], [2])
    svcs = [ServiceSpec(f"m{k}", reqs, (PoolSpec("colocated", 10, perf, "a100-80gb", 1),)) for k in range(4)]
    eng = ServingEngine(svcs, options=ServingOptions(horizon_s=10.0), topology=topo, broker=broker)
    first = [[int(c) for c in r.cards] for r in eng.replicas[::10]]
    assert first == [[0], [0], [8], [8]]
    assert [int(r.cards[0]) for r in eng.replicas[20:30]] == [8, 9, 10, 11, 12, 13, 14, 15, 0, 1]   # wraps round


def test_a_scale_up_takes_over_cards_still_being_checkpointed():
    """Two nodes, 4-card slots; at 100 s the target goes from 1 to 4 slots. Slot 2 evicts the
    8-card job on node 1, whose checkpoint write (8 x 14 GB over one node's 50 GB/s = 2.24 s)
    then holds slot 3's cards: slot 3 takes them over and serves when the write ends plus the
    warm-up, like slot 2 (before, it was refused until a later tick)."""
    topo = rail_optimized("dgx-a100", 2)
    sim = Simulation(layout_from_topology(topo), horizon_s=400.0)
    broker = sim.add(CardBroker(registry.make("pool", {"name": "peak_shaving", "params": {"lend_after_s": 0.0}})))
    jobs = JobTable(job_id=[0], submit_s=[1.0], num_cards=8, duration_s=[1000.0], preemptible=[True])
    sim.add_training(jobs, admission=registry.make("admission", "accept_all"),
                     ordering=registry.make("ordering", "fifo"), placement=registry.make("placement", "packed"),
                     preemption=registry.make("preemption", "none"))
    arr = np.arange(5.0, 390.0, 25.0)
    reqs = RequestTable.from_arrays(arr, np.full(arr.size, 64), np.full(arr.size, 4))
    svc = ServiceSpec("s", reqs, (PoolSpec("colocated", 4, dataclasses.replace(PERF, cards=4), "a100-80gb", 4),))
    eng = sim.add(ServingEngine([svc], autoscaling=Scripted(low=1, high=4, t_up=100.0, t_down=1e9),
                                options=ServingOptions(horizon_s=400.0), topology=topo, broker=broker))
    sim.run()
    save = 8 * 14e9 / 50e9
    assert [r.cards.tolist() for r in eng.replicas] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]
    assert broker.counts["evictions"] == 1 and broker.counts["refused_scale_ups"] == 0
    cs = sim.collect().pool["card_seconds"]
    assert cs["moving"] == pytest.approx(4 * 30.0 + 2 * 4 * (save + 30.0))
    assert cs["serving"] == pytest.approx(4 * 400.0 + 4 * (300.0 - 30.0) + 2 * 4 * (300.0 - save - 30.0))
    assert not broker.writing
    sim.ledger.check()
