"""Serving metrics: pure functions of the engine's DataFrames (``run_serving``, which runs the
engine and calls :func:`summarize`, is in :mod:`cluster_sim.experiment.drivers`).

Definitions (DOMAIN.md 2; formulas also in ``docs/serving.md``):

* **TTFT** = first token - arrival; in PD separation the prefill replica emits the first token,
  so TTFT excludes the KV transfer (which shows in TPOT). **TPOT** = ``(last - first) / (n_out -
  1)`` (undefined for one output token: counts as meeting a TPOT SLO). **E2E** = last - arrival.
  **Queueing** = first admission into a batch - arrival. Percentiles (p50/p90/p99, NumPy linear)
  and means over *finished* requests.
* **SLO met** = finished and every set SLO met (TTFT, TPOT, E2E). **Attainment** = met /
  decided requests, where decided = finished + rejected + unfinished requests that had already
  missed an SLO at the end of the run (no first token after ``slo_ttft``, or older than
  ``slo_e2e``); unfinished requests with nothing missed yet are left out. A **rejected** request
  (too long for the context or the KV cache) counts as a **miss**.
* **Rejections**: ``rejected`` and ``rejected.<reason>`` per reason of
  :mod:`cluster_sim.engine.serving.admission`; ``truncated`` = requests whose prompt was cut
  (``overlong: truncate``).
* **Goodput** = SLO-met requests / run duration (requests/s).
* **Tokens/s** = output tokens generated / run duration; **per card** divides by every card the
  service(s) hold (all pools). Input tokens/s likewise over prompt tokens of admitted requests.
* **Cost** = sum over replicas of provisioned (warming or serving) card-hours x catalog price, so
  it depends on the autoscaler; per million output tokens. ``cost.installed_usd``: every replica
  of the deployment for the whole run.
* **Energy** = PUE x IT energy (phase powers from the perf model x busy seconds, idle power x
  provisioned-but-idle seconds; :func:`~cluster_sim.metrics.costs.facility_kwh` applies PUE);
  per output token. PUE default 1.2 (DOMAIN 3.4: 1.1-1.25).
* **Priced energy** (``cost.energy_usd``, with an ``energy:`` tariff, :func:`priced_serving_keys`):
  the timeline has each replica's busy share per bin but neither its phase (prefill and decode
  draw different power) nor whether it was provisioned, so the run's IT energy is spread
  uniformly over ``[0, end)`` (its mean power) x PUE and priced by the tariff; the note says so.
* **Utilization** of the deployment's cards ``D`` (every replica, provisioned or not):
  ``utilization.allocated = sum_r cards_r x provisioned_s_r / (D x T)``, ``utilization.busy`` the
  same over the seconds a replica's batch is non-empty (an iteration is running).
* **KV occupancy / batch size / queue length / busy**: time-weighted means from the timeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import overload

import numpy as np
import pandas as pd

from ..engine.serving.results import REASONS, ServingRun
from .costs import J_PER_KWH, facility_kwh, held_cost_usd, priced_energy_usd
from .tariff import Tariff

__all__ = [
    "ServingResult",
    "attainment",
    "decided",
    "priced_serving_keys",
    "latency_percentiles",
    "level_means",
    "slo_met",
    "summarize",
]

PCTS = (50, 90, 99)


@dataclass(frozen=True)
class ServingResult:
    """Outcome of ``cluster_sim.experiment.drivers.run_serving``: DataFrames plus the flat summary dict."""

    requests: pd.DataFrame
    timeline: pd.DataFrame
    replicas: pd.DataFrame
    services: pd.DataFrame
    summary: dict[str, float]
    run: ServingRun

    @property
    def notes(self) -> tuple[str, ...]:
        """Warnings of the run (rejections by reason, truncations, missing prices, ...)."""
        return self.run.notes


def latency_percentiles(values: pd.Series | np.ndarray, prefix: str) -> dict[str, float]:
    """``{prefix.p50, prefix.p90, prefix.p99, prefix.mean}`` of the non-NaN values (NaN if none)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    out = {f"{prefix}.p{p}": (float(np.percentile(x, p)) if len(x) else math.nan) for p in PCTS}
    out[f"{prefix}.mean"] = float(x.mean()) if len(x) else math.nan
    return out


