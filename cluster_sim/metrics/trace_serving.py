"""The serving part of the Perfetto / Chrome trace (:mod:`.trace_export`), from the recorded frames.

One process per serving replica (pid ``SERVING_PID0 + replica``, named ``service/pool replica r
(card type)``), with

* one slice per request on the replica that ran it, on lanes that never overlap (a batch is as
  many lanes as it has requests): colocated ``[admit_s, last_token_s]``; disaggregated
  (prefill/decode) a ``prefill`` slice ``[admit_s, first_token_s]`` on the prefill replica and a
  ``decode`` slice ``[kv_ready_s, last_token_s]`` on the decode replica, joined by a flow arrow
  (``ph`` ``s``/``f``) for the KV-cache transfer between them, the one network flow the serving
  engine records per request;
* counter tracks ``batch_size`` and ``kv_occupancy`` per replica: the time-weighted bin means of the
  serving timeline, one value per bin (a value equal to the previous one is not repeated).

Only finished requests have slices. At most ``max_requests`` are written: when there are more,
every k-th by request id, ``k = ceil(n / max_requests)`` (uniform over the run, deterministic);
the document's ``otherData`` gives ``requests_finished``, ``requests_written`` and
``request_stride``. At most ``max_tracks`` replicas (those with the most requests) get tracks.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from typing import Any, cast

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["DEFAULT_MAX_REQUESTS", "SERVING_PID0", "lanes", "serving_events"]

DEFAULT_MAX_REQUESTS = 5_000
"""Default cap on requests written as slices (a knob: ``cluster-sim trace export --max-requests``)."""

SERVING_PID0 = 10_000_000
"""Process id of serving replica 0 (domains use their index, so the two never collide)."""


def lanes(intervals: Iterable[tuple[float, float]]) -> list[int]:
    """Greedy interval colouring: a lane per interval (given sorted by start) so that intervals on
    one lane never overlap; the fewest lanes an interval graph needs."""
    busy: list[tuple[float, int]] = []  # (end, lane)
    free: list[int] = []
    out: list[int] = []
    n = 0
    for s0, s1 in intervals:
        while busy and busy[0][0] <= s0:
            heapq.heappush(free, heapq.heappop(busy)[1])
        lane = heapq.heappop(free) if free else n
        n = max(n, lane + 1)
        heapq.heappush(busy, (s1, lane))
        out.append(lane)
    return out


def _slices(df: pd.DataFrame, rep: str, t0: str, t1: str, cat: str, keep: set[int]) -> list[dict[str, Any]]:
    """One ``X`` event per row of ``df`` on replica column ``rep`` over ``[t0, t1]``."""
    out: list[dict[str, Any]] = []
    df = df[df[rep].isin(keep)].sort_values([rep, t0, "request_id"], kind="stable")
    for r, g in df.groupby(rep, sort=True):
        pid = SERVING_PID0 + int(cast(int, r))
        s0, s1 = g[t0].tolist(), g[t1].tolist()
        for lane, rid, svc, a, b, p, o in zip(lanes(zip(s0, s1, strict=True)), g["request_id"].tolist(),
                                              g["service"].astype(str).tolist(), s0, s1,
                                              g["prompt_tokens"].tolist(), g["output_tokens"].tolist(),
                                              strict=True):
            out.append({"ph": "X", "name": f"{svc} #{rid}", "cat": cat, "pid": pid,
                        "tid": lane, "ts": a * 1e6, "dur": max(b - a, 0.0) * 1e6,
                        "args": {"request_id": int(rid), "prompt_tokens": int(p), "output_tokens": int(o)}})
    return out


def _flows(pd_rows: pd.DataFrame, keep: set[int]) -> list[dict[str, Any]]:
    """KV-cache transfer arrows: prefill replica at first token -> decode replica at KV ready."""
    out: list[dict[str, Any]] = []
    rows = pd_rows[pd_rows["replica"].isin(keep) & pd_rows["decode_replica"].isin(keep)]
    for rid, a, b, ta, tb in zip(rows["request_id"].tolist(), rows["replica"].tolist(),
                                 rows["decode_replica"].tolist(), rows["first_token_s"].tolist(),
                                 rows["kv_ready_s"].tolist(), strict=True):
        common = {"name": "kv transfer", "cat": "network", "id": int(rid), "tid": 0}
        out.append({**common, "ph": "s", "pid": SERVING_PID0 + int(a), "ts": ta * 1e6})
        out.append({**common, "ph": "f", "bp": "e", "pid": SERVING_PID0 + int(b), "ts": tb * 1e6})
    return out


def _counters(tl: pd.DataFrame, keep: set[int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    tl = tl[tl["replica"].isin(keep)].sort_values(["replica", "time_s"], kind="stable")
    for r, g in tl.groupby("replica", sort=True):
        pid = SERVING_PID0 + int(cast(int, r))
        ts = g["time_s"].to_numpy(float)
        for col in ("batch_size", "kv_occupancy"):
            if col not in g:
                continue
            v = g[col].to_numpy(float)
            changed = np.r_[True, v[1:] != v[:-1]]
            out += [{"ph": "C", "name": col, "pid": pid, "tid": 0, "ts": float(t) * 1e6,
                     "args": {col: float(x)}} for t, x in zip(ts[changed], v[changed], strict=True)]
    return out


def serving_events(requests: pd.DataFrame, timeline: pd.DataFrame | None = None,
                   replicas: pd.DataFrame | None = None, *, max_tracks: int = 64,
                   max_requests: int = DEFAULT_MAX_REQUESTS) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Trace events of the serving engine's requests and levels, and the sampling it applied.

    Parameters
    ----------
    requests : DataFrame
        The requests frame (``request_id``, ``service``, ``status``, ``replica``,
        ``decode_replica``, ``admit_s``, ``first_token_s``, ``kv_ready_s``, ``last_token_s``, ...).
    timeline : DataFrame, optional
        The serving timeline (long: ``time_s``, ``replica``, ``batch_size``, ``kv_occupancy``).
    replicas : DataFrame, optional
        The replicas table, for track names (service, pool, card type).
    max_tracks, max_requests : int
        Caps (module docstring).

    Returns
    -------
    (events, other)
        ``other``: ``requests_finished``, ``requests_written``, ``request_stride``.
    """
    if max_requests < 0:
        raise ConfigError(f"max_requests: must be >= 0, got {max_requests}")
    done = requests[requests["status"].astype(str) == "finished"].sort_values("request_id", kind="stable")
    stride = max(1, math.ceil(len(done) / max_requests)) if max_requests else 0
    sample = done.iloc[::stride] if stride else done.iloc[:0]
    load = pd.concat([done["replica"], done.loc[done["decode_replica"] >= 0, "decode_replica"]])
    ranked = load.value_counts(sort=False).sort_index().sort_values(ascending=False, kind="stable")
    keep = set(ranked.index[:max_tracks].astype(int).tolist())
    if timeline is not None and len(timeline) and len(keep) < max_tracks:  # idle replicas have levels too
        for r in sorted(set(timeline["replica"].astype(int).tolist()) - keep)[:max_tracks - len(keep)]:
            keep.add(r)
    names: dict[int, str] = {}
    if replicas is not None and len(replicas):
        for r, svc, pool, ct in zip(replicas["replica"].tolist(), replicas["service"].astype(str).tolist(),
                                    replicas["pool"].astype(str).tolist(),
                                    replicas["card_type"].astype(str).tolist(), strict=True):
            names[int(r)] = f"{svc}/{pool} replica {r} ({ct})"
    events = [{"ph": "M", "name": "process_name", "pid": SERVING_PID0 + r, "tid": 0, "ts": 0.0,
               "args": {"name": names.get(r, f"replica {r}")}} for r in sorted(keep)]
    pd_rows = sample[sample["decode_replica"] >= 0]
    colo = sample[sample["decode_replica"] < 0]
    events += _slices(colo, "replica", "admit_s", "last_token_s", "request", keep)
    events += _slices(pd_rows, "replica", "admit_s", "first_token_s", "prefill", keep)
    events += _slices(pd_rows, "decode_replica", "kv_ready_s", "last_token_s", "decode", keep)
    events += _flows(pd_rows, keep)
    if timeline is not None and len(timeline):
        events += _counters(timeline, keep)
    other = {"requests_finished": len(done), "requests_written": len(sample), "request_stride": stride}
    return events, other
