"""Perfetto / Chrome trace JSON of a run (open in ui.perfetto.dev or chrome://tracing).

Post-processing only: every event comes from the recorded tables (segments, timeline, requests,
serving timeline), never from the simulation's hot path.

Training: one track group ("process") per scale-up domain, one lane ("thread") per concurrently
running job inside it (greedy interval colouring, so spans on a lane never overlap). A job that
holds cards in several domains has one slice on each of them (the engine records one segment row
per domain it spans), named by the job's name, else its kind and id. Counter tracks on the
"cluster" process: allocated and busy cards and queued jobs from the timeline, and the cards of
running jobs that span more than one scale-up domain (their collectives cross the scale-out
network; the engine records no per-link flows). Serving: :mod:`.trace_serving`.

Big runs are capped: at most ``max_tracks`` domains (the busiest, by job-seconds) and
``max_events`` spans; at most ``max_requests`` requests (every k-th, see :mod:`.trace_serving`).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pandas as pd

from .trace_serving import DEFAULT_MAX_REQUESTS, SERVING_PID0, lanes, serving_events

__all__ = ["CLUSTER_PID", "DEFAULT_MAX_REQUESTS", "SERVING_PID0", "chrome_trace", "job_labels", "lanes",
           "write_chrome_trace"]

CLUSTER_PID = -1
"""Process id of the cluster-wide counter tracks."""


def job_labels(jobs: pd.DataFrame | None) -> dict[int, str]:
    """``job_id -> label``: the job's ``name`` when it has one, else ``"<kind> <id>"``."""
    if jobs is None or not len(jobs) or "job_id" not in jobs:
        return {}
    ids = jobs["job_id"].astype(np.int64).tolist()
    kinds = jobs["kind"].astype(str).tolist() if "kind" in jobs else ["job"] * len(ids)
    names = jobs["name"].tolist() if "name" in jobs else [None] * len(ids)
    return {i: (str(nm) if isinstance(nm, str) and nm else f"{k} {i}")
            for i, k, nm in zip(ids, kinds, names, strict=True)}


def _meta(pid: int, name: str) -> dict[str, Any]:
    return {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "ts": 0.0, "args": {"name": name}}


def _training_events(segments: pd.DataFrame, jobs: pd.DataFrame | None, max_tracks: int,
                     max_events: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    seg = segments.assign(busy=segments["end_s"] - segments["start_s"])
    spans = seg.groupby(["job_id", "start_s"], sort=False)["domain"].transform("size")
    seg = seg.assign(spans=spans)
    load = seg.groupby("domain")["busy"].sum()
    keep = sorted(load.sort_values(ascending=False, kind="stable").index[:max_tracks].tolist())
    seg = seg[seg["domain"].isin(keep)].sort_values(["domain", "start_s", "job_id"], kind="stable")
    seg = seg.iloc[:max_events]
    labels = job_labels(jobs)
    for d in keep:
        events.append(_meta(int(d), f"domain {d}"))
    for d, g in seg.groupby("domain", sort=True):
        s0s, s1s = g["start_s"].tolist(), g["end_s"].tolist()
        for lane, job, s0, s1, n, k in zip(lanes(zip(s0s, s1s, strict=True)), g["job_id"].tolist(), s0s, s1s,
                                           g["num_cards"].tolist(), g["spans"].tolist(), strict=True):
            events.append({"ph": "X", "name": labels.get(int(job), f"job {job}"), "cat": "training",
                           "pid": int(d), "tid": lane, "ts": s0 * 1e6, "dur": max(s1 - s0, 0.0) * 1e6,
                           "args": {"job_id": int(job), "cards": int(n), "domains": int(k)}})
    return events


def _cross_domain_counter(segments: pd.DataFrame) -> list[dict[str, Any]]:
    """Cards held by running jobs that span more than one scale-up domain, as a step counter."""
    g = segments.groupby(["job_id", "start_s"], sort=False).agg(end_s=("end_s", "first"),
                                                                 cards=("num_cards", "sum"),
                                                                 spans=("domain", "size"))
    g = g[g["spans"] > 1].reset_index()
    if g.empty:
        return []
    t = np.concatenate([g["start_s"].to_numpy(float), g["end_s"].to_numpy(float)])
    dv = np.concatenate([g["cards"].to_numpy(float), -g["cards"].to_numpy(float)])
    order = np.lexsort((dv, t))  # at equal times the ends (negative) first
    t, level = t[order], np.cumsum(dv[order])
    last = np.r_[t[1:] != t[:-1], True]  # one value per time: the level after all changes there
    name = "cross_domain_cards"
    return [{"ph": "C", "name": name, "pid": CLUSTER_PID, "tid": 0, "ts": float(ti) * 1e6,
             "args": {name: float(v)}} for ti, v in zip(t[last], level[last], strict=True)]


def chrome_trace(segments: pd.DataFrame, timeline: pd.DataFrame | None = None, *, max_tracks: int = 64,
                 max_events: int = 100_000, jobs: pd.DataFrame | None = None,
                 requests: pd.DataFrame | None = None, serving_timeline: pd.DataFrame | None = None,
                 replicas: pd.DataFrame | None = None,
                 max_requests: int = DEFAULT_MAX_REQUESTS) -> dict[str, Any]:
    """A Chrome trace-event document (``{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}``).

    Every event has ``ph``, ``name``, ``pid``, ``tid`` and ``ts`` (microseconds of simulated time).

    Parameters
    ----------
    segments : DataFrame
        :func:`~cluster_sim.metrics.recorder.segments_frame` (job_id, start_s, end_s, domain,
        num_cards; one row per segment and domain).
    timeline : DataFrame, optional
        :func:`~cluster_sim.metrics.recorder.timeline_frame`, for counter tracks.
    max_tracks : int
        Most domains (the busiest) and most serving replicas (the most requests) given tracks.
    max_events : int
        Most training spans.
    jobs : DataFrame, optional
        The jobs frame, for job names (``name``, else ``kind`` and id).
    requests, serving_timeline, replicas : DataFrame, optional
        The serving engine's frames (:func:`.trace_serving.serving_events`).
    max_requests : int
        Most requests written as slices (every k-th by id when there are more).
    """
    events: list[dict[str, Any]] = []
    other: dict[str, Any] = {}
    if len(segments):
        events += _training_events(segments, jobs, max_tracks, max_events)
    counters: list[dict[str, Any]] = []
    if timeline is not None and len(timeline):
        for col in ("allocated_cards", "busy_cards", "queued_jobs"):
            if col in timeline:
                for t, v in zip(timeline["time_s"].tolist(), timeline[col].tolist(), strict=True):
                    counters.append({"ph": "C", "name": col, "pid": CLUSTER_PID, "tid": 0, "ts": t * 1e6,
                                     "args": {col: v}})
    if len(segments):
        counters += _cross_domain_counter(segments)
    if counters:
        events.append(_meta(CLUSTER_PID, "cluster"))
        events += counters
    if requests is not None and len(requests):
        more, other = serving_events(requests, serving_timeline, replicas, max_tracks=max_tracks,
                                     max_requests=max_requests)
        events += more
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other}


def write_chrome_trace(doc: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a trace document as JSON (atomically: temp file then rename)."""
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, default=lambda o: o.item() if isinstance(o, np.generic) else str(o))
    os.replace(tmp, path)
