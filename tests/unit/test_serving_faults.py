"""Serving replica failures (issue #17 item 5): hand-computed re-queue and drop, conservation,
drop = in flight at the failure, Poisson failure counts, downtime = model load, routing skips a
down replica, PD hand-offs, determinism, streams and failures-off identity, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cluster_sim.cli import main
from cluster_sim.config import load_config
from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.faults import ReplicaFaults
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
from cluster_sim.errors import ClusterSimError, ConfigError
from cluster_sim.experiment.drivers import run_serving
from cluster_sim.metrics.serving import slo_met, summarize
from cluster_sim.metrics.serving_faults import fault_events, fault_series
from cluster_sim.perf.linear_serving import LinearServingPerf
from cluster_sim.rng import Streams
from cluster_sim.workload.lengths import synthetic_requests
from cluster_sim.workload.requests import RequestTable

PERF = LinearServingPerf(prefill_s=0.25, decode_s=0.125, kv_capacity_tokens=100_000)
FAST = LinearServingPerf(prefill_s=0.01, prefill_s_per_token=1e-5, decode_s=0.01, kv_capacity_tokens=200_000)
WORKLOAD = "workloads/serving_replica_failures.yaml"


class Draws:
    """A stand-in random stream: ``exponential`` returns the given times in order, then inf-like."""

    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def exponential(self, scale: float) -> float:
        return self.times.pop(0) if self.times else 1e12


def colocated(reqs, n=2, perf=PERF, faults=None, horizon=None, **kw):
    svc = ServiceSpec("s", reqs, (PoolSpec("colocated", n, perf),), slo_ttft_s=1.0)
    return ServingEngine([svc], options=ServingOptions(horizon_s=horizon), faults=faults, **kw).run()


def pd(reqs, faults=None, horizon=None, n_pre=2, n_dec=3):
    pools = (PoolSpec("prefill", n_pre, FAST, "h100-sxm"), PoolSpec("decode", n_dec, FAST, "h100-sxm"))
    svc = ServiceSpec("s", reqs, pools, slo_ttft_s=1.0)
    return ServingEngine([svc], options=ServingOptions(horizon_s=horizon), faults=faults).run()


def load(n: int, rate: float = 20.0, seed: int = 1) -> RequestTable:
    return synthetic_requests(arrivals={"kind": "poisson", "rate_per_s": rate}, lengths="fixed:200:50", n=n, rng=seed)


# ---- hand-computed ----------------------------------------------------------------------------
def test_requeue_one_request_hand_computed():
    # replica 0 fails at t = 1.0 (its first draw; replica 1's is far away): the request prefilled
    # at 0.25 (token 1) and decoded 6 iterations of 0.125 s by then (tokens 2-7); re-queued on
    # replica 1 it recomputes prompt + 7 tokens in one prefill (0.25 s: token 8) and decodes 2
    # more: last token at 1.25 + 2 x 0.125 = 1.5. Replica 0 is down for the model load, 5 s.
    f = ReplicaFaults(replica_mtbf_s=100.0, model_load_s=5.0, rng=Draws(1.0, 1e9, 1e9))
    run = colocated(RequestTable.from_arrays([0.0], [100], [10]), faults=f, horizon=10.0)
    r = run.requests.iloc[0]
    assert (r.status, r.replica, r.first_token_s, r.last_token_s) == ("finished", 1, 0.25, 1.5)
    info = run.info["faults"]
    assert info["failures"] == [1] and info["requeued"] == [1] and info["dropped"] == [0]
    assert info["down_s"] == [5.0]
    assert [(t, rid, kind) for t, rid, kind, _ in info["events"]] == [(1.0, 0, "fail"), (6.0, 0, "recover")]
    s = summarize(run)
    assert s["inference.s.faults.replica_failures"] == 1 and s["inference.s.faults.replica_down_s"] == 5.0
    assert s["inference.s.faults.slo_attainment.in_flight"] == 1.0   # TTFT 0.25 s stayed within 1 s


def test_drop_one_request_hand_computed():
    f = ReplicaFaults(replica_mtbf_s=100.0, model_load_s=5.0, on_failure="drop", rng=Draws(1.0, 1e9, 1e9))
    run = colocated(RequestTable.from_arrays([0.0], [100], [10]), faults=f, horizon=10.0)
    r = run.requests.iloc[0]
    assert r.status == "dropped" and math.isnan(r.last_token_s)
    s = summarize(run)
    assert s["inference.slo_attainment"] == 0.0 and s["inference.faults.requests_dropped"] == 1
    assert s["inference.unfinished"] == 0 and s["inference.finished"] == 0


# ---- conservation -----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["colocated", "pd"])
def test_requeue_serves_every_request_exactly_once(mode):
    reqs = load(3000)
    f = ReplicaFaults(replica_mtbf_s=20.0, model_load_s=3.0, rng=Streams(5)["failures.serving"])
    run = colocated(reqs, n=4, perf=FAST, faults=f) if mode == "colocated" else pd(reqs, faults=f)
    req = run.requests
    info = run.info["faults"]
    assert sum(info["failures"]) >= 10 and sum(info["requeued"]) > 0
    assert (req["status"] == "finished").all()                       # drained: every request ends served
    assert (req["generated_tokens"] == req["output_tokens"]).all()   # each exactly its tokens, once
    assert (req["first_token_s"] <= req["last_token_s"]).all()


@pytest.mark.parametrize("mode", ["colocated", "pd"])
def test_arrived_is_served_plus_dropped_plus_unfinished(mode):
    reqs = load(3000)
    f = ReplicaFaults(replica_mtbf_s=20.0, model_load_s=3.0, on_failure="drop", rng=Streams(5)["failures.serving"])
    run = colocated(reqs, n=4, perf=FAST, faults=f, horizon=120.0) if mode == "colocated" else \
        pd(reqs, faults=f, horizon=120.0)
    s = summarize(run)
    assert s["inference.faults.requests_dropped"] > 0
    assert s["inference.requests"] == (s["inference.finished"] + s["inference.faults.requests_dropped"]
                                       + s["inference.unfinished"] + s["inference.rejected"])
    # dropped = the in-flight counts of the failure events
    assert s["inference.faults.requests_dropped"] == sum(n for _, _, k, n in run.info["faults"]["events"] if k == "fail")


def test_drop_equals_in_flight_at_the_failures():
    """Every request a failed replica had (routed there, arrived, not finished by the failure)
    is dropped, and only those: computed from the request table, not from the engine's counts."""
    reqs = load(3000)
    f = ReplicaFaults(replica_mtbf_s=15.0, model_load_s=2.0, on_failure="drop", rng=Streams(2)["failures.serving"])
    run = colocated(reqs, n=4, perf=FAST, faults=f)
    req = run.requests
    fails = [(t, rid) for t, rid, kind, _ in run.info["faults"]["events"] if kind == "fail"]
    assert len(fails) >= 10
    expect = set()
    for t, rid in fails:
        on = req[(req["replica"] == rid) & (req["arrival_s"] <= t)]
        done_before = on["last_token_s"] <= t
        expect |= set(on.loc[~done_before, "request_id"].tolist())
    assert set(req.loc[req["status"] == "dropped", "request_id"].tolist()) == expect


