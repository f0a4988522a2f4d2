"""Serving replica failures in the summary and the dip they cause (pure functions of a run).

Keys (only when the run had ``failures.serving``), for the whole run (``inference.faults.*``) and
per service (``inference.<service>.faults.*``):

* ``replica_failures``, ``requests_requeued``, ``requests_dropped`` (in flight on a failed
  replica: re-routed, or ended as ``dropped`` and counted as SLO misses), ``replica_down_s``
  (sum over failures of ``min(model_load, end - t_fail)``), ``model_load_s`` (mean per replica);
* the dip: ``slo_attainment.in_flight`` over the requests in flight on a replica when it failed
  (re-queued or dropped), ``slo_attainment.while_down`` over the other requests that arrived
  while one of the service's replicas was down (``[t_fail, t_fail + model_load)``),
  ``slo_attainment.otherwise`` over the rest, and ``slo_attainment.min_bin`` /
  ``goodput_rps.min_bin``: the lowest of the per-bin series (:func:`fault_series`, requests
  binned by arrival for attainment, by their last token for goodput).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..engine.serving.results import ServingRun
from .serving import decided, slo_met

__all__ = ["fault_bin_s", "fault_events", "fault_keys", "fault_series"]


def fault_bin_s(end_s: float) -> float:
    """Bin width of the series: one minute, or a tenth of a run shorter than ten minutes."""
    return 60.0 if end_s >= 600.0 else max(end_s, 1e-3) / 10.0


def fault_events(run: ServingRun) -> pd.DataFrame:
    """One row per failure and recovery: ``time_s``, ``replica``, ``service``, ``kind``
    (``fail`` / ``recover``), ``requests`` (in flight at a failure)."""
    f = run.info.get("faults")
    cols = ["time_s", "replica", "service", "kind", "requests"]
    if not f or not f["events"]:
        return pd.DataFrame(columns=cols)
    ev = pd.DataFrame(f["events"], columns=["time_s", "replica", "kind", "requests"])
    svc = run.replicas.set_index("replica")["service"]
    ev["service"] = svc.reindex(ev["replica"].to_numpy()).to_numpy()
    return ev[cols]


def _down_windows(run: ServingRun, service: str | None) -> list[tuple[float, float]]:
    f = run.info["faults"]
    ev = fault_events(run)
    ev = ev[ev["kind"] == "fail"]
    if service is not None:
        ev = ev[ev["service"] == service]
    load = f["model_load_s"]
    return [(float(t), min(float(t) + float(load[int(r)]), run.end_s))
            for t, r in zip(ev["time_s"].tolist(), ev["replica"].tolist(), strict=True)]


def fault_series(run: ServingRun, bin_s: float | None = None) -> pd.DataFrame:
    """Per service and bin: of the requests that arrived in the bin ``arrived``, ``met``,
    ``decided``, ``slo_attainment`` (met / decided, as
    :func:`~cluster_sim.metrics.serving.attainment`) and ``dropped``; ``goodput_rps`` (SLO-met
    requests that *ended* in the bin / its width: no end-of-run effect), ``failures`` (in the
    bin) and ``replicas_down`` (mean over the bin)."""
    w = bin_s or fault_bin_s(run.end_s)
    nb = max(1, math.ceil(run.end_s / w - 1e-9))
    edges = np.arange(nb + 1) * w
    req, svc = run.requests, run.services
    met = slo_met(req, svc)
    dec = decided(req, svc, run.end_s)
    rows = []
    ev = fault_events(run)
    for name in svc["service"].tolist():
        m = (req["service"] == name).to_numpy()
        b = np.minimum((req["arrival_s"].to_numpy()[m] // w).astype(np.int64), nb - 1)
        arrived = np.bincount(b, minlength=nb)
        n_met = np.bincount(b, weights=met[m].astype(float), minlength=nb)
        done = req["last_token_s"].to_numpy()[m][met[m]]   # goodput: met requests by when they ended
        n_good = np.bincount(np.minimum((done // w).astype(np.int64), nb - 1), minlength=nb)
        n_dec = np.bincount(b, weights=dec[m].astype(float), minlength=nb)
        n_drop = np.bincount(b, weights=(req["status"].to_numpy()[m] == "dropped").astype(float), minlength=nb)
        fails = ev[(ev["kind"] == "fail") & (ev["service"] == name)]["time_s"].to_numpy(dtype=np.float64)
        n_fail = np.bincount(np.minimum((fails // w).astype(np.int64), nb - 1), minlength=nb)
        down = np.zeros(nb)
        for a, z in _down_windows(run, name):
            lo = np.clip(edges[:-1], a, z)
            hi = np.clip(edges[1:], a, z)
            down += (hi - lo) / w
        with np.errstate(invalid="ignore", divide="ignore"):
            att = np.where(n_dec > 0, n_met / n_dec, np.nan)
        width = np.minimum(edges[1:], run.end_s) - edges[:-1]
        rows.append(pd.DataFrame({"service": name, "time_s": edges[:-1], "width_s": width, "arrived": arrived,
                                  "met": n_met, "decided": n_dec, "slo_attainment": att,
                                  "goodput_rps": n_good / np.where(width > 0, width, np.nan),
                                  "dropped": n_drop, "failures": n_fail, "replicas_down": down}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def fault_keys(run: ServingRun) -> dict[str, Any]:
    """The ``inference.faults.*`` and ``inference.<service>.faults.*`` keys (see the module docstring)."""
    f = run.info.get("faults")
    if f is None:
        return {}
    req, svc = run.requests, run.services
    names = svc["service"].tolist()
    met = slo_met(req, svc)
    dec = decided(req, svc, run.end_s)
    series = fault_series(run)
    loads = np.asarray(f["model_load_s"], dtype=np.float64)
    rsvc = run.replicas["service"].to_numpy()
    out: dict[str, Any] = {}
    for k, name in [(None, None), *enumerate(names)]:
        prefix = "inference.faults" if name is None else f"inference.{name}.faults"
        m = np.ones(len(req), dtype=bool) if name is None else (req["service"] == name).to_numpy()
        arr = req["arrival_s"].to_numpy()
        hit = np.zeros(len(req), dtype=bool)
        hit[f["hit"]] = True   # (request ids are the frame's row numbers)
        near = np.zeros(len(req), dtype=bool)
        for a, z in _down_windows(run, name):
            near |= (arr >= a) & (arr < z)
        near &= ~hit
        s = series if name is None else series[series["service"] == name]
        mine = loads if name is None else loads[rsvc == name]
        out.update({
            f"{prefix}.replica_failures": _pick(f["failures"], k),
            f"{prefix}.requests_requeued": _pick(f["requeued"], k),
            f"{prefix}.requests_dropped": _pick(f["dropped"], k),
            f"{prefix}.replica_down_s": _pick(f["down_s"], k),
            f"{prefix}.model_load_s": float(mine.mean()) if len(mine) else math.nan,
            f"{prefix}.slo_attainment.in_flight": _ratio(met[m & hit], dec[m & hit]),
            f"{prefix}.slo_attainment.while_down": _ratio(met[m & near], dec[m & near]),
            f"{prefix}.slo_attainment.otherwise": _ratio(met[m & ~near & ~hit], dec[m & ~near & ~hit]),
            f"{prefix}.slo_attainment.min_bin": float(np.nanmin(s["slo_attainment"])) if s["slo_attainment"].notna().any() else math.nan,
            f"{prefix}.goodput_rps.min_bin": float(s["goodput_rps"].min()) if len(s) else math.nan,
        })
        if name is None:
            out["inference.faults.on_failure"] = f["on_failure"]
    return out


def _pick(per_service: list[float], k: int | None) -> float:
    return float(sum(per_service)) if k is None else float(per_service[k])


def _ratio(met: np.ndarray, decided: np.ndarray) -> float:
    n = int(decided.sum())
    return float(met[decided].sum() / n) if n else math.nan
