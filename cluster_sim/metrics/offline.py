"""Summary keys of offline (batch) inference jobs (``training.offline_jobs``): ``offline.*``.

They run in the cluster engine beside training jobs, so their cards count in ``utilization.*``
and ``pool.*`` like any job's, but the ``training.*`` job keys exclude them
(:func:`~.summary.summarize_training`) and they get their own keys here (docs/metrics.md):

* ``offline.jobs.{submitted,finished,deferred,met_deadline,missed_deadline}``;
* ``offline.requests.processed`` and ``offline.tokens.processed`` (prompt + output tokens of
  the processed requests): whole batches done, :meth:`~cluster_sim.perf.offline.OfflineSchedule.processed`
  of each job's progress (all of its requests when finished);
* ``offline.tokens_per_s_per_card``: processed tokens over the card-seconds the jobs held
  cards (restart stalls included);
* ``offline.jct_s.{mean,p50,p90,p99}`` of the finished jobs, ``offline.preemptions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..perf.offline import OfflineSchedule
from .summary import _f, percentiles

__all__ = ["OFFLINE_KIND", "summarize_offline"]

OFFLINE_KIND = "offline_inference"
_FIELDS = ("requests", "replicas", "batch", "batch_s", "full_batches", "last_batch", "duration_s")


def summarize_offline(jobs: pd.DataFrame, schedules: Mapping[str, Mapping[str, Any]], t_end_s: float) -> dict[str, Any]:
    """``offline.*`` keys of the ``kind == offline_inference`` rows of a jobs frame.

    ``schedules``: per job name, the reference :class:`OfflineSchedule` fields plus
    ``prompt_tokens`` and ``output_tokens`` (the build puts them in the run record's meta).
    """
    off = jobs[jobs["kind"] == OFFLINE_KIND] if len(jobs) and "kind" in jobs else jobs.iloc[0:0]
    s: dict[str, Any] = {"offline.jobs.submitted": int(len(off))}
    fin = off["status"] == "finished" if len(off) else pd.Series([], dtype=bool)
    s["offline.jobs.finished"] = int(fin.sum())
    processed = tokens = 0
    for name, status, dur, rem in zip(off["name"] if len(off) else [], off["status"] if len(off) else [],
                                      off["duration_s"] if len(off) else [], off["remaining_s"] if len(off) else [],
                                      strict=True):
        meta = schedules[name]
        sched = OfflineSchedule(**{k: meta[k] for k in _FIELDS})
        n = sched.requests if status == "finished" else sched.processed(float(dur) - float(rem))
        processed += n
        tokens += n * (int(meta["prompt_tokens"]) + int(meta["output_tokens"]))
    s["offline.requests.processed"] = int(processed)
    s["offline.tokens.processed"] = int(tokens)
    card_s = float((off["attained_s"] * off["num_cards"] * off["card_milli"] / 1000.0).sum()) if len(off) else 0.0
    s["offline.tokens_per_s_per_card"] = _f(tokens / card_s) if card_s > 0 else None
    if len(off):
        submit = off["submit_s"].to_numpy(np.float64)
        due = submit + off["deadline_s"].to_numpy(np.float64)
        finish = off["finish_s"].to_numpy(np.float64)
        has = np.isfinite(due)
        late = np.where(np.isnan(finish), t_end_s > due, finish > due)
        s["offline.jobs.deferred"] = int((off["release_s"].to_numpy(np.float64) > submit).sum())
        s["offline.jobs.met_deadline"] = int((has & fin.to_numpy() & ~late).sum())
        s["offline.jobs.missed_deadline"] = int((has & late & (off["status"] != "rejected").to_numpy()).sum())
        s["offline.preemptions"] = int(off["preemptions"].sum())
    else:
        s.update({"offline.jobs.deferred": 0, "offline.jobs.met_deadline": 0, "offline.jobs.missed_deadline": 0,
                  "offline.preemptions": 0})
    s.update(percentiles(off.loc[fin, "jct_s"] if len(off) else [], "offline.jct_s"))
    return s