# ---- the failure process ----------------------------------------------------------------------
def test_failure_count_is_poisson_with_rate_times_up_time():
    """n replicas, MTBF M, model load L, horizon T: failures are an alternating renewal process
    per replica, E[N] ~= n T / (M + L), and nearly Poisson (variance ~ mean) for L << M."""
    n, M, L, T, seeds = 4, 100.0, 1.0, 1000.0, 200
    counts = []
    for seed in range(seeds):
        f = ReplicaFaults(replica_mtbf_s=M, model_load_s=L, rng=Streams(seed)["failures.serving"])
        run = colocated(RequestTable.from_arrays([0.0], [10], [2]), n=n, faults=f, horizon=T)
        counts.append(sum(run.info["faults"]["failures"]))
    c = np.asarray(counts, dtype=float)
    mean = n * T / (M + L)
    assert abs(c.mean() - mean) < 4 * math.sqrt(mean / seeds)    # 4 sigma of the mean
    assert 0.75 < c.var(ddof=1) / mean < 1.3                      # Poisson dispersion


def test_rate_from_cards_and_nodes():
    f = ReplicaFaults(card_mtbf_s=1000.0, node_mtbf_s=4000.0)
    assert f.rate(4, 1) == pytest.approx(4 / 1000 + 1 / 4000)
    assert ReplicaFaults(replica_mtbf_s=50.0, card_mtbf_s=1.0).rate(8, 2) == 1 / 50   # explicit wins
    # auto model load: weight bytes per card / bandwidth + start-up
    class P:
        weight_bytes_per_card = 12.5e9
    assert ReplicaFaults(replica_mtbf_s=1.0, load_gbyte_per_s_per_card=6.25, startup_s=30.0).load_s(P()) == 32.0


def test_downtime_is_the_model_load_and_routing_skips_a_down_replica():
    reqs = load(4000, rate=30.0)
    L = 2.5
    f = ReplicaFaults(replica_mtbf_s=15.0, model_load_s=L, rng=Streams(3)["failures.serving"])
    run = colocated(reqs, n=4, perf=FAST, faults=f, horizon=130.0)
    info = run.info["faults"]
    ev = fault_events(run)
    fails = ev[ev["kind"] == "fail"]
    assert len(fails) >= 10
    assert info["down_s"][0] == pytest.approx(sum(min(L, run.end_s - t) for t in fails["time_s"]))
    rec = ev[ev["kind"] == "recover"]
    for t, rid in zip(fails["time_s"], fails["replica"], strict=True):
        if t + L <= run.end_s:   # each failure's replica is back exactly one model load later
            assert ((rec["replica"] == rid) & (rec["time_s"] == t + L)).sum() == 1
    hit = set(info["hit"].tolist())
    req = run.requests
    for t, rid in zip(fails["time_s"], fails["replica"], strict=True):
        came = req[(req["arrival_s"] > t) & (req["arrival_s"] < t + L) & (req["replica"] == rid)]
        assert set(came["request_id"].tolist()) <= hit   # only a later failure elsewhere sends one there


