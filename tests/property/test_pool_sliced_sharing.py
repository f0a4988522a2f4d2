"""Sliced cards under the dynamic pool policies: the card broker claims and lends the CARD.

* Closed form (one 8-card node, a pool of 6 replicas on 3 half cards A, B, C, one 1-card
  training job on card B from 1 s to 150 s, a scripted target of 1, then 3 at 100 s, then 4 at
  200 s): at 100 s the second slice of card A starts without a claim (its model's load only) and
  the next new card is C (B is training's); at 200 s the free slice of the held card C is filled
  before the now free card B is claimed. So B is never claimed: A serves all run, C is moving for
  the warm-up from 100 s and serves after, 3 model loads, 4 claims, no lend.
* Invariants (hypothesis): no card serving and training at once (ledger against the cluster
  state after every claim, lend and scheduling change); each sliced card's ledger state follows
  its slices (moving while claimed and none serves, serving once one does, never held with all
  its slices off for less than ``lend_after_s``); card-seconds add up to cards x T; min_replicas
  respected; every request ends once. With ``share_slots`` a whole-card service overlaps (the
  engine handles it; the config refuses shared slots with sliced pools, docs/pool.md).
* Closed form (hypothesis): a constant target of ``k`` slice replicas with no training holds
  exactly ``ceil(k / slices)`` cards after the warm-up, also after scaling down from more.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster_sim.engine.cluster.state import layout_from_topology
from cluster_sim.engine.pool.broker import CardBroker
from cluster_sim.engine.pool.ledger import IDLE, MOVING, SERVING
from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
from cluster_sim.engine.simulation import Simulation
from cluster_sim.perf.linear_serving import LinearServingPerf
from cluster_sim.perf.slices import SlicedReplicaPerf
from cluster_sim.policies import registry
from cluster_sim.policies.base import Policy
from cluster_sim.policies.serving.base import ScaleDecision
from cluster_sim.topology import rail_optimized
from cluster_sim.workload.generators import uniform_jobs
from cluster_sim.workload.jobs import JobTable
from cluster_sim.workload.requests import RequestTable

PERFS = {s: SlicedReplicaPerf("qwen2.5-0.5b", "a100-80gb", slices=s) for s in range(2, 5)}
WHOLE = LinearServingPerf(prefill_s=0.5, decode_s=0.2, kv_capacity_tokens=100_000)


class Steps(Policy):
    """Autoscaler test double: target ``targets[i]`` from ``times[i]`` on."""

    name, family = "steps", "autoscaling"

    def __init__(self, *, times: tuple[float, ...] = (0.0,), targets: tuple[int, ...] = (1,), interval_s: float = 100.0,
                 warmup_s: float = 30.0) -> None:
        self.times, self.targets, self.interval_s, self.warmup_s = times, targets, interval_s, warmup_s

    def scale(self, view):  # noqa: ANN001, ANN201
        k = max(i for i, t in enumerate(self.times) if view.now_s >= t)
        return ScaleDecision(self.targets[k], self.warmup_s)


def _sliced_service(n_req: int, replicas: int, slices: int, horizon: float, name: str = "s") -> ServiceSpec:
    arr = np.linspace(5.0, horizon - 50.0, n_req) if n_req else np.zeros(0)
    reqs = RequestTable.from_arrays(arr, np.full(arr.size, 64), np.full(arr.size, 4))
    return ServiceSpec(name, reqs, (PoolSpec("colocated", replicas, PERFS[slices], "a100-80gb", slices=slices),))


def _one_node(pool: str, horizon: float, job_cards: int, job_s: float) -> tuple[Any, Simulation, CardBroker]:
    """One DGX A100 node, a card broker under ``pool`` lending at once, and one preemptible
    ``job_cards``-card training job of ``job_s`` seconds submitted at 1 s (packed, FIFO)."""
    topo = rail_optimized("dgx-a100", 1)
    sim = Simulation(layout_from_topology(topo), horizon_s=horizon)
    broker = sim.add(CardBroker(registry.make("pool", {"name": pool, "params": {"lend_after_s": 0.0}})))
    jobs = JobTable(job_id=[0], submit_s=[1.0], num_cards=job_cards, duration_s=[job_s], preemptible=[True])
    sim.add_training(jobs, admission=registry.make("admission", "accept_all"),
                     ordering=registry.make("ordering", "fifo"), placement=registry.make("placement", "packed"),
                     preemption=registry.make("preemption", "none"))
    return topo, sim, broker


def test_held_cards_fill_before_a_new_card_is_claimed():
    horizon = 1000.0
    topo, sim, broker = _one_node("shared_pool", horizon, 1, 149.0)
    scaler = Steps(times=(0.0, 100.0, 200.0), targets=(1, 3, 4))
    eng = sim.add(ServingEngine([_sliced_service(20, 6, 2, horizon)], autoscaling=scaler,
                                options=ServingOptions(horizon_s=horizon), topology=topo, broker=broker))
    assert [int(r.cards[0]) for r in eng.replicas] == [0, 0, 1, 1, 2, 2]   # cards A, B, C
    sim.run()
    rec = sim.collect()
    assert rec.jobs["finish_s"].tolist() == [150.0]
    assert sim.state.alloc == {} and rec.jobs["evictions"].tolist() == [0]
    # replicas 0, 1 (card A), 4, 5 (card C) serve at the end; card B (1) was never claimed
    assert [r.active for r in eng.replicas] == [True, True, False, False, True, True]
    assert sim.ledger.state[:3].tolist() == [SERVING, IDLE, SERVING]
    c = broker.counts
    assert (c["claims"], c["model_loads"], c["lends"], c["refused_scale_ups"]) == (4, 3, 0, 0)
    cs = rec.pool["card_seconds"]
    assert cs["moving"] == pytest.approx(30.0)                       # card C, 100 s to 130 s
    assert cs["serving"] == pytest.approx(horizon + (horizon - 130.0))
    assert cs["training"] == pytest.approx(149.0)
    assert sum(cs.values()) == pytest.approx(8 * horizon)
    sim.ledger.check()


def test_a_slice_on_a_card_still_being_claimed_waits_for_the_checkpoint_write():
    """peak_shaving, one node, an 8-card preemptible job from 1 s; at 100 s two slices of card B
    start (the first evicts the job: its 7 x 14 GB checkpoint over 50 GB/s = 1.96 s, then the
    warm-up; the second waits for the same write, then its own warm-up): card B is moving for
    1.96 + 30 s, then serves; the job's other 6 cards go back to training when the write ends."""
    horizon = 400.0
    topo, sim, broker = _one_node("peak_shaving", horizon, 7, 5000.0)
    scaler = Steps(times=(0.0, 100.0), targets=(2, 4))
    eng = sim.add(ServingEngine([_sliced_service(10, 4, 2, horizon)], autoscaling=scaler,
                                options=ServingOptions(horizon_s=horizon), topology=topo, broker=broker))
    sim.run()
    save = 7 * 14e9 / 50e9
    c = broker.counts
    assert (c["evictions"], c["reclaimed_slots"], c["model_loads"], c["claims"]) == (1, 1, 2, 4)
    assert all(r.active for r in eng.replicas)
    cs = sim.collect().pool["card_seconds"]
    assert cs["moving"] == pytest.approx(save + 30.0 + 6 * save)    # card B, and the job's other 6 writing
    assert cs["serving"] == pytest.approx(horizon + (horizon - 100.0 - save - 30.0))
    assert sum(cs.values()) == pytest.approx(8 * horizon)
    sim.ledger.check()