def _slo_columns(requests: pd.DataFrame, services: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    slo = services.set_index("service")
    names = requests["service"].astype(str)
    ttft, tpot, e2e = (names.map(slo[c]).to_numpy(dtype=np.float64) for c in ("slo_ttft_s", "slo_tpot_s", "slo_e2e_s"))
    return ttft, tpot, e2e


def slo_met(requests: pd.DataFrame, services: pd.DataFrame) -> np.ndarray:
    """Per request: finished and every set SLO met (NaN SLO = unset; NaN TPOT = met)."""
    ttft, tpot, e2e = _slo_columns(requests, services)
    done = (requests["status"] == "finished").to_numpy()
    with np.errstate(invalid="ignore"):
        ok = done.copy()
        ok &= np.isnan(ttft) | (requests["ttft_s"].to_numpy() <= ttft)
        t = requests["tpot_s"].to_numpy()
        ok &= np.isnan(tpot) | np.isnan(t) | (t <= tpot)
        ok &= np.isnan(e2e) | (requests["e2e_s"].to_numpy() <= e2e)
    return ok


def decided(requests: pd.DataFrame, services: pd.DataFrame, end_s: float) -> np.ndarray:
    """Per request: decided by ``end_s`` (see the module docstring)."""
    ttft, _, e2e = _slo_columns(requests, services)
    status = requests["status"].to_numpy()
    arrival = requests["arrival_s"].to_numpy()
    first = requests["first_token_s"].to_numpy()
    with np.errstate(invalid="ignore"):
        missed = (~np.isnan(ttft) & ((np.isnan(first) & (end_s - arrival > ttft)) | (first - arrival > ttft)))
        missed |= ~np.isnan(e2e) & (end_s - arrival > e2e)
    return np.asarray((status != "unfinished") | missed, dtype=bool)


def attainment(requests: pd.DataFrame, services: pd.DataFrame, end_s: float) -> tuple[float, int, int]:
    """(attainment, met, decided) — see the module docstring for "decided"."""
    met = slo_met(requests, services)
    n = int(decided(requests, services, end_s).sum())
    return (float(met.sum() / n) if n else math.nan), int(met.sum()), n


@overload
def level_means(timeline: pd.DataFrame, by: None = None) -> pd.Series: ...
@overload
def level_means(timeline: pd.DataFrame, by: str | list[str]) -> pd.DataFrame: ...
def level_means(timeline: pd.DataFrame, by: str | list[str] | None = None) -> pd.DataFrame | pd.Series:
    """Time-weighted means of the timeline levels (optionally per group)."""
    cols = ["batch_size", "queue_len", "kv_used_tokens", "kv_occupancy", "busy_fraction"]
    if timeline.empty:
        return pd.Series({c: math.nan for c in cols})
    w = timeline["width_s"]
    weighted = timeline[cols].mul(w, axis=0)
    if by is None:
        return weighted.sum() / w.sum()
    g = weighted.assign(_w=w, **{k: timeline[k] for k in ([by] if isinstance(by, str) else by)})
    sums = g.groupby(by, observed=True).sum()
    return sums[cols].div(sums["_w"], axis=0)


def _held(replicas: pd.DataFrame, duration_s: float, prefix: str) -> dict[str, float]:
    """Utilization of the deployment's cards (provisioned = allocated, non-empty batch = busy)
    and the cost of holding all of them for the whole run (``cost.installed_usd``)."""
    if not len(replicas) or not duration_s > 0:
        return {f"{prefix}.utilization.allocated": math.nan, f"{prefix}.utilization.busy": math.nan,
                f"{prefix}.cost.installed_usd": 0.0}
    cards = replicas["cards"].to_numpy(dtype=np.float64)
    busy = replicas[["busy_prefill_s", "busy_decode_s", "busy_mixed_s"]].sum(axis=1).to_numpy(dtype=np.float64)
    held = replicas["allocated_s"].to_numpy(dtype=np.float64)
    deployed = float(cards.sum()) * duration_s
    price = np.nan_to_num(replicas["price_usd_per_card_hour"].to_numpy(dtype=np.float64))  # unpriced: excluded
    return {f"{prefix}.utilization.allocated": float((cards * held).sum() / deployed),
            f"{prefix}.utilization.busy": float((cards * busy).sum() / deployed),
            f"{prefix}.cost.installed_usd": held_cost_usd(cards * duration_s, price)}


def _block(requests: pd.DataFrame, services: pd.DataFrame, replicas: pd.DataFrame, timeline: pd.DataFrame,
           duration_s: float, pue: float, prefix: str) -> dict[str, float]:
    out: dict[str, float] = {}
    fin = requests[requests["status"] == "finished"]
    for col, name in (("ttft_s", "ttft_s"), ("tpot_s", "tpot_s"), ("e2e_s", "e2e_s"), ("queueing_s", "queueing_s")):
        out.update(latency_percentiles(fin[col], f"{prefix}.{name}"))
    att, met, decided = attainment(requests, services, duration_s)
    status = requests["status"]
    cards = float(services["cards"].sum())
    out_tokens = float(requests["generated_tokens"].sum())
    in_tokens = float(requests.loc[requests["admit_s"].notna(), "prompt_tokens"].sum())
    dur = duration_s if duration_s > 0 else math.nan
    cost = float(replicas["cost_usd"].sum()) if len(replicas) else 0.0
    it_j = float(replicas["energy_it_j"].sum()) if len(replicas) else 0.0
    energy_j = facility_kwh(it_j, pue) * J_PER_KWH
    out.update({
        f"{prefix}.requests": float(len(requests)),
        f"{prefix}.finished": float((status == "finished").sum()),
        f"{prefix}.rejected": float((status == "rejected").sum()),
        **{f"{prefix}.rejected.{r}": float((requests["reason"] == r).sum()) for r in REASONS[1:]},
        f"{prefix}.truncated": float((requests["truncated_tokens"] > 0).sum()),
        f"{prefix}.unfinished": float((status == "unfinished").sum()),
        f"{prefix}.slo_attainment": att,
        f"{prefix}.slo_met": float(met),
        f"{prefix}.goodput_rps": met / dur,
        f"{prefix}.throughput_rps": float((status == "finished").sum()) / dur,
        f"{prefix}.tokens_per_s": out_tokens / dur,
        f"{prefix}.input_tokens_per_s": in_tokens / dur,
        f"{prefix}.tokens_per_s_per_card": out_tokens / dur / cards if cards else math.nan,
        f"{prefix}.cards": cards,
        f"{prefix}.preemptions": float(requests["preemptions"].sum()),
        f"{prefix}.cost_usd": cost,
        f"{prefix}.cost_per_mtok_usd": cost / (out_tokens / 1e6) if out_tokens else math.nan,
        f"{prefix}.cost_per_mtok_total_usd": cost / ((out_tokens + in_tokens) / 1e6) if out_tokens else math.nan,
        f"{prefix}.energy_kwh": energy_j / 3.6e6,
        f"{prefix}.energy_j_per_token": energy_j / out_tokens if out_tokens else math.nan,
    })
    out.update(_held(replicas, duration_s, prefix))
    lv = level_means(timeline)
    for c in ("batch_size", "queue_len", "kv_occupancy", "busy_fraction"):
        out[f"{prefix}.{c}_mean"] = float(lv[c])
    return out


def _by_type(requests: pd.DataFrame, replicas: pd.DataFrame, duration_s: float, prefix: str) -> dict[str, float]:
    """A service on several card types (replica groups under one router): per card type, the
    requests its replicas served (``finished``, ``requests`` routed there), output tokens per
    second, cards, and the ``_held`` utilization of those replicas. Nothing for one type."""
    types = replicas["card_type"].unique().tolist() if len(replicas) else []
    if len(types) < 2:
        return {}
    kind = replicas.set_index("replica")["card_type"]
    on = kind.reindex(requests["replica"].to_numpy()).to_numpy()   # NaN: never routed (rejected)
    dur = duration_s if duration_s > 0 else math.nan
    out: dict[str, float] = {}
    for t in types:
        mine = requests[on == t]
        reps = replicas[replicas["card_type"] == t]
        at = f"{prefix}.by_type.{t}"
        held = _held(reps, duration_s, at)
        out.update({
            f"{at}.requests": float(len(mine)),
            f"{at}.finished": float((mine["status"] == "finished").sum()),
            f"{at}.tokens_per_s": float(mine["generated_tokens"].sum()) / dur,
            f"{at}.cards": float(reps["cards"].sum()),
            f"{at}.utilization.allocated": held[f"{at}.utilization.allocated"],
            f"{at}.utilization.busy": held[f"{at}.utilization.busy"],
        })
    return out


def summarize(run: ServingRun) -> dict[str, float]:
    """The flat summary dict (DESIGN 4 keys ``inference.*`` and ``sim.*``, plus per service)."""
    req, svc, reps, tl = run.requests, run.services, run.replicas, run.timeline
    out = _block(req, svc, reps, tl, run.end_s, run.pue, "inference")
    names = svc["service"].tolist()
    for name in names:
        out.update(_block(req[req["service"] == name], svc[svc["service"] == name],
                          reps[reps["service"] == name], tl[tl["service"] == name], run.end_s, run.pue,
                          f"inference.{name}"))
        out.update(_by_type(req[req["service"] == name], reps[reps["service"] == name], run.end_s,
                            f"inference.{name}"))
        for pool in ("prefill", "decode"):
            part = tl[(tl["service"] == name) & (tl["pool"] == pool)]
            if len(part):
                lv = level_means(part)
                out[f"inference.{name}.{pool}.kv_occupancy_mean"] = float(lv["kv_occupancy"])
                out[f"inference.{name}.{pool}.busy_fraction_mean"] = float(lv["busy_fraction"])
    out["energy_kwh"] = out["inference.energy_kwh"]
    out["energy.it_kwh"] = facility_kwh(float(reps["energy_it_j"].sum()) if len(reps) else 0.0, 1.0)
    out["energy.pue"] = float(run.pue)
    out["cost_usd"] = out["inference.cost_usd"]
    out["sim.events"] = float(run.events)
    out["sim.wall_s"] = float(run.wall_s)
    out["sim.end_s"] = float(run.end_s)
    out["sim.requests_per_wall_s"] = len(req) / run.wall_s if run.wall_s > 0 else math.nan
    for k in ("prefix_hit_rate", "kv_transfers", "kv_bytes_moved"):
        if k in run.info:
            out[f"inference.{k}"] = float(run.info[k])
    if "faults" in run.info:   # replica failures (failures.serving): counts and the dip
        from .serving_faults import fault_keys  # (it builds on this module's attainment)

        out.update(fault_keys(run))
    return out


PRICED_SERVING_NOTE = ("energy: serving energy is priced at the run's mean power spread uniformly over "
                       "the run (the serving timeline has no per-bin phase or provisioned state); "
                       "training energy is priced per timeline bin")


def priced_serving_keys(run: ServingRun, tariff: Tariff) -> tuple[dict[str, float], str | None]:
    """``({"cost.energy_usd": ...}, note)``: the serving run's facility energy (IT energy of
    every replica x PUE) priced by ``tariff`` at the run's mean power over ``[0, end_s)``; the
    note (for the result's notes) says the power is spread uniformly. No energy, no note.

    >>> import pandas as pd
    >>> from cluster_sim.metrics.tariff import Tariff
    >>> run = ServingRun(pd.DataFrame(), pd.DataFrame(), pd.DataFrame({"energy_it_j": [3.6e6]}),
    ...                  pd.DataFrame(), end_s=3600.0, events=0, wall_s=0.0, pue=1.25)
    >>> keys, note = priced_serving_keys(run, Tariff.flat(0.2))
    >>> round(keys["cost.energy_usd"], 9)   # 1 kWh IT x 1.25 x 0.2 USD/kWh
    0.25
    """
    reps = run.replicas
    it_j = float(reps["energy_it_j"].sum()) if len(reps) else 0.0
    if not run.end_s > 0:
        return {"cost.energy_usd": 0.0}, None
    usd = priced_energy_usd([0.0], [run.end_s], [it_j / run.end_s], run.pue, tariff)
    return {"cost.energy_usd": usd}, (PRICED_SERVING_NOTE if it_j > 0 else None)