def test_all_decode_replicas_down_waits_for_one():
    """PD with one decode replica: while it is down, prefilled requests wait and are handed off
    when it is back; none is lost."""
    reqs = load(400, rate=10.0)
    f = ReplicaFaults(replica_mtbf_s=1e6, model_load_s=4.0, rng=Draws(1e9, 5.0, 1e9, 1e9))
    run = pd(reqs, faults=f, n_pre=1, n_dec=1)
    assert run.info["faults"]["failures"] == [1]
    req = run.requests
    assert (req["status"] == "finished").all()
    waited = req[(req["first_token_s"] > 5.0) & (req["first_token_s"] < 9.0)]
    assert len(waited) > 0 and (waited["kv_ready_s"] >= 9.0).all()   # KV moved after the recovery


# ---- determinism, streams, failures off --------------------------------------------------------
def _summary(cfg):
    s = run_serving(cfg).summary
    return {k: v for k, v in s.items() if not k.startswith("sim.") or k in ("sim.events", "sim.end_s")}


SMALL = ["duration=90s", "inference.services.0.arrivals.rate=120", "failures.serving.replica_mtbf=5min"]


def _cfg(extra=()):
    return load_config(WORKLOAD, dict(x.split("=", 1) for x in [*SMALL, *extra]))


def test_same_seed_same_summary():
    a, b = _summary(_cfg()), _summary(_cfg())
    assert a == b and a["inference.faults.replica_failures"] >= 1


def test_failures_leave_arrivals_and_lengths_unchanged():
    on = run_serving(_cfg()).requests
    off_cfg = load_config(_cfg().model_dump(exclude_unset=True) | {"failures": None})
    off = run_serving(off_cfg).requests
    assert run_serving(_cfg()).summary["inference.faults.replica_failures"] >= 1
    for c in ("arrival_s", "prompt_tokens", "output_tokens"):
        np.testing.assert_array_equal(on[c].to_numpy(), off[c].to_numpy())


def test_training_failures_alone_leave_serving_unchanged():
    """A ``failures`` section without ``serving`` (card/node MTBF for training) fails no replica:
    the summary is the one without any failures section."""
    base = _cfg().model_dump(exclude_unset=True)
    off = load_config(base | {"failures": None})
    train_only = load_config(base | {"failures": {"card_mtbf": "1000h"}})
    assert _summary(train_only) == _summary(off)
    assert not any("faults" in k for k in _summary(off))


def test_fault_series_adds_up():
    run = run_serving(_cfg()).run
    series = fault_series(run)
    met = slo_met(run.requests, run.services)
    assert series["arrived"].sum() == len(run.requests) and series["met"].sum() == met.sum()
    assert series["failures"].sum() == sum(run.info["faults"]["failures"])
    w = series["width_s"].to_numpy()
    assert series["replicas_down"].to_numpy() @ w == pytest.approx(sum(run.info["faults"]["down_s"]))
    assert series["goodput_rps"].to_numpy() @ w == pytest.approx(met.sum())   # met requests, by end time


# ---- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("setting, message", [
    ("failures.serving.replica_mtbf=0", "failures.serving.replica_mtbf: Input should be greater than 0"),
    ("failures.serving.replica_mtbf=-1h", "failures.serving.replica_mtbf: duration '-1h' is negative"),
    ("failures.serving.model_load=-5s", "failures.serving.model_load: a duration >= 0 or auto"),
    ("failures.serving.on_failure=retry", "failures.serving.on_failure: Input should be 'requeue' or 'drop'"),
])
def test_bad_input_exits_2_with_the_field(setting, message, capsys):
    assert main(["run", WORKLOAD, "--set", setting]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_engine_input_checks():
    with pytest.raises(ConfigError, match="failures.serving.replica_mtbf"):
        ReplicaFaults(replica_mtbf_s=0.0)
    with pytest.raises(ConfigError, match="failures.serving.model_load"):
        ReplicaFaults(replica_mtbf_s=1.0, model_load_s=-1.0)
    with pytest.raises(ConfigError, match="failures.serving.on_failure"):
        ReplicaFaults(replica_mtbf_s=1.0, on_failure="retry")
    with pytest.raises(ConfigError, match="give replica_mtbf"):
        load_config(WORKLOAD, {"failures.serving.replica_mtbf": None})


def test_drain_run_where_replicas_fail_faster_than_they_serve_is_an_error_not_a_hang():
    # a prefill takes 10 s, replicas fail every ~0.5 s: no prompt is ever prefilled (re-queued
    # requests keep the tokens they streamed, so only a failure rate beyond one prefill stalls)
    f = ReplicaFaults(replica_mtbf_s=0.5, model_load_s=0.01, rng=Streams(0)["failures.serving"])
    slow = LinearServingPerf(prefill_s=10.0, decode_s=0.125, kv_capacity_tokens=100_000)
    with pytest.raises(ClusterSimError, match="replicas fail faster than they serve"):
        colocated(RequestTable.from_arrays([0.0, 0.0], [100, 100], [100, 100]), perf=slow, faults=f)