def _audit(sim: Simulation, broker: CardBroker) -> None:
    led, st_ = sim.ledger, sim.state
    led.check(training=(cards for cards, _ in st_.alloc.values()))
    assert st_.reserved[(led.state == SERVING) | (led.state == MOVING)].all()
    for g, reps in broker.slices_on.items():
        card = int(reps[0].cards[0])
        want = {0: None, 1: MOVING, 2: SERVING}[broker.card[g]]
        if want is not None:
            assert led.state[card] == want, (g, broker.card[g], led.state[card])
        else:
            assert all(broker.slot[r.rid] == 0 for r in reps)
            assert not any(r.active or r.warming for r in reps)
        if any(r.active for r in reps):
            assert led.state[card] == SERVING


@settings(max_examples=20, deadline=30_000, suppress_health_check=[HealthCheck.too_slow])
@given(pool=st.sampled_from(["shared_pool", "peak_shaving"]), nodes=st.integers(1, 2), slices=st.integers(2, 4),
       groups=st.integers(1, 4), n_jobs=st.integers(0, 25), n_cards=st.sampled_from([1, 2, 4]),
       n_req=st.integers(30, 250), min_rep=st.integers(0, 2), headroom=st.integers(0, 2),
       lend_after=st.sampled_from([0.0, 60.0]), share=st.booleans(), seed=st.integers(0, 2**16))
