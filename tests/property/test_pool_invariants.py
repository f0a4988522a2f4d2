"""One simulation, one card ledger: training jobs and serving replicas on a static partition.

Invariants, over random small clusters, partitions, job streams (whole and fractional cards,
failures on or off) and request streams:

* no card is serving and training at once: every card a training job holds is ``training`` in
  the ledger and outside the inference partition, every replica card is ``serving`` and inside
  it, checked after EVERY change of the cluster state (allocate, release, failure, repair) and after
  the replicas are placed (the ledger's counts are recomputed there too);
* card-hours add up: the card-seconds of the states sum to cards x run time (1e-9 relative),
  and the serving card-seconds are exactly replica cards x run time;
* every job and every request ends once.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster_sim.engine.cluster.failures import FailureModel
from cluster_sim.engine.cluster.state import layout_from_topology
from cluster_sim.engine.pool.ledger import SERVING, TRAINING
from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
from cluster_sim.engine.simulation import Simulation
from cluster_sim.perf.linear_serving import LinearServingPerf
from cluster_sim.policies import registry
from cluster_sim.policies.pool.partition import PoolView
from cluster_sim.topology import rail_optimized
from cluster_sim.workload.generators import uniform_jobs
from cluster_sim.workload.requests import RequestTable

PERF = LinearServingPerf(prefill_s=0.25, decode_s=0.125, kv_capacity_tokens=100_000)


def _audit(sim: Simulation, partition: np.ndarray, seen: list[int]) -> None:
    """Cross-check the ledger against the cluster state and the partition (O(cards))."""
    led, st = sim.ledger, sim.state
    led.check(training=(cards for cards, _ in st.alloc.values()))
    state = led.state
    held = state == TRAINING
    inside = np.zeros(led.n_cards, bool)
    inside[partition] = True
    assert not (held & inside).any(), "a training job holds a card of the inference partition"
    assert not ((state == SERVING) & ~inside).any(), "a serving card outside the inference partition"
    assert ((state == SERVING) & (state == TRAINING)).sum() == 0
    seen[0] += 1


@settings(max_examples=25, deadline=20_000, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=st.integers(2, 4), share=st.sampled_from([0.25, 0.5]), n_jobs=st.integers(1, 40),
       n_cards=st.sampled_from([1, 2, 4, 8]), milli=st.sampled_from([1000, 1000, 500]),
       replicas=st.integers(1, 4), tp=st.sampled_from([1, 2]), n_req=st.integers(0, 30),
       failures=st.booleans(), horizon=st.sampled_from([None, 600.0]), seed=st.integers(0, 2**16))
def test_one_ledger_invariants(nodes, share, n_jobs, n_cards, milli, replicas, tp, n_req, failures,
                               horizon, seed):
    topo = rail_optimized("dgx-a100", nodes)
    layout = layout_from_topology(topo)
    n = layout.n_cards
    need = replicas * tp
    pol = registry.make("pool", {"name": "static_partition", "params": {"inference_fraction": share}})
    plan = pol.partition(PoolView(layout.card_types, layout.card_type, layout.card_domain))
    partition = plan.inference_cards
    if need > partition.size:
        replicas = max(1, partition.size // tp)
    rng = np.random.default_rng(seed)
    jobs = uniform_jobs(n_jobs, rate_per_s=0.05, mean_duration_s=200.0, rng=seed,
                        num_cards=min(n_cards, n - partition.size), card_milli=milli if n_cards == 1 else 1000)
    sim = Simulation(layout, seed=seed, horizon_s=horizon, reserved_cards=partition)
    seen = [0]
    st_ = sim.state
    def audited(f):
        def wrapped(*a, **kw):
            out = f(*a, **kw)
            _audit(sim, partition, seen)
            return out
        return wrapped

    for meth in ("allocate", "release", "set_down", "set_up"):  # audit after every state change
        setattr(st_, meth, audited(getattr(st_, meth)))
    fm = FailureModel(card_mtbf_s=2000.0 * n, restart_delay_s=5.0, checkpoint_cost_s=1.0) if failures else None
    sim.add_training(jobs, admission=registry.make("admission", "accept_all"),
                     ordering=registry.make("ordering", "fifo"), placement=registry.make("placement", "packed"),
                     preemption=registry.make("preemption", "none"), failures=fm)
    arrival = np.sort(rng.uniform(0, 300, n_req))
    reqs = RequestTable.from_arrays(arrival, rng.integers(1, 500, n_req), rng.integers(1, 20, n_req))
    perf = dataclasses.replace(PERF, cards=tp)
    svc = ServiceSpec("s", reqs, (PoolSpec("colocated", replicas, perf, "a100-80gb", tp),),
                      slo_ttft_s=1.0, slo_tpot_s=1.0)
    eng = sim.add(ServingEngine([svc], options=ServingOptions(horizon_s=horizon), topology=topo,
                                cards=partition))
    _audit(sim, partition, seen)
    assert int((sim.ledger.state == SERVING).sum()) == replicas * tp
    sim.run()
    _audit(sim, partition, seen)
    rec = sim.collect()
    t_end = rec.t_end_s
    cs = rec.pool["card_seconds"]
    assert abs(sum(cs.values()) - n * t_end) <= 1e-9 * max(n * t_end, 1.0)
    assert cs["serving"] == pytest.approx(replicas * tp * t_end, rel=1e-12)
    assert seen[0] >= 2 + 2 * int((rec.jobs["status"] == "finished").sum())  # audited at each start and end
    # every job ends once: finished exactly when it has a finish time; without a horizon all end
    status = rec.jobs["status"]
    fin = status == "finished"
    assert (np.isfinite(rec.jobs["finish_s"]) == fin).all()
    if horizon is None and not failures:
        assert set(status.tolist()) <= {"finished", "rejected"}
    # every request ends once: the finish counter equals the requests marked finished (a second
    # finish of one request would make it larger), and without a horizon each finished or rejected
    rs = np.frombuffer(bytes(eng.rs.status), dtype=np.uint8)
    assert eng.nfinished == int((rs == 1).sum())
    frame = eng.result.requests
    assert len(frame) == n_req and frame["request_id"].is_unique if "request_id" in frame else len(frame) == n_req
    if horizon is None:
        assert set(rs.tolist()) <= {1, 2}
