"""Serving engine properties: the fast-forward engine equals an iteration-by-iteration loop, and
every run conserves requests and tokens with TTFT <= E2E.

The reference loop below (:func:`naive_serve`) advances one iteration at a time with plain
Python lists and shares no code with the engine. With a linear perf model whose coefficients
are powers of two and arrival times on a 1/1024 s grid, every time is exact in floating point,
so the two must agree bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
from cluster_sim.perf.inference import ReplicaPerf
from cluster_sim.perf.linear_serving import LinearServingPerf
from cluster_sim.policies.serving.routing import LeastLoaded, RoundRobin
from cluster_sim.workload.requests import RequestTable


def naive_serve(arrival, prompt, output, perf, *, replicas=1, max_seqs=8, max_tokens=10**9, upfront=True,
                chunked=False, chunk=512):
    """Iteration-by-iteration continuous batching (the semantics in serving_replica's docstring).

    Round-robin routing in arrival order. Returns per-request dicts of times and counters.
    """
    n = len(arrival)
    cap = perf.kv_capacity_tokens
    res = [dict(admit=-1.0, first=-1.0, last=-1.0, gen=0, npre=0, status="unfinished") for _ in range(n)]
    limit = cap if upfront else cap - 1
    order = sorted(range(n), key=lambda i: (arrival[i], i))
    ok = [i for i in order if prompt[i] >= 1 and output[i] >= 1 and prompt[i] + output[i] <= limit]
    for i in order:
        if i not in ok:
            res[i]["status"] = "rejected"
    for rep in range(replicas):
        mine = ok[rep::replicas]
        _naive_replica(mine, arrival, prompt, output, perf, res, cap, max_seqs, max_tokens, upfront, chunked, chunk)
    return res


def _naive_replica(mine, arrival, prompt, output, perf, res, cap, max_seqs, max_tokens, upfront, chunked, chunk):
    t = 0.0
    nxt = 0
    W: deque[int] = deque()
    running: list[int] = []
    cp: list[list[int]] = []  # [req, done, total]
    kv = 0

    def fits(r, seqs):
        g = res[r]["gen"]
        if upfront:
            need = prompt[r] + output[r]
            return need if kv + need <= cap else -1
        need = prompt[r] + g + 1
        return need if kv + need + seqs + 1 <= cap else -1

    def first_token(r):
        res[r]["gen"] += 1
        if res[r]["first"] < 0:
            res[r]["first"] = t

    def preempt():
        nonlocal kv
        while running and kv + len(running) > cap:
            r = running.pop()
            kv -= prompt[r] + res[r]["gen"]
            res[r]["npre"] += 1
            W.appendleft(r)

    def decode_tokens():
        nonlocal kv
        for r in list(running):
            res[r]["gen"] += 1
            if not upfront:
                kv += 1
            if res[r]["gen"] == output[r]:
                running.remove(r)
                kv -= prompt[r] + output[r]
                res[r]["last"] = t
                res[r]["status"] = "finished"

    while True:
        while nxt < len(mine) and arrival[mine[nxt]] <= t:
            W.append(mine[nxt])
            nxt += 1
        if not (W or running or cp):
            if nxt == len(mine):
                return
            t = max(t, arrival[mine[nxt]])
            continue
        if chunked:
            budget = chunk - len(running)
            alloc = []
            ptok = 0
            pairs = 0.0
            if budget > 0:
                for e in cp:
                    take = min(e[2] - e[1], budget - ptok)
                    if take <= 0:
                        break
                    alloc.append((e, take))
                    ptok += take
                    pairs += take * take / 2 + take * e[1]
                while W and ptok < budget and len(running) + len(cp) < max_seqs:
                    r = W[0]
                    need = fits(r, len(running) + len(cp))
                    if need < 0:
                        break
                    W.popleft()
                    kv += need
                    if res[r]["admit"] < 0:
                        res[r]["admit"] = t
                    e = [r, 0, prompt[r] + res[r]["gen"]]
                    cp.append(e)
                    take = min(e[2], budget - ptok)
                    alloc.append((e, take))
                    ptok += take
                    pairs += take * take / 2
            if ptok:
                if not upfront:
                    preempt()
                ctx = sum(prompt[r] + res[r]["gen"] for r in running)
                t += perf.mixed_iteration_time_s(ptok, len(running), ctx, pairs)
                decode_tokens()
                for e, take in alloc:
                    e[1] += take
                for e in [e for e, _ in alloc if e[1] >= e[2]]:
                    cp.remove(e)
                    r = e[0]
                    first_token(r)
                    if res[r]["gen"] >= output[r]:
                        kv -= prompt[r] + output[r]
                        res[r]["last"] = t
                        res[r]["status"] = "finished"
                    else:
                        running.append(r)
                continue
        else:
            batch = []
            tokens = 0
            seqs = len(running)
            while W and seqs < max_seqs:
                r = W[0]
                need = fits(r, seqs)
                if need < 0:
                    break
                new = prompt[r] + res[r]["gen"]
                if batch and tokens + new > max_tokens:
                    break
                W.popleft()
                kv += need
                tokens += new
                seqs += 1
                batch.append(r)
                if res[r]["admit"] < 0:
                    res[r]["admit"] = t
            if batch:
                t += perf.prefill_time_s(tokens, sum((prompt[r] + res[r]['gen']) ** 2 / 2 for r in batch))
                for r in batch:
                    first_token(r)
                    if res[r]["gen"] >= output[r]:
                        kv -= prompt[r] + output[r]
                        res[r]["last"] = t
                        res[r]["status"] = "finished"
                    else:
                        running.append(r)
                continue
        if running:
            if not upfront:
                preempt()
                if not running:
                    continue
            ctx = sum(prompt[r] + res[r]["gen"] for r in running)
            t += perf.decode_time_s(len(running), ctx)
            decode_tokens()


def _engine(arrival, prompt, output, perf, *, replicas=1, routing=None, **opt):
    reqs = RequestTable.from_arrays(arrival, prompt, output)
    svc = ServiceSpec("s", reqs, (PoolSpec("colocated", replicas, perf),))
    return ServingEngine([svc], routing=routing or RoundRobin(), options=ServingOptions(**opt)).run()


def _small_kv_perf(tokens):
    """llama2-13b on an A100-80GB with the workspace grown so that ``tokens`` KV tokens fit."""
    base = ReplicaPerf("llama2-13b", "a100-80gb")
    ws = base.accelerator.hbm_bytes - base.weight_bytes_per_card - tokens * base.kv_bytes_per_token
    return ReplicaPerf("llama2-13b", "a100-80gb", workspace_bytes=ws, min_kv_tokens=0)


DYADIC = st.sampled_from([0.0, 2.0**-10, 2.0**-8, 2.0**-6, 2.0**-4])


@st.composite
def workloads(draw):
    n = draw(st.integers(1, 14))
    ticks = draw(st.lists(st.integers(0, 4096), min_size=n, max_size=n))
    prompt = draw(st.lists(st.integers(1, 40), min_size=n, max_size=n))
    output = draw(st.lists(st.integers(1, 12), min_size=n, max_size=n))
    perf = LinearServingPerf(prefill_s=draw(DYADIC), prefill_s_per_token=draw(DYADIC) / 16,
                             decode_s=draw(DYADIC) + 2.0**-7, decode_s_per_seq=draw(DYADIC) / 4,
                             decode_s_per_context_token=draw(DYADIC) / 64,
                             kv_capacity_tokens=draw(st.integers(30, 200)))
    opts = dict(max_batch_seqs=draw(st.integers(1, 5)), max_batch_tokens=draw(st.integers(1, 120)),
                on_kv_full=draw(st.sampled_from(["wait", "preempt"])), chunked_prefill=draw(st.booleans()),
                chunk_tokens=draw(st.integers(1, 48)))
    return [x / 1024 for x in ticks], prompt, output, perf, opts, draw(st.integers(1, 2))


@settings(max_examples=250, deadline=10_000, suppress_health_check=[HealthCheck.too_slow])
@given(workloads())
def test_fast_forward_equals_iteration_loop(w):
    arrival, prompt, output, perf, opts, replicas = w
    run = _engine(arrival, prompt, output, perf, replicas=replicas, kv_watermark=0.0, **opts)
    ref = naive_serve(arrival, prompt, output, perf, replicas=replicas, max_seqs=opts["max_batch_seqs"],
                      max_tokens=opts["max_batch_tokens"], upfront=opts["on_kv_full"] == "wait",
                      chunked=opts["chunked_prefill"], chunk=opts["chunk_tokens"])
    df = run.requests
    for i, want in enumerate(ref):
        row = df.iloc[i]
        assert row.status == want["status"], (i, row.status, want)
        if want["status"] != "finished":
            continue
        got = (row.admit_s, row.first_token_s, row.last_token_s, int(row.preemptions))
        assert got == (want["admit"], want["first"], want["last"], want["npre"]), (i, got, want)


@settings(max_examples=40, deadline=10_000)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["wait", "preempt"]), st.booleans(), st.integers(1, 3))
def test_real_perf_close_to_iteration_loop(seed, on_kv_full, chunked, replicas):
    """With the roofline ReplicaPerf (non-dyadic times) the engines agree to rounding."""
    _assert_fast_forward_matches_loop(_small_kv_perf(6000), seed, on_kv_full, chunked, replicas)


def _assert_fast_forward_matches_loop(perf, seed, on_kv_full, chunked, replicas=1):
    """40 random requests through the engine and through the naive iteration loop: same statuses,
    first and last token times to 1e-9."""
    rng = np.random.default_rng(seed)
    n = 40
    arrival = np.sort(rng.uniform(0, 2.0, n)).tolist()
    prompt = rng.integers(1, 3000, n).tolist()
    output = rng.integers(1, 300, n).tolist()
    opts = dict(max_batch_seqs=8, max_batch_tokens=4096, on_kv_full=on_kv_full, chunked_prefill=chunked,
                chunk_tokens=512)
    run = _engine(arrival, prompt, output, perf, replicas=replicas, kv_watermark=0.0, **opts)
    ref = naive_serve(arrival, prompt, output, perf, replicas=replicas, max_seqs=8, max_tokens=4096,
                      upfront=on_kv_full == "wait", chunked=chunked, chunk=512)
    df = run.requests
    for i, want in enumerate(ref):
        row = df.iloc[i]
        assert row.status == want["status"]
        if want["status"] == "finished":
            assert row.first_token_s == pytest.approx(want["first"], rel=1e-9, abs=1e-9)
            assert row.last_token_s == pytest.approx(want["last"], rel=1e-9, abs=1e-9)


@settings(max_examples=20, deadline=10_000)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["wait", "preempt"]), st.booleans())
def test_fast_forward_with_overhead_and_small_transfers_equals_loop(seed, on_kv_full, chunked):
    """The catalog's per-iteration overhead and HBM n_1/2 enter the closed-form stretch sums too."""
    acc = dataclasses.replace(_small_kv_perf(6000).accelerator, iteration_overhead_ms=6.0,
                              hbm_half_bandwidth_mbyte=8.0)
    base = ReplicaPerf("llama2-13b", acc)
    ws = acc.hbm_bytes - base.weight_bytes_per_card - 6000 * base.kv_bytes_per_token
    perf = ReplicaPerf("llama2-13b", acc, workspace_bytes=ws, min_kv_tokens=0)
    assert perf.overhead_s == pytest.approx(6e-3)
    _assert_fast_forward_matches_loop(perf, seed, on_kv_full, chunked)


@settings(max_examples=60, deadline=10_000)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["wait", "preempt"]), st.booleans(),
       st.sampled_from([None, 1.5, 4.0]), st.booleans())