def test_sliced_sharing_invariants(pool, nodes, slices, groups, n_jobs, n_cards, n_req, min_rep, headroom,
                                   lend_after, share, seed):
    topo = rail_optimized("dgx-a100", nodes)
    layout = layout_from_topology(topo)
    n = layout.n_cards
    replicas = groups * slices
    min_rep = min(min_rep, replicas)
    horizon = 2000.0
    sim = Simulation(layout, seed=seed, horizon_s=horizon)
    pol = registry.make("pool", {"name": pool, "params": {
        "min_replicas": min_rep, "headroom": headroom, "notice_s": 120.0, "lend_after_s": lend_after,
        "checkpoint_interval_s": 50.0, "share_slots": share}})
    broker = sim.add(CardBroker(pol))
    rng = np.random.default_rng(seed)
    if n_jobs:
        jobs = uniform_jobs(n_jobs, rate_per_s=0.05, mean_duration_s=300.0, rng=seed, num_cards=n_cards,
                            preemptible=bool(seed % 2))
        sim.add_training(jobs, admission=registry.make("admission", "accept_all"),
                         ordering=registry.make("ordering", "fifo"),
                         placement=registry.make("placement", "packed"),
                         preemption=registry.make("preemption", "none"))
    for obj, meths in ((sim.state, ("allocate", "release")), (broker, ("claim", "tick"))):
        for m in meths:
            f = getattr(obj, m)

            def wrapped(*a, _f=f, **kw):
                out = _f(*a, **kw)
                _audit(sim, broker)
                return out
            setattr(obj, m, wrapped)
    lent: list[tuple[float, int]] = []
    release = broker._release_card

    def checked_release(g, t):
        reps = broker.slices_on[g]
        assert not any(r.active or r.warming or r.phase or r.W or r.Wr or r.kv or r.inflight for r in reps)
        if broker.card[g] == 2:   # a card that served: every slice off for lend_after_s
            assert all(t - broker.off_since[r.rid] >= lend_after for r in reps if r.rid in broker.off_since)
        lent.append((t, g))
        release(g, t)
    broker._release_card = checked_release
    on_counts: list[int] = []
    tick = broker.tick

    def counting_tick(p, t):
        tick(p, t)
        if p.service == 0:
            on_counts.append(sum(r.active or r.warming for r in p.replicas))
    broker.tick = counting_tick
    arrival = np.sort(np.clip(rng.choice([300.0, 900.0, 1500.0], n_req) + rng.normal(0, 40.0, n_req), 0, 1900))
    reqs = RequestTable.from_arrays(arrival, rng.integers(1, 2000, n_req), rng.integers(1, 300, n_req))
    svcs = [ServiceSpec("s", reqs, (PoolSpec("colocated", replicas, PERFS[slices], "a100-80gb", slices=slices),))]
    if share:   # a whole-card service over the same cards
        svcs.append(ServiceSpec("w", RequestTable.from_arrays(arrival[::3], np.full(arrival[::3].size, 64),
                                                              np.full(arrival[::3].size, 8)),
                                (PoolSpec("colocated", 2, WHOLE, "a100-80gb", 1),)))
    scaler = registry.make("autoscaling", {"name": "queue_driven", "params": {
        "target_outstanding": 2.0, "interval_s": 20.0, "warmup_s": 5.0, "initial_replicas": 1,
        "min_replicas": 0}})
    eng = sim.add(ServingEngine(svcs, autoscaling=scaler, options=ServingOptions(horizon_s=horizon),
                                topology=topo, broker=broker))
    sim.run()
    _audit(sim, broker)
    rec = sim.collect()
    cs = rec.pool["card_seconds"]
    assert abs(sum(cs.values()) - n * horizon) <= 1e-9 * n * horizon
    assert on_counts and min(on_counts) >= min_rep   # the sliced pool (ticked first, it claims first)
    assert broker.counts["lends"] >= len(lent)
    rs = np.frombuffer(bytes(eng.rs.status), dtype=np.uint8)
    assert eng.nfinished == int((rs == 1).sum())
    req = eng.result.requests
    done = req["last_token_s"].notna()
    assert done.sum() == eng.nfinished and (req.loc[done, "last_token_s"] <= horizon + 1e-9).all()
    if n_jobs:
        j = rec.jobs
        fin = j["status"] == "finished"
        assert (np.isfinite(j["finish_s"]) == fin).all()
        if pool == "shared_pool":
            assert j["evictions"].sum() == 0


@settings(max_examples=15, deadline=20_000, suppress_health_check=[HealthCheck.too_slow])
@given(slices=st.integers(2, 4), k=st.integers(1, 12), extra=st.integers(0, 6),
       pool=st.sampled_from(["shared_pool", "peak_shaving"]))
def test_k_slice_replicas_hold_ceil_k_over_slices_cards(slices, k, extra, pool):
    topo = rail_optimized("dgx-a100", 2)
    horizon = 1000.0
    replicas = math.ceil((k + extra) / slices) * slices
    sim = Simulation(layout_from_topology(topo), horizon_s=horizon)
    broker = sim.add(CardBroker(registry.make("pool", {"name": pool, "params": {"lend_after_s": 0.0}})))
    # k + extra slices from 100 s, k from 400 s: after the scale-down and the lend, ceil(k / slices) cards
    scaler = Steps(times=(0.0, 100.0, 400.0), targets=(1, k + extra, k))
    eng = sim.add(ServingEngine([_sliced_service(20, replicas, slices, horizon)], autoscaling=scaler,
                                options=ServingOptions(horizon_s=horizon), topology=topo, broker=broker))
    sim.run()
    assert sum(r.active for r in eng.replicas) == k
    held = int((sim.ledger.state == SERVING).sum())
    assert held == math.ceil(k / slices)
    cs = sim.collect().pool["card_seconds"]
    peak = math.ceil((k + extra) / slices)
    # card 0 serves all run; the others claimed at 100 s are moving for the 30 s warm-up
    assert cs["moving"] == pytest.approx((peak - 1) * 30.0)
    assert cs["serving"] == pytest.approx(horizon + (peak - 1) * (300.0 - 30.0)
                                          + (held - 1) * (horizon - 400.0))
    assert sum(cs.values()) == pytest.approx(16 * horizon)
