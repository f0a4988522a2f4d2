"""Collect a serving run into DataFrames: requests, time-weighted timeline, replicas, services.

``requests`` (one row per request; times in seconds, NaN when not reached):
``request_id, service, arrival_s, prompt_tokens`` (served: after any truncation),
``output_tokens``, ``truncated_tokens`` (prompt tokens cut by ``overlong: truncate``), ``status``
(``finished`` / ``rejected`` / ``unfinished`` at the horizon / ``dropped`` by a replica failure
under ``on_failure: drop``), ``reason`` (rejections:
:mod:`~cluster_sim.engine.serving.admission`), ``replica`` (the
colocated or prefill replica), ``decode_replica``, ``admit_s`` (first scheduled),
``first_token_s``, ``last_token_s``, ``kv_ready_s`` (PD: KV arrived at the decode replica),
``ttft_s = first_token - arrival``, ``tpot_s = (last - first) / (output - 1)`` (NaN for one
output token), ``e2e_s = last - arrival``, ``queueing_s = admit - arrival``,
``generated_tokens``, ``preemptions``, ``cached_tokens`` (prompt tokens served by the prefix
cache, the most over the request's admissions).

``timeline`` (time-weighted means per replica per bin ``[time_s, time_s + width_s)``):
``batch_size`` (requests prefilling or decoding), ``queue_len``, ``kv_used_tokens``,
``kv_occupancy`` (used / capacity), ``busy_fraction``.

``replicas``: placement, busy seconds by phase, allocated seconds, IT energy (J) from the
perf model's phase powers, cost (USD) from the catalog card-hour price (NaN for a card without
one; the run's notes say so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .admission import REASONS
from .replica import PHASE_DECODE, PHASE_MIXED, PHASE_PREFILL

__all__ = ["REASONS", "STATUSES", "ServingRun", "build_run"]

STATUSES = ("unfinished", "finished", "rejected", "dropped")


@dataclass(frozen=True)
class ServingRun:
    """Raw outcome of a serving run (summaries: :mod:`cluster_sim.metrics.serving`)."""

    requests: pd.DataFrame
    timeline: pd.DataFrame
    replicas: pd.DataFrame
    services: pd.DataFrame
    end_s: float
    events: int
    wall_s: float
    pue: float
    info: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _close_replicas(eng: Any, end: float) -> None:
    """Partial iterations at ``end``: busy time, and tokens of a decode stretch in progress."""
    rs = eng.rs
    for rep in eng.replicas:
        if rep.phase and rep.t_end > end:
            dt = max(0.0, end - rep.t0)
            if rep.phase == PHASE_DECODE:
                rep.busy_decode_s += dt
                k = rep.perf.decode_iterations_within(rep.nrun, rep.ctx, dt) if rep.nrun else 0
                rep.D += min(k, rep.k_plan)
            elif rep.phase == PHASE_PREFILL:
                rep.busy_prefill_s += dt
            elif rep.phase == PHASE_MIXED:
                rep.busy_mixed_s += dt
        for r in rep.running.values():
            rs.gen[r] = rs.gen[r] + rep.D - rs.join_d[r]
        rep.note(end)
        if end - rep.bin_start > 1e-12:
            eng.tl_rows.append((rep.rid, rep.bin_start, end, rep.acc_b, rep.acc_q, rep.acc_kv, rep.acc_busy))
            rep.acc_b = rep.acc_q = rep.acc_kv = rep.acc_busy = 0.0
            rep.bin_start = end


def _requests_frame(eng: Any) -> pd.DataFrame:
    rs = eng.rs
    n = len(rs.prompt)
    names = [s.name for s in eng.services]
    arrival = eng.arrival
    prompt, output = eng.prompt_np, eng.output_np

    def times(x: list[float]) -> np.ndarray:
        a = np.asarray(x, dtype=np.float64)
        a[a < 0] = np.nan
        return a

    t_admit, t_first, t_last, t_kv = times(rs.t_admit), times(rs.t_first), times(rs.t_last), times(rs.t_kv)
    status = np.frombuffer(bytes(rs.status), dtype=np.uint8) if n else np.zeros(0, np.uint8)
    done = status == 1
    e2e = np.where(done, t_last - arrival, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(done & (output > 1), (t_last - t_first) / (output - 1), np.nan)
    gen = np.asarray(rs.gen, dtype=np.int64)
    gen[done] = output[done]
    return pd.DataFrame({
        "request_id": np.arange(n, dtype=np.int64),
        "service": pd.Categorical.from_codes(eng.svc_of, categories=pd.Index(names)) if n else pd.Categorical([], names),
        "arrival_s": arrival,
        "prompt_tokens": prompt,
        "output_tokens": output,
        "truncated_tokens": eng.truncated,
        "status": pd.Categorical.from_codes(status.astype(np.int8), categories=pd.Index(STATUSES)),
        "reason": pd.Categorical.from_codes(eng.reason, categories=pd.Index(REASONS)),
        "replica": np.asarray(rs.rep, dtype=np.int64),
        "decode_replica": np.asarray(rs.drep, dtype=np.int64),
        "admit_s": t_admit,
        "first_token_s": t_first,
        "last_token_s": np.where(done, t_last, np.nan),
        "kv_ready_s": t_kv,
        "ttft_s": t_first - arrival,
        "tpot_s": tpot,
        "e2e_s": e2e,
        "queueing_s": t_admit - arrival,
        "generated_tokens": gen,
        "preemptions": np.asarray(rs.npre, dtype=np.int64),
        "cached_tokens": np.asarray(rs.cached, dtype=np.int64),
    })


def _timeline_frame(eng: Any) -> pd.DataFrame:
    rows = eng.tl_rows
    if not rows:
        return pd.DataFrame(columns=["time_s", "width_s", "service", "pool", "replica", "batch_size", "queue_len",
                                     "kv_used_tokens", "kv_occupancy", "busy_fraction"])
    a = np.array(rows, dtype=np.float64)
    rid = a[:, 0].astype(np.int64)
    start = a[:, 1]
    width = np.maximum(a[:, 2] - start, 1e-300)
    reps = eng.replicas
    svc = np.array([reps[i].pool.service for i in range(len(reps))])[rid]
    pool = pd.Categorical([reps[i].pool.kind for i in range(len(reps))], categories=["colocated", "prefill", "decode"])
    cap = np.array([reps[i].cap for i in range(len(reps))], dtype=np.float64)[rid]
    kv = a[:, 5] / width
    df = pd.DataFrame({
        "time_s": start,
        "width_s": width,
        "service": pd.Categorical.from_codes(svc, categories=pd.Index([s.name for s in eng.services])),
        "pool": pool[rid],
        "replica": rid,
        "batch_size": a[:, 3] / width,
        "queue_len": a[:, 4] / width,
        "kv_used_tokens": kv,
        "kv_occupancy": kv / cap,
        "busy_fraction": a[:, 6] / width,
    })
    return df.sort_values(["time_s", "replica"], kind="stable").reset_index(drop=True)


def _replicas_frame(eng: Any, end: float) -> pd.DataFrame:
    rows = []
    for rep in eng.replicas:
        spec = rep.pool.spec
        alloc = rep.alloc_s + ((end - rep.on_since) if (rep.active or rep.warming) else 0.0)
        busy = rep.busy_prefill_s + rep.busy_decode_s + rep.busy_mixed_s
        perf = rep.perf
        power = getattr(perf, "power_w", None)
        energy = 0.0
        if power is not None:
            energy = (power("prefill") * rep.busy_prefill_s + power("decode") * rep.busy_decode_s
                      + power("mixed") * rep.busy_mixed_s + power("idle") * max(0.0, alloc - busy))
        group = spec.group_of(rep.local)   # (the pool itself when it has one card type)
        cards = int(getattr(perf, "cards", group.cards_per_replica)) if spec.slices == 1 else spec.card_share
        price = rep.pool.prices[rep.local]   # NaN without a catalog price: the cost excludes it (noted)
        rows.append({
            "replica": rep.rid, "service": eng.services[rep.pool.service].name, "pool": rep.pool.kind,
            "card_type": group.card_type, "cards": cards,
            "card_ids": ",".join(str(c) for c in (rep.cards.tolist() if rep.cards is not None else [])),
            "tp": group.tp, "ep": group.ep, "kv_capacity_tokens": rep.cap,
            "busy_prefill_s": rep.busy_prefill_s, "busy_decode_s": rep.busy_decode_s,
            "busy_mixed_s": rep.busy_mixed_s, "allocated_s": alloc, "energy_it_j": energy,
            "price_usd_per_card_hour": price, "cost_usd": price * cards * alloc / 3600.0,
        })
    return pd.DataFrame(rows)


def _services_frame(eng: Any) -> pd.DataFrame:
    rows = []
    for k, s in enumerate(eng.services):
        cards = sum(p.cards for p in s.pools)   # a sliced pool's replicas / slices cards
        rows.append({
            "service": s.name, "model": s.model, "mode": "disaggregated" if s.disaggregated else "colocated",
            "slo_ttft_s": math.nan if s.slo_ttft_s is None else s.slo_ttft_s,
            "slo_tpot_s": math.nan if s.slo_tpot_s is None else s.slo_tpot_s,
            "slo_e2e_s": math.nan if s.slo_e2e_s is None else s.slo_e2e_s,
            "cards": cards, "requests": int(eng.offsets[k + 1] - eng.offsets[k]),
            "pools": ";".join(f"{p.kind}:" + "+".join(f"{g.replicas}x{g.card_type or '?'}/tp{g.tp}" for g in p.layout())
                              + (f"/{p.slices}slices" if p.slices > 1 else "") for p in s.pools),
        })
    return pd.DataFrame(rows)


def build_run(eng: Any, end_s: float, wall_s: float) -> ServingRun:
    """Account the horizon and build the :class:`ServingRun` of engine ``eng``."""
    _close_replicas(eng, end_s)
    info: dict[str, Any] = {"bin_width_s": eng.bin_width, "horizon_s": eng.horizon,
                            "routing": repr(eng.routing), "autoscaling": repr(eng.autoscaling),
                            "options": eng.options}
    if eng.net is not None:
        info.update(kv_bytes_moved=eng.net.bytes_moved, kv_transfers=eng.net.transfers,
                    kv_peak_flows=eng.net.peak_flows)
    hits = looked = 0
    for p in eng.pools:
        if p.cache is not None:
            hits += p.cache.hit_blocks
            looked += p.cache.looked_up_blocks
    if looked:
        info["prefix_hit_rate"] = hits / looked
    if eng.faults is not None:
        info["faults"] = eng.faults.close(end_s)
    return ServingRun(requests=_requests_frame(eng), timeline=_timeline_frame(eng),
                      replicas=_replicas_frame(eng, end_s), services=_services_frame(eng), end_s=end_s,
                      events=eng.events, wall_s=wall_s, pue=eng.options.pue, info=info, notes=tuple(eng.notes))