def test_requests_end_once_and_tokens_are_conserved(seed, on_kv_full, chunked, horizon, least_loaded):
    rng = np.random.default_rng(seed)
    n = 60
    arrival = np.sort(rng.uniform(0, 3.0, n))
    prompt = rng.integers(0, 900, n)
    output = rng.integers(0, 120, n)
    perf = LinearServingPerf(prefill_s=2e-3, prefill_s_per_token=3e-5, decode_s=8e-3, decode_s_per_seq=1e-4,
                             decode_s_per_context_token=1e-7, kv_capacity_tokens=int(rng.integers(300, 3000)))
    run = _engine(arrival, prompt, output, perf, replicas=2, routing=LeastLoaded() if least_loaded else None,
                  on_kv_full=on_kv_full, chunked_prefill=chunked, chunk_tokens=128, max_batch_seqs=6,
                  horizon_s=horizon)
    df = run.requests
    assert len(df) == n and df.request_id.tolist() == list(range(n))
    assert set(df.status.unique()) <= {"finished", "rejected", "unfinished"}
    rej = df[df.status == "rejected"]
    assert (rej.reason != "").all() and (df[df.status != "rejected"].reason == "").all()
    fin = df[df.status == "finished"]
    assert (fin.generated_tokens == fin.output_tokens).all()
    assert (df.generated_tokens <= df.output_tokens).all() and (df.generated_tokens >= 0).all()
    assert (fin.ttft_s <= fin.e2e_s + 1e-12).all()
    assert (fin.queueing_s >= 0).all() and (fin.admit_s <= fin.first_token_s).all()
    assert (fin.first_token_s >= fin.arrival_s).all()
    if horizon is None:
        assert (df.status != "unfinished").all()
    else:
        assert (fin.last_token_s <= horizon + 1e-9).all()
    # timeline levels are consistent: never above capacity, batch within max_batch_seqs
    tl = run.timeline
    assert (tl.kv_occupancy <= 1.0 + 1e-9).all() and (tl.batch_size <= 6 + 1e-9).all()
    assert (tl.busy_fraction <= 1.0 + 1e-9).all()
    end = horizon if horizon is not None else run.end_s
    assert math.isclose(tl.groupby("replica").width_s.sum().max(), end, rel_tol=1e-6, abs_tol=1e-9)


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("replicas", [1, 2])
def test_iteration_loop_equivalence_with_preemption(chunked, replicas):
    """A pinned case that does preempt (the random search above covers it only by chance)."""
    rng = np.random.default_rng(3)
    n = 30
    arrival = (np.sort(rng.integers(0, 2048, n)) / 1024).tolist()
    prompt, output = rng.integers(10, 60, n).tolist(), rng.integers(20, 60, n).tolist()
    perf = LinearServingPerf(prefill_s=2.0**-6, prefill_s_per_token=2.0**-12, decode_s=2.0**-7,
                             decode_s_per_seq=2.0**-10, decode_s_per_context_token=2.0**-16, kv_capacity_tokens=200)
    run = _engine(arrival, prompt, output, perf, replicas=replicas, kv_watermark=0.0, on_kv_full="preempt",
                  chunked_prefill=chunked, chunk_tokens=32, max_batch_seqs=6)
    ref = naive_serve(arrival, prompt, output, perf, replicas=replicas, max_seqs=6, upfront=False,
                      chunked=chunked, chunk=32)
    df = run.requests
    assert df.preemptions.sum() > 0 and df.preemptions.tolist() == [r["npre"] for r in ref]
    assert df.first_token_s.tolist() == [r["first"] for r in ref]
    assert df.last_token_s.tolist() == [r["last"] for r in ref]
