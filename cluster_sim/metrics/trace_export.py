"""Perfetto / Chrome trace JSON of training job spans (open in ui.perfetto.dev or chrome://tracing).

One track group ("process") per scale-up domain, one lane ("thread") per concurrently running
job inside it (greedy interval colouring, so spans on a lane never overlap), plus counter tracks
of allocated and busy cards from the timeline. Big runs are capped: at most ``max_tracks``
domains (the busiest, by job-seconds) and ``max_events`` spans.
"""

from __future__ import annotations

import heapq
import json
import os
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["chrome_trace", "write_chrome_trace"]


def chrome_trace(segments: pd.DataFrame, timeline: pd.DataFrame | None = None, *, max_tracks: int = 64,
                 max_events: int = 100_000) -> dict[str, Any]:
    """A Chrome trace-event document (``{"traceEvents": [...], "displayTimeUnit": "ms"}``).

    Parameters
    ----------
    segments : DataFrame
        :func:`~cluster_sim.metrics.recorder.segments_frame` (job_id, start_s, end_s, domain, num_cards).
    timeline : DataFrame, optional
        :func:`~cluster_sim.metrics.recorder.timeline_frame`, for counter tracks.
    """
    events: list[dict[str, Any]] = []
    if len(segments):
        seg = segments.assign(busy=segments["end_s"] - segments["start_s"])
        load = seg.groupby("domain")["busy"].sum()
        keep = sorted(load.sort_values(ascending=False, kind="stable").index[:max_tracks].tolist())
        seg = seg[seg["domain"].isin(keep)].sort_values(["domain", "start_s", "job_id"], kind="stable")
        seg = seg.iloc[:max_events]
        for d in keep:
            events.append({"ph": "M", "name": "process_name", "pid": int(d), "args": {"name": f"domain {d}"}})
        for d, g in seg.groupby("domain", sort=True):
            lanes: list[tuple[float, int]] = []  # (end, lane)
            free: list[int] = []
            n_lanes = 0
            for job, s0, s1, n in zip(g["job_id"].tolist(), g["start_s"].tolist(), g["end_s"].tolist(),
                                      g["num_cards"].tolist(), strict=True):
                while lanes and lanes[0][0] <= s0:
                    heapq.heappush(free, heapq.heappop(lanes)[1])
                lane = heapq.heappop(free) if free else n_lanes
                n_lanes = max(n_lanes, lane + 1)
                heapq.heappush(lanes, (s1, lane))
                events.append({"ph": "X", "name": f"job {job}", "cat": "training", "pid": int(d), "tid": lane,
                               "ts": s0 * 1e6, "dur": max(s1 - s0, 0.0) * 1e6,
                               "args": {"job_id": int(job), "cards": int(n)}})
    if timeline is not None and len(timeline):
        for col in ("allocated_cards", "busy_cards", "queued_jobs"):
            if col in timeline:
                for t, v in zip(timeline["time_s"].tolist(), timeline[col].tolist(), strict=True):
                    events.append({"ph": "C", "name": col, "pid": -1, "ts": t * 1e6, "args": {col: v}})
        events.append({"ph": "M", "name": "process_name", "pid": -1, "args": {"name": "cluster"}})
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_chrome_trace(doc: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a trace document as JSON (atomically: temp file then rename)."""
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, default=lambda o: o.item() if isinstance(o, np.generic) else str(o))
    os.replace(tmp, path)
