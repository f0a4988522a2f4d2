"""Training and cluster summary metrics: pure functions of the jobs and timeline DataFrames.

Every formula is in docs/metrics.md. Keys are flat and dotted with the unit in the name
(DESIGN.md 4); undefined values (no finished job, no model job...) are None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .costs import DEFAULT_PUE, card_it_joules, facility_kwh, held_cost_usd, priced_energy_usd
from .tariff import Tariff

__all__ = ["jain", "percentiles", "price_training_energy", "priced_training_keys", "summarize_training",
           "training_it_power_w"]


def _f(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def percentiles(values: Any, prefix: str, qs: Sequence[int] = (50, 90, 99)) -> dict[str, float | None]:
    """``{prefix.mean, prefix.pN...}`` of the finite values (linear interpolation); None if empty."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    out: dict[str, float | None] = {f"{prefix}.mean": _f(v.mean()) if v.size else None}
    for q in qs:
        out[f"{prefix}.p{q}"] = _f(np.percentile(v, q)) if v.size else None
    return out


def jain(x: Any) -> float | None:
    """Jain's fairness index ``(sum x)^2 / (n sum x^2)`` of the finite values (None if none)."""
    v = np.asarray(x, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or not (v ** 2).sum() > 0:
        return None
    return float(v.sum() ** 2 / (v.size * (v ** 2).sum()))


def _integrals(timeline: pd.DataFrame) -> pd.Series:
    width = (timeline["time_end_s"] - timeline["time_s"]).to_numpy()
    body = timeline.drop(columns=["time_s", "time_end_s"])
    return pd.Series(body.to_numpy().T @ width if len(body) else np.zeros(body.shape[1]), index=body.columns)


def _cost_energy(I: pd.Series, types: Sequence[str], cap: np.ndarray, t_end: float,
                 ctx: Mapping[str, Any]) -> dict[str, Any]:
    """Cost of the card-hours held, energy drawn (busy at TDP, held-idle at idle power) x PUE,
    and the installed cluster's cost and energy apart (docs/metrics.md)."""
    zeros = [0.0] * len(types)
    tdp = [float(x) for x in ctx.get("type_tdp_w", zeros)]
    idle = [float(x) for x in ctx.get("type_idle_w", zeros)]
    price = [float(x) for x in ctx.get("type_price_usd_per_hour", zeros)]
    pue = float(ctx.get("pue", DEFAULT_PUE))
    busy = [float(I[f"busy_cards.{t}"]) for t in types]
    held = [float(I[f"allocated_cards.{t}"]) for t in types]
    avail = [float(I[f"available_cards.{t}"]) for t in types]
    it_j = card_it_joules(busy, held, tdp, idle)
    return {
        "energy_kwh": _f(facility_kwh(it_j, pue)),
        "energy.it_kwh": _f(facility_kwh(it_j, 1.0)),
        "energy.installed_kwh": _f(facility_kwh(card_it_joules(busy, avail, tdp, idle), pue)),
        "energy.pue": pue,
        "cost_usd": _f(held_cost_usd(held, price)),
        "cost.installed_usd": _f(held_cost_usd([float(c) * t_end for c in cap], price)),
    }


def training_it_power_w(timeline: pd.DataFrame, types: Sequence[str], tdp_w: Sequence[float],
                        idle_w: Sequence[float]) -> np.ndarray:
    """IT power per timeline bin: ``Σ_k Bz_k · TDP_k + (A_k − Bz_k) · idle_k`` from the bin
    averages ``busy_cards.<k>`` and ``allocated_cards.<k>`` (so ``Σ power · width`` is the IT
    energy of ``energy.it_kwh``)."""
    p = np.zeros(len(timeline))
    for k, t in enumerate(types):
        busy = timeline[f"busy_cards.{t}"].to_numpy(dtype=np.float64)
        held = timeline[f"allocated_cards.{t}"].to_numpy(dtype=np.float64)
        p += busy * float(tdp_w[k]) + np.maximum(held - busy, 0.0) * float(idle_w[k])
    return p


def price_training_energy(timeline: pd.DataFrame, ctx: Mapping[str, Any], tariff: Tariff) -> float:
    """``cost.energy_usd`` of a cluster-engine run: the facility power of every timeline bin
    (:func:`training_it_power_w` x PUE) priced by ``tariff`` (docs/metrics.md). ``ctx`` as for
    :func:`summarize_training`."""
    types = list(ctx["card_types"])
    zeros = [0.0] * len(types)
    if not len(timeline):
        return 0.0
    it_w = training_it_power_w(timeline, types, ctx.get("type_tdp_w", zeros), ctx.get("type_idle_w", zeros))
    return priced_energy_usd(timeline["time_s"].to_numpy(), timeline["time_end_s"].to_numpy(), it_w,
                             float(ctx.get("pue", DEFAULT_PUE)), tariff)


def priced_training_keys(result: Any, tariff: Tariff) -> dict[str, float | None]:
    """``{"cost.energy_usd": ...}`` of a finished :class:`~cluster_sim.metrics.TrainingResult`
    (its timeline, record and ``energy.pue``); empty when the run measured no energy."""
    if "energy_kwh" not in result.summary:
        return {}
    rec = result.record
    ctx = {"card_types": rec.card_types, **{k: v for k, v in rec.meta.items() if k.startswith("type_")},
           "pue": result.summary["energy.pue"]}
    return {"cost.energy_usd": _f(price_training_energy(result.timeline, ctx, tariff))}


def _deferral(jobs: pd.DataFrame, t_end: float) -> dict[str, Any]:
    """Off-peak holds and deadlines: ``training.jobs.deferred`` (release after submit),
    ``training.deferred_hours.mean`` (their mean hold), ``training.jobs.missed_deadline`` (not
    rejected, and finished after ``submit + deadline`` or unfinished when the run ended past it)."""
    if not len(jobs) or "release_s" not in jobs:
        return {"training.jobs.deferred": 0, "training.deferred_hours.mean": None,
                "training.jobs.missed_deadline": 0}
    submit = jobs["submit_s"].to_numpy(np.float64)
    hold = jobs["release_s"].to_numpy(np.float64) - submit
    due = submit + jobs["deadline_s"].to_numpy(np.float64)
    finish = jobs["finish_s"].to_numpy(np.float64)
    late = np.where(np.isnan(finish), t_end > due, finish > due) & (jobs["status"] != "rejected").to_numpy()
    deferred = hold > 0
    return {"training.jobs.deferred": int(deferred.sum()),
            "training.deferred_hours.mean": _f(hold[deferred].mean() / 3600.0) if deferred.any() else None,
            "training.jobs.missed_deadline": int((late & np.isfinite(due)).sum())}


def summarize_training(jobs: pd.DataFrame, timeline: pd.DataFrame, ctx: Mapping[str, Any]) -> dict[str, Any]:
    """The training/cluster summary of a run.

    Parameters
    ----------
    jobs, timeline : DataFrame
        From :func:`~cluster_sim.metrics.recorder.jobs_frame` and
        :func:`~cluster_sim.metrics.recorder.timeline_frame`.
    ctx : mapping
        ``card_types``, ``capacity_by_type``, ``type_peak_flops``, ``t_end_s`` and optionally
        ``events``, ``wall_s``, ``cycles``, ``type_tdp_w``, ``type_idle_w``, ``type_price_usd_per_hour``
        and ``pue`` (default :data:`~.costs.DEFAULT_PUE`); ``tariff`` (a
        :class:`~.tariff.Tariff`) adds ``cost.energy_usd`` (:func:`price_training_energy`).

    Every key here is measured by the cluster engine; the perf model's estimate of an explicit
    job has its own keys (``training.mfu``, ``training.job.<name>.*``; experiment layer). The
    ``training.*`` job keys exclude offline inference jobs (kind ``offline_inference``: their
    keys are ``offline.*``, :mod:`.offline`); ``utilization.*``, ``queue.*`` and the energy and
    cost keys cover every job the engine ran.
    """
    s: dict[str, Any] = {}
    all_jobs = jobs
    if len(jobs) and "kind" in jobs and (jobs["kind"] == "offline_inference").any():
        jobs = jobs[jobs["kind"] != "offline_inference"]
    types = list(ctx["card_types"])
    cap = np.asarray(ctx["capacity_by_type"], dtype=np.float64)
    peak = np.asarray(ctx["type_peak_flops"], dtype=np.float64)
    t_end = float(ctx["t_end_s"])
    st = jobs["status"] if len(jobs) else pd.Series([], dtype=object)
    fin = jobs[st == "finished"] if len(jobs) else jobs
    started = jobs[np.isfinite(jobs["first_start_s"])] if len(jobs) else jobs
    s["training.jobs.submitted"] = int(len(jobs))
    s["training.jobs.finished"] = int((st == "finished").sum())
    s["training.jobs.rejected"] = int((st == "rejected").sum())
    s["training.jobs.running_at_end"] = int(st.isin(["running", "restarting"]).sum())
    s["training.jobs.queued_at_end"] = int((st == "queued").sum())
    s.update(percentiles(fin["jct_s"] if len(fin) else [], "training.jct_s"))
    s.update(percentiles(started["queueing_s"] if len(started) else [], "training.queueing_s"))
    s.update(percentiles(fin["slowdown"] if len(fin) else [], "training.slowdown"))
    model = jobs[jobs["peak_flop_s"] > 0] if len(jobs) else jobs
    s["training.jobs.mfu"] = _f(model["useful_flops"].sum() / model["peak_flop_s"].sum()) if len(model) else None
    s["training.makespan_s"] = _f(fin["finish_s"].max() - jobs["submit_s"].min()) if len(fin) else None
    s.update(_deferral(jobs, t_end))
    s["training.restarts"] = int(jobs["restarts"].sum()) if len(jobs) else 0
    s["training.preemptions"] = int(jobs["preemptions"].sum()) if len(jobs) else 0
    if "shrinks" in jobs:   # elastic jobs (engine/cluster/elastic.py)
        s["training.elastic.jobs"] = int(jobs["elastic"].sum())
        s["training.elastic.shrinks"] = int(jobs["shrinks"].sum())
        s["training.elastic.regrows"] = int(jobs["regrows"].sum())
        s["training.elastic.shrunk_card_hours"] = float(jobs["shrunk_card_s"].sum()) / 3600.0
    if len(fin):
        per_tenant = (1.0 / fin["slowdown"]).groupby(fin["tenant"]).mean()
        s["fairness.jain_tenants"] = jain(per_tenant.to_numpy()) if len(per_tenant) > 1 else 1.0
    else:
        s["fairness.jain_tenants"] = None

    I = _integrals(timeline) if len(timeline) else None
    if I is not None and t_end > 0:
        avail = I["available_cards"]
        s["utilization.allocated"] = _f(I["allocated_cards"] / avail) if avail > 0 else None
        s["utilization.busy"] = _f(I["busy_cards"] / avail) if avail > 0 else None
        s["utilization.allocated_of_installed"] = _f(I["allocated_cards"] / (cap.sum() * t_end))
        pa = sum(peak[k] * I[f"allocated_cards.{t}"] for k, t in enumerate(types))
        pc = sum(peak[k] * I[f"available_cards.{t}"] for k, t in enumerate(types))
        s["utilization.allocated_flops_weighted"] = _f(pa / pc) if pc > 0 else None
        for t in types:
            a = I[f"available_cards.{t}"]
            s[f"utilization.allocated.{t}"] = _f(I[f"allocated_cards.{t}"] / a) if a > 0 else None
            s[f"utilization.busy.{t}"] = _f(I[f"busy_cards.{t}"] / a) if a > 0 else None
        blocked = I["blocked"]
        s["fragmentation.unallocated_cards"] = _f(I["free_cards_when_blocked"] / blocked) if blocked > 0 else 0.0
        s["fragmentation.unallocated_frac"] = _f(s["fragmentation.unallocated_cards"] / cap.sum())
        s["fragmentation.blocked_time_frac"] = _f(blocked / t_end)
        s["queue.mean_jobs"] = _f(I["queued_jobs"] / t_end)
        useful = float(model["useful_flops"].sum()) if len(model) else 0.0
        s["training.cluster_mfu"] = _f(useful / pc) if pc > 0 and len(model) else None
        s.update(_cost_energy(I, types, cap, t_end, ctx))
        if ctx.get("tariff") is not None:
            s["cost.energy_usd"] = _f(price_training_energy(timeline, ctx, ctx["tariff"]))
    s["sim.t_end_s"] = t_end
    s["sim.events"] = int(ctx.get("events", 0))
    wall = float(ctx.get("wall_s", 0.0))
    s["sim.wall_s"] = wall
    s["sim.cycles"] = int(ctx.get("cycles", 0))
    s["sim.events_per_s"] = _f(s["sim.events"] / wall) if wall > 0 else None
    s["sim.jobs_per_s"] = _f(len(all_jobs) / wall) if wall > 0 else None
    return s
