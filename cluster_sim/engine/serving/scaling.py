"""Autoscaling inside the serving engine: what a policy sees, and how its decision is applied.

:func:`scale_view` builds the read-only :class:`~cluster_sim.policies.serving.base.AutoscalingView`
of one pool (p90 TTFT/TPOT over the service's recent finished requests, arrival rate since the
last tick and of the last 64 ticks, KV occupancy) and records the tick's rate; :func:`apply_target` moves the pool towards the policy's target.
Scale-up starts the lowest-numbered idle replicas (serving at once at ``t = 0`` or without
warm-up, else after ``warmup_s``); scale-down stops routing to the highest-numbered ones,
warming ones first, which drain their batches. One replica always keeps serving.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...policies.serving.base import AutoscalingView
from .specs import nan_if_none

__all__ = ["apply_target", "scale_view"]


def scale_view(pool: Any, service: Any, recent: tuple[np.ndarray, int] | None, t: float,
               dt: float) -> AutoscalingView:
    """The view of ``pool`` (of ``service``) at ``t``; ``recent``: (ring of (TTFT, TPOT), count)."""
    ttft = tpot = math.nan
    if recent is not None:
        buf, pos = recent
        if pos:
            window = buf[:min(pos, len(buf))]
            ttft = float(np.nanpercentile(window[:, 0], 90))
            tp = window[:, 1][~np.isnan(window[:, 1])]
            tpot = float(np.percentile(tp, 90)) if len(tp) else math.nan
    act = [r for r in pool.replicas if r.active]
    occ = float(np.mean([r.kv / r.cap for r in act])) if act else 0.0
    rate = (pool.arrivals - pool.arrivals_at_tick) / dt if dt > 0 else 0.0
    if dt > 0:   # one entry per tick: scale_view is called once per tick
        pool.rate_hist.append((t, rate))
    return AutoscalingView(
        now_s=t, service=service.name, pool=pool.kind, max_replicas=len(pool.replicas), active=len(act),
        warming=sum(r.warming for r in pool.replicas), queue_len=int(pool.q.sum()) + len(pool.parked),
        running=int(pool.run.sum()), arrival_rate_per_s=rate,
        ttft_p90_s=ttft, tpot_p90_s=tpot, slo_ttft_s=nan_if_none(service.slo_ttft_s),
        slo_tpot_s=nan_if_none(service.slo_tpot_s), kv_occupancy=occ, rate_history=tuple(pool.rate_hist))


def apply_target(pool: Any, target_replicas: int, warmup_s: float, t: float,
                 broker: Any = None) -> list[tuple[Any, float]]:
    """Start or stop replicas of ``pool`` towards ``target_replicas`` (clamped to 1..max).

    Returns the replicas that started warming, each with its delay: the caller schedules its
    activation at ``t + delay`` (token ``replica.warm_token``). With a card ``broker`` (a dynamic
    pool policy) the target is at least the broker's ``min_replicas``, the off replicas are
    tried in the broker's order, each must :meth:`~cluster_sim.engine.pool.broker.CardBroker.claim`
    its cards (the delay is the broker's: checkpoints of reclaimed jobs, model load), a replica
    whose cards cannot be had now is not started (a later tick tries again), and a stopped
    replica is reported to the broker, which lends its cards once it has drained.
    """
    reps = pool.replicas
    lo = 1 if broker is None else broker.min_replicas if pool.kind == "colocated" else max(1, broker.min_replicas)
    target = min(max(int(target_replicas), lo), len(reps))
    on = [r for r in reps if r.active or r.warming]
    warming: list[tuple[Any, float]] = []
    need = 0
    if target > len(on):
        off = [r for r in reps if not (r.active or r.warming or r.down)]   # a down one is reloading
        if broker is not None:
            off = broker.order(off, t)
        need = target - len(on)
        for r in off:
            if need <= 0:
                break
            delay = warmup_s if broker is None else broker.claim(r, t, warmup_s)
            if delay is None:
                continue
            need -= 1
            r.note(t)
            r.on_since = t
            if t <= 0.0 or delay <= 0.0:
                r.active = True
                if broker is not None:
                    broker.activated(r, t)
            else:
                r.warming = True
                r.warm_token += 1
                warming.append((r, delay))
    elif target < len(on):
        drop = sorted(on, key=lambda r: (r.active, -r.local))[:len(on) - target]
        for r in drop:
            r.note(t)
            r.alloc_s += t - r.on_since
            r.active = r.warming = False
            if broker is not None:
                broker.switched_off(r, t)
    up = [r for r in reps if not r.down]   # a failed replica serves only once its replacement has loaded
    if broker is None and up and not any(r.active for r in reps):  # keep one serving
        keep = min(up, key=lambda r: (not r.warming, r.local))
        if keep.warming:
            keep.warming = False
        else:
            keep.on_since = t
        keep.active = True
    if broker is not None and need > 0:   # replicas the target wanted whose cards could not be had
        broker.counts["refused_scale_ups"] += need
    pool.refresh()
    return warming
